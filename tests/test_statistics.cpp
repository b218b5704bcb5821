// The t-test the pooling study reports, against closed forms (Student's t with 1 and 2
// degrees of freedom) and a naive Simpson integration of the t density for other df.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "convpool/statistics.h"
#include "convpool/study.h"
#include "layer_harness.h"

using namespace convpool;
using namespace convpool::test;

namespace {

// P(|T| >= t) = 1 - 2 * integral_0^t of the density, by Simpson's rule in double.
double two_sided_p_by_integration(double t, double df) {
  const double front = std::exp(std::lgamma((df + 1) / 2) - std::lgamma(df / 2)) /
                       std::sqrt(df * M_PI);
  auto density = [&](double x) { return front * std::pow(1 + x * x / df, -(df + 1) / 2); };
  const int n = 20000;  // even
  const double h = t / n;
  double sum = density(0) + density(t);
  for (int i = 1; i < n; ++i) sum += (i % 2 ? 4 : 2) * density(i * h);
  return 1 - 2 * sum * h / 3;
}

}  // namespace

TEST(Statistics, StudentTMatchesClosedFormsAndIntegration) {
  std::mt19937_64 rng(fresh_seed());
  std::uniform_real_distribution<double> ts(0, 8), dfs(0.5, 40);
  for (int i = 0; i < 200; ++i) {
    const double t = ts(rng);
    // df = 1 is the Cauchy distribution, df = 2 has P(|T| >= t) = 1 - t / sqrt(2 + t^2).
    EXPECT_NEAR(student_t_two_sided_p(t, 1), 1 - 2 * std::atan(t) / M_PI, 1e-12) << t;
    EXPECT_NEAR(student_t_two_sided_p(-t, 2), 1 - t / std::sqrt(2 + t * t), 1e-12) << t;
    const double df = dfs(rng);
    EXPECT_NEAR(student_t_two_sided_p(t, df), two_sided_p_by_integration(t, df), 1e-8)
        << "t " << t << " df " << df;
  }
  EXPECT_EQ(student_t_two_sided_p(0, 3), 1.0);
  EXPECT_EQ(student_t_two_sided_p(INFINITY, 3), 0.0);
  EXPECT_TRUE(std::isnan(student_t_two_sided_p(NAN, 3)));
}

TEST(Statistics, WelchTestOfTwoSeedsEachAndItsDegenerateCases) {
  std::mt19937_64 rng(fresh_seed());
  std::uniform_real_distribution<double> u(0.6, 0.9);
  for (int i = 0; i < 50; ++i) {
    // Equal spread on both sides, 2 values each: df = 2 exactly, t = difference / spread.
    const double a0 = u(rng), b0 = u(rng), gap = 0.001 + 0.05 * (u(rng) - 0.6);
    const WelchTest w = welch_t_test({a0, a0 + gap}, {b0 + gap, b0});
    EXPECT_NEAR(w.difference, a0 - b0, 1e-12);
    EXPECT_NEAR(w.df, 2, 1e-9);
    // Sample variances gap^2 / 2, each over n = 2: the standard error is gap / sqrt(2).
    const double t = std::sqrt(2.0) * (a0 - b0) / gap;
    EXPECT_NEAR(w.t, t, 1e-6 * std::fabs(t) + 1e-9);
    EXPECT_NEAR(w.p, 1 - std::fabs(t) / std::sqrt(2 + t * t), 1e-9);
    // Swapping the samples flips the sign of t, not p.
    const WelchTest back = welch_t_test({b0 + gap, b0}, {a0, a0 + gap});
    EXPECT_NEAR(back.t, -w.t, 1e-9 * std::fabs(w.t) + 1e-12);
    EXPECT_NEAR(back.p, w.p, 1e-12);
  }
  EXPECT_TRUE(std::isnan(welch_t_test({0.7}, {0.6, 0.65}).p));        // one seed
  EXPECT_TRUE(std::isnan(welch_t_test({0.7, 0.7}, {0.6, 0.6}).p));   // no spread at all
  EXPECT_NEAR(welch_t_test({0.7}, {0.6, 0.65}).difference, 0.075, 1e-12);
}

// The study's table carries each method's difference from max and its p.
TEST(Statistics, StudySummaryComparesEachMethodWithMax) {
  std::vector<StudyRow> rows;
  const std::vector<std::pair<const char*, std::vector<double>>> finals = {
      {"max", {0.70, 0.72}}, {"avg", {0.74, 0.75}}, {"softpool", {0.71}}};
  for (auto& [method, accs] : finals)
    for (size_t seed = 0; seed < accs.size(); ++seed) {
      StudyRow r{method, seed + 1, {}};
      r.m.epoch = 1;
      r.m.test_accuracy = accs[seed];
      r.m.seconds = 1;
      rows.push_back(r);
    }
  const auto s = summarize_study(rows);
  ASSERT_EQ(s.size(), 3u);
  for (auto& m : s) {
    if (m.method == "avg") {
      const WelchTest w = welch_t_test({0.74, 0.75}, {0.70, 0.72});
      EXPECT_NEAR(m.difference_vs_max, 0.035, 1e-12);
      EXPECT_NEAR(m.p_vs_max, w.p, 1e-15);
      EXPECT_GT(m.p_vs_max, 0.0);
      EXPECT_LT(m.p_vs_max, 1.0);
    } else if (m.method == "softpool") {
      EXPECT_NEAR(m.difference_vs_max, 0.0, 1e-12);
      EXPECT_TRUE(std::isnan(m.p_vs_max));
    } else {
      EXPECT_TRUE(std::isnan(m.difference_vs_max));
    }
  }
  const std::string md = study_summary_markdown(s, "t");
  EXPECT_NE(md.find("| avg | 2 | 1 | 0.7450 ± 0.0071 | +0.0350 (p "), std::string::npos) << md;
  EXPECT_NE(md.find("| softpool | 1 | 1 | 0.7100 ± 0.0000 | +0.0000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| max | 2 | 1 | 0.7100 ± 0.0141 | - |"), std::string::npos) << md;
}

// A study at another window geometry names max with its parameters; it is still the baseline.
TEST(Statistics, StudySummaryTakesMaxWithParametersAsTheBaseline) {
  std::vector<StudyRow> rows;
  const std::vector<std::pair<const char*, std::vector<double>>> finals = {
      {"max:size=3,stride=2,pad=1", {0.70, 0.72}}, {"avgtopk:k=5,size=3,stride=2,pad=1", {0.74, 0.75}}};
  for (auto& [method, accs] : finals)
    for (size_t seed = 0; seed < accs.size(); ++seed) {
      StudyRow r{method, seed + 1, {}};
      r.m.epoch = 1;
      r.m.test_accuracy = accs[seed];
      r.m.seconds = method[0] == 'm' ? 2 : 3;
      rows.push_back(r);
    }
  auto s = summarize_study(rows);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].method, "avgtopk:k=5,size=3,stride=2,pad=1");
  EXPECT_NEAR(s[0].difference_vs_max, 0.035, 1e-12);
  EXPECT_NEAR(s[0].relative_cost, 1.5, 1e-12);
  EXPECT_TRUE(s[1].is_baseline);
  const std::string md = study_summary_markdown(s, "t");
  EXPECT_NE(md.find("| max:size=3,stride=2,pad=1 | 2 | 1 | 0.7100 ± 0.0141 | - |"),
            std::string::npos) << md;
  // Two variants of max and no plain max: no baseline to compare with.
  rows.push_back(StudyRow{"max:size=2", 1, {}});
  rows.back().m.epoch = 1;
  s = summarize_study(rows);
  for (auto& m : s) EXPECT_TRUE(std::isnan(m.difference_vs_max)) << m.method;
}
