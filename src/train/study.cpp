#include "convpool/study.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "convpool/error.h"
#include "convpool/statistics.h"

namespace convpool {

std::vector<std::string> parse_pool_list(const std::string& list) {
  std::vector<std::string> pools;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) CP_USER_ERROR("--pools '" << list << "': empty entry");
    const bool continues =
        item.find('=') != std::string::npos && item.find(':') == std::string::npos;
    if (continues) {
      if (pools.empty())
        CP_USER_ERROR("--pools '" << list << "': parameter '" << item << "' before any method");
      pools.back() += "," + item;
    } else {
      pools.push_back(item);
    }
  }
  if (pools.empty()) CP_USER_ERROR("--pools is empty");
  std::set<std::string> labels;
  for (auto& p : pools)
    if (!labels.insert(pool_label(p)).second) CP_USER_ERROR("--pools names '" << p << "' twice");
  return pools;
}

std::string pool_label(const std::string& pool) {
  std::string s;
  for (char c : pool) {
    if (c == ':' || c == ',')
      s += '-';
    else if (c == '=')
      continue;
    else if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')
      s += c;
    else
      s += '_';
  }
  return s;
}

std::string study_results_csv(const std::vector<StudyRow>& rows) {
  std::ostringstream s;
  s << "method,seed,epoch,loss,accuracy,test_loss,test_accuracy,seconds,images_per_second\n";
  s.precision(8);
  for (auto& r : rows)
    s << '"' << r.method << '"' << "," << r.seed << "," << r.m.epoch << "," << r.m.loss << ","
      << r.m.accuracy << "," << r.m.test_loss << "," << r.m.test_accuracy << "," << r.m.seconds
      << "," << r.m.images_per_second << "\n";
  return s.str();
}

std::vector<StudyRow> parse_study_results_csv(const std::string& text, const std::string& origin) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  if (line.rfind("method,seed,epoch,", 0) != 0)
    CP_USER_ERROR(origin << ":1: not a study results file");
  std::vector<StudyRow> rows;
  for (int lineno = 2; std::getline(in, line); ++lineno) {
    if (line.empty()) continue;
    const size_t close = line.find("\",");
    if (line[0] != '"' || close == std::string::npos)
      CP_USER_ERROR(origin << ":" << lineno << ": malformed row");
    StudyRow r;
    r.method = line.substr(1, close - 1);
    unsigned long long seed = 0;
    char tail = 0;
    if (std::sscanf(line.c_str() + close + 2, "%llu,%d,%lf,%lf,%lf,%lf,%lf,%lf%c", &seed,
                    &r.m.epoch, &r.m.loss, &r.m.accuracy, &r.m.test_loss, &r.m.test_accuracy,
                    &r.m.seconds, &r.m.images_per_second, &tail) != 8)
      CP_USER_ERROR(origin << ":" << lineno << ": malformed row");
    r.seed = seed;
    rows.push_back(r);
  }
  return rows;
}

std::vector<MethodSummary> summarize_study(const std::vector<StudyRow>& rows) {
  std::vector<std::string> order;  // methods in first-seen order (stable sort below)
  std::map<std::string, std::map<uint64_t, std::vector<EpochMetrics>>> runs;
  for (auto& r : rows) {
    if (!runs.count(r.method)) order.push_back(r.method);
    runs[r.method][r.seed].push_back(r.m);
  }
  std::vector<MethodSummary> out;
  for (auto& method : order) {
    MethodSummary s;
    s.method = method;
    std::vector<double> finals;
    std::map<int, std::pair<double, int>> by_epoch;  // epoch -> (sum of test acc, count)
    double seconds = 0;
    int epochs_timed = 0;
    for (auto& [seed, ms] : runs[method]) {
      const EpochMetrics* last = &ms[0];
      for (auto& m : ms) {
        if (m.epoch > last->epoch) last = &m;
        by_epoch[m.epoch].first += m.test_accuracy;
        by_epoch[m.epoch].second += 1;
        seconds += m.seconds;
        ++epochs_timed;
      }
      finals.push_back(last->test_accuracy);
      s.epochs = std::max(s.epochs, last->epoch);
    }
    s.seeds = int(finals.size());
    s.mean_accuracy = mean_of(finals);
    s.std_accuracy = sample_std(finals);
    s.best_mean_accuracy = -1;
    for (auto& [epoch, sum] : by_epoch) {
      const double mean = sum.first / sum.second;
      if (mean > s.best_mean_accuracy) s.best_mean_accuracy = mean, s.best_epoch = epoch;
    }
    s.seconds_per_epoch = epochs_timed ? seconds / epochs_timed : 0;
    s.final_accuracies = finals;
    out.push_back(s);
  }
  // The baseline: max pooling, or its one variant with parameters (a study at another window
  // geometry, "max:size=3,stride=2,pad=1"); none where several variants and no plain max.
  const MethodSummary* base = nullptr;
  int variants = 0;
  for (auto& s : out)
    if (s.method == "max") {
      base = &s;
      break;
    } else if (s.method.rfind("max:", 0) == 0 && ++variants == 1) {
      base = &s;
    }
  if (base && base->method != "max" && variants > 1) base = nullptr;
  if (base)
    for (auto& s : out) {
      s.is_baseline = &s == base;
      if (base->seconds_per_epoch > 0)
        s.relative_cost = s.seconds_per_epoch / base->seconds_per_epoch;
      if (&s != base) {
        const WelchTest w = welch_t_test(s.final_accuracies, base->final_accuracies);
        s.difference_vs_max = w.difference;
        s.p_vs_max = w.p;
      }
    }
  std::stable_sort(out.begin(), out.end(), [](const MethodSummary& a, const MethodSummary& b) {
    return a.mean_accuracy > b.mean_accuracy;
  });
  return out;
}

std::string study_summary_markdown(const std::vector<MethodSummary>& s, const std::string& title) {
  std::ostringstream md;
  md << "# " << title << "\n\n"
     << "| method | seeds | epochs | test accuracy (mean ± std) | vs max (Welch p) | "
        "best epoch (seed mean) | s/epoch | cost vs max |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  char buf[400];
  for (auto& m : s) {
    char cost[32] = "n/a", versus[48] = "n/a";
    if (m.relative_cost > 0) std::snprintf(cost, sizeof cost, "%.2fx", m.relative_cost);
    if (m.is_baseline) {
      std::snprintf(versus, sizeof versus, "-");
    } else if (!std::isnan(m.difference_vs_max)) {
      const int n = std::snprintf(versus, sizeof versus, "%+.4f", m.difference_vs_max);
      if (!std::isnan(m.p_vs_max))
        std::snprintf(versus + n, sizeof versus - size_t(n), " (p %.2g)", m.p_vs_max);
    }
    std::snprintf(buf, sizeof buf,
                  "| %s | %d | %d | %.4f ± %.4f | %s | %d (%.4f) | %.1f | %s |\n",
                  m.method.c_str(), m.seeds, m.epochs, m.mean_accuracy, m.std_accuracy, versus,
                  m.best_epoch, m.best_mean_accuracy, m.seconds_per_epoch, cost);
    md << buf;
  }
  md << "\nTest accuracy is that of each run's last epoch; std is the sample standard deviation "
        "over seeds (0 for one seed). \"vs max\" is the difference of the means, with the "
        "two-sided p of Welch's t-test over the seeds' final accuracies (none under 2 seeds a "
        "side; with 2 seeds the test has little power, so a large p is no evidence of no "
        "difference). s/epoch is training time per epoch (evaluation excluded), averaged over all "
        "epochs and seeds.\n";
  return md.str();
}

}  // namespace convpool
