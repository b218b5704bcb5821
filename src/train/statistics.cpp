#include "convpool/statistics.h"

#include <cmath>
#include <limits>

#include "convpool/error.h"

namespace convpool {

namespace {

// The continued fraction of I_x(a, b) (modified Lentz), which converges fast for
// x < (a + 1) / (a + b + 2); the caller uses the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) otherwise.
double incomplete_beta_fraction(double x, double a, double b) {
  constexpr double kTiny = 1e-300, kEps = 1e-14;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  // One step of the fraction with coefficient `k`: returns the factor it multiplies h by.
  auto step = [&](double k) {
    d = 1 + k * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + k / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    return d * c;
  };
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    h *= step(m * (b - m) * x / ((a + m2 - 1) * (a + m2)));  // even step
    const double last = step(-(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1)));  // odd
    h *= last;
    if (std::fabs(last - 1) < kEps) return h;
  }
  return h;  // not reached for the a, b a t-test asks for
}

double sample_variance(const std::vector<double>& v, double mean) {
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return ss / double(v.size() - 1);
}

}  // namespace

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

double sample_std(const std::vector<double>& v) {
  return v.size() < 2 ? 0.0 : std::sqrt(sample_variance(v, mean_of(v)));
}

double regularized_incomplete_beta(double x, double a, double b) {
  CP_CHECK(a > 0 && b > 0 && x >= 0 && x <= 1, "incomplete beta outside its domain");
  if (x == 0 || x == 1) return x;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) * incomplete_beta_fraction(x, a, b) / a;
  return 1 - std::exp(log_front) * incomplete_beta_fraction(1 - x, b, a) / b;
}

double student_t_two_sided_p(double t, double df) {
  CP_CHECK(df > 0, "t distribution needs df > 0");
  if (std::isnan(t)) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(t)) return 0;
  return regularized_incomplete_beta(df / (df + t * t), df / 2, 0.5);
}

WelchTest welch_t_test(const std::vector<double>& a, const std::vector<double>& b) {
  WelchTest w;
  w.p = w.t = w.df = std::numeric_limits<double>::quiet_NaN();
  if (a.empty() || b.empty()) return w;
  const double ma = mean_of(a), mb = mean_of(b);
  w.difference = ma - mb;
  if (a.size() < 2 || b.size() < 2) return w;
  const double sa = sample_variance(a, ma) / double(a.size());
  const double sb = sample_variance(b, mb) / double(b.size());
  if (sa + sb <= 0) return w;
  w.t = w.difference / std::sqrt(sa + sb);
  w.df = (sa + sb) * (sa + sb) /
         (sa * sa / double(a.size() - 1) + sb * sb / double(b.size() - 1));
  w.p = student_t_two_sided_p(w.t, w.df);
  return w;
}

}  // namespace convpool
