// Inter-map pooling's math on the CPU (kernels/intermap_pool_math.cuh through
// src/cpu/intermap_pool.cpp) and its layer's refusals; the CUDA kernels are compared with this
// in tests/kernel_parity_intermap_pool.cpp, gradients through a graph in the op registry suite.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "cpu/intermap_pool.h"

using namespace convpool;

namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

// One sample, 4 maps of 2 positions, groups of 2: outputs (map 0|1) and (map 2|3).
TEST(InterMapPool, MaxTakesTheFirstLargestAndPropagatesNaN) {
  const std::vector<float> x = {1, 5,     // map 0
                                3, 5,     // map 1: position 1 ties map 0
                                -kInf, kNan,  // map 2
                                -1, 2};   // map 3
  std::vector<float> y(4, -7), dx(8, -7);
  cpu::intermap_pool_forward(InterMapMode::max, 2, x.data(), y.data(), 1, 4, 2);
  EXPECT_EQ(y[0], 3);
  EXPECT_EQ(y[1], 5);
  EXPECT_EQ(y[2], -1);
  EXPECT_TRUE(std::isnan(y[3]));
  const std::vector<float> dy = {10, 20, 30, 40};
  cpu::intermap_pool_backward(InterMapMode::max, 2, x.data(), dy.data(), dx.data(), 1, 4, 2);
  EXPECT_EQ(dx, (std::vector<float>{0, 20, 10, 0, 0, 40, 30, 0}));  // ties: the lower map
}

TEST(InterMapPool, MeanAveragesTheGroup) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};  // 6 maps of 1 position, groups of 3
  std::vector<float> y(2, -7), dx(6, -7);
  cpu::intermap_pool_forward(InterMapMode::mean, 3, x.data(), y.data(), 1, 6, 1);
  EXPECT_FLOAT_EQ(y[0], 2);
  EXPECT_FLOAT_EQ(y[1], 5);
  const std::vector<float> dy = {3, 6};
  cpu::intermap_pool_backward(InterMapMode::mean, 3, x.data(), dy.data(), dx.data(), 1, 6, 1);
  EXPECT_EQ(dx, (std::vector<float>{1, 1, 1, 2, 2, 2}));
}

TEST(InterMapPool, TheLayerRefusesGroupsThatDoNotDivideTheMaps) {
  auto build = [](const std::string& line) {
    return Graph::build(parse_model_text("input channels=6 height=4 width=4\n" + line + "\n", "m"),
                        GraphOptions{Device::cpu, 1, 0});
  };
  EXPECT_NO_THROW(build("intermap_pool groups=3"));
  try {
    build("intermap_pool groups=4");
    ADD_FAILURE() << "groups=4 of 6 maps was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not divide its input's 6 maps"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(build("intermap_pool"), Error);                      // no groups
  EXPECT_THROW(build("intermap_pool groups=2 mode=median"), Error);  // unknown mode
  EXPECT_THROW(build("intermap_pool groups=0"), Error);
}

}  // namespace
