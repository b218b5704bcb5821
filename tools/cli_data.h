// Which data set a command reads and how: CIFAR-10, CIFAR-100 or an image folder (--data DIR
// holding train/<class>/ and val/<class>/). Classes and image side come from the data set, or
// from the checkpoint for eval, predict and export.
#pragma once
#include <memory>
#include <string>

#include "cli_progress.h"
#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "convpool/image_folder.h"

namespace convpool::cli {

// What a training command resolved of its data. `folder` is the scan of an image folder (null
// for CIFAR), made once and loaded from.
struct DataChoice {
  DatasetKind kind = DatasetKind::cifar10;
  std::string dir;  // resolved: where the files are
  int classes = kCifarClasses;
  int side = kCifarSide;
  std::shared_ptr<const ImageFolder> folder;
  std::string cache_dir;  // image folders: --cache-dir (empty: beside the folder)
  // Image folders: a split over this many bytes streams from its mapped cache (0: no limit).
  size_t memory_budget = 0;
};

// --memory-budget: "50%" (of this machine's memory), "8G", "512M", "64K" or bytes; a one-line
// error otherwise. "0" means no limit.
size_t parse_memory_budget(const std::string& text);
constexpr const char* kDefaultMemoryBudget = "50%";

// How messages name the data set: "CIFAR-10", "CIFAR-100", "the image folder DIR".
std::string data_title(const DataChoice& d);
std::string data_title(DatasetKind kind, const std::string& dir);

// The kind a --data directory holds when --dataset was not given: an image folder when it has
// a train/ folder, else `given`.
DatasetKind detect_dataset_kind(const std::string& data_flag, DatasetKind given);

// Loads one split ("train" or "test") of the choice; image folders report what they decoded,
// took from the cache and could not read on stderr (failures even when `quiet`).
Dataset load_split(const DataChoice& d, const std::string& split, size_t limit, bool quiet);

// The classes a checkpoint's run trained on: their recorded names, or its data set's built-in
// ones (older checkpoints).
std::vector<std::string> checkpoint_class_names(const TrainState& state);

// The data a checkpoint's run evaluated on, for eval and export: its kind, the folder from
// --data or as recorded (image folders), whose classes must be the checkpoint's.
DataChoice checkpoint_data(const TrainState& state, const std::string& data_flag,
                           const std::string& cache_dir);

}  // namespace convpool::cli
