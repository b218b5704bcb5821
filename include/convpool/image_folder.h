// The user's own images as a data set: DIR/train/<class>/*.{png,jpg,jpeg} and DIR/val/<class>/
// (or DIR/test/<class>/), as torchvision's ImageFolder and Keras' image_dataset_from_directory
// read them. Decoded once on all threads, fitted to a square side and kept as uint8 records in
// a cache beside a manifest, so that later runs start in seconds and a changed file is decoded
// again, never used stale.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "convpool/data.h"
#include "convpool/image_file.h"

namespace convpool {

// Labels are 8-bit throughout the engine (data sets, device buffers, the loss kernels).
constexpr int kMaxFolderClasses = 256;
// File names the folder reader takes as images (case-insensitive); others are counted.
bool has_image_extension(const std::string& name);

struct ImageFolderFile {
  std::string path;  // relative to the folder's root: "train/cat/001.png"
  int label = 0;
  // What the cache compares to know the file unchanged (image_folder.cpp's FileStat).
  uint64_t size = 0, inode = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
};

struct ImageFolderSplit {
  std::string name;                    // "train", "val" or "test"
  std::vector<ImageFolderFile> files;  // by class, then by name (bytewise)
  std::vector<size_t> per_class;       // files found per class
  size_t not_images = 0;               // files without an image extension, passed over
  size_t hidden = 0;                   // hidden files and folders (names starting '.'), passed over
  size_t bad_names = 0;                // files whose paths are not UTF-8, passed over
  std::string first_bad_name;          // the first of them, its odd bytes as \xNN
  size_t loose = 0;           // files directly in the split's folder, outside any class folder
  size_t symlinked_dirs = 0;  // directory links inside class folders, not followed
};

struct ImageFolder {
  std::string root;                      // as given
  std::vector<std::string> class_names;  // the training split's class folders, sorted
  ImageFolderSplit train, test;          // test: the val/ (or test/) split
};

// Whether `dir` holds the layout (a train/ directory): how --data tells a folder from CIFAR.
bool is_image_folder(const std::string& dir);

// Lists the folder without decoding anything. One-line errors: no train/, no val/ or test/
// (or both), no class folders, a training class folder without images, a class only in the
// evaluation split, more than kMaxFolderClasses classes, an unreadable directory, more than
// `max_files` files.
ImageFolder scan_image_folder(const std::string& root, size_t max_files = size_t(1) << 24);

struct FolderLoadOptions {
  int side = kCifarSide;          // the square the images are fitted to (the model's input)
  ImageFit fit = ImageFit::crop;  // resize the shorter side then centre-crop, or stretch
  // Where the cache lives: empty for ROOT/.convpool-cache, or, where that cannot be written,
  // $XDG_CACHE_HOME/convpool/folders/<hash of ROOT> (~/.cache without it).
  std::string cache_dir;
  // Called now and then from the decoding threads' leader with (decoded, to decode).
  std::function<void(size_t, size_t)> progress;
  // A split whose records would take more bytes than this stays in the cache file, memory
  // mapped (Dataset::mapped), and is read page by page as batches touch it; 0: no limit.
  size_t memory_budget = 0;
};

// What a load did, for the command to report.
struct FolderLoadReport {
  std::string cache_path;  // the records file used
  size_t decoded = 0;      // images decoded by this load
  size_t cached = 0;       // images taken from the cache
  size_t converted = 0;    // grey or alpha images made RGB
  size_t resized = 0;      // images of another size than side x side
  bool streamed = false;   // the records stay in the mapped cache file (memory_budget)
  // Files that could not be used (unreadable, corrupt, truncated, not an image): one line
  // each, "PATH: why". They are left out of the data set, and counted.
  std::vector<std::string> failures;
};

// One split ("train" or "test": the folder's val/ or test/) as a data set of side x side
// records, labelled by class in class_names order. Decoded images come from the cache where
// the file's size and modification time match its manifest entry; the rest are decoded on all
// OpenMP threads and the cache is rewritten. A file that changes while it is decoded is a
// one-line error (the cache keeps the others). `limit` > 0 keeps that many images, evenly
// spaced over the split so that every class keeps its share (copied into memory). Decoding
// holds one chunk of images at a time, so a split of any size loads within the budget.
Dataset load_image_folder(const ImageFolder& folder, const std::string& split, size_t limit,
                          const FolderLoadOptions& options, FolderLoadReport* report = nullptr);

// "N images in K classes (per class: a 12, b 10, ...)" and notes of what was passed over.
std::string describe_split(const ImageFolder& folder, const ImageFolderSplit& split);

}  // namespace convpool
