// CIFAR-100 (Krizhevsky 2009): the binary layout's train.bin and test.bin, and the choice
// between the two data sets. No copy of CIFAR-100 is at hand where convpool is developed: the
// reader is tested on synthetic files of its layout (tests/test_cifar100.cpp).
#include <sys/stat.h>

#include <sstream>

#include "convpool/data.h"
#include "convpool/error.h"
#include "convpool/file_io.h"
#include "records.h"

namespace convpool {

const char* dataset_name(DatasetKind kind) {
  return kind == DatasetKind::cifar100 ? "cifar100"
         : kind == DatasetKind::folder ? "folder"
                                       : "cifar10";
}

std::vector<std::string> default_class_names(DatasetKind kind) {
  // CIFAR-100's fine labels in label order, as its fine_label_names.txt lists them.
  static const char* const kFine[kCifar100Classes] = {
      "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
      "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
      "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
      "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
      "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
      "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
      "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
      "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
      "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
      "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
      "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
      "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"};
  if (kind == DatasetKind::cifar100) return {kFine, kFine + kCifar100Classes};
  if (kind == DatasetKind::folder) return {};  // the folder's, recorded in checkpoints
  return cifar10_class_names();
}

DatasetKind parse_dataset_kind(const std::string& name) {
  if (name == "cifar10") return DatasetKind::cifar10;
  if (name == "cifar100") return DatasetKind::cifar100;
  if (name == "folder") return DatasetKind::folder;
  CP_USER_ERROR("--dataset must be cifar10, cifar100 or folder (got '" << name << "')");
}

size_t parse_cifar100_records(const std::string& bytes, const std::string& origin, Dataset& out,
                              size_t max_records) {
  return parse_records(kCifar100Layout, bytes, origin, out, max_records);
}

Dataset load_cifar100(const std::string& dir, const std::string& split, size_t limit) {
  if (!is_dir(dir)) CP_USER_ERROR("CIFAR-100 directory '" << dir << "' does not exist");
  if (split != "train" && split != "test") CP_FAIL("unknown split " << split);
  const std::string path = dir + "/" + split + ".bin";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    CP_USER_ERROR(path << ": missing (expected CIFAR-100's binary layout: train.bin and test.bin)");
  Dataset ds;
  ds.name = "CIFAR-100";
  ds.expected_records_per_file = split == "train" ? 50000 : 10000;
  ds.records_per_file.push_back(parse_cifar100_records(
      read_regular_file(path, size_t(100001) * kCifar100RecordBytes, "CIFAR-100 file"), path, ds,
      limit ? limit : SIZE_MAX));
  ds.class_names = read_class_names(dir + "/fine_label_names.txt", kCifar100Classes,
                                    default_class_names(DatasetKind::cifar100));
  return ds;
}

Dataset load_dataset(DatasetKind kind, const std::string& dir, const std::string& split,
                     size_t limit) {
  if (kind == DatasetKind::folder) CP_FAIL("load_dataset: image folders load by load_image_folder");
  return kind == DatasetKind::cifar100 ? load_cifar100(dir, split, limit)
                                       : load_cifar10(dir, split, limit);
}

std::string resolve_data_dir(DatasetKind kind, const std::string& flag_value) {
  if (kind == DatasetKind::cifar10) return resolve_cifar_dir(flag_value);
  if (kind == DatasetKind::folder) {
    if (flag_value.empty())
      CP_USER_ERROR("an image-folder data set needs --data DIR (the folder holding train/)");
    return flag_value;
  }
  return resolve_dir({"CIFAR-100", "CIFAR100_DIR", "cifar-100-binary", "train.bin", "test.bin",
                      "train.bin and test.bin", "data/get-cifar100"},
                     flag_value);
}

}  // namespace convpool
