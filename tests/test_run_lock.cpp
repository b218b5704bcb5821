// One writer per run directory (convpool/run_lock.h): a second lock is refused naming the
// holder, a lock left by a process that died is taken over, and two trainings, studies or
// merges started together into one --out never both write it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <string>

#include "convpool/error.h"
#include "convpool/run_lock.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

TEST(RunDirectoryLock, ASecondWriterIsRefusedNamingTheHolder) {
  TempDir d;
  {
    const RunDirectoryLock first(d.str(), "--out");
    EXPECT_TRUE(first.taken_over_from().empty());
    const std::string err = error_of([&] { RunDirectoryLock second(d.str(), "--out"); });
    EXPECT_NE(err.find("is in use by pid " + std::to_string(getpid())), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
  // Released on a clean exit: the next writer takes it with no note.
  const RunDirectoryLock again(d.str(), "--out");
  EXPECT_TRUE(again.taken_over_from().empty());
}

TEST(RunDirectoryLock, ALockLeftByADeadProcessIsTakenOverWithANote) {
  TempDir d;
  // What a killed holder leaves: its description, and no lock (the kernel dropped it).
  std::ofstream(d.str(RunDirectoryLock::kFileName)) << "pid 999999 on elsewhere\n";
  const RunDirectoryLock lock(d.str(), "--out");
  EXPECT_EQ(lock.taken_over_from(), "pid 999999 on elsewhere");
}

TEST(RunDirectoryLock, AMissingDirectoryIsOneLine) {
  TempDir d;
  const std::string err = error_of([&] { RunDirectoryLock lock(d.str("no/such"), "--out"); });
  EXPECT_NE(err.find("cannot create its lock file"), std::string::npos) << err;
}

// While this test holds a directory's lock, a training, a resume, a study and a merge into it
// are each refused, naming this process, and write nothing there.
TEST(RunDirectoryLock, EveryWriterRefusesALockedDirectory) {
  TempDir d;
  write_cifar_dir(d.str("data"), 20, 5);
  const std::string data = " --device cpu --threads 1 --epochs 1 --quiet --data " + d.str("data");
  ASSERT_EQ(run_convpool("train" + data + " --out " + d.str("done")).exit_code, 0);
  std::filesystem::create_directories(d.str("busy"));
  const RunDirectoryLock held(d.str("busy"), "--out");
  const std::string pid = "is in use by pid " + std::to_string(getpid());
  for (const std::string& args :
       {"train" + data + " --out " + d.str("busy"),
        "train --resume " + d.str("done/last.safetensors") + " --epochs 2 --quiet --out " +
            d.str("busy"),
        "study" + data + " --pools max --no-plot --out " + d.str("busy"),
        "study --merge " + d.str("done") + " --out " + d.str("busy")}) {
    const CommandResult r = run_convpool(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find(pid), std::string::npos) << args << "\n" << r.output;
  }
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(d.str("busy"))) entries += e.path().filename() != RunDirectoryLock::kFileName;
  EXPECT_EQ(entries, 0u) << "a refused writer wrote into the directory";
}

// Two processes started at the same moment into one directory: exactly one writes it; the
// other exits non-zero with one line (in use, or, if it started after the first finished,
// the refusal of a directory holding another run or study: `refusal_if_after`), and the
// winner's tables are whole.
void expect_one_writer(const std::string& first, const std::string& second,
                       const std::string& dir, const std::string& table,
                       const std::string& refusal_if_after) {
  for (int order = 0; order < 2; ++order) {
    const std::string a = order ? second : first, b = order ? first : second;
    std::filesystem::remove_all(dir);
    const CommandResult r = run_command(
        "(" + std::string(CONVPOOL_BINARY) + " " + a + " >" + dir + ".a.log 2>&1; echo $? >" + dir +
        ".a.rc) & (" + std::string(CONVPOOL_BINARY) + " " + b + " >" + dir + ".b.log 2>&1; echo $? >" +
        dir + ".b.rc) & wait");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const std::string rc_a = read_file(dir + ".a.rc"), rc_b = read_file(dir + ".b.rc");
    const bool a_ok = rc_a == "0\n", b_ok = rc_b == "0\n";
    EXPECT_NE(a_ok, b_ok) << "exit codes " << rc_a << " and " << rc_b << "\n"
                          << read_file(dir + ".a.log") << read_file(dir + ".b.log");
    const std::string loser = read_file(dir + (a_ok ? ".b.log" : ".a.log"));
    EXPECT_TRUE(loser.find("is in use by") != std::string::npos ||
                loser.find(refusal_if_after) != std::string::npos)
        << loser;
    const std::string written = read_file(dir + "/" + table);
    EXPECT_FALSE(written.empty()) << table;
  }
}

TEST(RunDirectoryLock, TwoTrainingsStartedTogetherIntoOneOutNeverBothWrite) {
  TempDir d;
  write_cifar_dir(d.str("data"), 40, 3);
  const std::string common = "train --device cpu --threads 1 --epochs 2 --quiet --data " +
                             d.str("data") + " --out " + d.str("run");
  expect_one_writer(common + " --seed 1", common + " --seed 2", d.str("run"), "metrics.csv",
                    "already holds a run");
  // The winner's metrics hold each epoch once.
  const std::string csv = read_file(d.str("run/metrics.csv"));
  EXPECT_EQ(csv.find("\n1,"), csv.rfind("\n1,")) << csv;
  EXPECT_EQ(csv.find("\n2,"), csv.rfind("\n2,")) << csv;
}

TEST(RunDirectoryLock, TwoStudiesStartedTogetherIntoOneOutNeverBothWrite) {
  TempDir d;
  write_cifar_dir(d.str("data"), 40, 4);
  const std::string common = "study --device cpu --threads 1 --epochs 1 --no-plot --quiet --data " +
                             d.str("data") + " --out " + d.str("study");
  // Two different studies (another training set), so that one finished before the other
  // starts is refused as well (the same study run twice would be its resumption).
  expect_one_writer(common + " --pools max --limit-train 100", common + " --pools max",
                    d.str("study"), "results.csv", "holds a study on");
}

}  // namespace
