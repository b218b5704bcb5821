// Hostile and careless input, one table: data files, model files, CLI values, config files,
// checkpoints and run directories. Every case must end within its timeout (no hang), with a
// non-zero exit and exactly one error line that says what is wrong (notes aside); none may
// crash. The count of cases is printed, for the reliability table in docs/reliability.md.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <cmath>
#include <functional>

#include "convpool/checkpoint.h"
#include "convpool/model.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;
namespace fs = std::filesystem;

namespace {

const char* kGoodModel =
    "input channels=3 height=32 width=32\n"
    "conv filters=4 size=3 stride=2\nrelu\npool max size=2\nflatten\ndense units=10\n";

struct BadInput {
  std::string name;
  std::function<void(const std::string& dir)> setup;  // makes the bad file(s) in dir
  std::string args;                                   // $D is replaced by the directory
  std::string needle;                                 // the error line must say this
  int exit_code = -1;                                 // -1: any non-zero
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A model whose input is not CIFAR-10's, saved as a correctly signed checkpoint.
void write_checkpoint_of(const std::string& path, const std::string& model_text) {
  auto g = Graph::build(parse_model_text(model_text, "m"), GraphOptions{Device::cpu, 1, 2});
  g->init_params(1);
  save_checkpoint(path, *g, model_text, "", TrainState{});
}

std::string good_run(const std::string& d) { return d + "/run"; }

std::vector<BadInput> cases() {
  const std::string train = "train --device cpu --epochs 1 --batch 8 --data $D/data --out $D/new ";
  const std::string eval = "eval --device cpu --data $D/data --checkpoint ";
  auto none = [](const std::string&) {};
  // An image folder of 2 classes ("c0", "zz-c1") at $D/f and a model for it at $D/m48.cfg,
  // then `breaks` applied to the folder.
  auto folder = [](std::function<void(const std::string&)> breaks) {
    return [breaks](const std::string& d) {
      write_image_folder(d + "/f", 2, 2, 1, 3);
      write_text(d + "/m48.cfg", "input channels=3 height=48 width=48\nconv filters=2 size=3\n"
                                 "pool avg global\nflatten\ndense units=2\n");
      if (breaks) breaks(d + "/f");
    };
  };
  const std::string folder_train =
      "train --device cpu --quiet --epochs 1 --batch 4 --data $D/f --model $D/m48.cfg --out "
      "$D/new ";
  auto model = [](const std::string& text) {
    return [text](const std::string& d) { write_text(d + "/m.cfg", text); };
  };
  auto fifo = [](const std::string& name) {
    return [name](const std::string& d) { ::mkfifo((d + "/" + name).c_str(), 0600); };
  };
  return {
      // ---- data ----
      {"data directory missing", none,
       "train --device cpu --epochs 1 --data $D/nowhere --out $D/new", "no such directory"},
      {"data directory without the files", [](const std::string& d) { fs::create_directory(d + "/empty"); },
       "train --device cpu --epochs 1 --data $D/empty --out $D/new", "no CIFAR-10 binary files"},
      {"batch file not a whole number of records",
       [](const std::string& d) { fs::resize_file(d + "/data/data_batch_2.bin", 3073 * 5 - 7); },
       train, "not a multiple"},
      {"batch file cut at a record boundary",
       [](const std::string& d) { fs::resize_file(d + "/data/data_batch_1.bin", 3073 * 7); }, train,
       "data_batch_1.bin: 7"},
      {"batch file grown by whole records",
       [](const std::string& d) { fs::resize_file(d + "/data/data_batch_4.bin", 3073 * 30); },
       train, "data_batch_4.bin: 30"},
      {"label outside 0..9",
       [](const std::string& d) {
         std::fstream f(d + "/data/test_batch.bin", std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(3073 * 3);
         f.put(char(200));
       },
       train, "has label 200"},
      {"batch file is a FIFO",
       [](const std::string& d) {
         fs::remove(d + "/data/data_batch_3.bin");
         ::mkfifo((d + "/data/data_batch_3.bin").c_str(), 0600);
       },
       train, "data_batch_3.bin is not a regular file"},
      {"test file is a directory",
       [](const std::string& d) {
         fs::remove(d + "/data/test_batch.bin");
         fs::create_directory(d + "/data/test_batch.bin");
       },
       train, "test_batch.bin is a directory, not a CIFAR-10 batch file"},
      {"test file missing", [](const std::string& d) { fs::remove(d + "/data/test_batch.bin"); },
       train, "test_batch.bin is missing (data_batch_1.bin is there)"},
      {"class-name file with 9 names",
       [](const std::string& d) { write_text(d + "/data/batches.meta.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\n"); },
       train, "batches.meta.txt holds 9 class names, one per line; the data set has 10"},
      {"batch file is a symlink to /dev/zero",
       [](const std::string& d) {
         fs::remove(d + "/data/data_batch_1.bin");
         fs::create_symlink("/dev/zero", d + "/data/data_batch_1.bin");
       },
       train, "data_batch_1.bin is not a regular file"},
      {"--data names a file", none,
       "train --device cpu --epochs 1 --data $D/good.cfg --out $D/new", "is not a directory"},
      {"a class name with a NUL byte",
       [](const std::string& d) {
         write_text(d + "/data/batches.meta.txt", std::string("air") + '\0' + "plane\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
       },
       train, "batches.meta.txt:1: a class name holds the control byte 0x00"},
      {"a class name with a control byte",
       [](const std::string& d) {
         write_text(d + "/data/batches.meta.txt", "a\nb\nc\x1b[31m\nd\ne\nf\ng\nh\ni\nj\n");
       },
       train, "batches.meta.txt:3: a class name holds the control byte 0x1b"},
      // ---- model files ----
      {"model is /dev/zero", none, train + "--model /dev/zero", "not a regular file"},
      {"model is a FIFO", fifo("m.cfg"), train + "--model $D/m.cfg", "not a regular file"},
      {"model is a directory", none, train + "--model $D", "is a directory"},
      {"model file over 1 MiB", model(std::string(1100000, '#')), train + "--model $D/m.cfg",
       "too large"},
      {"model file with NUL bytes", model(std::string("conv\0", 5)), train + "--model $D/m.cfg",
       "NUL"},
      {"model input 1x1x1",
       model("input channels=1 height=1 width=1\nflatten\ndense units=10\n"),
       train + "--model $D/m.cfg", "CIFAR-10's images are 3x32x32"},
      {"model input 1x28x28",
       model("input channels=1 height=28 width=28\nflatten\ndense units=10\n"),
       train + "--model $D/m.cfg", "takes 1x28x28 inputs"},
      {"model input 3x64x64",
       model("input channels=3 height=64 width=64\nflatten\ndense units=10\n"),
       train + "--model $D/m.cfg", "takes 3x64x64 inputs"},
      {"model with 7 outputs", model("flatten\ndense units=7\n"), train + "--model $D/m.cfg",
       "needs 10 logits"},
      {"unknown layer", model("conv filters=4 size=3\nbatchnrom\n"), train + "--model $D/m.cfg",
       "batchnrom"},
      {"repeated layer argument", model("pool max size=2 size=3\nflatten\ndense units=10\n"),
       train + "--model $D/m.cfg", "argument 'size' given twice"},
      {"layer name that could clash with optimizer state",
       model("flatten\ndense name=fc units=10\nrelu\ndense name=optim.m.fc units=10\n"),
       train + "--model $D/m.cfg", "may hold only letters, digits"},
      {"layer argument out of range", model("conv filters=0 size=3\nflatten\ndense units=10\n"),
       train + "--model $D/m.cfg", "filters=0 is out of range"},
      {"a second input line",
       model("input channels=3 height=32 width=32\ninput channels=1 height=8 width=8\nflatten\n"
             "dense units=10\n"),
       train + "--model $D/m.cfg", "a second 'input' line"},
      {"a trailing comma in in=",
       model("conv name=a filters=2 size=3\nconv name=b filters=2 size=3 in=input\n"
             "add in=a,b,\nflatten\ndense units=10\n"),
       train + "--model $D/m.cfg", "in=a,b, has an empty name"},
      {"a model with nothing to train (all frozen)",
       model("flatten\ndense units=10 frozen=1\n"), train + "--model $D/m.cfg",
       "has nothing to train: every parameter is frozen or has lr_mult=0"},
      {"a model with nothing to train (lr_mult=0)",
       model("conv filters=2 size=3 lr_mult=0\nflatten\ndense units=10 lr_mult=0\n"),
       train + "--model $D/m.cfg", "has nothing to train"},
      {"a key=value on a line of its own",
       model("conv filters=4\nsize=3\nflatten\ndense units=10\n"), train + "--model $D/m.cfg",
       "m.cfg:2: 'size=3' on a line of its own"},
      {"a model file with a UTF-8 BOM", model("\xEF\xBB\xBF" "flatten\ndense units=10\n"),
       train + "--model $D/m.cfg", "starts with a UTF-8 byte-order mark"},
      {"a path with a newline", none, train + "--model '$D/a\nb.cfg'", "a\\nb.cfg"},
      {"an output too large", model("conv filters=65536 size=3 padding=same\nflatten\ndense units=10\n"),
       "model --batch 128 $D/m.cfg", "its output 1x65536x32x32 at batch 128 is too large"},
      {"bench pool: a window larger than --shape", none,
       "bench pool --device cpu --shape 1,1,1,1 --reps 1",
       "--method max on --shape 1,1,1,1 (--size 2, --stride 2, --pad 0): window 2x2 is larger"},
      {"bench pool: --shape over its limit", none,
       "bench pool --device cpu --shape 99999999,1,2,2 --reps 1", "99999999 is over the limit"},
      {"profile: a model that overflows", model("flatten\ndense units=10\nscale factor=1e6\n"
                                                  "scale factor=1e6\nscale factor=1e6\nscale "
                                                  "factor=1e6\nscale factor=1e6\nscale factor=1e6\n"
                                                  "scale factor=1e6\n"),
       "profile --device cpu --warmup 0 --steps 1 --model $D/m.cfg",
       "profile and bench time it as given"},
      {"an empty --out", none,
       "train --device cpu --epochs 1 --batch 8 --data $D/data --out ''", "--out is empty"},
      // ---- CLI values ----
      {"negative --limit-train", none, train + "--limit-train -5", "not a whole number", 2},
      {"negative --seed", none, train + "--seed -1", "not a whole number", 2},
      {"overflowing --seed", none, train + "--seed 99999999999999999999999", "not a whole number",
       2},
      {"fractional --seed", none, train + "--seed 1.5", "not a whole number", 2},
      {"--lr 0", none, train + "--lr 0", "--lr: '0' is not in (0, 10]", 2},
      {"--data empty", none, "train --device cpu --epochs 1 --data '' --out $D/new",
       "--data: the value is empty", 2},
      {"--merge with an empty shard name", none, "study --merge '' --out $D/m",
       "--merge: an empty shard directory"},
      {"--merge with --shard", none, "study --merge $D/a,$D/b --shard 0/2 --out $D/m",
       "--shard (which runs one) does not apply"},
      {"export: two spellings of one output", none,
       "export --checkpoint $D/run/last.safetensors --plan $D/p.json --logits $D/./p.json --data $D/data",
       "name the same file"},
      {"--lr nan", none, train + "--lr nan", "--lr: 'nan' is not a finite number", 2},
      {"--lr inf", none, train + "--lr inf", "not a finite number", 2},
      {"--mean with inf", none, train + "--mean 0,inf,0", "not a finite number", 2},
      {"--batch 0", none, train + "--batch 0", "--batch", 2},
      {"--epochs -1", none, train + "--epochs -1", "--epochs", 2},
      {"--threads 0", none, train + "--threads 0", "--threads", 2},
      {"--pool size=0", none, train + "--pool max:size=0", "size=0 is out of range"},
      {"--pool key twice", none, train + "--pool max:size=2,size=3", "'size' is given twice"},
      {"--pool unknown method", none, train + "--pool maxx", "did you mean 'max'?"},
      {"--pool malformed parameter", none, train + "--pool avgtopk:k", "malformed parameter"},
      {"unknown subcommand", none, "trian", "did you mean 'train'?", 2},
      {"--data-placement device on the CPU", none, train + "--data-placement device",
       "--data-placement device keeps the data in GPU memory: it needs --device cuda"},
      {"--data-placement unknown", none, train + "--data-placement gpu", "--data-placement", 2},
      {"--pad-mode unknown", none, train + "--pad-mode mirror", "--pad-mode", 2},
      {"--cutout over the image", none, train + "--cutout 33",
       "--cutout must be between 0 and 32", 1},
      {"--tta unknown (train)", none, train + "--tta mirror", "--tta must be none, flip"},
      {"--tta unknown (eval)", none,
       "eval --device cpu --data $D/data --tta mirror --checkpoint $D/run/last.safetensors",
       "--tta must be none, flip"},
      {"--momentum with adam", none, train + "--optimizer adam --momentum 0.9",
       "applies to --optimizer sgd only (adam keeps"},
      {"--nesterov with adam", none, train + "--optimizer adamw --nesterov",
       "--nesterov (given here or by --config) applies to --optimizer sgd only"},
      {"--eval-with raw without --ema", none, train + "--eval-with raw", "it needs --ema"},
      {"--final-lr-ratio with a constant lr", none, train + "--final-lr-ratio 0.1",
       "--final-lr-ratio 0.1 applies to --lr-schedule cosine or linear only"},
      {"--onecycle-start-div with cosine", none,
       train + "--lr-schedule cosine --onecycle-start-div 10", "apply to --lr-schedule onecycle"},
      {"--lr-gamma with onecycle", none, train + "--lr-schedule onecycle --lr-gamma 0.5",
       "--lr-gamma 0.5 applies to --lr-schedule step only"},
      {"config data-placement = nowhere",
       [](const std::string& d) { write_text(d + "/c.toml", "data-placement = \"nowhere\"\n"); },
       train + "--config $D/c.toml", "data-placement"},
      {"predict: not an image", model("conv filters=4\n"),
       "predict --device cpu --checkpoint $D/run/last.safetensors $D/m.cfg",
       "m.cfg: not a PNG or JPEG image"},
      {"predict: an empty file", [](const std::string& d) { write_text(d + "/e.png", ""); },
       "predict --device cpu --checkpoint $D/run/last.safetensors $D/e.png",
       "e.png: empty file (0 bytes)"},
      {"predict: a truncated PNG",
       [](const std::string& d) { write_text(d + "/t.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16)); },
       "predict --device cpu --checkpoint $D/run/last.safetensors $D/t.png",
       "t.png: not a readable PNG"},
      {"predict: a FIFO", fifo("f.png"),
       "predict --device cpu --checkpoint $D/run/last.safetensors $D/f.png", "f.png is not a regular file"},
      {"predict: a directory without images", [](const std::string& d) { fs::create_directory(d + "/pics"); },
       "predict --device cpu --checkpoint $D/run/last.safetensors $D/pics",
       "pics: no .png, .jpg or .jpeg files in this directory"},
      {"predict: a missing file", none,
       "predict --device cpu --checkpoint $D/run/last.safetensors $D/none.jpg", "none.jpg: No such file"},
      // ---- config files ----
      {"config seed = -1", [](const std::string& d) { write_text(d + "/c.toml", "seed = -1\n"); },
       train + "--config $D/c.toml", "not a whole number"},
      {"config lr = nan", [](const std::string& d) { write_text(d + "/c.toml", "lr = nan\n"); },
       train + "--config $D/c.toml", "not a finite number"},
      {"config unknown key", [](const std::string& d) { write_text(d + "/c.toml", "lrr = 1\n"); },
       train + "--config $D/c.toml", "did you mean 'lr'?"},
      {"config string for a number",
       [](const std::string& d) { write_text(d + "/c.toml", "epochs = \"2\"\n"); },
       train + "--config $D/c.toml", "c.toml:1: epochs takes a whole number, not \"2\""},
      {"config list for a number",
       [](const std::string& d) { write_text(d + "/c.toml", "# lr\nlr = [0.01]\n"); },
       train + "--config $D/c.toml", "c.toml:2: lr takes a number, not [0.01]"},
      {"config fraction for a whole number",
       [](const std::string& d) { write_text(d + "/c.toml", "seed = 2.5\n"); },
       train + "--config $D/c.toml", "seed takes a whole number, not 2.5"},
      {"config string for a flag",
       [](const std::string& d) { write_text(d + "/c.toml", "flip = \"yes\"\n"); },
       train + "--config $D/c.toml", "flip takes true or false, not \"yes\""},
      {"config number for a flag",
       [](const std::string& d) { write_text(d + "/c.toml", "flip = -1\n"); },
       train + "--config $D/c.toml", "flip takes true or false, not -1"},
      {"config bare word for a string",
       [](const std::string& d) { write_text(d + "/c.toml", "optimizer = sgd\n"); },
       train + "--config $D/c.toml", "optimizer takes a quoted string, not sgd"},
      {"config key without a value",
       [](const std::string& d) { write_text(d + "/c.toml", "lr\n"); },
       train + "--config $D/c.toml", "c.toml:1: 'lr' has no value"},
      {"config key twice",
       [](const std::string& d) { write_text(d + "/c.toml", "lr = 0.1\nbatch = 8\nlr = 0.2\n"); },
       train + "--config $D/c.toml", "c.toml:3: 'lr' is set twice (first at line 1)"},
      {"config with a UTF-8 BOM",
       [](const std::string& d) { write_text(d + "/c.toml", "\xEF\xBB\xBF" "lr = 0.1\n"); },
       train + "--config $D/c.toml", "starts with a UTF-8 byte-order mark"},
      {"config sets a command-line-only option",
       [](const std::string& d) { write_text(d + "/c.toml", "out = \"x\"\n"); },
       train + "--config $D/c.toml", "'out' is not read from a config file"},
      {"config in UTF-16",
       [](const std::string& d) { write_text(d + "/c.toml", std::string("l\0r\0 \0=\0 \0" "1\0\n\0", 14)); },
       train + "--config $D/c.toml", "holds NUL bytes; UTF-16?"},
      {"config multi-line string",
       [](const std::string& d) { write_text(d + "/c.toml", "pool = \"\"\"max\n\"\"\"\n"); },
       train + "--config $D/c.toml", "multi-line strings are not read"},
      {"config unterminated string",
       [](const std::string& d) { write_text(d + "/c.toml", "pool = \"max\n"); },
       train + "--config $D/c.toml", "c.toml:1: pool = \"max: the string has no closing \""},
      {"config is a FIFO", fifo("c.toml"), train + "--config $D/c.toml", "not a regular file"},
      {"config is /dev/zero", none, train + "--config /dev/zero", "not a regular file"},
      {"config is not TOML", [](const std::string& d) { write_text(d + "/c.toml", "[[[\n"); },
       train + "--config $D/c.toml", "c.toml:1: '[[[' is not a key = value line"},
      // ---- checkpoints ----
      {"checkpoint is a directory", none, eval + "$D", "is a directory, not a checkpoint"},
      {"checkpoint is a FIFO", fifo("c.safetensors"), eval + "$D/c.safetensors",
       "not a regular file"},
      {"checkpoint is /dev/zero", none, eval + "/dev/zero", "not a regular file"},
      {"checkpoint missing", none, eval + "$D/none.safetensors", "No such file"},
      {"checkpoint of junk",
       [](const std::string& d) { write_text(d + "/c.safetensors", "not a checkpoint at all"); },
       eval + "$D/c.safetensors", "header length"},
      {"checkpoint truncated",
       [](const std::string& d) {
         fs::copy_file(good_run(d) + "/last.safetensors", d + "/c.safetensors");
         fs::resize_file(d + "/c.safetensors", fs::file_size(d + "/c.safetensors") - 40);
       },
       eval + "$D/c.safetensors", "outside"},
      {"checkpoint metadata edited",
       [](const std::string& d) {
         std::string bytes = read_regular_file(good_run(d) + "/last.safetensors",
                                               kMaxCheckpointBytes, "checkpoint");
         const auto at = bytes.find("\"seed\\\":");
         bytes[at + 8] = bytes[at + 8] == '7' ? '8' : '7';
         write_text(d + "/c.safetensors", bytes);
       },
       eval + "$D/c.safetensors", "header checksum mismatch"},
      {"checkpoint of a 1x1x1 model",
       [](const std::string& d) {
         write_checkpoint_of(d + "/c.safetensors",
                             "input channels=1 height=1 width=1\nflatten\ndense units=10\n");
       },
       eval + "$D/c.safetensors", "CIFAR-10's images are 3x32x32"},
      {"resume from a 1x28x28 model's checkpoint",
       [](const std::string& d) {
         write_checkpoint_of(d + "/c.safetensors",
                             "input channels=1 height=28 width=28\nflatten\ndense units=10\n");
       },
       "train --device cpu --epochs 2 --data $D/data --resume $D/c.safetensors",
       "CIFAR-10's images are 3x32x32"},
      // ---- run directories ----
      {"--out holds another run", none,
       "train --device cpu --epochs 1 --batch 8 --data $D/data --out $D/run",
       "already holds a run"},
      {"--resume into another run's directory",
       [](const std::string& d) { fs::copy(good_run(d), d + "/other"); },
       "train --device cpu --epochs 3 --data $D/data --resume $D/run/last.safetensors --out "
       "$D/other",
       "already holds a run"},
      {"--resume of best while last has moved on",
       [](const std::string& d) {
         // A run of 2 epochs whose best is epoch 1: its last.safetensors is further along.
         fs::copy_file(good_run(d) + "/last.safetensors", d + "/epoch1.safetensors");
         run_convpool("train --device cpu --quiet --epochs 2 --data " + d + "/data --resume " +
                      good_run(d) + "/last.safetensors");
         fs::copy_file(d + "/epoch1.safetensors", good_run(d) + "/best.safetensors",
                       fs::copy_options::overwrite_existing);
       },
       "train --device cpu --epochs 3 --data $D/data --resume $D/run/best.safetensors",
       "has moved on to step"},
      {"checkpoint with a NaN weight",
       [](const std::string& d) {
         auto g = Graph::build(parse_model_text(kGoodModel, "m"), GraphOptions{Device::cpu, 1, 2});
         g->init_params(1);
         g->params()[3] = std::nanf("");
         save_checkpoint(d + "/c.safetensors", *g, kGoodModel, "", TrainState{});
       },
       eval + "$D/c.safetensors", "holds a non-finite value"},
      {"--resume beside a user's own metrics.csv",
       [](const std::string& d) {
         fs::copy_file(good_run(d) + "/last.safetensors", d + "/ck.safetensors");
         write_text(d + "/metrics.csv", "my,data\n");
       },
       "train --device cpu --epochs 2 --data $D/data --resume $D/ck.safetensors",
       "metrics.csv, which is not a convpool metrics file"},
      {"--resume past its epochs", none,
       "train --device cpu --epochs 1 --data $D/data --resume $D/run/last.safetensors",
       "has already trained 1 epochs"},
      // Image folders (docs/data.md): each broken layout, file set or model.
      {"image folder without train/",
       folder([](const std::string& f) { fs::remove_all(f + "/train"); }),
       folder_train + "--dataset folder", "no train/ folder"},
      {"image folder without val/",
       folder([](const std::string& f) { fs::remove_all(f + "/val"); }), folder_train,
       "no val/ (or test/) folder"},
      {"image folder with val/ and test/",
       folder([](const std::string& f) { fs::create_directories(f + "/test/c0"); }), folder_train,
       "holds both val/ and test/"},
      {"image folder with an empty class",
       folder([](const std::string& f) { fs::create_directories(f + "/train/empty"); }),
       folder_train, "train/empty: no images"},
      {"image folder with a class only in val/",
       folder([](const std::string& f) { fs::create_directories(f + "/val/stray"); }),
       folder_train, "val/stray: a class that train/ does not have"},
      {"image folder of 257 classes",
       folder([](const std::string& f) {
         // 255 beside its c0 and zz-c1: 257 in all.
         for (int c = 0; c < 255; ++c) fs::create_directories(f + "/train/k" + std::to_string(c));
       }),
       folder_train, "at most 256 classes"},
      {"image folder whose training files are all unreadable",
       folder([](const std::string& f) {
         for (const auto& e : fs::recursive_directory_iterator(f + "/train"))
           if (e.is_regular_file()) write_text(e.path().string(), "truncated");
       }),
       folder_train, "none of its 4 image files could be read"},
      {"image folder, --image-size the model does not take", folder(nullptr),
       folder_train + "--image-size 40", "takes 3x48x48 inputs, but the image folder"},
      {"image folder, a model of 10 classes for 2",
       folder([](const std::string& f) {
         write_text(f + "/../m48.cfg", "input channels=3 height=48 width=48\nconv filters=2 "
                                       "size=3\npool avg global\nflatten\ndense units=10\n");
       }),
       folder_train, "needs 2 logits"},
      {"image folder, a model of non-square input",
       folder([](const std::string& f) {
         write_text(f + "/../m48.cfg", "input channels=3 height=48 width=40\nconv filters=2 "
                                       "size=3\npool avg global\nflatten\ndense units=2\n");
       }),
       folder_train, "fitted to squares"},
      {"image folder, --crop-pad over half its side", folder(nullptr),
       folder_train + "--crop-pad 25", "--crop-pad must be between 0 and 24 for 48x48"},
      {"image folder under --dataset cifar10", folder(nullptr), folder_train + "--dataset cifar10",
       "holds an image folder (train/), but the run's --dataset is cifar10"},
      {"image folder, a bad --memory-budget", folder(nullptr),
       folder_train + "--memory-budget lots", "--memory-budget must be"},
      {"eval of a folder checkpoint on other classes",
       folder([](const std::string& f) {
         run_convpool("train --device cpu --quiet --epochs 1 --batch 4 --data " + f +
                      " --model " + f + "/../m48.cfg --out " + f + "/../frun");
         fs::rename(f + "/train/c0", f + "/train/a0");
         fs::rename(f + "/val/c0", f + "/val/a0");
       }),
       "eval --device cpu --checkpoint $D/frun/last.safetensors", "they first differ at class 0"},
  };
}

class BadInputs : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadInputs, EndInOneLineErrorWithoutHangOrCrash) {
  const BadInput& c = GetParam();
  TempDir d;
  write_cifar_dir(d.str("data"), 20, fresh_seed());
  write_text(d.str("good.cfg"), kGoodModel);
  // A finished run for the checkpoint and run-directory cases.
  const CommandResult trained = run_convpool("train --device cpu --quiet --epochs 1 --batch 8 --data " +
                                             d.str("data") + " --model " + d.str("good.cfg") +
                                             " --out " + d.str("run"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  c.setup(d.str());
  const std::string args = replace_all(c.args, "$D", d.str());
  const CommandResult r =
      run_command("timeout -k 5 30 " + std::string(CONVPOOL_BINARY) + " " + args + " </dev/null");
  ASSERT_NE(r.exit_code, 124) << "hung: " << args;
  ASSERT_LT(r.exit_code, 128) << "crashed (signal " << r.exit_code - 128 << "): " << r.output;
  if (c.exit_code >= 0)
    EXPECT_EQ(r.exit_code, c.exit_code) << args << "\n" << r.output;
  else
    EXPECT_NE(r.exit_code, 0) << args << "\n" << r.output;
  // One line that is not a note, and it names the problem.
  std::istringstream lines(r.output);
  std::vector<std::string> said;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line.rfind("convpool: note:", 0) != 0) said.push_back(line);
  ASSERT_EQ(said.size(), 1u) << args << "\n" << r.output;
  EXPECT_NE(said[0].find(c.needle), std::string::npos) << args << "\n" << r.output;
  // The table in docs/reliability.md is made from these lines.
  std::printf("bad input | %s | exit %d | %s\n", c.name.c_str(), r.exit_code,
              replace_all(said[0], d.str(), "D").c_str());
}

INSTANTIATE_TEST_SUITE_P(Reliability, BadInputs, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<BadInput>& info) {
                           std::string n;
                           for (char ch : info.param.name)
                             n += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return n;
                         });

}  // namespace
