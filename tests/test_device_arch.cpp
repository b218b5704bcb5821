// Which devices a build for CMAKE_CUDA_ARCHITECTURES accepts (where
// a multi-architecture build joined its list with ',' and the check split on ';', and
// native/all parsed as architecture 0, so every device was refused).
#include <gtest/gtest.h>

#include "convpool/device.h"
#include "convpool/error.h"

using convpool::cuda_archs_run_on;

TEST(CudaArchitectures, AMultiArchitectureListAcceptsEachOfItsDevices) {
  for (const char* list : {"80,90", "80;90", "80-real,90-real"}) {
    EXPECT_TRUE(cuda_archs_run_on(list, 80)) << list;
    EXPECT_TRUE(cuda_archs_run_on(list, 86)) << list;
    EXPECT_TRUE(cuda_archs_run_on(list, 90)) << list;
    EXPECT_FALSE(cuda_archs_run_on(list, 75)) << list;
  }
}

TEST(CudaArchitectures, NativeAndAllAreTrusted) {
  for (const char* list : {"native", "all", "all-major"}) EXPECT_TRUE(cuda_archs_run_on(list, 89));
}

TEST(CudaArchitectures, PtxRunsOnLaterDevicesAndSassOnlyWithinItsMajor) {
  EXPECT_TRUE(cuda_archs_run_on("90", 100));  // a plain entry ships PTX too
  EXPECT_TRUE(cuda_archs_run_on("90-virtual", 120));
  EXPECT_FALSE(cuda_archs_run_on("90-real", 100));
  EXPECT_TRUE(cuda_archs_run_on("90a-real", 90));
  EXPECT_FALSE(cuda_archs_run_on("90", 86));
  EXPECT_FALSE(cuda_archs_run_on("", 90));
}

// --device cuda:N picks device N; plain cuda is device 0.
TEST(DeviceOption, CudaTakesAnOptionalWholeNumberIndex) {
  int index = -7;
  EXPECT_EQ(convpool::parse_device_option("cuda", &index), "cuda");
  EXPECT_EQ(index, 0);
  EXPECT_EQ(convpool::parse_device_option("cuda:0", &index), "cuda");
  EXPECT_EQ(index, 0);
  EXPECT_EQ(convpool::parse_device_option("cuda:3", &index), "cuda");
  EXPECT_EQ(index, 3);
  for (const char* kind : {"auto", "cpu"}) {
    EXPECT_EQ(convpool::parse_device_option(kind, &index), kind);
    EXPECT_EQ(index, 0);
  }
}

TEST(DeviceOption, BadIndicesAndNamesAreRefused) {
  int index = 0;
  for (const char* text : {"cuda:x", "cuda:-1", "cuda:", "cuda:1x", "cuda: 1", "cuda:+1",
                           "cuda:99999999999", "tpu", "cuda0", "CUDA"})
    EXPECT_THROW(convpool::parse_device_option(text, &index), convpool::Error) << text;
}
