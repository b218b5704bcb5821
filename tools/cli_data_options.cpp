// The data a training command reads, resolved from its options (the kind, the folder, the
// classes and image side) and, with --normalize-from-data, measured for its normalisation.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "cli_run.h"
#include "convpool/checkpoint.h"
#include "convpool/image_folder.h"
#include "convpool/model.h"

namespace convpool::cli {

namespace fs = std::filesystem;

// The data set: its kind (an image folder when --data holds train/ and --dataset was not
// given), where it is, its classes and the side its images are fitted to (an image folder's:
// --image-size, else the model's input; a resumed run's: its checkpoint's).
void resolve_data(CLI::App* cmd, TrainOptions& o) {
  DatasetKind kind = parse_dataset_kind(o.dataset);
  if (!cmd->count("--dataset") && o.resume.empty()) kind = detect_dataset_kind(o.data, kind);
  o.dataset = dataset_name(kind);
  o.cfg.dataset = kind;
  std::optional<TrainState> resumed;
  if (!o.resume.empty()) resumed = load_checkpoint(o.resume).state;
  DataChoice& d = o.resolved;
  d = DataChoice{};
  d.kind = kind;
  d.cache_dir = o.cache_dir;
  d.memory_budget = parse_memory_budget(o.memory_budget);
  if (kind != DatasetKind::folder) {
    if (o.image_size != 0 && o.image_size != kCifarSide)
      CP_USER_ERROR("--image-size " << o.image_size << ": CIFAR's images are " << kCifarSide << "x"
                                    << kCifarSide << " (the option fits image folders)");
    try {
      d.dir = resolve_data_dir(kind, o.data);
    } catch (const Error&) {
      if (!is_image_folder(o.data)) throw;
      // --dataset cifar10 given, or recorded in a --config: say what --data holds.
      CP_USER_ERROR("--data " << o.data << " holds an image folder (train/), but the run's "
                              << "--dataset is " << o.dataset
                              << " (from the command line or --config): pass --dataset folder");
    }
    d.classes = kind == DatasetKind::cifar100 ? kCifar100Classes : kCifarClasses;
  } else {
    d.dir = o.data.empty() && resumed ? resumed->data : o.data;
    if (d.dir.empty())
      CP_USER_ERROR(
          "--dataset folder needs --data DIR (a folder holding train/<class>/ and "
          "val/<class>/; a run's config.toml does not record where its data is)");
    auto folder = std::make_shared<ImageFolder>(scan_image_folder(d.dir));
    if (resumed && folder->class_names != resumed->class_names)
      CP_USER_ERROR(d.dir << ": its classes are not those " << o.resume << " trained on ("
                          << folder->class_names.size() << " vs " << resumed->class_names.size()
                          << ")");
    d.classes = int(folder->class_names.size());
    if (resumed) {
      if (o.image_size != 0 && o.image_size != resumed->input.side)
        CP_USER_ERROR("--image-size " << o.image_size << ": " << o.resume << " trained on "
                                      << resumed->input.side << "x" << resumed->input.side
                                      << " images");
      d.side = resumed->input.side;
    } else if (o.image_size != 0) {
      d.side = o.image_size;
    } else {
      const Shape in = load_model_file(o.model).input;
      if (in.h != in.w)
        CP_USER_ERROR(o.model << " takes " << in.h << "x" << in.w
                              << " inputs; image folders are fitted to squares (set its input "
                                 "line's height and width equal)");
      d.side = in.h;
    }
    if (o.verbosity() != Verbosity::quiet)
      for (const ImageFolderSplit* s : {&folder->train, &folder->test})
        std::fprintf(stderr, "convpool: %s %s\n", d.dir.c_str(),
                     describe_split(*folder, *s).c_str());
    d.folder = std::move(folder);
    o.cfg.data = fs::absolute(d.dir).lexically_normal().string();
  }
  o.cfg.classes = d.classes;
  o.cfg.input.side = d.side;
  set_effective(cmd, "--dataset", {o.dataset});
}

void normalize_from_data(CLI::App* cmd, TrainOptions& o, const Dataset& train) {
  if (!o.normalize_from_data || !o.resume.empty()) return;
  const size_t plane = size_t(train.side) * size_t(train.side);
  double sum[kCifarChannels] = {}, squares[kCifarChannels] = {};
  for (size_t i = 0; i < train.size(); ++i)
    for (int c = 0; c < kCifarChannels; ++c) {
      const uint8_t* p = train.image(i) + size_t(c) * plane;
      uint64_t s = 0, q = 0;  // exact per image
      for (size_t k = 0; k < plane; ++k) s += p[k], q += uint64_t(p[k]) * p[k];
      sum[c] += double(s), squares[c] += double(q);
    }
  const double n = double(train.size()) * double(plane);
  std::vector<std::string> mean, sd;
  for (int c = 0; c < kCifarChannels; ++c) {
    const double m = sum[c] / n / 255.0;
    const double var = std::max(0.0, squares[c] / n / (255.0 * 255.0) - m * m);
    o.cfg.input.mean[c] = float(m);
    // A constant channel would divide by 0: its std is taken as 1 (no scaling).
    o.cfg.input.std[c] = var > 1e-12 ? float(std::sqrt(var)) : 1.f;
    mean.push_back(float_str(o.cfg.input.mean[c]));
    sd.push_back(float_str(o.cfg.input.std[c]));
  }
  validate(o.cfg.input);
  set_effective(cmd, "--mean", mean);
  set_effective(cmd, "--std", sd);
  set_effective(cmd, "--normalize-from-data", {"false"});  // recorded as mean and std
  if (o.verbosity() != Verbosity::quiet)
    std::fprintf(stderr, "convpool: the training images' mean %s,%s,%s and std %s,%s,%s\n",
                 mean[0].c_str(), mean[1].c_str(), mean[2].c_str(), sd[0].c_str(), sd[1].c_str(),
                 sd[2].c_str());
}

}  // namespace convpool::cli
