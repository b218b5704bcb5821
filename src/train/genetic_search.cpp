#include "convpool/genetic_search.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "convpool/error.h"
#include "convpool/model.h"
#include "convpool/pooling.h"

namespace convpool {

namespace {

// SplitMix64: a small generator whose sequence is the same on every platform and standard
// library (std::uniform_int_distribution's is not), so a search replays anywhere.
class SearchRng {
 public:
  SearchRng(uint64_t seed, int generation)
      : state_(seed * 0x9E3779B97F4A7C15ull ^ (uint64_t(generation) + 0x632BE59BD9B4E019ull)) {
    next();
  }
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int below(int n) { return int((unsigned __int128)next() * uint64_t(n) >> 64); }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// Whether a is fitter than b (a at index ia, b at ib): higher accuracy, then lower loss, then
// the earlier individual.
bool fitter(const Fitness& a, int ia, const Fitness& b, int ib) {
  if (a.accuracy != b.accuracy) return a.accuracy > b.accuracy;
  if (a.loss != b.loss) return a.loss < b.loss;
  return ia < ib;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string key_of(const std::string& token) { return token.substr(0, token.find('=')); }

std::string csv_quoted(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::vector<PoolGene> searchable_pool_lines(const std::string& model_text,
                                            const std::string& origin) {
  const ModelSpec spec = parse_model_text(model_text, origin);
  std::vector<PoolGene> genes;
  const std::string prefix = origin + ":";
  for (const LayerSpec& layer : spec.layers) {
    if (layer.type != "pool") continue;
    if (std::find(layer.positional.begin(), layer.positional.end(), "global") !=
        layer.positional.end())
      continue;
    if (layer.where.rfind(prefix, 0) != 0) continue;
    const int line = std::atoi(layer.where.c_str() + prefix.size());
    if (line < 1) continue;
    if (std::none_of(genes.begin(), genes.end(), [&](const PoolGene& g) { return g.line == line; }))
      genes.push_back({line, layer.name});
  }
  return genes;
}

std::string rewrite_pool_lines(const std::string& model_text, const std::string& origin,
                               const std::vector<PoolGene>& genes,
                               const std::vector<std::string>& choices) {
  CP_CHECK(genes.size() == choices.size(), "one choice per gene");
  std::vector<std::string> lines = split_lines(model_text);
  // Every layer outside a repeat block gets its name written out: a pool layer that becomes an
  // op (lip_pool) would otherwise take another default name, and shift the pools after it.
  const ModelSpec before = parse_model_text(model_text, origin);
  const std::string prefix = origin + ":";
  for (const LayerSpec& layer : before.layers) {
    if (layer.where.rfind(prefix, 0) != 0 || layer.where.find(" (copy ") != std::string::npos)
      continue;
    const int at = std::atoi(layer.where.c_str() + prefix.size()) - 1;
    if (at < 0 || size_t(at) >= lines.size()) continue;
    std::string& line = lines[size_t(at)];
    const size_t hash = line.find('#');
    std::istringstream words(line.substr(0, hash));
    bool named = false;
    for (std::string w; words >> w;) named = named || w.rfind("name=", 0) == 0;
    if (named) continue;
    const size_t end = line.substr(0, hash).find_last_not_of(" \t\r");
    line.insert(end == std::string::npos ? 0 : end + 1, " name=" + layer.name);
  }
  for (size_t i = 0; i < genes.size(); ++i) {
    const int at = genes[i].line - 1;
    if (at < 0 || size_t(at) >= lines.size())
      CP_USER_ERROR(origin << ": no line " << genes[i].line << " to rewrite");
    // The choice applied to a bare pool layer gives its type, method word and parameters.
    ModelSpec one;
    LayerSpec bare;
    bare.type = "pool";
    bare.name = genes[i].layer;
    bare.positional = {"max"};
    bare.where = origin + ":" + std::to_string(genes[i].line);
    one.layers.push_back(bare);
    apply_pool_override(one, choices[i]);
    const LayerSpec& chosen = one.layers[0];
    std::set<std::string> set_by_choice;
    for (auto& kv : chosen.args) {
      set_by_choice.insert(kv.first);
      if (kv.first == "name" || kv.first == "in" || kv.first == "lr_mult" ||
          kv.first == "wd_mult" || kv.first == "frozen")
        CP_USER_ERROR("--pools " << choices[i] << ": " << kv.first
                                 << "= belongs to the pool layer, not to a method");
    }

    const std::string& old = lines[size_t(at)];
    const size_t hash = old.find('#');
    const std::string body = old.substr(0, hash),
                      comment = hash == std::string::npos ? "" : old.substr(hash);
    std::istringstream words(body);
    std::vector<std::string> tokens;
    for (std::string w; words >> w;) tokens.push_back(w);
    if (tokens.empty() || tokens[0] != "pool")
      CP_USER_ERROR(origin << ":" << genes[i].line << ": not a pool layer line");
    std::string line = body.substr(0, body.find_first_not_of(" \t")) + chosen.type;
    for (auto& w : chosen.positional) line += " " + w;
    static const std::set<std::string> kept = {"name", "in", "lr_mult", "wd_mult", "frozen"};
    static const std::set<std::string> geometry = {"size", "stride", "pad"};
    for (size_t t = 1; t < tokens.size(); ++t) {
      const std::string key = key_of(tokens[t]);
      if (tokens[t].find('=') == std::string::npos) continue;  // the old method word
      if (kept.count(key) || (geometry.count(key) && !set_by_choice.count(key)))
        line += " " + tokens[t];
    }
    for (auto& kv : chosen.args) line += " " + kv.first + "=" + kv.second;
    if (!comment.empty()) line += "  " + comment;
    lines[size_t(at)] = line;
  }
  std::string out;
  for (auto& l : lines) out += l + "\n";
  // Inside a repeat block names stay defaults: a choice that changed any layer's name is refused.
  const ModelSpec after = parse_model_text(out, origin);
  for (size_t l = 0; l < before.layers.size() && l < after.layers.size(); ++l)
    if (before.layers[l].name != after.layers[l].name)
      CP_USER_ERROR(before.layers[l].where << ": searching its pool line renames layer '"
                                           << before.layers[l].name << "' to '"
                                           << after.layers[l].name
                                           << "': give the repeat block's pool line a name "
                                              "(name=pool$i) to search ops on it");
  return out;
}

void check_genetic_settings(const GeneticSettings& s, int genes, int choices) {
  if (genes < 1)
    CP_USER_ERROR(
        "--search genetic: the model has no pool layer to search (global pool layers "
        "are --global-pool's)");
  if (choices < 2)
    CP_USER_ERROR("--search genetic: --pools needs at least two methods to choose from");
  if (genes > 200) CP_USER_ERROR("--search genetic: the model has over 200 pool lines to search");
  if (choices > 36) CP_USER_ERROR("--search genetic: --pools lists over 36 methods");
  if (s.population < 2 || s.population > 10000)
    CP_USER_ERROR("--population " << s.population << ": expected 2 to 10000");
  if (s.generations < 1 || s.generations > 10000)
    CP_USER_ERROR("--generations " << s.generations << ": expected 1 to 10000");
  if (s.tournament < 1 || s.tournament > s.population)
    CP_USER_ERROR("--tournament " << s.tournament << ": expected 1 to --population ("
                                  << s.population << ")");
  if (s.elite < 0 || s.elite >= s.population)
    CP_USER_ERROR("--elite " << s.elite << ": expected 0 to --population - 1 (" << s.population - 1
                             << ")");
  if (!(s.crossover >= 0 && s.crossover <= 1))
    CP_USER_ERROR("--crossover " << s.crossover << ": expected a probability in [0, 1]");
  if (!(s.mutation >= 0 && s.mutation <= 1))
    CP_USER_ERROR("--mutation " << s.mutation << ": expected a probability in [0, 1]");
}

std::string genotype_label(const Genotype& g) {
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string s = "g";
  for (int c : g) s += digits[c];
  return s;
}

std::string describe_genotype(const Genotype& g, const std::vector<PoolGene>& genes,
                              const std::vector<std::string>& pools) {
  std::string s;
  for (size_t i = 0; i < g.size(); ++i)
    s += (i ? " " : "") + genes[i].layer + "=" + pools[size_t(g[i])];
  return s;
}

std::vector<Genotype> first_generation(const GeneticSettings& s, int genes, int choices) {
  SearchRng rng(s.seed, 0);
  std::vector<Genotype> pop(size_t(s.population), Genotype(size_t(genes)));
  for (auto& g : pop)
    for (int& c : g) c = rng.below(choices);
  return pop;
}

std::vector<Genotype> next_generation(const GeneticSettings& s, int generation, int choices,
                                      const std::vector<Genotype>& previous,
                                      const std::vector<Fitness>& fitness) {
  CP_CHECK(previous.size() == fitness.size() && !previous.empty(), "a fitness per individual");
  const int n = int(previous.size());
  std::vector<int> ranked(static_cast<size_t>(n));
  std::iota(ranked.begin(), ranked.end(), 0);
  std::sort(ranked.begin(), ranked.end(),
            [&](int a, int b) { return fitter(fitness[size_t(a)], a, fitness[size_t(b)], b); });
  SearchRng rng(s.seed, generation);
  auto tournament = [&] {
    int best = rng.below(n);
    for (int k = 1; k < s.tournament; ++k) {
      const int other = rng.below(n);
      if (fitter(fitness[size_t(other)], other, fitness[size_t(best)], best)) best = other;
    }
    return previous[size_t(best)];
  };
  std::vector<Genotype> next;
  for (int e = 0; e < s.elite && e < n; ++e) next.push_back(previous[size_t(ranked[size_t(e)])]);
  while (int(next.size()) < s.population) {
    Genotype child = tournament();
    const Genotype other = tournament();
    if (rng.uniform() < s.crossover)
      for (size_t i = 0; i < child.size(); ++i)
        if (rng.uniform() < 0.5) child[i] = other[i];
    for (int& c : child)
      if (rng.uniform() < s.mutation) {
        const int redraw = rng.below(choices - 1);  // another choice than the current one
        c = redraw >= c ? redraw + 1 : redraw;
      }
    next.push_back(child);
  }
  return next;
}

std::vector<size_t> hold_out_indices(size_t n, size_t count, uint64_t seed) {
  CP_CHECK(count <= n, "a hold-out within the set");
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t(0));
  SearchRng rng(seed, -1);
  for (size_t i = 0; i < count; ++i) {  // partial Fisher-Yates
    const size_t j = i + size_t((unsigned __int128)rng.next() * (n - i) >> 64);
    std::swap(idx[i], idx[j]);
  }
  idx.resize(count);
  std::sort(idx.begin(), idx.end());
  return idx;
}

const SearchIndividual& best_individual(const std::vector<SearchIndividual>& rows) {
  CP_CHECK(!rows.empty(), "a search with individuals");
  size_t best = 0;
  for (size_t i = 1; i < rows.size(); ++i)
    if (fitter(rows[i].fitness, int(i), rows[best].fitness, int(best))) best = i;
  return rows[best];
}

std::string individuals_csv(const std::vector<SearchIndividual>& rows,
                            const std::vector<PoolGene>& genes,
                            const std::vector<std::string>& pools) {
  std::string csv =
      "generation,individual,genotype,label,validation_accuracy,validation_loss,repeat,seconds\n";
  char buf[160];
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, ",%.6f,%.6f,%d,%.2f\n", r.fitness.accuracy, r.fitness.loss,
                  r.repeat ? 1 : 0, r.seconds);
    csv += std::to_string(r.generation) + "," + std::to_string(r.index) + "," +
           csv_quoted(describe_genotype(r.genotype, genes, pools)) + "," +
           genotype_label(r.genotype) + buf;
  }
  return csv;
}

std::string search_summary_markdown(const std::vector<SearchIndividual>& rows,
                                    const std::vector<PoolGene>& genes,
                                    const std::vector<std::string>& pools, const std::string& title,
                                    const std::string& final_section) {
  std::ostringstream md;
  char buf[256];
  md << "# " << title << "\n\n";
  md << "Fitness is the validation accuracy (held-out training images, never the test set) "
        "after each genotype's short training; a genotype met again keeps its first "
        "evaluation.\n\n## Best genotypes\n\n"
        "| rank | genotype | validation accuracy | validation loss | first in generation |\n"
        "|---|---|---|---|---|\n";
  std::vector<size_t> order;
  std::set<std::string> seen;
  for (size_t i = 0; i < rows.size(); ++i)
    if (seen.insert(genotype_label(rows[i].genotype)).second) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return fitter(rows[a].fitness, int(a), rows[b].fitness, int(b));
  });
  for (size_t k = 0; k < order.size() && k < 10; ++k) {
    const auto& r = rows[order[k]];
    std::snprintf(buf, sizeof buf, " | %.4f | %.4f | %d |\n", r.fitness.accuracy, r.fitness.loss,
                  r.generation);
    md << "| " << k + 1 << " | `" << describe_genotype(r.genotype, genes, pools) << "`" << buf;
  }
  md << "\n## By generation\n\n| generation | best | mean | worst | new evaluations |\n"
        "|---|---|---|---|---|\n";
  std::map<int, std::vector<const SearchIndividual*>> by_gen;
  for (const auto& r : rows) by_gen[r.generation].push_back(&r);
  for (auto& [g, list] : by_gen) {
    double best = -1, worst = 2, sum = 0;
    int fresh = 0;
    for (auto* r : list) {
      best = std::max(best, r->fitness.accuracy);
      worst = std::min(worst, r->fitness.accuracy);
      sum += r->fitness.accuracy;
      fresh += r->repeat ? 0 : 1;
    }
    std::snprintf(buf, sizeof buf, "| %d | %.4f | %.4f | %.4f | %d |\n", g, best,
                  sum / double(list.size()), worst, fresh);
    md << buf;
  }
  md << "\n## Final training\n\n" << final_section << "\n";
  return md.str();
}

}  // namespace convpool
