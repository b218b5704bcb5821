// Small statistics for comparing runs: Welch's two-sample t-test, as the pooling study
// reports each method against max pooling over a handful of seeds.
#pragma once
#include <vector>

namespace convpool {

// The mean of `v` (not empty), and its sample standard deviation (n - 1; 0 under 2 values).
double mean_of(const std::vector<double>& v);
double sample_std(const std::vector<double>& v);

// The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1.
double regularized_incomplete_beta(double x, double a, double b);

// P(|T| >= |t|) for Student's t with `df` > 0 degrees of freedom (df need not be whole).
double student_t_two_sided_p(double t, double df);

struct WelchTest {
  double difference = 0;  // mean(a) - mean(b)
  double t = 0;
  double df = 0;  // Welch-Satterthwaite
  double p = 0;   // two-sided; NaN when it is undefined (a sample under 2, or no variance at all)
};
// Welch's unequal-variance t-test of mean(a) against mean(b).
WelchTest welch_t_test(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace convpool
