// The fused softmax cross-entropy of the CPU backend (src/cpu/loss.cpp).
#include <gtest/gtest.h>

#include "cpu/loss.h"
#include "layer_harness.h"

using namespace convpool;
using namespace convpool::test;

namespace {
double naive_xent(const float* z, int classes, int label) {
  double m = z[0];
  for (int k = 1; k < classes; ++k) m = std::max<double>(m, z[k]);
  double s = 0;
  for (int k = 0; k < classes; ++k) s += std::exp(z[k] - m);
  return -(z[label] - m - std::log(s));
}
}  // namespace

TEST(SoftmaxXent, LossAccuracyAndGradientMatchNaive) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int n = 9, classes = 10;
  std::vector<float> z(n * classes), dz(n * classes);
  fill_uniform(z, rng, -5.f, 5.f);
  poison(dz);
  std::vector<uint8_t> labels(n);
  for (auto& l : labels) l = uint8_t(rng() % classes);
  const auto s = cpu::softmax_xent(n, classes, z.data(), labels.data(), dz.data(), 1.f / n);
  double want = 0;
  int correct = 0;
  for (int i = 0; i < n; ++i) {
    want += naive_xent(&z[i * classes], classes, labels[i]);
    correct += int(std::max_element(&z[i * classes], &z[i * classes] + classes) -
                   &z[i * classes]) == labels[i];
  }
  EXPECT_NEAR(s.loss, want, 1e-9 * want);
  EXPECT_EQ(s.correct, correct);
  // Gradient by central differences of the mean loss.
  for (int i = 0; i < n * classes; ++i) {
    const float h = 1e-2f, orig = z[i];
    z[i] = orig + h;
    const double fp = cpu::softmax_xent(n, classes, z.data(), labels.data(), nullptr, 0).loss / n;
    z[i] = orig - h;
    const double fm = cpu::softmax_xent(n, classes, z.data(), labels.data(), nullptr, 0).loss / n;
    z[i] = orig;
    EXPECT_NEAR(dz[i], (fp - fm) / (2 * h), 1e-4) << i;
  }
}

TEST(SoftmaxXent, StableForHugeLogits) {
  std::vector<float> z = {1e30f, -1e30f, 0.f, 3e38f, 3e38f, -3e38f};
  std::vector<uint8_t> labels = {0, 1};
  std::vector<float> dz(6);
  const auto s = cpu::softmax_xent(2, 3, z.data(), labels.data(), dz.data(), 1.f);
  EXPECT_TRUE(std::isfinite(s.loss));
  for (float g : dz) EXPECT_TRUE(std::isfinite(g));
  EXPECT_NEAR(s.loss, std::log(2.0), 1e-6);  // first sample: 0 loss; second: log 2
}

// Label smoothing: the loss is -sum_k q_k log softmax_k with q = (1 - eps) onehot + eps / K,
// computed here naively in double, and the gradient is checked against central finite
// differences of that loss (in double, on the float logits).
TEST(SoftmaxXent, LabelSmoothingLossAndGradientCheck) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int n = 5, classes = 10;
  const float eps = 0.1f;
  std::vector<float> z(n * classes), dz(n * classes);
  fill_uniform(z, rng, -4.f, 4.f);
  poison(dz);
  std::vector<uint8_t> labels(n);
  for (auto& l : labels) l = uint8_t(rng() % classes);
  auto naive_loss = [&](const std::vector<float>& logits) {
    double total = 0;
    for (int i = 0; i < n; ++i) {
      double den = 0;
      for (int k = 0; k < classes; ++k) den += std::exp(double(logits[i * classes + k]));
      for (int k = 0; k < classes; ++k) {
        const double q = (k == labels[i] ? 1.0 - eps : 0.0) + double(eps) / classes;
        total -= q * (double(logits[i * classes + k]) - std::log(den));
      }
    }
    return total;
  };
  const auto s = cpu::softmax_xent(n, classes, z.data(), labels.data(), dz.data(), 1.f, eps);
  const double want = naive_loss(z);
  EXPECT_NEAR(s.loss, want, 1e-9 * want);
  for (int i = 0; i < n * classes; ++i) {
    const float h = 1e-2f, orig = z[i];
    z[i] = orig + h;
    const double fp = naive_loss(z);
    z[i] = orig - h;
    const double fm = naive_loss(z);
    z[i] = orig;
    // Unsmoothed targets would be off by eps / K = 0.01 here.
    EXPECT_NEAR(dz[i], (fp - fm) / (2.0 * double(h)), 1e-4) << i;
  }
  // eps = 0 is plain cross-entropy, bit for bit.
  std::vector<float> plain(n * classes), zero_eps(n * classes);
  const auto a = cpu::softmax_xent(n, classes, z.data(), labels.data(), plain.data(), 0.5f);
  const auto b = cpu::softmax_xent(n, classes, z.data(), labels.data(), zero_eps.data(), 0.5f, 0.f);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(plain, zero_eps);
}
