// CIFAR-10 in its binary layout (cifar-10-batches-bin): records of 1 label byte and 3072
// pixel bytes (R plane, G plane, B plane). Images stay uint8 in memory.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace convpool {

constexpr int kCifarImageBytes = 3072;
constexpr int kCifarRecordBytes = 3073;
constexpr int kCifarClasses = 10;
constexpr int kCifarSide = 32;  // images are 3 x 32 x 32, stored as R, G and B planes
constexpr int kCifarChannels = 3;
// The largest square input side the input pipeline takes (ImageNet's usual crop is 224).
constexpr int kMaxInputSide = 1024;
constexpr size_t kCifarRecordsPerFile = 10000;  // in each of the six files of the real data set

// What is done to every input image (kernels/input_math.cuh holds the per-pixel formula).
// The defaults (no crop, no flip, mean 0, std 1) give pixel / 255: the reference recipe.
struct InputTransform {
  int side = kCifarSide;  // the images' (square, 3 channels) side: the data set's and the model's
  int crop_pad = 0;       // training: crop side x side out of the image padded by this many pixels
  bool reflect = false;   // the crop's padding mirrors the image (else it is zeros)
  bool flip = false;      // training: mirror left-right with probability 1/2
  int cutout = 0;         // training: zero a random square this wide (after normalisation)
  float mean[kCifarChannels] = {0.f, 0.f, 0.f};  // subtracted from pixel / 255, per channel
  float std[kCifarChannels] = {1.f, 1.f, 1.f};   // then divided by this
  bool augments() const { return crop_pad > 0 || flip || cutout > 0; }
  bool operator==(const InputTransform&) const = default;
};
// Throws a one-line error for a negative or over-large crop or cutout (over half the side, over
// the side) or a non-positive std.
void validate(const InputTransform& t);
// "crop_pad=4 reflect flip cutout=8 mean=... std=..." or "none", for run summaries.
std::string describe(const InputTransform& t);

// One test-time-augmentation view of every image: shifted by (dy, dx) pixels (output pixel
// (y, x) reads source (y + dy, x + dx), reflect-padded), mirrored when `flip`, and its logits'
// weight in the average over the views.
struct TtaView {
  int dy = 0, dx = 0;
  bool flip = false;
  float weight = 1.f;
};
// The views of `--tta SPEC`: "none" (the image: weight 1), "flip" (the image and its mirror,
// 1/2 each), or "flip,translate" (airbench94's: the image and its mirror at 1/4 each, and both
// shifted by (-1, -1) and by (+1, +1) at 1/8 each). A one-line error names the choices.
std::vector<TtaView> tta_views(const std::string& spec);

// CIFAR-100 (same images, 100 fine classes in 20 coarse superclasses): records of a coarse
// label byte, a fine label byte and 3072 pixel bytes, in train.bin (50,000) and test.bin
// (10,000) of cifar-100-binary/. Training uses the fine labels.
constexpr int kCifar100Classes = 100;
constexpr int kCifar100CoarseClasses = 20;
constexpr int kCifar100RecordBytes = 3074;

// `folder`: the user's images in class folders (convpool/image_folder.h).
enum class DatasetKind { cifar10, cifar100, folder };
const char* dataset_name(DatasetKind kind);  // "cifar10", "cifar100", "folder"
// The CLI's names; a one-line error naming the choices otherwise.
DatasetKind parse_dataset_kind(const std::string& name);
// A data set's class names in label order, as its name file lists them (built in: a
// prediction names classes without the data set at hand).
std::vector<std::string> default_class_names(DatasetKind kind);
std::vector<std::string> cifar10_class_names();

struct Dataset {
  std::vector<uint8_t> pixels;         // count x image_bytes(): R, G and B planes of side x side
  // Instead of `pixels` (then empty): the records of a data set over the memory budget, in a
  // memory-mapped cache file (image folders), read by the OS page by page as batches touch them.
  std::shared_ptr<const uint8_t> mapped;
  std::vector<uint8_t> labels;         // count: the class trained on (CIFAR-100: the fine label)
  std::vector<uint8_t> coarse_labels;  // CIFAR-100 only: the superclass of each image
  int classes = kCifarClasses;
  std::vector<std::string> class_names;
  std::vector<size_t> records_per_file;  // as found in each file read (load_cifar10)
  size_t expected_records_per_file = kCifarRecordsPerFile;  // what the full data set's hold
  std::string name = "CIFAR-10";
  int side = kCifarSide;  // images are 3 x side x side
  size_t size() const { return labels.size(); }
  size_t image_bytes() const { return size_t(kCifarChannels) * size_t(side) * size_t(side); }
  const uint8_t* pixel_data() const { return mapped ? mapped.get() : pixels.data(); }
  size_t pixel_bytes() const { return size() * image_bytes(); }
  const uint8_t* image(size_t i) const { return pixel_data() + i * image_bytes(); }
};

// Images `indices` of `all`, in that order, held in memory whatever `all` is: their pixels
// and labels (coarse ones too) with `all`'s description (name, classes, class names, side,
// and the files its records came from).
Dataset select_images(const Dataset& all, const std::vector<size_t>& indices);

// Reads and validates one batch file, appending its records; errors name the file.
// Returns the number of records in the file (all of them, whatever max_records takes).
size_t read_cifar_file(const std::string& path, Dataset& out, size_t max_records = SIZE_MAX);
// The same checks on bytes already in memory; `origin` names them in errors.
size_t parse_cifar_records(const std::string& bytes, const std::string& origin, Dataset& out,
                           size_t max_records = SIZE_MAX);

// Loads the five training batches (split "train") or test_batch.bin ("test") from dir,
// stopping after `limit` records (0 = all). Class names come from batches.meta.txt if present.
// Training files that hold different numbers of records are refused (a copy cut short at a
// record boundary); data_note() says when the counts are not CIFAR-10's.
Dataset load_cifar10(const std::string& dir, const std::string& split, size_t limit = 0);

// "" for files of CIFAR-10's 10,000 records; otherwise a one-line note saying what was found,
// so that a subset or a synthetic copy is never taken silently for the real data set.
std::string data_note(const Dataset& ds, const std::string& split);

// CIFAR-100's train.bin ("train") or test.bin ("test") from dir, the first `limit` records
// (0 = all); class names from fine_label_names.txt if present. Errors name the file.
Dataset load_cifar100(const std::string& dir, const std::string& split, size_t limit = 0);
// The same checks as parse_cifar_records, for CIFAR-100's records.
size_t parse_cifar100_records(const std::string& bytes, const std::string& origin, Dataset& out,
                              size_t max_records = SIZE_MAX);
// load_cifar10 or load_cifar100.
Dataset load_dataset(DatasetKind kind, const std::string& dir, const std::string& split,
                     size_t limit = 0);
// resolve_cifar_dir for either data set: CIFAR-100 looks in --data, $CIFAR100_DIR, then
// data/cifar-100-binary, and names data/get-cifar100 when none holds it.
std::string resolve_data_dir(DatasetKind kind, const std::string& flag_value);

// The directory to read: --data if given, else $CIFAR10_DIR, else data/cifar-10-batches-bin.
// Throws a one-line error naming every place it looked when none holds the data.
std::string resolve_cifar_dir(const std::string& flag_value);

// `images` random images (3 x side x side) with random labels below `classes` (for benchmarks
// and profiles that need no real data), drawn from Philox with `seed`; class names "class0"...
Dataset synthetic_cifar(size_t images, uint64_t seed, int side = kCifarSide,
                        int classes = kCifarClasses);

// A permutation of [0, n) for `epoch`: the images sorted by 64-bit Philox keys of (seed,
// epoch, image), ties by index (kernels/epoch_order.cuh). The same on every platform, and made
// identically on the GPU by a Thrust sort (src/data/epoch_order_thrust.h).
std::vector<uint32_t> epoch_order(size_t n, uint64_t seed, uint64_t epoch);
// The scheme's name, saved in checkpoints: runs shuffled otherwise (convpool before
// 2026-12-01 used a serial Fisher-Yates shuffle) cannot be resumed exactly.
constexpr const char* kEpochOrderScheme = "philox-key-sort";

// Converts images order[0 .. count) to float NCHW: pixel / 255, normalised by `t` (whose side
// must be the data set's: a one-line error otherwise). In training
// mode the crop and flip of `t` are drawn per image from (seed, step, position in the batch).
// `first_index`: the position of order[0] in the step's global batch (data-parallel ranks
// train on slices of it): the augmentation draws are keyed by that position, so they do not
// depend on the number of ranks.
void images_to_float(const Dataset& ds, const uint32_t* order, int count, float* out,
                     const InputTransform& t = {}, bool training = false, uint64_t seed = 0,
                     uint64_t step = 0, uint32_t first_index = 0);
// Evaluation conversion of one test-time view: images_to_float(training = false) of the
// shifted and mirrored images.
void view_to_float(const Dataset& ds, const uint32_t* order, int count, float* out,
                   const InputTransform& t, const TtaView& view);

}  // namespace convpool
