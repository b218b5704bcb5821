// Checkpoints: round trips, reading from Python, exact resume, corrupt files, full disks,
// SIGKILL during saves.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "convpool/checkpoint.h"
#include "convpool/trainer.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

const char* kSmallModel =
    "input channels=3 height=32 width=32\n"
    "conv filters=4 size=3 stride=2\nrelu\npool avgtopk k=2 size=2\nflatten\ndense units=10\n";

std::unique_ptr<Graph> small_graph(uint64_t seed, int slots = 2) {
  auto g =
      Graph::build(parse_model_text(kSmallModel, "small"), GraphOptions{Device::cpu, 8, slots});
  g->init_params(seed);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  for (int s = 0; s < slots; ++s)
    for (size_t i = 0; i < g->num_params(); ++i) g->optimizer_state(s)[i] = d(rng);
  return g;
}

// The checkpoint `bytes` with its metadata edited by `edit`, re-encoded with valid checksums.
template <class Edit>
std::string resigned(const std::string& bytes, Edit edit) {
  SafetensorsFile f = decode_safetensors(bytes, "resign");
  edit(f.metadata);
  return encode_safetensors(f.tensors, f.metadata);
}

TrainState some_state(uint64_t seed) {
  TrainState s;
  s.epoch = 3;
  s.step = 1234;
  s.epoch_batches = 7;
  s.epoch_loss_sum = 12.5;
  s.epoch_correct = 99;
  s.epoch_seconds = 41.25;
  s.best_accuracy = 0.625;
  s.seed = seed;
  s.batch = 8;
  s.optimizer.lr = 0.0025f;
  s.input.crop_pad = 1 + int(seed % 8);
  s.input.flip = true;
  s.input.mean[1] = 0.3f + float(seed % 100) * 1e-3f;
  s.input.std[2] = 0.7f;
  return s;
}

// A small model's checkpoint, saved in a fresh directory, and its bytes.
struct SavedCheckpoint {
  TempDir dir;
  std::string path = dir.str("good.safetensors"), bytes;
  SavedCheckpoint() {
    const uint64_t seed = fresh_seed();
    save_checkpoint(path, *small_graph(seed), kSmallModel, "", some_state(seed));
    bytes = read_regular_file(path, kMaxCheckpointBytes, "checkpoint");
  }
};

// The values of every tensor (slot -1: parameters, else optimizer state), padding excluded.
std::vector<float> values(const Graph& g, int slot = -1) {
  std::vector<float> out;
  const float* base = slot < 0 ? g.params() : g.optimizer_state(slot);
  for (auto& p : g.param_infos())
    out.insert(out.end(), base + p.offset, base + p.offset + p.shape.numel());
  return out;
}

}  // namespace

TEST(Checkpoint, RoundTripRestoresEveryTensorAndTheState) {
  TempDir d;
  const uint64_t seed = fresh_seed();
  auto a = small_graph(seed);
  save_checkpoint(d.str("c.safetensors"), *a, kSmallModel, "avgtopk:k=2", some_state(seed));
  const Checkpoint c = load_checkpoint(d.str("c.safetensors"));
  EXPECT_EQ(c.model_text, kSmallModel);
  EXPECT_EQ(c.pool_override, "avgtopk:k=2");
  EXPECT_EQ(c.state.step, 1234u);
  EXPECT_EQ(c.state.epoch_batches, 7u);
  EXPECT_EQ(c.state.epoch_seconds, 41.25);
  EXPECT_EQ(c.state.best_accuracy, 0.625);
  EXPECT_EQ(c.state.optimizer.lr, 0.0025f);
  EXPECT_TRUE(c.state.input == some_state(seed).input) << describe(c.state.input);
  EXPECT_EQ(c.file.tensors.size(), 3 * a->param_infos().size());
  auto b = small_graph(seed + 1);
  restore_graph(c, "c", *b, true);
  EXPECT_EQ(values(*a), values(*b));
  EXPECT_EQ(values(*a, 0), values(*b, 0));
  EXPECT_EQ(values(*a, 1), values(*b, 1));
  EXPECT_EQ(c.file.find("fc1"), nullptr);
}

TEST(Checkpoint, PythonWithNumpyReadsTheSameValues) {
  if (run_command("/usr/bin/python3 -c 'import numpy'").exit_code != 0)
    GTEST_SKIP() << "python3 with numpy not installed (apt-get install python3-numpy)";
  TempDir d;
  const uint64_t seed = fresh_seed();
  auto g = small_graph(seed);
  save_checkpoint(d.str("c.safetensors"), *g, kSmallModel, "", some_state(seed));
  const auto r = run_command("/usr/bin/python3 " + std::string(CONVPOOL_SOURCE_DIR) +
                             "/python/load_checkpoint.py " + d.str("c.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  size_t seen = 0;
  for (std::string name, shape; lines >> name && name != "metadata";) {
    double sum, first;
    lines >> shape >> sum >> first;
    const ParamInfo* info = nullptr;
    int slot = -1;
    for (auto& p : g->param_infos()) {
      if (name == p.name) info = &p, slot = -1;
      if (name == "optim.m." + p.name) info = &p, slot = 0;
      if (name == "optim.v." + p.name) info = &p, slot = 1;
    }
    ASSERT_NE(info, nullptr) << name;
    const float* v = (slot < 0 ? g->params() : g->optimizer_state(slot)) + info->offset;
    double want = 0;
    for (size_t i = 0; i < info->shape.numel(); ++i) want += v[i];
    EXPECT_NEAR(sum, want, 1e-6 * (1 + std::abs(want))) << name;
    EXPECT_EQ(float(first), v[0]) << name;
    ++seen;
  }
  EXPECT_EQ(seen, 3 * g->param_infos().size());
  EXPECT_NE(r.output.find("data_crc32"), std::string::npos);
}

TEST(Checkpoint, ResumeIsBitExact) {
  TempDir d;
  write_cifar_dir(d.str("data"), 50, fresh_seed());  // 250 images: 32 batches of 8, one partial
  const Dataset train = load_cifar10(d.str("data"), "train");
  const Dataset test = load_cifar10(d.str("data"), "test");
  const uint64_t seed = fresh_seed();
  TrainConfig cfg;
  cfg.batch = 8;
  cfg.seed = seed;
  cfg.model_text = kSmallModel;
  cfg.save_every = 5;  // exercises a mid-epoch save too

  cfg.epochs = 2;
  cfg.out_dir = d.str("straight");
  auto a = small_graph(seed);
  a->init_params(seed);
  const auto straight = Trainer(*a, cfg).fit(train, test);

  cfg.epochs = 1;
  cfg.out_dir = d.str("first");
  auto b = small_graph(seed);
  b->init_params(seed);
  Trainer(*b, cfg).fit(train, test);
  const Checkpoint c = load_checkpoint(d.str("first/last.safetensors"));
  EXPECT_EQ(c.state.epoch, 1);
  auto r = small_graph(seed + 5);
  restore_graph(c, "c", *r, true);
  cfg.epochs = 2;
  cfg.out_dir = d.str("resumed");
  const auto resumed = Trainer(*r, cfg, c.state).fit(train, test);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].loss, straight[1].loss);
  EXPECT_EQ(resumed[0].test_loss, straight[1].test_loss);
  EXPECT_EQ(values(*a), values(*r));
  EXPECT_EQ(values(*a, 1), values(*r, 1));

  // Mid-epoch: a run stopped after its first step, resumed, equals an uninterrupted epoch.
  cfg.epochs = 1;
  cfg.out_dir = d.str("mid");
  auto m = small_graph(seed);
  m->init_params(seed);
  const auto one_epoch = Trainer(*m, cfg).fit(train, test);
  TrainConfig stop_cfg = cfg;
  stop_cfg.out_dir = d.str("mid-stop");
  auto s = small_graph(seed);
  s->init_params(seed);
  Trainer stopper(*s, stop_cfg);
  request_stop();  // seen after the first step
  EXPECT_THROW(stopper.fit(train, test), Interrupted);
  clear_stop_requests();
  const Checkpoint mid = load_checkpoint(d.str("mid-stop/last.safetensors"));
  EXPECT_EQ(mid.state.step, 1u);
  EXPECT_EQ(mid.state.epoch_batches, 1u);
  auto t = small_graph(seed + 9);
  restore_graph(mid, "mid", *t, true);
  const auto finished = Trainer(*t, stop_cfg, mid.state).fit(train, test);
  EXPECT_EQ(finished[0].loss, one_epoch[0].loss);
  EXPECT_EQ(values(*m), values(*t));
}

// A checkpoint from before the epoch order became a sort of Philox keys (no "epoch_order" in
// its metadata) is still read by eval, but --resume refuses it: the epochs after it would be
// shuffled differently from the run that made it, so the run would not continue exactly.
TEST(Checkpoint, CheckpointsOfTheOldEpochOrderAreEvaluatedButNotResumed) {
  TempDir d;
  write_cifar_dir(d.str("data"), 10, fresh_seed());
  std::ofstream(d.str("m.cfg")) << kSmallModel;
  const std::string train = "train --device cpu --threads 1 --quiet --data " + d.str("data");
  const auto first = run_convpool(train + " --batch 8 --model " + d.str("m.cfg") +
                                  " --epochs 1 --out " + d.str("run"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const Checkpoint c = load_checkpoint(d.str("run/last.safetensors"));
  EXPECT_EQ(c.state.epoch_order, kEpochOrderScheme);
  const std::string bytes = read_file(d.str("run/last.safetensors"));
  std::ofstream(d.str("old.safetensors"), std::ios::binary)
      << resigned(bytes, [](auto& m) { m.erase("epoch_order"); });
  EXPECT_EQ(load_checkpoint(d.str("old.safetensors")).state.epoch_order, "fisher-yates");
  const auto resumed = run_convpool(train + " --epochs 2 --resume " + d.str("old.safetensors"));
  EXPECT_NE(resumed.exit_code, 0);
  EXPECT_NE(resumed.output.find("'fisher-yates' epoch order"), std::string::npos)
      << resumed.output;
  EXPECT_EQ(std::count(resumed.output.begin(), resumed.output.end(), '\n'), 1)
      << resumed.output;
  const auto eval = run_convpool("eval --device cpu --data " + d.str("data") + " --checkpoint " +
                                 d.str("old.safetensors"));
  EXPECT_EQ(eval.exit_code, 0) << eval.output;
  // The current scheme resumes.
  const auto ok = run_convpool(train + " --epochs 2 --resume " + d.str("run/last.safetensors"));
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

TEST(Checkpoint, CorruptFilesGiveOneLineErrors) {
  const SavedCheckpoint saved;
  const TempDir& d = saved.dir;
  const std::string& good = saved.path;
  const std::string& bytes = saved.bytes;
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(d.str(name), std::ios::binary) << content;
    return d.str(name);
  };
  auto expect = [&](const std::string& path, const std::string& needle) {
    const std::string msg = error_of([&] { load_checkpoint(path); });
    EXPECT_NE(msg.find(needle), std::string::npos) << path << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  expect(write("trunc.safetensors", bytes.substr(0, bytes.size() - 100)), "outside");
  expect(write("tiny.safetensors", bytes.substr(0, 5)), "truncated");
  std::string flipped = bytes;
  flipped[bytes.size() - 3] ^= 0x40;
  expect(write("crc.safetensors", flipped), "checksum mismatch");
  std::string badjson = bytes;
  badjson[9] = '#';
  expect(write("json.safetensors", badjson), "not valid JSON");
  expect(write("version.safetensors",
               resigned(bytes, [](auto& m) { m["format_version"] = "7"; })),
         "format version 7 is not supported");
  expect(write("text.safetensors", "hello, I am not a checkpoint at all"), "header length");
  expect(d.str("missing.safetensors"), "cannot open");
  // A checkpoint of another model.
  auto other =
      Graph::build(parse_model_text("conv filters=5 size=3\nflatten\ndense units=10\n", "o"),
                   GraphOptions{Device::cpu, 2, 2});
  const Checkpoint c = load_checkpoint(good);
  const std::string msg = error_of([&] { restore_graph(c, good, *other, true); });
  EXPECT_NE(msg.find("does not match the model"), std::string::npos) << msg;
}

// Numbers in the metadata are range-checked before conversion (a fuzzer found a negative
// double reaching get<size_t>(), undefined behaviour): each gets a one-line error. The files
// are re-signed, so the range check, not the checksum, must catch them.
TEST(Checkpoint, OutOfRangeMetadataNumbersAreRefusedNotConverted) {
  const SavedCheckpoint saved;
  const TempDir& d = saved.dir;
  const std::string& bytes = saved.bytes;
  struct Case {
    const char* key;
    const char* field;
    const char* value;
  };
  const Case cases[] = {
      {"training_state", "epoch_batches", "-1.0"}, {"training_state", "epoch_batches", "-1"},
      {"training_state", "step", "1e300"},         {"training_state", "step", "0.5"},
      {"training_state", "seed", "-1"},            {"training_state", "epoch", "1e30"},
      {"training_state", "epoch", "-3"},           {"training_state", "batch", "0"},
      {"training_state", "batch", "\"32\""},       {"training_state", "best_accuracy", "null"},
      {"optimizer", "lr", "1e300"},                {"optimizer", "eps", "-1e39"},
      {"input", "crop_pad", "-1"},                 {"input", "crop_pad", "4294967296"},
      {"training_state", "best_accuracy", "5.0"},  // nothing could ever beat it
      {"training_state", "epoch_seconds", "-1"},   {"training_state", "epoch_seconds", "1e300"},
      {"training_state", "epoch_seconds", "null"}, {"training_state", "epoch_seconds", "\"5\""},
  };
  for (const auto& c : cases) {
    const std::string path = d.str(std::string(c.field) + ".safetensors");
    std::ofstream(path, std::ios::binary) << resigned(bytes, [&](auto& m) {
      auto j = nlohmann::json::parse(m[c.key]);
      j[c.field] = nlohmann::json::parse(c.value);
      m[c.key] = j.dump();
    });
    const std::string msg = error_of([&] { load_checkpoint(path); });
    EXPECT_NE(msg.find(c.field), std::string::npos) << c.field << "=" << c.value << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

// epoch_seconds times the unfinished epoch: absent in older files (read as 0, untimed), and
// refused at an epoch boundary, where no epoch is unfinished.
TEST(Checkpoint, EpochSecondsIsOptionalAndOnlyMidEpoch) {
  const SavedCheckpoint saved;
  const TempDir& d = saved.dir;
  auto edited = [&](const std::string& name, auto edit) {
    const std::string path = d.str(name);
    std::ofstream(path, std::ios::binary) << resigned(saved.bytes, [&](auto& m) {
      auto j = nlohmann::json::parse(m["training_state"]);
      edit(j);
      m["training_state"] = j.dump();
    });
    return path;
  };
  EXPECT_EQ(load_checkpoint(saved.path).state.epoch_seconds, 41.25);
  EXPECT_EQ(load_checkpoint(edited("old.safetensors", [](auto& j) { j.erase("epoch_seconds"); }))
                .state.epoch_seconds,
            0.0);
  const std::string boundary = edited("boundary.safetensors", [](auto& j) { j["epoch_batches"] = 0; });
  const std::string msg = error_of([&] { load_checkpoint(boundary); });
  EXPECT_NE(msg.find("'epoch_seconds' is 41.25, expected 0 at an epoch boundary"), std::string::npos)
      << msg;
}

// The checksum covers the header: an edited best_accuracy (or any metadata) is refused, and a
// version-1 file (data checksum only) still loads.
TEST(Checkpoint, HeaderChecksumCatchesEditedMetadata) {
  const SavedCheckpoint saved;
  const TempDir& d = saved.dir;
  const std::string& good = saved.path;
  std::string bytes = saved.bytes;
  const auto pos = bytes.find("best_accuracy\\\":0.625");
  ASSERT_NE(pos, std::string::npos);
  bytes[pos + 20] = '9';  // 0.625 -> 0.925, same length: only the checksum can tell
  const std::string edited = d.str("edited.safetensors");
  std::ofstream(edited, std::ios::binary) << bytes;
  const std::string msg = error_of([&] { load_checkpoint(edited); });
  EXPECT_NE(msg.find("header checksum mismatch"), std::string::npos) << msg;
  const Checkpoint v1 = load_checkpoint(std::string(CONVPOOL_SOURCE_DIR) +
                                        "/tests/fuzz/corpus/safetensors/tiny.safetensors");
  EXPECT_EQ(v1.version, 1);
  EXPECT_NE(format_note(v1, "old").find("format-version-1"), std::string::npos);
  EXPECT_EQ(format_note(load_checkpoint(good), "new"), "");
  EXPECT_EQ(load_checkpoint(good).version, kCheckpointVersion);
}

// A save killed mid-write leaves NAME.tmp-PID; the next run removes those of dead writers
// and leaves live ones (its own, another running process's) and unrelated files alone.
TEST(Checkpoint, StaleTemporariesOfDeadWritersAreRemoved) {
  TempDir d;
  pid_t dead = 0;
  if ((dead = fork()) == 0) _exit(0);
  waitpid(dead, nullptr, 0);  // reaped: no process has this pid now
  char host[64] = {};
  gethostname(host, sizeof host - 1);
  const std::string here = host;
  // NAME.tmp-HOST-PID, and NAME.tmp-PID as older versions wrote them; another host's pid
  // cannot be checked from here, so its file stays.
  const std::vector<std::string> stale = {"last.safetensors.tmp-" + std::to_string(dead),
                                          "best.safetensors.tmp-" + std::to_string(dead),
                                          "summary.md.tmp-" + here + "-" + std::to_string(dead)};
  const std::vector<std::string> kept = {
      "last.safetensors.tmp-" + std::to_string(getpid()),
      "last.safetensors.tmp-" + here + "-" + std::to_string(getpid()), "last.safetensors.tmp-1",
      "notes.tmp-x1", "summary.md.tmp-other-host-" + std::to_string(dead), "last.safetensors"};
  for (auto& n : stale) std::ofstream(d.str(n)) << "partial";
  for (auto& n : kept) std::ofstream(d.str(n)) << "keep";
  EXPECT_EQ(remove_stale_temporaries(d.str()), 3);
  for (auto& n : stale) EXPECT_FALSE(std::filesystem::exists(d.str(n))) << n;
  for (auto& n : kept) EXPECT_TRUE(std::filesystem::exists(d.str(n))) << n;
}

// eval and --resume say where a checkpoint stands in the same words (a Ctrl-C checkpoint was
// "epoch 0" in one and "epoch 1" in the other).
TEST(Checkpoint, PositionIsDescribedOneWay) {
  TrainState s;
  EXPECT_EQ(describe_position(s), "before epoch 1, step 0");
  s.epoch_batches = 13;
  s.step = 13;
  EXPECT_EQ(describe_position(s), "in epoch 1 at batch 13, step 13");
  s.epoch = 2;
  s.epoch_batches = 0;
  s.step = 626;
  EXPECT_EQ(describe_position(s), "after epoch 2, step 626");
}

// 10,000 tensors save and load (a 45,000-layer model once took minutes per save); every value
// and name survives, in file order. Timing is `convpool bench checkpoint`'s job.
TEST(Checkpoint, TenThousandTensorsRoundTrip) {
  TempDir d;
  std::mt19937_64 rng(fresh_seed());
  std::vector<NamedTensor> tensors;
  for (int i = 0; i < 10000; ++i) {
    // Random name prefixes, so file order and name order differ. (Appended piece by piece:
    // GCC 12 warns falsely (-Wrestrict) about "t" + std::to_string(...).)
    std::string name = "t";
    name += std::to_string(rng() % 1000000);
    name += '.';
    name += std::to_string(i);
    NamedTensor t{name, {int64_t(1 + rng() % 3), int64_t(1 + rng() % 4)}, {}};
    t.data.resize(size_t(t.shape[0] * t.shape[1]));
    for (auto& v : t.data) v = float(int64_t(rng() % 2001) - 1000) / 7.f;
    tensors.push_back(std::move(t));
  }
  const std::string path = d.str("many.safetensors");
  write_file_atomic(path, encode_safetensors(tensors, {{"note", "many"}}));
  const SafetensorsFile f =
      decode_safetensors(read_regular_file(path, kMaxCheckpointBytes, "checkpoint"), path);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(f.tensors[i].name, tensors[i].name);  // file order is write order
    const NamedTensor* t = f.find(tensors[i].name);
    ASSERT_NE(t, nullptr) << tensors[i].name;
    ASSERT_EQ(t->shape, tensors[i].shape);
    ASSERT_EQ(t->data, tensors[i].data) << tensors[i].name;
  }
  EXPECT_EQ(f.metadata.at("note"), "many");
}

TEST(Checkpoint, FullDiskLeavesThePreviousCheckpointIntact) {
  TempDir d;
  const uint64_t seed = fresh_seed();
  auto g = small_graph(seed);
  const std::string path = d.str("last.safetensors");
  save_checkpoint(path, *g, kSmallModel, "", some_state(seed));
  const pid_t pid = fork();
  if (pid == 0) {
    // The child can write at most 4 KiB per file: the save fails part-way, as on a full disk.
    signal(SIGXFSZ, SIG_IGN);
    rlimit lim{4096, 4096};
    setrlimit(RLIMIT_FSIZE, &lim);
    g->params()[0] += 1.f;
    try {
      save_checkpoint(path, *g, kSmallModel, "", some_state(seed));
    } catch (const Error& e) {
      _exit(std::string(e.what()).find("intact") != std::string::npos ? 42 : 43);
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 42) << "the save should fail with a clear message";
  const Checkpoint c = load_checkpoint(path);  // still the old, valid file
  EXPECT_EQ(c.file.find("conv1.weight")->data[0], g->params()[0]);
  for (auto& e : std::filesystem::directory_iterator(d.path))
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << "temporary left behind";
}

TEST(Checkpoint, SigkillDuringRepeatedSavesNeverLeavesABrokenFile) {
  TempDir d;
  const std::string path = d.str("last.safetensors");
  std::mt19937_64 rng(fresh_seed());
  int verified = 0;
  for (int round = 0; round < 20; ++round) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t pid = fork();
    if (pid == 0) {
      close(ready[0]);
      auto g = small_graph(uint64_t(round) + 1);
      for (uint64_t i = 0;; ++i) {
        g->params()[0] = float(i);
        save_checkpoint(path, *g, kSmallModel, "", some_state(i));
        if (i == 0) {  // tell the parent a save completed, so a busy machine cannot starve us
          (void)!write(ready[1], "1", 1);
          close(ready[1]);
        }
      }
    }
    close(ready[1]);
    char byte = 0;
    ASSERT_EQ(read(ready[0], &byte, 1), 1) << "the saving child died";
    close(ready[0]);
    // Killed somewhere in the middle of a later save.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ASSERT_TRUE(std::filesystem::exists(path));
    EXPECT_NO_THROW(load_checkpoint(path)) << "round " << round;
    ++verified;
  }
  EXPECT_EQ(verified, 20);
}
