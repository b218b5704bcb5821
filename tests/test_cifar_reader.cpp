// The CIFAR-10 reader on synthetic files: good, truncated, bad label, missing, foreign.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "convpool/data.h"
#include "convpool/error.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

TEST(CifarReader, ReadsGoodFilesExactly) {
  TempDir dir;
  const uint64_t seed = fresh_seed();
  write_cifar_dir(dir.str(), 7, seed);
  Dataset train = load_cifar10(dir.str(), "train");
  Dataset test = load_cifar10(dir.str(), "test");
  ASSERT_EQ(train.size(), 35u);
  ASSERT_EQ(test.size(), 7u);
  EXPECT_EQ(train.class_names.at(3), "cat");
  // Record 2 of batch 3 is image 16: compare with the bytes on disk.
  std::ifstream f(dir.str("data_batch_3.bin"), std::ios::binary);
  std::vector<char> rec(kCifarRecordBytes);
  f.seekg(2 * kCifarRecordBytes);
  f.read(rec.data(), rec.size());
  EXPECT_EQ(train.labels[16], uint8_t(rec[0]));
  EXPECT_EQ(0, std::memcmp(train.image(16), rec.data() + 1, kCifarImageBytes));
  EXPECT_EQ(load_cifar10(dir.str(), "train", 10).size(), 10u);
}

TEST(CifarReader, TruncatedFileIsNamed) {
  TempDir dir;
  write_cifar_dir(dir.str(), 3, fresh_seed());
  std::filesystem::resize_file(dir.str("data_batch_2.bin"), 3 * kCifarRecordBytes - 100);
  const std::string msg = error_of([&] { load_cifar10(dir.str(), "train"); });
  EXPECT_NE(msg.find("data_batch_2.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a multiple"), std::string::npos) << msg;
}

TEST(CifarReader, BadLabelIsNamed) {
  TempDir dir;
  write_cifar_dir(dir.str(), 3, fresh_seed());
  {
    std::fstream f(dir.str("test_batch.bin"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kCifarRecordBytes);
    f.put(char(17));
  }
  const std::string msg = error_of([&] { load_cifar10(dir.str(), "test"); });
  EXPECT_NE(msg.find("test_batch.bin: record 1 has label 17"), std::string::npos) << msg;
}

TEST(CifarReader, MissingFilesAndDirectories) {
  TempDir dir;
  write_cifar_dir(dir.str(), 2, fresh_seed());
  std::filesystem::remove(dir.str("data_batch_4.bin"));
  EXPECT_NE(error_of([&] { load_cifar10(dir.str(), "train"); }).find("data_batch_4.bin: missing"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_cifar10(dir.str("nope"), "train"); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of([&] { resolve_cifar_dir(dir.str("nope")); }).find("--data"),
            std::string::npos);
}

TEST(CifarReader, EmptyAndForeignFiles) {
  TempDir dir;
  std::ofstream(dir.str("empty.bin")).close();
  Dataset d;
  EXPECT_NE(error_of([&] { read_cifar_file(dir.str("empty.bin"), d); }).find("empty"),
            std::string::npos);
  std::ofstream(dir.str("text.bin")) << "this is not a CIFAR-10 file at all\n";
  EXPECT_NE(error_of([&] { read_cifar_file(dir.str("text.bin"), d); }).find("text.bin"),
            std::string::npos);
}

TEST(EpochOrder, IsAPermutationThatDependsOnSeedAndEpoch) {
  const uint64_t seed = fresh_seed();
  const auto a = epoch_order(1000, seed, 0), b = epoch_order(1000, seed, 1);
  EXPECT_EQ(std::set<uint32_t>(a.begin(), a.end()).size(), 1000u);
  EXPECT_EQ(*std::max_element(a.begin(), a.end()), 999u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, epoch_order(1000, seed, 0));
  EXPECT_NE(a, epoch_order(1000, seed + 1, 0));
}

TEST(ImagesToFloat, ScalesPixelsToUnitRange) {
  TempDir dir;
  write_cifar_file(dir.str("b.bin"), 4, fresh_seed());
  Dataset d;
  read_cifar_file(dir.str("b.bin"), d);
  std::vector<uint32_t> order = {3, 1};
  std::vector<float> out(2 * kCifarImageBytes, std::nanf(""));
  images_to_float(d, order.data(), 2, out.data());
  for (int k = 0; k < kCifarImageBytes; ++k) {
    EXPECT_FLOAT_EQ(out[k], d.image(3)[k] / 255.f);
    EXPECT_FLOAT_EQ(out[kCifarImageBytes + k], d.image(1)[k] / 255.f);
  }
}
