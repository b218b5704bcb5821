// The convpool CLI: bad input gives one clear line and a non-zero exit; good input trains.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "convpool/device.h"
#include "convpool/metrics.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool::test;

namespace {
// Exit code non-zero, output is exactly one line containing `needle`.
void expect_one_line_error(const std::string& args, const std::string& needle) {
  const CommandResult r = run_convpool(args);
  EXPECT_NE(r.exit_code, 0) << args;
  EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 2) << args << "\n" << r.output;
}
}  // namespace

TEST(Cli, AbsurdValuesAreRejected) {
  TempDir d;
  write_cifar_dir(d.str(), 4, fresh_seed());
  const std::string data = " --data " + d.str() + " --out " + d.str("run");
  expect_one_line_error("train --batch 0" + data, "--batch");
  expect_one_line_error("train --lr -0.1" + data, "--lr");
  expect_one_line_error("train --epochs 1000000" + data, "--epochs");
  expect_one_line_error("train --optimizer adamx" + data, "--optimizer");
  // Training recipes (README "Training recipes").
  expect_one_line_error("train --lr-schedule cosin" + data, "unknown lr schedule 'cosin'");
  expect_one_line_error("train --lr-schedule onecycle --warmup 1.5" + data, "--warmup");
  expect_one_line_error("train --warmup -0.1" + data, "--warmup");
  expect_one_line_error("train --lr-schedule step" + data, "needs --lr-milestones");
  expect_one_line_error("train --lr-schedule step --lr-milestones 3,x" + data, "--lr-milestones");
  expect_one_line_error("train --label-smoothing 1" + data, "--label-smoothing");
  expect_one_line_error("train --label-smoothing -0.1" + data, "--label-smoothing");
  expect_one_line_error("train --ema 1" + data, "--ema");
  expect_one_line_error("train --ema -0.5" + data, "--ema");
  expect_one_line_error("train --clip-grad-norm -1" + data, "--clip-grad-norm");
  expect_one_line_error("train --eval-with best" + data, "--eval-with");
  expect_one_line_error("train --device tpu" + data, "--device");
  expect_one_line_error("train --device cuda:x" + data, "CUDA device index");
  expect_one_line_error("train --device cuda:-1" + data, "CUDA device index");
  expect_one_line_error("train --bach 4" + data, "bach");
  expect_one_line_error("train --pool maxx" + data, "did you mean 'max'?");
  expect_one_line_error("train --pool avgtopk:k=9" + data, "larger than the window");
}

// --device cuda:N. Where no device is usable, cuda:0 and cuda give
// the same one-line reason (on a machine with a GPU both would train, so that part skips).
TEST(Cli, CudaWithAnIndexFailsLikeCudaWithoutADevice) {
  if (convpool::cuda_device_available()) GTEST_SKIP() << "a CUDA device is usable here";
  TempDir d;
  write_cifar_dir(d.str(), 4, fresh_seed());
  const std::string data = " --epochs 1 --data " + d.str() + " --out " + d.str("run");
  const CommandResult plain = run_convpool("train --device cuda" + data);
  const CommandResult zero = run_convpool("train --device cuda:0" + data);
  const CommandResult third = run_convpool("train --device cuda:3" + data);
  EXPECT_NE(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(zero.exit_code, plain.exit_code);
  EXPECT_EQ(zero.output, plain.output);
  EXPECT_EQ(third.output, plain.output) << "no driver: the index cannot be checked";
  EXPECT_LE(std::count(plain.output.begin(), plain.output.end(), '\n'), 1) << plain.output;
  // "no usable CUDA device: ..." here, "built without CUDA ..." in the sanitizer build.
  EXPECT_NE(plain.output.find("CUDA"), std::string::npos) << plain.output;
}

TEST(Cli, MissingDataAndModelSayWhereTheyLooked) {
  TempDir d;
  expect_one_line_error("train --data " + d.str("nowhere"), "nowhere");
  const CommandResult r = run_command(
      "cd " + d.str() + " && CIFAR10_DIR= " + std::string(CONVPOOL_BINARY) + " train --epochs 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("data/cifar-10-batches-bin"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CIFAR10_DIR"), std::string::npos) << r.output;
  std::ofstream(d.str("bad.cfg")) << "conv filters=8 size=3\npoool max\n";
  write_cifar_dir(d.str("data"), 4, fresh_seed());
  expect_one_line_error("train --model " + d.str("bad.cfg") + " --data " + d.str("data"),
                        "bad.cfg:2: unknown layer type 'poool' (did you mean 'pool'?)");
}

TEST(Cli, TrainsOnSyntheticDataAndWritesMetrics) {
  TempDir d;
  write_cifar_dir(d.str("data"), 40, fresh_seed());
  const CommandResult r = run_convpool("train --device cpu --epochs 2 --batch 16 --data " +
                                       d.str("data") + " --out " + d.str("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("epoch 2/2"), std::string::npos) << r.output;
  std::ifstream f(d.str("run/metrics.csv"));
  std::string header, l1, l2, extra;
  std::getline(f, header), std::getline(f, l1), std::getline(f, l2);
  EXPECT_EQ(header.rfind("epoch,loss,accuracy,test_loss,test_accuracy", 0), 0u);
  EXPECT_EQ(l1.rfind("1,", 0), 0u);
  EXPECT_EQ(l2.rfind("2,", 0), 0u);
  EXPECT_FALSE(std::getline(f, extra));
}

// The recipe flags end to end: the header names them, metrics.csv has the lr column, eval says
// which weights it used, a resume continues with the checkpoint's recipe and refuses to
// change it, and a config.toml repeats the run.
TEST(Cli, RecipeFlagsTrainResumeAndEval) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, fresh_seed());
  const std::string data = " --device cpu --threads 1 --batch 8 --data " + d.str("data");
  const std::string recipe =
      " --optimizer adamw --weight-decay 0.05 --lr 0.003 --lr-schedule onecycle --warmup 0.2"
      " --clip-grad-norm 1 --label-smoothing 0.1 --ema 0.9";
  CommandResult r = run_convpool("train --epochs 2 --save-every 3 --keep 9" + data + recipe +
                                 " --out " + d.str("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* said : {"adamw lr 0.003, schedule onecycle (rise 0.2", "clipped to norm 1",
                           "label smoothing 0.1", "EMA decay 0.9 (evaluated with the EMA"})
    EXPECT_NE(r.output.find(said), std::string::npos) << said << "\n" << r.output;
  const auto rows = convpool::read_metrics_csv(d.str("run/metrics.csv"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_GT(rows[0].lr, rows[1].lr);  // one-cycle: past the peak, annealing
  r = run_convpool("eval --device cpu --data " + d.str("data") + " --checkpoint " +
                   d.str("run/last.safetensors"));
  EXPECT_NE(r.output.find("weights ema (decay 0.9)"), std::string::npos) << r.output;
  r = run_convpool("eval --device cpu --weights raw --data " + d.str("data") + " --checkpoint " +
                   d.str("run/last.safetensors"));
  EXPECT_NE(r.output.find("weights raw (as trained, not the EMA)"), std::string::npos) << r.output;

  // Resumed from step 3 (in epoch 1 of 5 steps each) into another directory: the same losses,
  // lr and EMA-evaluated test losses as the uninterrupted run, bit for bit.
  r = run_convpool("train --epochs 2 --device cpu --threads 1 --data " + d.str("data") +
                   " --out " + d.str("branch") + " --resume " +
                   d.str("run/step-0000000003.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto branch = convpool::read_metrics_csv(d.str("branch/metrics.csv"));
  ASSERT_EQ(branch.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(branch[e].loss, rows[e].loss) << e;
    EXPECT_EQ(branch[e].test_loss, rows[e].test_loss) << e;
    EXPECT_EQ(branch[e].lr, rows[e].lr) << e;
  }

  expect_one_line_error("train --epochs 3 --ema 0.5 --data " + d.str("data") + " --resume " +
                            d.str("run/last.safetensors"),
                        "--ema cannot change it");
  r = run_convpool("train --epochs 3 --device cpu --threads 1 --data " + d.str("data") +
                   " --resume " + d.str("run/last.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("schedule onecycle"), std::string::npos) << r.output;
  // Past the schedule's end (it spans the first run's 2 epochs): its last lr.
  EXPECT_EQ(convpool::read_metrics_csv(d.str("run/metrics.csv")).at(2).lr,
            convpool::read_metrics_csv(d.str("run/metrics.csv")).at(1).lr);

  r = run_convpool("train --config " + d.str("run/config.toml") + " --data " + d.str("data") +
                   " --out " + d.str("again"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto again = convpool::read_metrics_csv(d.str("again/metrics.csv"));
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[1].loss, rows[1].loss);
  EXPECT_EQ(again[1].lr, rows[1].lr);
}

// A bare --resume (checkpoint, data and --out only) finishes the run as it was started: its
// epochs, --tta, threads and --limit-train come from the config.toml beside the checkpoint,
// not from the defaults (10 epochs, no TTA, all cores, all images), so the losses match the
// uninterrupted run bit for bit. The augmentation is the checkpoint's and cannot change.
TEST(Cli, ABareResumeFinishesTheRunAsStarted) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, fresh_seed());
  const std::string data = " --device cpu --data " + d.str("data");
  CommandResult r = run_convpool("train --epochs 2 --threads 1 --batch 8 --limit-train 24"
                                 " --crop-pad 2 --pad-mode reflect --tta flip --save-every 2"
                                 " --keep 9" + data + " --out " + d.str("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = convpool::read_metrics_csv(d.str("run/metrics.csv"));
  ASSERT_EQ(rows.size(), 2u);

  r = run_convpool("train" + data + " --out " + d.str("branch") + " --resume " +
                   d.str("run/step-0000000002.safetensors"));  // in epoch 1 of 3 steps each
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("24 train"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("epoch 2/2"), std::string::npos) << r.output;
  const auto branch = convpool::read_metrics_csv(d.str("branch/metrics.csv"));
  ASSERT_EQ(branch.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(branch[e].loss, rows[e].loss) << e;
    EXPECT_EQ(branch[e].test_loss, rows[e].test_loss) << e;
  }
  const std::string said = read_file(d.str("branch/summary.txt"));
  EXPECT_NE(said.find("test-time augmentation flip"), std::string::npos) << said;

  // Given again, the command line wins over the recorded settings. The device is not taken
  // from them: a run recorded on CUDA goes on here (no GPU) under --device auto.
  std::string config = read_file(d.str("run/config.toml"));
  const size_t device = config.find("device=\"cpu\"");
  ASSERT_NE(device, std::string::npos) << config;
  config.replace(device, 12, "device=\"cuda\"");
  std::ofstream(d.str("run/config.toml")) << config;
  r = run_convpool("train --epochs 3 --threads 1 --data " + d.str("data") + " --resume " +
                   d.str("run/last.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(convpool::read_metrics_csv(d.str("run/metrics.csv")).size(), 3u);
  for (const char* flag : {"--pad-mode zero", "--cutout 4", "--crop-pad 0"})
    expect_one_line_error(std::string("train --epochs 4 ") + flag + data + " --resume " +
                              d.str("run/last.safetensors"),
                          "cannot change it");
}

// --overwrite keeps the old run until the new one has saved a checkpoint: a new run that fails
// in its first epoch puts the old files back, bit for bit; a killed one leaves them aside in
// .convpool-replaced, and the next run in the directory restores them (or, when the new run
// did save, deletes them).
TEST(Cli, OverwriteKeepsTheOldRunUntilTheNewOneHasACheckpoint) {
  namespace fs = std::filesystem;
  TempDir d;
  write_cifar_dir(d.str("data"), 20, fresh_seed());
  const std::string args =
      "train --device cpu --threads 1 --batch 16 --data " + d.str("data") + " --out " + d.str("run");
  ASSERT_EQ(run_convpool(args + " --epochs 1 --quiet").exit_code, 0);
  auto snapshot = [&] {
    std::string all;
    for (const char* f : {"config.toml", "metrics.csv", "last.safetensors", "best.safetensors"})
      all += std::string(f) + ":" + read_file(d.str("run/") + f) + "\n";
    return all;
  };
  const std::string old_run = snapshot();
  // Logits scaled past the float range: a non-finite loss at step 0.
  std::ofstream(d.str("inf.cfg")) << "flatten\ndense units=10\nscale factor=1e6\nscale factor=1e6\n"
                                     "scale factor=1e6\nscale factor=1e6\nscale factor=1e6\n"
                                     "scale factor=1e6\nscale factor=1e6\n";
  CommandResult r =
      run_convpool(args + " --epochs 1 --overwrite --model " + d.str("inf.cfg"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("non-finite loss at step 0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the run --overwrite replaced is restored"), std::string::npos)
      << r.output;
  EXPECT_TRUE(snapshot() == old_run);  // (not EXPECT_EQ: it would print checkpoints)
  EXPECT_FALSE(fs::exists(d.str("run/.convpool-replaced")));

  // As a kill before the first checkpoint leaves it: the old files aside (with the manifest
  // the move writes first), the new run's start.
  fs::create_directory(d.str("run/.convpool-replaced"));
  std::ofstream(d.str("run/.convpool-replaced/MANIFEST"))
      << "kind run\nconfig.toml\nmetrics.csv\nlast.safetensors\nbest.safetensors\nsummary.txt\n";
  for (const char* f : {"config.toml", "metrics.csv", "last.safetensors", "best.safetensors",
                        "summary.txt"})
    fs::rename(d.str("run/") + f, d.str("run/.convpool-replaced/") + f);
  std::ofstream(d.str("run/config.toml")) << "# convpool train: the new run's start\n";
  r = run_convpool(args + " --epochs 1");  // restores, then refuses: the directory holds a run
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("an earlier --overwrite ended before its replacement saved anything; "
                          "what it replaced is restored"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("already holds a run"), std::string::npos) << r.output;
  EXPECT_TRUE(snapshot() == old_run);
  EXPECT_FALSE(fs::exists(d.str("run/.convpool-replaced")));

  // Killed after the new run's first checkpoint: what was set aside is deleted, nothing else.
  fs::create_directory(d.str("run/.convpool-replaced"));
  std::ofstream(d.str("run/.convpool-replaced/MANIFEST")) << "kind run\nmetrics.csv\n";
  std::ofstream(d.str("run/.convpool-replaced/metrics.csv")) << "stale";
  // And one whose deletion had been decided (renamed) when it was cut short.
  fs::create_directory(d.str("run/.convpool-replaced.discard"));
  std::ofstream(d.str("run/.convpool-replaced.discard/config.toml")) << "old";
  const std::string now = snapshot();
  r = run_convpool(args + " --epochs 1");
  EXPECT_EQ(r.exit_code, 1);  // the directory holds a run: refused as ever
  EXPECT_FALSE(fs::exists(d.str("run/.convpool-replaced")));
  EXPECT_FALSE(fs::exists(d.str("run/.convpool-replaced.discard")));
  EXPECT_TRUE(snapshot() == now);
}

// What an interrupted --overwrite set aside is restored by the manifest it wrote: the kind
// of directory it replaced and the names it moved, whichever command comes next, and also
// when the process died halfway through the moves.
TEST(Cli, AnInterruptedReplaceIsRestoredByItsManifest) {
  namespace fs = std::filesystem;
  TempDir d;
  write_cifar_dir(d.str("data"), 8, fresh_seed());
  const std::string study = "study --device cpu --threads 1 --quiet --no-plot --epochs 1 "
                            "--batch 20 --pools max --data " + d.str("data") + " --out " + d.str("s");
  ASSERT_EQ(run_convpool(study).exit_code, 0);
  const std::string results = read_file(d.str("s/results.csv"));
  // A study --overwrite killed before its first checkpoint: the old study aside (study kind),
  // the new one's start in place, and one name listed but not yet moved.
  fs::create_directory(d.str("s/.convpool-replaced"));
  std::ofstream(d.str("s/.convpool-replaced/MANIFEST"))
      << "kind study\nruns\nresults.csv\nstudy.json\nsummary.md\nconfig.toml\n";
  for (const char* f : {"runs", "results.csv", "study.json", "summary.md"})
    fs::rename(d.str("s/") + f, d.str("s/.convpool-replaced/") + f);
  fs::create_directories(d.str("s/runs/max/seed-1"));
  std::ofstream(d.str("s/runs/max/seed-1/metrics.csv")) << "partial";
  // The next command is a train (its own files are run files): the study comes back whole.
  const CommandResult r = run_convpool("train --device cpu --threads 1 --epochs 1 --data " +
                                       d.str("data") + " --out " + d.str("s"));
  EXPECT_NE(r.output.find("what it replaced is restored"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("holds a study"), std::string::npos) << r.output;  // then refused
  EXPECT_EQ(read_file(d.str("s/results.csv")), results);
  EXPECT_TRUE(fs::exists(d.str("s/runs/max/seed-1/last.safetensors")));
  EXPECT_TRUE(fs::exists(d.str("s/config.toml")));
  EXPECT_FALSE(fs::exists(d.str("s/.convpool-replaced")));

  // A study --overwrite of a shard with no runs saves no checkpoint, yet finishes: what it
  // replaced is deleted, not left aside for the next command to bring back.
  const CommandResult empty_shard = run_convpool(study + " --overwrite --shard 3/4");
  ASSERT_EQ(empty_shard.exit_code, 0) << empty_shard.output;
  EXPECT_FALSE(fs::exists(d.str("s/.convpool-replaced")));
  EXPECT_FALSE(fs::exists(d.str("s/results.csv")));
  // train --overwrite of a study directory replaces the whole study, not its run files only.
  ASSERT_EQ(run_convpool(study + " --overwrite").exit_code, 0);  // (it held shard 3/4's)
  ASSERT_TRUE(fs::exists(d.str("s/runs/max/seed-1/last.safetensors")));
  const CommandResult t = run_convpool("train --device cpu --threads 1 --epochs 1 --overwrite "
                                       "--quiet --data " + d.str("data") + " --out " + d.str("s"));
  EXPECT_EQ(t.exit_code, 0) << t.output;
  EXPECT_FALSE(fs::exists(d.str("s/study.json")));
  EXPECT_FALSE(fs::exists(d.str("s/runs")));
  EXPECT_TRUE(fs::exists(d.str("s/last.safetensors")));
}

// Configs convpool writes read back: a study's (with its merge="" line) and a run's whose
// text option CLI11 wrote unquoted (lr-milestones=30); TOML's 1_000 and +2 read as numbers.
TEST(Cli, WrittenConfigsReadBack) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, fresh_seed());
  const std::string common = "--device cpu --threads 1 --quiet --epochs 1 --batch 20 --data " + d.str("data");
  ASSERT_EQ(run_convpool("study " + common + " --no-plot --pools max --out " + d.str("s1")).exit_code, 0);
  const CommandResult again = run_convpool("study --data " + d.str("data") + " --quiet --config " +
                                           d.str("s1/config.toml") + " --out " + d.str("s2"));
  EXPECT_EQ(again.exit_code, 0) << again.output;
  ASSERT_EQ(run_convpool("train " + common + " --optimizer sgd --lr-schedule step "
                         "--lr-milestones 30 --out " + d.str("r1")).exit_code, 0);
  EXPECT_NE(read_file(d.str("r1/config.toml")).find("lr-milestones=30"), std::string::npos);
  const CommandResult r2 = run_convpool("train --data " + d.str("data") + " --quiet --config " +
                                        d.str("r1/config.toml") + " --out " + d.str("r2"));
  EXPECT_EQ(r2.exit_code, 0) << r2.output;
  std::ofstream(d.str("n.toml")) << "limit-train = 1_000\nepochs = +2\n\"batch\" = 20\n";
  const CommandResult n = run_convpool("train --device cpu --threads 1 --quiet --data " +
                                       d.str("data") + " --config " + d.str("n.toml") + " --out " + d.str("r3"));
  EXPECT_EQ(n.exit_code, 0) << n.output;
  const std::string written = read_file(d.str("r3/config.toml"));
  EXPECT_NE(written.find("limit-train=1000"), std::string::npos) << written;
  EXPECT_NE(written.find("epochs=2"), std::string::npos) << written;
  EXPECT_NE(written.find("batch=20"), std::string::npos) << written;
  // A quoted key is type-checked as the bare one.
  std::ofstream(d.str("q.toml")) << "\"epochs\" = \"2\"\n";
  const CommandResult q = run_convpool("train --device cpu --data " + d.str("data") + " --config " +
                                       d.str("q.toml") + " --out " + d.str("r4"));
  EXPECT_NE(q.output.find("epochs takes a whole number"), std::string::npos) << q.output;
}

// A run directory belongs to one run: a second run there is refused (test_bad_input), and
// --overwrite replaces the old run's files, so metrics.csv holds the new run alone; files that
// are not a run's stay. The data note says the synthetic files are not CIFAR-10's size.
TEST(Cli, OverwriteReplacesTheRunInItsDirectory) {
  TempDir d;
  write_cifar_dir(d.str("data"), 20, fresh_seed());
  const std::string args =
      "train --device cpu --batch 16 --data " + d.str("data") + " --out " + d.str("run");
  CommandResult r = run_convpool(args + " --epochs 2 --keep 5 --save-every 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("note: the training files hold 20 records each"), std::string::npos)
      << r.output;
  std::ofstream(d.str("run/notes.txt")) << "mine";
  r = run_convpool(args + " --epochs 1 --overwrite --lr 0.002");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream f(d.str("run/metrics.csv"));
  std::string header, l1, extra;
  std::getline(f, header), std::getline(f, l1);
  EXPECT_EQ(l1.rfind("1,", 0), 0u) << l1;
  EXPECT_FALSE(std::getline(f, extra)) << "a row of the replaced run survived: " << extra;
  for (auto& e : std::filesystem::directory_iterator(d.str("run")))
    EXPECT_NE(e.path().filename().string().rfind("step-", 0), 0u) << e.path();
  EXPECT_TRUE(std::filesystem::exists(d.str("run/notes.txt")));
  const std::string text = read_file(d.str("run/config.toml"));
  EXPECT_NE(text.find("lr=0.002"), std::string::npos) << text;
}

