// CIFAR-100: the reader on synthetic files of its binary layout (no real copy of CIFAR-100 is
// at hand where convpool is developed), and --dataset cifar100 through train, eval and resume.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {
struct Record {
  uint8_t coarse, fine;
  std::vector<uint8_t> pixels;
};

std::vector<Record> random_records(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Record> out(static_cast<size_t>(n));
  for (auto& r : out) {
    r.coarse = uint8_t(rng() % kCifar100CoarseClasses);
    r.fine = uint8_t(rng() % kCifar100Classes);
    r.pixels.resize(kCifarImageBytes);
    for (auto& p : r.pixels) p = uint8_t(rng());
  }
  return out;
}

void write_records(const std::string& path, const std::vector<Record>& records) {
  std::ofstream f(path, std::ios::binary);
  for (const Record& r : records) {
    f.put(char(r.coarse)).put(char(r.fine));
    f.write(reinterpret_cast<const char*>(r.pixels.data()), std::streamsize(r.pixels.size()));
  }
}

// train.bin and test.bin of `per_split` random records each; returns the training records.
std::vector<Record> write_cifar100_dir(const std::string& dir, int per_split, uint64_t seed) {
  std::filesystem::create_directories(dir);
  const auto train = random_records(per_split, seed);
  write_records(dir + "/train.bin", train);
  write_records(dir + "/test.bin", random_records(per_split, seed + 1));
  return train;
}

const char* kModel100 =
    "input channels=3 height=32 width=32\n"
    "conv filters=4 size=3 stride=2\nrelu\npool max size=2\nflatten\ndense units=100\n";
}  // namespace

TEST(Cifar100, ReadsFineAndCoarseLabelsAndPixels) {
  TempDir d;
  const auto records = write_cifar100_dir(d.str("cifar-100-binary"), 37, fresh_seed());
  {
    std::ofstream names(d.str("cifar-100-binary/fine_label_names.txt"));
    for (int c = 0; c < kCifar100Classes; ++c) names << "fine" << c << "\n";
  }
  const Dataset ds = load_cifar100(d.str("cifar-100-binary"), "train");
  ASSERT_EQ(ds.size(), records.size());
  EXPECT_EQ(ds.classes, kCifar100Classes);
  EXPECT_EQ(ds.class_names.size(), size_t(kCifar100Classes));
  EXPECT_EQ(ds.class_names[42], "fine42");
  for (size_t i = 0; i < records.size(); ++i) {
    ASSERT_EQ(ds.labels[i], records[i].fine) << i;
    ASSERT_EQ(ds.coarse_labels[i], records[i].coarse) << i;
    ASSERT_TRUE(std::equal(records[i].pixels.begin(), records[i].pixels.end(), ds.image(i))) << i;
  }
  EXPECT_EQ(load_cifar100(d.str("cifar-100-binary"), "test", 5).size(), 5u);
  // 37 records, not CIFAR-100's 50,000: said, not taken silently for the real data set.
  EXPECT_NE(data_note(ds, "training").find("not CIFAR-100's 50000"), std::string::npos);
  EXPECT_EQ(resolve_data_dir(DatasetKind::cifar100, d.str()), d.str("cifar-100-binary"));
  EXPECT_EQ(resolve_data_dir(DatasetKind::cifar100, d.str("cifar-100-binary")),
            d.str("cifar-100-binary"));
  EXPECT_EQ(load_dataset(DatasetKind::cifar100, d.str("cifar-100-binary"), "train").classes, 100);
}

TEST(Cifar100, BadFilesGiveOneLineErrors) {
  TempDir d;
  auto records = random_records(4, fresh_seed());
  const auto expect = [&](const std::string& what) {
    write_records(d.str("train.bin"), records);
    const std::string msg = error_of([&] { load_cifar100(d.str(), "train"); });
    EXPECT_NE(msg.find(what), std::string::npos) << what << " in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  records[2].fine = 100;
  expect("record 2 has label 100, outside 0..99");
  records[2].fine = 99;
  records[3].coarse = 20;
  expect("record 3 has coarse label 20, outside 0..19");
  records[3].coarse = 0;
  records[1].pixels.pop_back();  // a record one byte short
  expect("not a multiple of the 3074-byte record");
  EXPECT_NE(error_of([&] { load_cifar100(d.str("none"), "train"); }).find("does not exist"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_cifar100(d.str(), "test"); }).find("test.bin: missing"),
            std::string::npos);
  EXPECT_NE(error_of([&] { resolve_data_dir(DatasetKind::cifar100, d.str("x")); }).find("--data"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_dataset_kind("cifar1000"); }).find("cifar10, cifar100 or folder"),
            std::string::npos);
}

TEST(Cifar100, TrainsEvaluatesAndResumesFromTheCli) {
  TempDir d;
  write_cifar100_dir(d.str("cifar-100-binary"), 40, fresh_seed());
  std::ofstream(d.str("m100.cfg")) << kModel100;
  std::ofstream(d.str("m10.cfg")) << "input channels=3 height=32 width=32\nflatten\ndense units=10\n";
  const std::string base = "train --device cpu --threads 1 --quiet --dataset cifar100 --data " +
                           d.str("cifar-100-binary") + " --batch 8";
  const auto trained = run_convpool(base + " --model " + d.str("m100.cfg") + " --epochs 1 --out " +
                                    d.str("run"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_EQ(load_checkpoint(d.str("run/last.safetensors")).state.dataset, "cifar100");
  // eval takes the data set from the checkpoint: 100 classes in its report.
  const auto eval = run_convpool("eval --device cpu --json --data " + d.str("cifar-100-binary") +
                                 " --checkpoint " + d.str("run/last.safetensors"));
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  // The JSON follows the note that these files are not the full data set (on stderr).
  EXPECT_NE(eval.output.find("not CIFAR-100's 10000"), std::string::npos) << eval.output;
  const auto j = nlohmann::json::parse(eval.output.substr(eval.output.find('{')));
  EXPECT_EQ(j["per_class"].size(), 100u);
  EXPECT_EQ(j["confusion"].size(), 100u);
  EXPECT_EQ(j["images"], 40);
  // A 10-output model on CIFAR-100, and a resume under the other data set: one-line errors.
  const auto wrong = run_convpool(base + " --model " + d.str("m10.cfg") + " --epochs 1 --out " +
                                  d.str("wrong"));
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.output.find("CIFAR-100 needs 100 logits"), std::string::npos) << wrong.output;
  const auto other = run_convpool("train --device cpu --quiet --dataset cifar10 --data " +
                                  d.str("cifar-100-binary") + " --epochs 2 --resume " +
                                  d.str("run/last.safetensors"));
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("was trained on cifar100; --resume continues on it"),
            std::string::npos)
      << other.output;
  // Without --dataset, a resume continues on the checkpoint's data set.
  const auto resumed = run_convpool("train --device cpu --threads 1 --quiet --data " +
                                    d.str("cifar-100-binary") + " --epochs 2 --resume " +
                                    d.str("run/last.safetensors"));
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(load_checkpoint(d.str("run/last.safetensors")).state.epoch, 2);
}
