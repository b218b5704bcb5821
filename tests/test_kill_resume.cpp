// SIGKILL at random moments of training and saving, each followed by --resume: every run
// must continue, finish, and leave a metrics.csv that holds every epoch once, in order, with
// the losses of an uninterrupted run (the CPU resume is bit-exact at fixed --threads).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool::test;
namespace fs = std::filesystem;

namespace {

constexpr int kEpochs = 3;

// The rows of metrics.csv as written (no de-duplication): epoch and the four loss columns.
std::vector<std::string> metric_rows(const std::string& path, std::string* header) {
  std::ifstream f(path);
  std::vector<std::string> rows;
  std::string line;
  std::getline(f, *header);
  while (std::getline(f, line)) {
    // Keep epoch, loss, accuracy, test_loss, test_accuracy; drop timings.
    std::string kept;
    std::istringstream cols(line);
    std::string col;
    for (int k = 0; k < 5 && std::getline(cols, col, ','); ++k) kept += (k ? "," : "") + col;
    rows.push_back(kept);
  }
  return rows;
}

// A run that ended before its first checkpoint (killed early, or a non-finite loss in its first
// steps) leaves its config.toml and perhaps metrics rows no checkpoint holds. The same command
// starts it again with a note; another command is refused without naming a checkpoint that
// does not exist. (The end state is made by removing a finished run's checkpoints, so the
// test does not depend on when a kill lands.)
TEST(KillAndResume, ARunWithNoCheckpointYetRestartsUnderTheSameCommand) {
  TempDir d;
  write_cifar_dir(d.str("data"), 30, 21);
  const std::string cmd = "train --device cpu --threads 1 --epochs 2 --data " + d.str("data") +
                          " --out " + d.str("run");
  const std::string other_cmd = "train --device cpu --threads 1 --epochs 3 --data " +
                                d.str("data") + " --out " + d.str("run");
  ASSERT_EQ(run_convpool(cmd + " --quiet").exit_code, 0);
  for (const char* f : {"last.safetensors", "best.safetensors", "summary.txt"})
    fs::remove(d.str(std::string("run/") + f));
  const CommandResult other = run_convpool(other_cmd);
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.output.find("holds the start of another run with no checkpoint"),
            std::string::npos)
      << other.output;
  EXPECT_EQ(other.output.find("last.safetensors"), std::string::npos) << other.output;
  const CommandResult again = run_convpool(cmd);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("no checkpoint (it ended before its first save); starting it again"),
            std::string::npos)
      << again.output;
  EXPECT_TRUE(fs::exists(d.str("run/last.safetensors")));
  // Its metrics hold each epoch once: the rows of the ended run were not kept.
  const std::string csv = read_file(d.str("run/metrics.csv"));
  EXPECT_EQ(csv.find("\n1,"), csv.rfind("\n1,")) << csv;
  // Once it has a checkpoint, the same command is refused and names it.
  const CommandResult third = run_convpool(cmd);
  EXPECT_NE(third.exit_code, 0);
  EXPECT_NE(third.output.find("--resume " + d.str("run/last.safetensors")), std::string::npos)
      << third.output;
}

// The same end states made for real: a SIGKILL 0.6 s into the first epoch (before its first
// checkpoint), and a non-finite loss at step 0. Re-running the same command starts the run
// again in both; neither is told to resume a checkpoint that does not exist.
TEST(KillAndResume, ARunKilledEarlyOrFailedAtStepZeroRestarts) {
  TempDir d;
  write_cifar_dir(d.str("data"), 400, 22);  // 2,000 images: an epoch takes seconds at 1 thread
  const std::string cmd = "train --device cpu --threads 1 --epochs 1 --limit-test 20 --data " +
                          d.str("data") + " --out " + d.str("killed");
  const pid_t pid = spawn_convpool(cmd);
  // Killed once its run directory exists (a loaded machine may take longer than any fixed
  // delay to get there), and before its first epoch can end.
  for (int i = 0; i < 3000 && !fs::exists(d.str("killed/config.toml")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(fs::exists(d.str("killed/config.toml")));
  if (fs::exists(d.str("killed/last.safetensors")))
    GTEST_SKIP() << "the first epoch finished within 0.6 s: this machine is too fast for the case";
  const CommandResult again = run_convpool(cmd);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("starting it again"), std::string::npos) << again.output;
  EXPECT_TRUE(fs::exists(d.str("killed/last.safetensors")));

  std::ofstream(d.str("inf.cfg")) << "flatten\ndense units=10\nscale factor=1e6\nscale factor=1e6\n"
                                     "scale factor=1e6\nscale factor=1e6\nscale factor=1e6\n"
                                     "scale factor=1e6\nscale factor=1e6\n";
  const std::string nan_cmd = "train --device cpu --threads 1 --epochs 1 --data " + d.str("data") +
                              " --model " + d.str("inf.cfg") + " --out " + d.str("nan");
  const CommandResult first = run_convpool(nan_cmd);
  EXPECT_EQ(first.exit_code, 1);
  EXPECT_NE(first.output.find("non-finite loss at step 0"), std::string::npos) << first.output;
  const CommandResult second = run_convpool(nan_cmd);
  EXPECT_EQ(second.exit_code, 1);  // the same model fails the same way, but it did start again
  EXPECT_NE(second.output.find("starting it again"), std::string::npos) << second.output;
  EXPECT_EQ(second.output.find("--resume"), std::string::npos) << second.output;
}

}  // namespace

TEST(KillAndResume, RandomKillsEachResumedFinishWithConsistentMetrics) {
  TempDir d;
  write_cifar_dir(d.str("data"), 20, fresh_seed());  // 100 images: 25 steps of 4 per epoch
  // --resume takes the batch (and the rest of the recipe) from the checkpoint.
  const std::string resume = "train --device cpu --threads 1 --quiet --save-every 1 --epochs " +
                             std::to_string(kEpochs) + " --data " + d.str("data");
  const std::string common = resume + " --batch 4";

  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(wait_exit(spawn_convpool(common + " --out " + d.str("reference"))), 0);
  const double run_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::string header;
  const auto reference = metric_rows(d.str("reference/metrics.csv"), &header);
  ASSERT_EQ(reference.size(), size_t(kEpochs));

  // 20 rounds; the sanitizer pass (scripts/sanitize-check), where every run is ~10x slower,
  // asks for fewer through CONVPOOL_KILL_ROUNDS.
  const char* rounds_env = std::getenv("CONVPOOL_KILL_ROUNDS");
  const int rounds = rounds_env ? std::max(1, std::atoi(rounds_env)) : 20;
  std::mt19937_64 rng(fresh_seed());
  int kills = 0, resumes = 0;
  for (int round = 0; round < rounds; ++round) {
    const std::string run = d.str("run" + std::to_string(round));
    SCOPED_TRACE("round " + std::to_string(round));
    // A fresh run killed at a random moment; odd rounds kill the first resume as well.
    std::string args = common + " --out " + run;
    for (int kill_here = 0; kill_here < 1 + round % 2; ++kill_here) {
      const pid_t pid = spawn_convpool(args);
      std::this_thread::sleep_for(std::chrono::microseconds(
          std::uniform_int_distribution<int64_t>(0, int64_t(run_ms * 1000))(rng)));
      kill(pid, SIGKILL);
      wait_exit(pid);
      ++kills;
      args = fs::exists(run + "/last.safetensors")
                 ? resume + " --resume " + run + "/last.safetensors"
                 : common + " --out " + run + " --overwrite";  // killed before its first save
    }
    // No leftover temporaries survive the next start; the resume finishes the run.
    const int rc = wait_exit(spawn_convpool(args));
    ++resumes;
    ASSERT_TRUE(rc == 0 || rc == 1) << "exit " << rc;
    if (rc == 1) {
      // Only when the killed run had already finished: nothing left to resume.
      ASSERT_EQ(metric_rows(run + "/metrics.csv", &header), reference);
      continue;
    }
    std::string got_header;
    EXPECT_EQ(metric_rows(run + "/metrics.csv", &got_header), reference);
    EXPECT_EQ(got_header, header);
    for (auto& e : fs::directory_iterator(run))
      EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
  std::printf("kill-and-resume: %d SIGKILLs, %d resumes, every metrics.csv consistent\n", kills,
              resumes);
}
