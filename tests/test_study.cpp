// convpool study and run directories: pool lists, the summary's arithmetic, the files a study
// writes, resuming, config files that repeat a run, and console output without a terminal.
#include <gtest/gtest.h>

#include <sstream>

#include <functional>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "convpool/metrics.h"
#include "convpool/safetensors.h"
#include "convpool/study.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {
bool has_control_characters(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 && c != '\n' && c != '\t') return true;
  return false;
}
// A merge reads what it tabulates: a shard whose run lost its metrics, holds an unfinished or
// edited run, values out of range, a run directory outside the shard, or another recipe, is
// refused naming the shard, the run and the field; nothing is written.
TEST(Study, MergeValidatesWhatItReads) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, 19);
  const std::string common = "study --device cpu --threads 1 --quiet --no-plot --epochs 1 "
                             "--batch 20 --pools max,avg --seeds 1 --data " + d.str("data");
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(run_convpool(common + " --shard " + std::to_string(i) + "/2 --out " +
                           d.str("s" + std::to_string(i)))
                  .exit_code,
              0);
  ASSERT_EQ(run_convpool(common + " --lr 0.01 --shard 1/2 --out " + d.str("s1lr")).exit_code, 0);
  namespace fs = std::filesystem;
  const std::string csv = "/runs/avg/seed-1/metrics.csv";  // shard 1's run
  const std::string good = read_file(d.str("s1") + csv);
  auto row_with = [&](int column, const std::string& value) {
    // The first data row with one column replaced.
    const size_t start = good.find('\n') + 1, end = good.find('\n', start);
    std::vector<std::string> cells;
    std::stringstream row(good.substr(start, end - start));
    for (std::string c; std::getline(row, c, ',');) cells.push_back(c);
    cells.at(size_t(column)) = value;
    std::string out = good.substr(0, start);
    for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + cells[i];
    return out + good.substr(end);
  };
  struct Case {
    std::string name, want;
    std::function<void(const std::string&)> spoil;  // applied to a copy of shard 1
  };
  const std::vector<Case> cases = {
      {"missing metrics", "missing", [&](const std::string& s) { fs::remove(s + csv); }},
      {"header only", "0 of 1 epochs",
       [&](const std::string& s) { std::ofstream(s + csv) << good.substr(0, good.find('\n') + 1); }},
      {"epoch 7", "0 of 1 epochs", [&](const std::string& s) { std::ofstream(s + csv) << row_with(0, "7"); }},
      {"test accuracy nan", "test_accuracy", [&](const std::string& s) { std::ofstream(s + csv) << row_with(4, "nan"); }},
      {"test accuracy 5", "test_accuracy 5", [&](const std::string& s) { std::ofstream(s + csv) << row_with(4, "5.0"); }},
      {"accuracy -0.5", "accuracy -0.5", [&](const std::string& s) { std::ofstream(s + csv) << row_with(2, "-0.5"); }},
      {"seconds -3", "seconds -3", [&](const std::string& s) { std::ofstream(s + csv) << row_with(5, "-3"); }},
      {"run dir outside", "outside its shard",
       [&](const std::string& s) {
         std::string j = read_file(s + "/study.json");
         const size_t at = j.find("runs/avg/seed-1");
         j.replace(at, std::string("runs/avg/seed-1").size(), "../s0/runs/max/seed-1");
         std::ofstream(s + "/study.json") << j;
       }},
  };
  for (const Case& c : cases) {
    const std::string spoiled = d.str("spoiled");
    fs::remove_all(spoiled);
    fs::copy(d.str("s1"), spoiled, fs::copy_options::recursive);
    c.spoil(spoiled);
    const CommandResult r = run_convpool("study --no-plot --quiet --merge " + d.str("s0") + "," +
                                         spoiled + " --out " + d.str("m-" + std::to_string(&c - &cases[0])));
    EXPECT_EQ(r.exit_code, 1) << c.name << "\n" << r.output;
    EXPECT_NE(r.output.find(c.want), std::string::npos) << c.name << "\n" << r.output;
    EXPECT_FALSE(fs::exists(d.str("m-" + std::to_string(&c - &cases[0])) + "/results.csv")) << c.name;
  }
  const CommandResult lr = run_convpool("study --no-plot --quiet --merge " + d.str("s0") + "," +
                                        d.str("s1lr") + " --out " + d.str("m-lr"));
  EXPECT_EQ(lr.exit_code, 1) << lr.output;
  EXPECT_NE(lr.output.find("the setting lr"), std::string::npos) << lr.output;
  // The unspoiled shards merge.
  EXPECT_EQ(run_convpool("study --no-plot --quiet --merge " + d.str("s0") + "," + d.str("s1") +
                         " --out " + d.str("m-ok"))
                .exit_code,
            0);
}

}  // namespace

TEST(Study, PoolListsSplitMethodsFromTheirParameters) {
  EXPECT_EQ(parse_pool_list("max,avg,avgtopk:k=2,tmaxavg:t=0.5,k=3,lp:p=3"),
            (std::vector<std::string>{"max", "avg", "avgtopk:k=2", "tmaxavg:t=0.5,k=3", "lp:p=3"}));
  EXPECT_NE(error_of([] { parse_pool_list("max,,avg"); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([] { parse_pool_list("k=2,max"); }).find("before any method"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_pool_list("max,avg,max"); }).find("twice"), std::string::npos);
  EXPECT_EQ(pool_label("tmaxavg:t=0.5,k=3"), "tmaxavg-t0.5-k3");
  EXPECT_EQ(pool_label("a/b c"), "a_b_c");
}

TEST(Study, SummaryIsTheMeanAndSampleStdOfEachMethodsFinalEpoch) {
  std::mt19937_64 rng(fresh_seed());
  std::uniform_real_distribution<double> u(0.1, 0.9);
  std::vector<StudyRow> rows;
  std::map<std::string, std::vector<double>> finals;
  std::map<std::string, double> seconds;
  for (const char* method : {"avg", "max", "avgtopk:k=2"})
    for (uint64_t seed = 1; seed <= 3; ++seed)
      for (int epoch = 1; epoch <= 4; ++epoch) {
        StudyRow r{method, seed, {}};
        r.m.epoch = epoch;
        r.m.test_accuracy = u(rng);
        r.m.seconds = 1 + u(rng);
        seconds[method] += r.m.seconds / 12;
        if (epoch == 4) finals[method].push_back(r.m.test_accuracy);
        rows.push_back(r);
      }
  std::shuffle(rows.begin(), rows.end(), rng);  // order in the file must not matter
  const auto round = parse_study_results_csv(study_results_csv(rows), "results.csv");
  ASSERT_EQ(round.size(), rows.size());
  const auto s = summarize_study(round);
  ASSERT_EQ(s.size(), 3u);
  for (size_t i = 0; i + 1 < s.size(); ++i) EXPECT_GE(s[i].mean_accuracy, s[i + 1].mean_accuracy);
  for (auto& m : s) {
    const auto& f = finals[m.method];
    const double mean = (f[0] + f[1] + f[2]) / 3;
    double ss = 0;
    for (double a : f) ss += (a - mean) * (a - mean);
    EXPECT_NEAR(m.mean_accuracy, mean, 1e-7) << m.method;
    EXPECT_NEAR(m.std_accuracy, std::sqrt(ss / 2), 1e-7) << m.method;
    EXPECT_EQ(m.seeds, 3);
    EXPECT_EQ(m.epochs, 4);
    EXPECT_NEAR(m.seconds_per_epoch, seconds[m.method], 1e-6);
    EXPECT_NEAR(m.relative_cost, seconds[m.method] / seconds["max"], 1e-6);
  }
}

// Writes all files; summary.md agrees with results.csv; a second run skips finished runs; a
// longer --epochs resumes each run from its checkpoint.
TEST(Study, WritesItsFilesAndResumes) {
  TempDir d;
  write_cifar_dir(d.str("data"), 400, fresh_seed());  // 2,000 training images
  const std::string args =
      "study --device cpu --pools max,avgtopk:k=2 --seeds 1 --batch 50 "
      "--data " +
      d.str("data") + " --out " + d.str("study");
  CommandResult r = run_convpool(args + " --epochs 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(has_control_characters(r.output)) << r.output;
  for (const char* f :
       {"config.toml", "results.csv", "summary.md", "runs/max/seed-1/metrics.csv",
        "runs/avgtopk-k2/seed-1/last.safetensors", "runs/avgtopk-k2/seed-1/summary.txt"})
    EXPECT_TRUE(std::filesystem::exists(d.str("study/") + f)) << f;
  if (r.output.find("plot skipped") == std::string::npos) {
    EXPECT_TRUE(std::filesystem::exists(d.str("study/study.png"))) << r.output;
  }

  auto check_summary = [&](int epochs) {
    const auto rows = parse_study_results_csv(read_file(d.str("study/results.csv")), "results.csv");
    ASSERT_EQ(rows.size(), size_t(2 * epochs));
    const std::string md = read_file(d.str("study/summary.md"));
    EXPECT_EQ(md.find("partial"), std::string::npos) << md;
    for (const char* partial : {"results.partial.csv", "summary.partial.md"})
      EXPECT_FALSE(std::filesystem::exists(d.str("study/") + partial)) << partial;
    for (const char* method : {"max", "avgtopk:k=2"}) {
      double final_acc = -1;
      for (auto& row : rows)
        if (row.method == method && row.m.epoch == epochs) final_acc = row.m.test_accuracy;
      char cell[64];
      std::snprintf(cell, sizeof cell, "| %s | 1 | %d | %.4f ± 0.0000 |", method, epochs,
                    final_acc);
      EXPECT_NE(md.find(cell), std::string::npos) << cell << "\n" << md;
    }
  };
  check_summary(1);

  r = run_convpool(args + " --epochs 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("max seed 1: finished earlier, skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("avgtopk:k=2 seed 1: finished earlier, skipped"), std::string::npos);
  EXPECT_EQ(r.output.find("epoch 1/1"), std::string::npos) << r.output;

  r = run_convpool(args + " --epochs 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming after epoch 1"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("epoch 1/2"), std::string::npos) << r.output;
  check_summary(2);

  // Resuming with other settings would mix two experiments in one table: refused.
  r = run_convpool(args + " --epochs 3 --lr 0.01");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("trained with other settings"), std::string::npos) << r.output;
}

// After each run the partial tables hold the runs finished so far, so a study that stops
// part-way (here: its second run's checkpoint is unreadable) leaves the first run's results,
// titled partial, and a finished study's own tables stay as they were.
TEST(Study, PartialTablesHoldTheFinishedRunsWhenTheStudyStops) {
  TempDir d;
  write_cifar_dir(d.str("data"), 100, fresh_seed());
  // Run 2 cannot start: a file stands where its directory goes. (A bad checkpoint of a later
  // run would stop the study before it trains anything: those are checked first.)
  std::filesystem::create_directories(d.str("study/runs/avg"));
  std::ofstream(d.str("study/runs/avg/seed-1")) << "a file where the run's directory goes";
  std::ofstream(d.str("study/summary.md")) << "an earlier study's summary";
  const CommandResult r = run_convpool(
      "study --device cpu --pools max,avg --epochs 1 --batch 50 --no-plot --data " +
      d.str("data") + " --out " + d.str("study"));
  ASSERT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_file(d.str("study/summary.md")), "an earlier study's summary");
  ASSERT_TRUE(std::filesystem::exists(d.str("study/results.partial.csv"))) << r.output;
  const auto rows =
      parse_study_results_csv(read_file(d.str("study/results.partial.csv")), "results.partial.csv");
  ASSERT_EQ(rows.size(), 1u) << r.output;
  EXPECT_EQ(rows[0].method, "max");
  const auto max_run = read_metrics_csv(d.str("study/runs/max/seed-1/metrics.csv"));
  ASSERT_EQ(max_run.size(), 1u);
  EXPECT_NEAR(rows[0].m.test_accuracy, max_run[0].test_accuracy, 1e-6);
  const std::string md = read_file(d.str("study/summary.partial.md"));
  EXPECT_NE(md.find("(partial: 1 of 2 runs finished)"), std::string::npos) << md;
  EXPECT_NE(md.find("| max | 1 | 1 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("| avg |"), std::string::npos) << md;
}

TEST(Study, BadPoolsFailBeforeTraining) {
  TempDir d;
  write_cifar_dir(d.str("data"), 4, fresh_seed());
  const CommandResult r = run_convpool("study --device cpu --pools max,avgtopk:k=9 --data " +
                                       d.str("data") + " --out " + d.str("s"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("larger than the window"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(d.str("s/runs")));
}

// A run's config.toml repeats it: the same losses, bit for bit, on the CPU.
TEST(RunDirectory, ConfigRepeatsTheRunExactly) {
  TempDir d;
  write_cifar_dir(d.str("data"), 60, fresh_seed());
  const uint64_t seed = fresh_seed() % 100000;
  CommandResult r = run_convpool(
      "train --device cpu --deterministic --threads 2 --epochs 2 --batch 16 --pool mixed "
      "--crop-pad 2 --flip --normalize --lr 0.002 --seed " +
      std::to_string(seed) + " --data " + d.str("data") + " --out " + d.str("a"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(has_control_characters(r.output)) << r.output;
  const std::string config = read_file(d.str("a/config.toml"));
  for (const char* line : {"pool=\"mixed\"", "crop-pad=2", "flip=true", "lr=0.002", "threads=2"})
    EXPECT_NE(config.find(line), std::string::npos) << line << "\n" << config;
  EXPECT_NE(config.find("seed=" + std::to_string(seed)), std::string::npos) << config;
  r = run_convpool("train --config " + d.str("a/config.toml") + " --data " + d.str("data") +
                   " --out " + d.str("b"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto losses = [&](const std::string& run) {
    std::vector<std::string> cols;
    for (auto& m : read_metrics_csv(d.str(run + "/metrics.csv"))) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%.9g %.9g %.9g", m.loss, m.accuracy, m.test_loss);
      cols.push_back(buf);
    }
    return cols;
  };
  ASSERT_EQ(losses("a").size(), 2u);
  EXPECT_EQ(losses("a"), losses("b"));
  // The command line wins over the file.
  r = run_convpool("train --config " + d.str("a/config.toml") + " --epochs 1 --data " +
                   d.str("data") + " --out " + d.str("c"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_metrics_csv(d.str("c/metrics.csv")).size(), 1u);
  EXPECT_EQ(losses("c")[0], losses("a")[0]);
  EXPECT_NE(read_file(d.str("c/summary.txt")).find("epochs 1"), std::string::npos);
}

TEST(RunDirectory, BadConfigFilesGiveOneLine) {
  TempDir d;
  std::ofstream(d.str("typo.toml")) << "epochs=1\nlearning-rate=0.1\n";
  std::ofstream(d.str("range.toml")) << "batch=0\n";
  for (auto [file, needle] :
       {std::pair{"typo.toml", "unknown option 'learning-rate'"}, std::pair{"range.toml", "batch"},
        std::pair{"missing.toml", "missing.toml"}}) {
    const CommandResult r = run_convpool("train --device cpu --config " + d.str(file));
    EXPECT_NE(r.exit_code, 0) << file;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}

// On a terminal the epoch shows a live bar; `script` gives the command a pseudo-terminal.
TEST(RunDirectory, ATerminalGetsALiveProgressBar) {
  if (run_command("command -v script >/dev/null").exit_code != 0)
    GTEST_SKIP() << "util-linux `script` is not installed, so no pseudo-terminal";
  TempDir d;
  write_cifar_dir(d.str("data"), 200, fresh_seed());
  const CommandResult r = run_command("script -qec \"" + std::string(CONVPOOL_BINARY) +
                                      " train --device cpu --epochs 1 --batch 8 "
                                      "--data " +
                                      d.str("data") + " --out " + d.str("run") + "\" /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\r"), std::string::npos);
  EXPECT_NE(r.output.find("125/125"), std::string::npos) << r.output;  // 1000 images / 8
  EXPECT_NE(r.output.find("ETA"), std::string::npos);
  EXPECT_NE(r.output.find("epoch 1/1  loss"), std::string::npos);
}

// A study sharded in two and merged gives the unsharded study's table, run for run (timings
// aside); shards that do not belong together, or a missing shard, are one-line errors.
TEST(Study, TwoShardsMergedEqualTheUnshardedStudy) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, 13);
  const std::string args = "study --device cpu --threads 1 --quiet --no-plot --epochs 1 --batch 20 "
                           "--pools max,avg,softpool --seeds 2 --data " + d.str("data");
  ASSERT_EQ(run_convpool(args + " --out " + d.str("whole")).exit_code, 0);
  for (int i = 0; i < 2; ++i) {
    const CommandResult r =
        run_convpool(args + " --shard " + std::to_string(i) + "/2 --out " + d.str("s" + std::to_string(i)));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_FALSE(std::filesystem::exists(d.str("s" + std::to_string(i)) + "/results.csv"));
  }
  const CommandResult merged =
      run_convpool("study --no-plot --quiet --merge " + d.str("s0") + "," + d.str("s1") + " --out " + d.str("merged"));
  ASSERT_EQ(merged.exit_code, 0) << merged.output;
  auto table = [](const std::string& dir) {
    return parse_study_results_csv(read_file(dir + "/results.csv"), dir);
  };
  const auto whole = table(d.str("whole")), both = table(d.str("merged"));
  ASSERT_EQ(whole.size(), 6u);  // 3 methods x 2 seeds x 1 epoch
  ASSERT_EQ(both.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(both[i].method, whole[i].method) << i;
    EXPECT_EQ(both[i].seed, whole[i].seed) << i;
    EXPECT_EQ(both[i].m.loss, whole[i].m.loss) << i;
    EXPECT_EQ(both[i].m.test_loss, whole[i].m.test_loss) << i;
    EXPECT_EQ(both[i].m.test_accuracy, whole[i].m.test_accuracy) << i;
  }
  const CommandResult missing = run_convpool("study --merge " + d.str("s0") + " --out " + d.str("m2"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no shard holds run"), std::string::npos) << missing.output;
  const CommandResult twice =
      run_convpool("study --merge " + d.str("s0") + "," + d.str("s0") + " --out " + d.str("m3"));
  EXPECT_NE(twice.output.find("is in two shards"), std::string::npos) << twice.output;
  EXPECT_NE(run_convpool("study --shard 2/2 --out x").output.find("expected I/N"), std::string::npos);
}

// A merge or a study never rewrites what another study wrote: merging onto a shard, onto a
// study that trained there, or a study onto merged tables or another study's runs, is refused
// with one line before anything in the directory changes (config.toml included).
TEST(Study, NeitherMergeNorStudyOverwritesAnotherStudy) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, 17);
  const std::string common = "study --device cpu --threads 1 --quiet --no-plot --epochs 1 "
                             "--pools max,avg --seeds 1 --data " + d.str("data");
  const std::string args = common + " --batch 20";
  ASSERT_EQ(run_convpool(args + " --out " + d.str("whole")).exit_code, 0);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(run_convpool(args + " --shard " + std::to_string(i) + "/2 --out " +
                           d.str("s" + std::to_string(i)))
                  .exit_code,
              0);
  const std::string shards = d.str("s0") + "," + d.str("s1");
  ASSERT_EQ(run_convpool("study --no-plot --quiet --merge " + shards + " --out " + d.str("merged"))
                .exit_code,
            0);
  auto snapshot = [&](const std::string& dir) {
    std::string all;
    for (const char* f : {"study.json", "config.toml", "results.csv", "summary.md"})
      all += std::string(f) + ":" + read_file(dir + "/" + f) + "\n";
    return all;
  };
  const std::string s0 = snapshot(d.str("s0")), whole = snapshot(d.str("whole")),
                    merged = snapshot(d.str("merged"));
  struct Case {
    std::string args, want;
  };
  for (const Case& c : std::vector<Case>{
           {"study --no-plot --merge " + shards + " --out " + d.str("s0"), "is one of the shards"},
           {"study --no-plot --merge " + shards + " --out " + d.str("whole"), "holds a study of its own"},
           {args + " --out " + d.str("merged"), "holds merged tables"},
           {args + " --shard 1/2 --out " + d.str("s0"), "holds shard 0/2"},
           {common + " --batch 10 --out " + d.str("whole"), "was trained with other settings"}}) {
    const CommandResult r = run_convpool(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.want), std::string::npos) << c.args << "\n" << r.output;
  }
  EXPECT_EQ(snapshot(d.str("s0")), s0);
  EXPECT_EQ(snapshot(d.str("whole")), whole);
  EXPECT_EQ(snapshot(d.str("merged")), merged);
  // The same merge again is allowed: its own earlier tables.
  const CommandResult again =
      run_convpool("study --no-plot --quiet --merge " + shards + " --out " + d.str("merged"));
  EXPECT_EQ(again.exit_code, 0) << again.output;

  // A training run is not a study: refused, unless --overwrite replaces it.
  const std::string train = "train --device cpu --threads 1 --quiet --epochs 1 --batch 20 --data " +
                            d.str("data") + " --out " + d.str("trained");
  ASSERT_EQ(run_convpool(train).exit_code, 0);
  const std::string trained = read_file(d.str("trained/config.toml"));
  for (const std::string& cmd : {args + " --out " + d.str("trained"),
                                 "study --no-plot --merge " + shards + " --out " + d.str("trained")}) {
    const CommandResult r = run_convpool(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find("holds a training run"), std::string::npos) << r.output;
    EXPECT_EQ(read_file(d.str("trained/config.toml")), trained);
  }
  const CommandResult replaced = run_convpool(args + " --overwrite --out " + d.str("trained"));
  EXPECT_EQ(replaced.exit_code, 0) << replaced.output;
  EXPECT_FALSE(std::filesystem::exists(d.str("trained/last.safetensors")));
  EXPECT_FALSE(std::filesystem::exists(d.str("trained/.convpool-replaced")));
  EXPECT_TRUE(std::filesystem::exists(d.str("trained/results.csv")));
  // --overwrite replaces another study's tables with a merge's, and a shard with a new study.
  const CommandResult merged_over =
      run_convpool("study --no-plot --quiet --overwrite --merge " + shards + " --out " + d.str("whole"));
  EXPECT_EQ(merged_over.exit_code, 0) << merged_over.output;
  EXPECT_FALSE(std::filesystem::exists(d.str("whole/runs")));
  EXPECT_EQ(read_file(d.str("whole/results.csv")), read_file(d.str("merged/results.csv")));
  const CommandResult study_over = run_convpool(args + " --overwrite --out " + d.str("merged"));
  EXPECT_EQ(study_over.exit_code, 0) << study_over.output;
  EXPECT_TRUE(std::filesystem::exists(d.str("merged/runs")));
}

// metrics.csv saved by a Windows editor (CRLF line ends) reads as the same rows.
TEST(Metrics, CrlfLineEndsReadAsTheSameRows) {
  TempDir d;
  const std::string rows = "1,2.3,0.1,2.2,0.12,1.5,100,0.01,0.001\n2,2.1,0.2,2.0,0.22,1.4,101,0.01,0.001\n";
  std::string unix_text = std::string(convpool::kMetricsCsvHeader) + "\n" + rows, dos;
  for (char ch : unix_text) dos += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  std::ofstream(d.str("unix.csv")) << unix_text;
  std::ofstream(d.str("dos.csv")) << dos;
  const auto a = convpool::read_metrics_csv(d.str("unix.csv"));
  const auto b = convpool::read_metrics_csv(d.str("dos.csv"));
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a[i].epoch, b[i].epoch);
    EXPECT_EQ(a[i].test_accuracy, b[i].test_accuracy);
    EXPECT_EQ(a[i].lr, b[i].lr);
  }
}
