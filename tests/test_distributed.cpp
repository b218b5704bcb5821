// Data-parallel training over MPI on the CPU (`mpirun -np 2 convpool train ...`): the same
// weights as one process with the same global batch, BatchNorm synchronised or not, resuming
// across world sizes, and a killed rank ending the job with a message that names it.
// Skipped without mpirun or without MPI in the build; the sanitizer pass skips them too
// (CONVPOOL_SKIP_MPI: Open MPI's own allocations are not ours to leak-check).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "convpool/checkpoint.h"
#include "convpool/device.h"
#include "convpool/distributed.h"
#include "convpool/trainer.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

const char* kMpirun = "mpirun --allow-run-as-root --oversubscribe -np ";

// Why these tests cannot run here, or "" (GTEST_SKIP must be in the test body itself).
std::string mpi_missing() {
  if (std::getenv("CONVPOOL_SKIP_MPI")) return "CONVPOOL_SKIP_MPI is set";
  if (!mpi_available()) return "built without MPI (install libopenmpi-dev and rebuild)";
  if (run_command("command -v mpirun").exit_code != 0) return "mpirun not found";
  return "";
}
#define REQUIRE_MPI()                                                     \
  do {                                                                    \
    if (const std::string why = mpi_missing(); !why.empty()) GTEST_SKIP() << why; \
  } while (0)

CommandResult train(int ranks, const std::string& args) {
  const std::string cmd = std::string(CONVPOOL_BINARY) + " train --device cpu --threads 1 --quiet " + args;
  return ranks == 1 ? run_command(cmd) : run_command(kMpirun + std::to_string(ranks) + " " + cmd);
}

// Relative 2-norm of the difference of every parameter and buffer of two checkpoints.
double weight_distance(const std::string& a, const std::string& b) {
  const Checkpoint ca = load_checkpoint(a), cb = load_checkpoint(b);
  double num = 0, den = 0;
  size_t compared = 0;
  for (const NamedTensor& t : ca.file.tensors) {
    if (t.name.rfind("optim.", 0) == 0) continue;
    const NamedTensor* u = cb.file.find(t.name);
    EXPECT_NE(u, nullptr) << t.name;
    if (!u) continue;
    for (size_t i = 0; i < t.data.size(); ++i) {
      num += (double(t.data[i]) - u->data[i]) * (double(t.data[i]) - u->data[i]);
      den += double(t.data[i]) * t.data[i];
    }
    ++compared;
  }
  EXPECT_GT(compared, 0u);
  return std::sqrt(num / std::max(den, 1e-30));
}

const std::string kBatchNormModel =
    "input channels=3 height=32 width=32\nconv filters=8 size=3 bias=0\nbatchnorm\nrelu\n"
    "pool max size=2\nconv filters=16 size=3 bias=0\nbatchnorm\nrelu\npool avg global\n"
    "flatten\ndense units=10\n";

}  // namespace

// 20 steps (640 images, global batch 32): 2 ranks of 16 against 1 process of 32.
TEST(DataParallel, TwoRanksGiveTheWeightsOfOneProcess) {
  REQUIRE_MPI();
  TempDir d;
  write_cifar_dir(d.str("data"), 128, 3);  // 640 training images
  {
    std::ofstream(d.str("bn.cfg")) << kBatchNormModel;
  }
  struct Case {
    std::string name, args;
  };
  const std::string common = " --data " + d.str("data") +
                             " --epochs 1 --batch 32 --seed 9 --optimizer sgd --lr 0.01 "
                             "--momentum 0.9 --crop-pad 2 --flip" +
      // Each rank convolves half the batch, for which oneDNN may choose other kernels than for
      // the whole (other roundings, ~1e-5 apart after 20 steps): im2col keeps the comparison
      // to the reductions' order alone.
      " --conv-engine im2col";
  for (const Case& c : {Case{"seed-cnn", ""}, Case{"batchnorm", " --model " + d.str("bn.cfg") + " --sync-bn"},
                        Case{"dropout", ""}}) {
    std::string extra = c.args;
    if (c.name == "dropout") {
      std::ofstream(d.str("drop.cfg")) << "input channels=3 height=32 width=32\nconv filters=8 size=3\n"
                                          "relu\npool stochastic size=2\nflatten\ndropout p=0.3\ndense units=10\n";
      extra = " --model " + d.str("drop.cfg");
    }
    const CommandResult one = train(1, common + extra + " --out " + d.str(c.name + "-1"));
    ASSERT_EQ(one.exit_code, 0) << one.output;
    const CommandResult two = train(2, common + extra + " --out " + d.str(c.name + "-2"));
    ASSERT_EQ(two.exit_code, 0) << two.output;
    const double dist = weight_distance(d.str(c.name + "-1") + "/last.safetensors",
                                        d.str(c.name + "-2") + "/last.safetensors");
    std::printf("%s: 2 ranks against 1 process after 20 steps: relative weight difference %.3g\n",
                c.name.c_str(), dist);
    EXPECT_LE(dist, 1e-5) << c.name;
    // Only rank 0 wrote the run directory, and its metrics cover the whole global batch.
    EXPECT_TRUE(std::filesystem::exists(d.str(c.name + "-2") + "/metrics.csv"));
  }
}

// A checkpoint does not depend on the world size: 1 epoch at 2 ranks resumed for a second at
// 1 rank, and the other way round, end where 2 epochs at 1 rank end.
TEST(DataParallel, CheckpointsResumeAcrossWorldSizes) {
  REQUIRE_MPI();
  TempDir d;
  write_cifar_dir(d.str("data"), 64, 4);  // 320 training images: 10 steps an epoch
  const std::string common =
      " --data " + d.str("data") + " --batch 32 --seed 5 --optimizer sgd --lr 0.01";
  ASSERT_EQ(train(1, common + " --epochs 2 --out " + d.str("ref")).exit_code, 0);
  for (const std::array<int, 2> worlds : {std::array<int, 2>{2, 1}, std::array<int, 2>{1, 2}}) {
    const std::string out = d.str("run" + std::to_string(worlds[0]) + std::to_string(worlds[1]));
    const CommandResult first = train(worlds[0], common + " --epochs 1 --out " + out);
    ASSERT_EQ(first.exit_code, 0) << first.output;
    const CommandResult second =
        train(worlds[1], " --data " + d.str("data") + " --epochs 2 --resume " + out + "/last.safetensors");
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_LE(weight_distance(d.str("ref") + "/last.safetensors", out + "/last.safetensors"), 1e-5)
        << worlds[0] << " ranks, then " << worlds[1];
    const Checkpoint c = load_checkpoint(out + "/last.safetensors");
    EXPECT_EQ(c.state.epoch, 2);
    EXPECT_EQ(c.state.step, 20u);
  }
}

// SIGKILL one rank in the middle of training: the job ends, with a message naming the rank,
// well within the test's limit rather than hanging in a collective.
TEST(DataParallel, AKilledRankEndsTheJobWithAMessageNamingIt) {
  REQUIRE_MPI();
  TempDir d;
  write_cifar_dir(d.str("data"), 200, 6);
  const std::string log = d.str("log.txt");
  const pid_t launcher = fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    setpgid(0, 0);
    const std::string cmd = std::string("exec ") + kMpirun + "2 " + CONVPOOL_BINARY +
                            " train --device cpu --threads 1 --quiet --epochs 1000 --batch 8 --data " +
                            d.str("data") + " --out " + d.str("run") + " > " + log + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Find rank 1 by its environment once it runs.
  pid_t victim = -1;
  for (int tries = 0; tries < 200 && victim < 0; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string all = read_file(e.path() / "environ");
      if (all.find(std::string("OMPI_COMM_WORLD_RANK=1") + '\0') == std::string::npos) continue;
      // This job's rank 1: its command line names this test's data directory.
      const std::string args = read_file(e.path() / "cmdline");
      if (args.find(d.str("data")) != std::string::npos) victim = std::stoi(name);
    }
  }
  ASSERT_GT(victim, 0) << "rank 1 never started";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // let it train
  const auto t0 = std::chrono::steady_clock::now();
  kill(victim, SIGKILL);
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(launcher, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (done == 0) {
    kill(-launcher, SIGKILL);
    waitpid(launcher, &status, 0);
    FAIL() << "the job was still running 60 s after rank 1 was killed";
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string output = read_file(log);
  std::printf("killed rank 1 (pid %d): the job ended after %.1f s with:\n%s\n", victim, seconds,
              output.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << output;
  EXPECT_NE(output.find("rank 1"), std::string::npos) << output;
}

// mpirun -np N --device cuda: each rank of a node takes its own GPU by its local rank, as the
// launcher gives it; more ranks than GPUs on a node is refused (NCCL would refuse two ranks on
// one GPU, "Duplicate GPU detected"). The decision, without a GPU: pick_device applies it.
TEST(DataParallel, EachLocalRankTakesItsOwnGpu) {
  const char* names[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID",
                         "MV2_COMM_WORLD_LOCAL_RANK"};
  for (const char* n : names) unsetenv(n);
  EXPECT_EQ(convpool::launcher_local_rank(3), 3);  // no launcher variable: the world rank
  unsetenv("SLURM_STEP_ID");
  for (const char* n : names) {
    setenv(n, "1", 1);
    // SLURM_LOCALID counts only for a task srun started (a batch script's is inherited).
    EXPECT_EQ(convpool::launcher_local_rank(5), std::string(n) == "SLURM_LOCALID" ? 5 : 1) << n;
    setenv("SLURM_STEP_ID", "0", 1);
    EXPECT_EQ(convpool::launcher_local_rank(5), 1) << n;
    unsetenv("SLURM_STEP_ID");
    setenv(n, "x1", 1);
    EXPECT_EQ(convpool::launcher_local_rank(5), 5) << n;
    unsetenv(n);
  }
  // mpirun inside an sbatch script: Open MPI's variable wins over the inherited SLURM_LOCALID.
  setenv("SLURM_LOCALID", "0", 1);
  setenv("SLURM_STEP_ID", "0", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  EXPECT_EQ(convpool::launcher_local_rank(5), 1);
  for (const char* n : names) unsetenv(n);
  unsetenv("SLURM_STEP_ID");
  EXPECT_EQ(convpool::device_for_local_rank(3, 1), 0);  // one GPU bound to each rank
  EXPECT_EQ(convpool::device_for_local_rank(0, 2), 0);
  EXPECT_EQ(convpool::device_for_local_rank(1, 2), 1);
  try {
    convpool::device_for_local_rank(2, 2);
    FAIL() << "a third rank on a 2-GPU node was given a GPU";
  } catch (const convpool::Error& e) {
    EXPECT_NE(std::string(e.what()).find("local rank 2 has no GPU of its own (2 on this node)"),
              std::string::npos)
        << e.what();
  }
}

// --sync-bn on CUDA is refused in one line, never silently ignored (the CUDA step has no
// synchronised statistics); on the CPU it stays allowed.
TEST(DataParallel, SyncBatchNormOnCudaIsRefusedNotIgnored) {
  convpool::TrainConfig cfg;
  cfg.sync_bn = true;
  cfg.device = convpool::Device::cpu;
  EXPECT_NO_THROW(convpool::validate_recipe(cfg));
  cfg.device = convpool::Device::cuda;
  try {
    convpool::validate_recipe(cfg);
    FAIL() << "--sync-bn accepted on CUDA";
  } catch (const convpool::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--sync-bn runs on the CPU backend only"),
              std::string::npos)
        << e.what();
  }
}
