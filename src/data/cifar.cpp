#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <cstdlib>
#include <numeric>
#include <sstream>

#include "kernels/epoch_order.cuh"
#include "kernels/input_math.cuh"
#include "kernels/philox.cuh"
#include "convpool/data.h"
#include "convpool/error.h"
#include "convpool/file_io.h"
#include "records.h"

namespace convpool {

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

namespace {
const char* kDefaultClassNames[kCifarClasses] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}  // namespace

size_t parse_records(const RecordLayout& L, const std::string& bytes, const std::string& path,
                     Dataset& out, size_t max_records) {
  const size_t size = bytes.size();
  if (size == 0) CP_USER_ERROR(path << ": file is empty");
  if (size % L.record_bytes != 0)
    CP_USER_ERROR(path << ": size " << size << " bytes is not a multiple of the "
                       << L.record_bytes << "-byte record (truncated or not a " << L.name
                       << " file)");
  const size_t records = size / L.record_bytes;
  if (records > L.max_records)
    CP_USER_ERROR(path << ": " << records << " records is more than any " << L.name << " file");
  const size_t take = std::min(records, max_records);
  const auto* raw = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t label_bytes = L.record_bytes - kCifarImageBytes;
  for (size_t r = 0; r < take; ++r) {
    const uint8_t* rec = raw + r * L.record_bytes;
    if (rec[label_bytes - 1] >= L.classes)
      CP_USER_ERROR(path << ": record " << r << " has label " << int(rec[label_bytes - 1])
                         << ", outside 0.." << L.classes - 1 << " (not a " << L.name
                         << " file?)");
    if (L.coarse_classes && rec[0] >= L.coarse_classes)
      CP_USER_ERROR(path << ": record " << r << " has coarse label " << int(rec[0])
                         << ", outside 0.." << L.coarse_classes - 1 << " (not a " << L.name
                         << " file?)");
  }
  const size_t base = out.labels.size();
  out.labels.resize(base + take);
  if (L.coarse_classes) out.coarse_labels.resize(base + take);
  out.pixels.resize((base + take) * kCifarImageBytes);
  for (size_t r = 0; r < take; ++r) {
    const uint8_t* rec = raw + r * L.record_bytes;
    out.labels[base + r] = rec[label_bytes - 1];  // the last label byte: the (fine) class
    if (L.coarse_classes) out.coarse_labels[base + r] = rec[0];
    std::copy(rec + label_bytes, rec + L.record_bytes,
              out.pixels.begin() + (base + r) * kCifarImageBytes);
  }
  out.classes = L.classes;
  return records;
}

size_t parse_cifar_records(const std::string& bytes, const std::string& path, Dataset& out,
                           size_t max_records) {
  return parse_records(kCifar10Layout, bytes, path, out, max_records);
}

size_t read_cifar_file(const std::string& path, Dataset& out, size_t max_records) {
  // A batch file is 30,730,000 bytes; 100,000 records is the most any CIFAR file holds.
  return parse_cifar_records(read_regular_file(path, size_t(100001) * kCifarRecordBytes, "CIFAR-10 batch file"), path, out,
                      max_records);
}

Dataset load_cifar10(const std::string& dir, const std::string& split, size_t limit) {
  if (!is_dir(dir)) CP_USER_ERROR("CIFAR-10 directory '" << dir << "' does not exist");
  std::vector<std::string> files;
  if (split == "train") {
    for (int i = 1; i <= 5; ++i) files.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
  } else if (split == "test") {
    files.push_back(dir + "/test_batch.bin");
  } else {
    CP_FAIL("unknown split " << split);
  }
  Dataset ds;
  for (auto& f : files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0)  // present but not a regular file: the reader says so
      CP_USER_ERROR(f << ": missing (expected the CIFAR-10 binary layout: data_batch_1..5.bin "
                         "and test_batch.bin)");
    const size_t want = limit ? limit - ds.size() : SIZE_MAX;
    if (want == 0) break;
    ds.records_per_file.push_back(read_cifar_file(f, ds, want));
  }
  // A copy cut short at a record boundary parses cleanly: only the counts tell.
  const auto& counts = ds.records_per_file;
  if (std::adjacent_find(counts.begin(), counts.end(), std::not_equal_to<>()) != counts.end()) {
    std::string listing;
    for (size_t i = 0; i < counts.size(); ++i)
      listing += (i ? ", " : "") + files[i].substr(files[i].rfind('/') + 1) + ": " +
                 std::to_string(counts[i]);
    CP_USER_ERROR(dir << ": the batch files hold different numbers of records (" << listing
                      << "); CIFAR-10's hold " << kCifarRecordsPerFile
                      << " each: a truncated or mixed copy?");
  }
  ds.class_names = read_class_names(dir + "/batches.meta.txt", kCifarClasses,
                                    cifar10_class_names());
  return ds;
}

std::vector<std::string> cifar10_class_names() {
  return {kDefaultClassNames, kDefaultClassNames + kCifarClasses};
}

std::vector<std::string> read_class_names(const std::string& path, int classes,
                                          const std::vector<std::string>& fallback) {
  if (!std::filesystem::exists(path)) return fallback;
  std::istringstream text(read_regular_file(path, kMaxSmallTextBytes, "class-name file"));
  std::vector<std::string> names;
  int number = 0;
  for (std::string line; std::getline(text, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    for (const char ch : line)
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(ch));
        CP_USER_ERROR(path << ":" << number << ": a class name holds the control byte " << hex
                           << " (not a class-name file; delete it to use the standard names)");
      }
    if (!line.empty()) names.push_back(line);
  }
  // Another count would name the classes wrongly (9 names leave a class unnamed; 11 are not
  // this data set's list).
  if (int(names.size()) != classes)
    CP_USER_ERROR(path << " holds " << names.size() << " class names, one per line; the data set "
                       << "has " << classes << " (fix it, or delete it to use the standard names)");
  return names;
}

std::string data_note(const Dataset& ds, const std::string& split) {
  if (ds.records_per_file.empty() || ds.records_per_file.front() == ds.expected_records_per_file)
    return "";
  return "note: the " + split + " files hold " + std::to_string(ds.records_per_file.front()) +
         " records each, not " + ds.name + "'s " + std::to_string(ds.expected_records_per_file) +
         " (a subset or another copy)";
}

std::string resolve_dir(const DataDirSpec& spec, const std::string& flag_value) {
  auto has_data = [&](const std::string& d) {
    return is_regular_file(d + "/" + spec.train_file) && is_regular_file(d + "/" + spec.test_file);
  };
  const std::string folder = spec.folder;
  if (!flag_value.empty()) {
    if (has_data(flag_value)) return flag_value;
    if (has_data(flag_value + "/" + folder)) return flag_value + "/" + folder;
    // Why not, where it is not simply that the files are missing.
    std::error_code ec;
    const auto st = std::filesystem::status(flag_value, ec);
    if (!std::filesystem::exists(st))
      CP_USER_ERROR("--data " << flag_value << ": no such directory");
    if (!std::filesystem::is_directory(st))
      CP_USER_ERROR("--data " << flag_value << " is not a directory");
    if (::access(flag_value.c_str(), R_OK | X_OK) != 0)
      CP_USER_ERROR("--data " << flag_value << ": cannot read the directory ("
                              << std::strerror(errno) << ")");
    for (const std::string& d : {flag_value, flag_value + "/" + folder})
      for (const char* name : {spec.train_file, spec.test_file})
        if (const std::string f = d + "/" + name;
            !is_regular_file(f) &&
            (std::filesystem::exists(f, ec) || std::filesystem::is_symlink(f, ec)))
          read_regular_file(f, 0, (std::string(spec.name) + " batch file").c_str());  // says why
    for (const std::string& d : {flag_value, flag_value + "/" + folder}) {
      const bool train = is_regular_file(d + "/" + spec.train_file),
                 test = is_regular_file(d + "/" + spec.test_file);
      if (train != test)
        CP_USER_ERROR("--data " << flag_value << ": " << d << "/"
                                << (train ? spec.test_file : spec.train_file) << " is missing ("
                                << (train ? spec.train_file : spec.test_file)
                                << " is there): an incomplete copy of " << spec.name);
    }
    CP_USER_ERROR("--data " << flag_value << ": no " << spec.name
                            << " binary files there (expected " << spec.expected << ", or a "
                            << folder << "/ folder)");
  }
  std::vector<std::string> looked;
  if (const char* env = std::getenv(spec.env); env && *env) {
    std::string d = env;
    if (has_data(d)) return d;
    if (has_data(d + "/" + folder)) return d + "/" + folder;
    looked.push_back(std::string("$") + spec.env + "=" + d);
  } else {
    looked.push_back(std::string("$") + spec.env + " (unset)");
  }
  if (has_data("data/" + folder)) return "data/" + folder;
  looked.push_back("data/" + folder);
  std::string where;
  for (auto& l : looked) where += (where.empty() ? "" : ", ") + l;
  CP_USER_ERROR(spec.name << " not found (looked in " << where << "); run " << spec.get_script
                          << " to download it, or pass --data DIR / set " << spec.env);
}

std::string resolve_cifar_dir(const std::string& flag_value) {
  return resolve_dir({"CIFAR-10", "CIFAR10_DIR", "cifar-10-batches-bin", "data_batch_1.bin",
                      "test_batch.bin", "data_batch_1.bin .. test_batch.bin", "data/get-cifar10"},
                     flag_value);
}

Dataset select_images(const Dataset& all, const std::vector<size_t>& indices) {
  Dataset d;
  d.classes = all.classes;
  d.class_names = all.class_names;
  d.records_per_file = all.records_per_file;
  d.expected_records_per_file = all.expected_records_per_file;
  d.name = all.name;
  d.side = all.side;
  const size_t bytes = all.image_bytes();
  d.pixels.resize(indices.size() * bytes);
  d.labels.reserve(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) {
    std::copy_n(all.image(indices[k]), bytes, d.pixels.data() + k * bytes);
    d.labels.push_back(all.labels[indices[k]]);
    if (!all.coarse_labels.empty()) d.coarse_labels.push_back(all.coarse_labels[indices[k]]);
  }
  return d;
}

Dataset synthetic_cifar(size_t images, uint64_t seed, int side, int classes) {
  Dataset ds;
  ds.side = side;
  ds.classes = classes;
  ds.pixels.resize(images * ds.image_bytes());
  ds.labels.resize(images);
  for (size_t i = 0; i < ds.pixels.size(); i += 16) {
    const Philox4 r =
        philox4x32_10(Philox4{{kRngInit, 0xDA7Au, uint32_t(i >> 36), uint32_t(i >> 4)}}, seed);
    for (size_t k = 0; k < 16 && i + k < ds.pixels.size(); ++k)
      ds.pixels[i + k] = uint8_t(r.v[k / 4] >> (8 * (k % 4)));
  }
  for (size_t i = 0; i < images; ++i)
    ds.labels[i] = uint8_t(ds.pixels[i * ds.image_bytes()] % classes);
  for (int c = 0; c < classes; ++c) ds.class_names.push_back("class" + std::to_string(c));
  return ds;
}

std::vector<uint32_t> epoch_order(size_t n, uint64_t seed, uint64_t epoch) {
  // Sorting by counter-based keys rather than a serial shuffle: the GPU makes the same order
  // with a radix sort (src/data/epoch_order_thrust.h), and tests compare the two.
  std::vector<std::pair<uint64_t, uint32_t>> keyed(n);
  const EpochOrderKey key{seed, epoch};
  for (size_t i = 0; i < n; ++i) keyed[i] = {key(i), uint32_t(i)};
  std::sort(keyed.begin(), keyed.end());  // ties (p < 2^-30 per epoch) fall back to the index
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = keyed[i].second;
  return order;
}

void validate(const InputTransform& t) {
  // A side of 1 has no pixel to mirror into (reflect padding, the translate views).
  if (t.side < 2 || t.side > kMaxInputSide)
    CP_USER_ERROR("the image side must be between 2 and " << kMaxInputSide << " (got " << t.side
                                                          << ")");
  if (t.crop_pad < 0 || t.crop_pad > t.side / 2)
    CP_USER_ERROR("--crop-pad must be between 0 and " << t.side / 2 << " for " << t.side << "x"
                                                      << t.side << " images (got " << t.crop_pad
                                                      << ")");
  if (t.cutout < 0 || t.cutout > t.side)
    CP_USER_ERROR("--cutout must be between 0 and " << t.side << " for " << t.side << "x" << t.side
                                                    << " images (got " << t.cutout << ")");
  for (int c = 0; c < kCifarChannels; ++c) {
    if (!(t.std[c] > 0.f) || !std::isfinite(t.std[c]))
      CP_USER_ERROR("--std values must be positive (got " << t.std[c] << ")");
    if (!std::isfinite(t.mean[c])) CP_USER_ERROR("--mean values must be finite");
  }
}

std::string describe(const InputTransform& t) {
  std::ostringstream s;
  if (t.crop_pad) s << "crop_pad=" << t.crop_pad << (t.reflect ? " reflect " : " ");
  if (t.flip) s << "flip ";
  if (t.cutout) s << "cutout=" << t.cutout << " ";
  InputTransform plain = t;
  plain.crop_pad = 0;
  plain.reflect = false;
  plain.flip = false;
  plain.cutout = 0;
  if (plain != InputTransform{})  // normalised
    s << "mean=" << t.mean[0] << "," << t.mean[1] << "," << t.mean[2] << " std=" << t.std[0] << ","
      << t.std[1] << "," << t.std[2];
  std::string out = s.str();
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "none" : out;
}

namespace {
// Converts images order[0..count) with the draw `draw_of(i)` of image i of the batch.
template <class DrawOf>
void convert_images(const Dataset& ds, const uint32_t* order, int count, float* out,
                    const InputTransform& t, DrawOf draw_of) {
  if (ds.side != t.side)
    CP_USER_ERROR(ds.name << "'s images are " << ds.side << "x" << ds.side
                          << " but the input pipeline is set for " << t.side << "x" << t.side);
  const int side = t.side;
  const size_t bytes = ds.image_bytes();
  float inv_std[kCifarChannels];
  for (int c = 0; c < kCifarChannels; ++c) inv_std[c] = 1.f / t.std[c];
#pragma omp parallel for schedule(static) if (count >= 64)
  for (int i = 0; i < count; ++i) {
    const uint8_t* src = ds.image(order[i]);
    float* dst = out + size_t(i) * bytes;
    const AugmentDraw d = draw_of(i);
    for (int c = 0; c < kCifarChannels; ++c)
      for (int y = 0; y < side; ++y)
        for (int x = 0; x < side; ++x)
          *dst++ = input_pixel(src, side, c, y, x, d, t.mean[c], inv_std[c]);
  }
}
}  // namespace

void images_to_float(const Dataset& ds, const uint32_t* order, int count, float* out,
                     const InputTransform& t, bool training, uint64_t seed, uint64_t step,
                     uint32_t first_index) {
  const bool augment = training && t.augments();
  convert_images(ds, order, count, out, t, [&](int i) {
    return augment ? augment_draw(seed, step, first_index + uint32_t(i), t.crop_pad, t.flip,
                                  t.reflect, t.cutout, t.side)
                   : AugmentDraw{};
  });
}

void view_to_float(const Dataset& ds, const uint32_t* order, int count, float* out,
                   const InputTransform& t, const TtaView& view) {
  const AugmentDraw d = view_draw(view.dy, view.dx, view.flip);
  convert_images(ds, order, count, out, t, [&](int) { return d; });
}

std::vector<TtaView> tta_views(const std::string& spec) {
  if (spec == "none") return {TtaView{}};
  if (spec == "flip") return {TtaView{0, 0, false, 0.5f}, TtaView{0, 0, true, 0.5f}};
  if (spec == "flip,translate" || spec == "translate,flip")
    return {TtaView{0, 0, false, 0.25f},    TtaView{0, 0, true, 0.25f},
            TtaView{-1, -1, false, 0.125f}, TtaView{-1, -1, true, 0.125f},
            TtaView{1, 1, false, 0.125f},   TtaView{1, 1, true, 0.125f}};
  CP_USER_ERROR("--tta must be none, flip or flip,translate (got '" << spec << "')");
}

}  // namespace convpool
