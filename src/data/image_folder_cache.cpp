// Image folders: decoding on all threads, and the records cache. The cache is a records file
// (the split's images, side x side, channel-planar, in listing order) named by a manifest that
// lists every file with what identifies its content (image_folder_stat.h): a file whose entry
// matches is taken from the records, any other is decoded. The records file's name carries a
// generation, so that a manifest always names records written whole before it.
#include <fcntl.h>
#include <omp.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "convpool/error.h"
#include "convpool/file_io.h"
#include "convpool/image_folder.h"
#include "data/image_folder_stat.h"

namespace convpool {

namespace fs = std::filesystem;

namespace {
constexpr int kCacheVersion = 2;
constexpr size_t kMaxImageFileBytes = size_t(256) << 20;  // as read_image_file's limit
std::string fit_name(ImageFit fit) { return fit == ImageFit::crop ? "crop" : "stretch"; }

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

bool writable_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return false;
  const std::string probe = (dir / (".probe-" + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  ::close(fd);
  ::unlink(probe.c_str());
  return true;
}

// Where a folder's cache lives, and the tag its files' names start with: none beside the
// folder (the cache moves with it), a hash of the folder's path elsewhere (--cache-dir or the
// user's cache may hold several folders' caches).
struct CacheLocation {
  fs::path dir;
  std::string tag;
};

CacheLocation cache_location(const ImageFolder& folder, const FolderLoadOptions& o) {
  std::error_code ec;
  char hash[24];
  std::snprintf(
      hash, sizeof hash, "%016llx-",
      static_cast<unsigned long long>(fnv1a(fs::weakly_canonical(folder.root, ec).string())));
  if (!o.cache_dir.empty()) {
    if (!writable_dir(o.cache_dir))
      CP_USER_ERROR("--cache-dir " << o.cache_dir << ": cannot write there");
    return {o.cache_dir, hash};
  }
  const fs::path beside = fs::path(folder.root) / ".convpool-cache";
  if (writable_dir(beside)) return {beside, ""};
  std::string base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    base = x;
  else if (const char* h = std::getenv("HOME"); h && *h)
    base = std::string(h) + "/.cache";
  else  // not a shared folder such as /tmp, where others could plant records
    CP_USER_ERROR("cannot write an image cache beside " << folder.root
                                                        << ", and neither $XDG_CACHE_HOME nor "
                                                           "$HOME is set: pass --cache-dir DIR");
  const fs::path there = fs::path(base) / "convpool" / "folders";
  if (!writable_dir(there))
    CP_USER_ERROR("cannot write an image cache beside "
                  << folder.root << " or in " << there.string() << ": pass --cache-dir DIR");
  return {there, hash};
}

// A records file mapped read-only, pages read on demand with `advice` (MADV_RANDOM for training,
// whose batches touch records in a shuffled order; MADV_SEQUENTIAL to copy it through); null
// when absent, unreadable or of another size than `bytes`.
std::shared_ptr<const uint8_t> map_records(const std::string& path, size_t bytes, int advice) {
  if (bytes == 0) return nullptr;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st {};
  void* p = MAP_FAILED;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && uint64_t(st.st_size) == bytes)
    p = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file
  if (p == MAP_FAILED) return nullptr;
  ::madvise(p, bytes, advice);
  return {static_cast<const uint8_t*>(p),
          [bytes](const uint8_t* q) { ::munmap(const_cast<uint8_t*>(q), bytes); }};
}

// An exclusive lock on one cache (a split at a side and fit) for as long as it is alive:
// processes loading the same folder at once (shards of a study, ranks of a data-parallel job)
// take turns, and the second finds the first's records instead of decoding them again or
// deleting records the other's manifest names.
class CacheLock {
 public:
  explicit CacheLock(const std::string& path) {
    // Read-only is enough for flock (a shared cache folder's lock may be another user's).
    fd_ = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0)
      CP_USER_ERROR(path << ": cannot open the image cache's lock (" << std::strerror(errno)
                         << ")");
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      // A file system without locks (some network mounts): go on unlocked, as before locks.
      if (errno == ENOLCK || errno == EOPNOTSUPP) break;
      const int err = errno;
      ::close(fd_);
      CP_USER_ERROR(path << ": cannot lock the image cache (" << std::strerror(err) << ")");
    }
  }
  ~CacheLock() { ::close(fd_); }  // closing releases the lock
  CacheLock(const CacheLock&) = delete;
  CacheLock& operator=(const CacheLock&) = delete;

 private:
  int fd_ = -1;
};

// Writes records one after another to PATH through a temporary in the same folder; commit()
// syncs it and renames it over PATH. Abandoned (an error on the way), the temporary goes.
class RecordsWriter {
 public:
  explicit RecordsWriter(std::string path)
      : path_(std::move(path)), tmp_(path_ + ".tmp-" + std::to_string(::getpid())) {
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (!file_) fail(errno);
  }
  ~RecordsWriter() {
    if (file_) std::fclose(file_);
    if (!committed_) std::remove(tmp_.c_str());
  }
  RecordsWriter(const RecordsWriter&) = delete;
  RecordsWriter& operator=(const RecordsWriter&) = delete;
  void write(const uint8_t* data, size_t bytes) {
    if (std::fwrite(data, 1, bytes, file_) != bytes) fail(errno);
  }
  void commit() {
    if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0) fail(errno);
    std::fclose(file_);
    file_ = nullptr;
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail(errno);
    committed_ = true;
  }

 private:
  [[noreturn]] void fail(int err) const {
    CP_USER_ERROR(path_ << ": cannot write the image cache (" << std::strerror(err) << ")");
  }
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

struct ManifestEntry {
  uint64_t size = 0, inode = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
  int64_t record = -1;  // -1: the file failed, `error` says why
  std::string error;
};

struct Manifest {
  std::string records_file;  // in the cache folder
  size_t records = 0;
  std::map<std::string, ManifestEntry> files;
};

// The manifest at `path` if it was written for these settings; otherwise none (a cache of
// another version, side or fit, or a damaged one, is simply rebuilt). Its records file must be
// one of this cache's (`stem`-...), in the cache folder.
Manifest read_manifest(const fs::path& path, int side, ImageFit fit, const std::string& stem,
                       size_t record_bytes) {
  Manifest m;
  if (!is_regular_file(path.string())) return m;
  try {
    const auto j =
        nlohmann::json::parse(read_regular_file(path.string(), size_t(1) << 31, "manifest"));
    if (j.at("version").get<int>() != kCacheVersion || j.at("side").get<int>() != side ||
        j.at("fit").get<std::string>() != fit_name(fit))
      return m;
    m.records_file = j.at("records_file").get<std::string>();
    if (m.records_file.rfind(stem + "-", 0) != 0 || m.records_file.find('/') != std::string::npos)
      return Manifest{};
    m.records = j.at("records").get<size_t>();
    // Each record is a listed file's; and records x bytes must not wrap round.
    if (m.records > j.at("files").size() || m.records > SIZE_MAX / record_bytes) return Manifest{};
    for (const auto& f : j.at("files")) {
      ManifestEntry e;
      e.size = f.at(1).get<uint64_t>();
      e.mtime_ns = f.at(2).get<int64_t>();
      e.ctime_ns = f.at(3).get<int64_t>();
      e.inode = f.at(4).get<uint64_t>();
      e.record = f.at(5).get<int64_t>();
      e.error = f.at(6).get<std::string>();
      if (e.record >= int64_t(m.records)) return Manifest{};
      m.files[f.at(0).get<std::string>()] = std::move(e);
    }
  } catch (const std::exception&) {
    return Manifest{};
  }
  return m;
}

struct Decoded {
  std::vector<uint8_t> planar;
  std::string error;  // not empty: the file failed
  // The failure may pass (the file could not be read: permissions, I/O, memory): reported, not
  // remembered, so the next run tries it again. A file that decodes wrong is remembered.
  bool transient = false;
  bool changed = false;
  bool converted = false, resized = false;
};

// Never throws: it runs inside an OpenMP loop, where an escaping exception terminates.
Decoded decode_one(const fs::path& root, const ImageFolderFile& f, int side,
                   ImageFit fit) noexcept {
  Decoded d;
  try {
    const std::string path = (root / f.path).string();
    std::string bytes;
    try {
      bytes = read_regular_file(path, kMaxImageFileBytes, "image file");
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      d.error = e.what();
      // Over the size limit stays so; anything else (permissions, I/O) may pass.
      d.transient = f.size <= kMaxImageFileBytes;
      return d;
    }
    if (!same_file(stat_file(path), f)) {
      d.changed = true;
      return d;
    }
    try {
      const RgbImage img = decode_image(bytes, path);
      d.converted = img.source_channels != 3;
      d.resized = img.width != side || img.height != side;
      d.planar = resample_to_square(img, side, fit);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      d.error = e.what();
    }
    std::replace(d.error.begin(), d.error.end(), '\n', ' ');
  } catch (...) {  // out of memory, even while saying so
    d = Decoded{};
    d.transient = true;
  }
  return d;
}
// The records files of cache `stem` that its manifest does not name, and its temporaries
// (stem-*.u8.tmp-PID, stem.json.tmp-PID): left by runs that died, removed under the cache's
// lock, which no live writer of this cache can be holding. Nothing else in the folder is
// touched.
void remove_orphans(const fs::path& cache, const std::string& stem, const std::string& keep) {
  const auto is_temporary = [](const std::string& name, const std::string& of) {
    if (name.rfind(of + ".tmp-", 0) != 0) return false;
    const std::string pid = name.substr(of.size() + 5);
    return !pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos;
  };
  std::error_code ec;
  std::vector<fs::path> doomed;
  for (fs::directory_iterator it(cache, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool records = name.rfind(stem + "-", 0) == 0;
    const std::string base = name.substr(0, name.rfind(".tmp-"));
    if ((records && name != keep && it->path().extension() == ".u8") ||
        (records && base.size() > 3 && base.ends_with(".u8") && is_temporary(name, base)) ||
        is_temporary(name, stem + ".json"))
      doomed.push_back(it->path());
  }
  for (const fs::path& p : doomed) fs::remove(p, ec);
}

Dataset subset_of(const Dataset& all, size_t limit) {
  // Evenly spaced over the listing, which is sorted by class: each class keeps its share.
  std::vector<size_t> indices(limit);
  for (size_t k = 0; k < limit; ++k) indices[k] = k * all.size() / limit;
  return select_images(all, indices);
}
}  // namespace

Dataset load_image_folder(const ImageFolder& folder, const std::string& split_name, size_t limit,
                          const FolderLoadOptions& o, FolderLoadReport* report) {
  if (split_name != "train" && split_name != "test") CP_FAIL("load_image_folder: bad split");
  const ImageFolderSplit& split = split_name == "train" ? folder.train : folder.test;
  if (o.side < 2 || o.side > kMaxInputSide)
    CP_USER_ERROR("the image side must be between 2 and " << kMaxInputSide << " (got " << o.side
                                                          << ")");
  FolderLoadReport local;
  FolderLoadReport& r = report ? *report : local;
  r = FolderLoadReport{};
  const fs::path root(folder.root);
  const size_t bytes = size_t(kCifarChannels) * size_t(o.side) * size_t(o.side);
  const CacheLocation where = cache_location(folder, o);
  const fs::path& cache = where.dir;
  const std::string stem =
      where.tag + split.name + "-" + std::to_string(o.side) + "-" + fit_name(o.fit);
  const fs::path manifest_path = cache / (stem + ".json");
  const CacheLock lock((cache / (stem + ".lock")).string());
  const Manifest old = read_manifest(manifest_path, o.side, o.fit, stem, bytes);
  remove_orphans(cache, stem, old.records_file);
  const std::shared_ptr<const uint8_t> old_records =
      map_records((cache / old.records_file).string(), old.records * bytes, MADV_SEQUENTIAL);
  const bool have_old = old.records == 0 || old_records != nullptr;

  // Which files the cache answers for (a record or a known failure), which need decoding.
  const size_t n = split.files.size();
  std::vector<const ManifestEntry*> cached(n, nullptr);
  size_t to_decode = 0;
  for (size_t i = 0; i < n; ++i) {
    const ImageFolderFile& f = split.files[i];
    const auto it = have_old ? old.files.find(f.path) : old.files.end();
    if (it != old.files.end() && it->second.size == f.size && it->second.mtime_ns == f.mtime_ns &&
        it->second.ctime_ns == f.ctime_ns && it->second.inode == f.inode && f.inode != 0)
      cached[i] = &it->second;
    else
      ++to_decode;
  }
  // The manifest is rewritten unless it holds exactly this listing.
  const bool relist = to_decode > 0 || old.files.size() != n;
  // Over the budget: the records stay in the file, mapped (a --limit subset is then copied
  // out of the mapping).
  const bool stream = o.memory_budget > 0 && n * bytes > o.memory_budget;
  // The records file is rewritten only from the first record that differs from the old file's
  // (a new image, or an old one gone): a file that fails to read run after run, or a changed
  // file that still fails, leaves the records as they are.
  std::string records_file = old.records_file;
  std::unique_ptr<RecordsWriter> writer;
  size_t same_prefix = 0;  // records emitted so far that are the old file's first ones
  const auto start_writing = [&] {
    char gen[48];
    std::snprintf(gen, sizeof gen, "%llx-%x",
                  static_cast<unsigned long long>(
                      std::chrono::system_clock::now().time_since_epoch().count()),
                  unsigned(::getpid()));
    records_file = stem + "-" + gen + ".u8";
    writer = std::make_unique<RecordsWriter>((cache / records_file).string());
    if (same_prefix > 0) writer->write(old_records.get(), same_prefix * bytes);
  };

  Dataset all;
  all.side = o.side;
  all.classes = int(folder.class_names.size());
  all.class_names = folder.class_names;
  all.name = "image folder " + folder.root;
  all.expected_records_per_file = 0;
  if (!stream) all.pixels.reserve(n * bytes);
  nlohmann::json files = nlohmann::json::array();
  size_t changed = 0, done = 0;
  std::string first_changed;
  auto last = std::chrono::steady_clock::now();
  // A chunk of the listing at a time (about 64 MiB of records): its new files decoded on all
  // threads, then every file of it in order to the records (file and, unless streamed,
  // memory) and the manifest.
  const size_t chunk = std::clamp<size_t>((size_t(64) << 20) / bytes, 16, 1024);
  for (size_t c0 = 0; c0 < n; c0 += chunk) {
    const size_t c1 = std::min(n, c0 + chunk);
    std::vector<size_t> todo;
    for (size_t i = c0; i < c1; ++i)
      if (!cached[i]) todo.push_back(i);
    std::vector<Decoded> decoded(todo.size());
#pragma omp parallel for schedule(dynamic, 4)
    for (size_t k = 0; k < todo.size(); ++k) {
      decoded[k] = decode_one(root, split.files[todo[k]], o.side, o.fit);
      if (o.progress && omp_get_thread_num() == 0) {
        const auto t = std::chrono::steady_clock::now();
        if (t - last > std::chrono::milliseconds(200)) {
          last = t;
          try {  // nothing may leave the parallel loop
            o.progress(done + k, to_decode);
          } catch (...) {
          }
        }
      }
    }
    done += todo.size();
    for (size_t i = c0, k = 0; i < c1; ++i) {
      const ImageFolderFile& f = split.files[i];
      std::string error;
      bool remember = true;
      const uint8_t* pixels = nullptr;
      if (cached[i]) {
        ++r.cached;
        error = cached[i]->error;
        if (cached[i]->record >= 0) pixels = old_records.get() + size_t(cached[i]->record) * bytes;
      } else {
        const Decoded& d = decoded[k++];
        if (d.changed) {
          if (changed++ == 0) first_changed = (root / f.path).string();
          continue;  // not in the manifest: decoded again next time
        }
        ++r.decoded;
        r.converted += d.converted;
        r.resized += d.resized;
        error = d.error;
        remember = !d.transient;
        if (error.empty()) pixels = d.planar.data();
      }
      const int64_t record = pixels ? int64_t(all.labels.size()) : -1;
      if (pixels) {
        if (!writer && cached[i] && size_t(cached[i]->record) == same_prefix)
          ++same_prefix;
        else if (!writer)
          start_writing();
        if (writer) writer->write(pixels, bytes);
        if (!stream) all.pixels.insert(all.pixels.end(), pixels, pixels + bytes);
        all.labels.push_back(uint8_t(f.label));
      } else {
        r.failures.push_back(error);
      }
      if (relist && remember)
        files.push_back({f.path, f.size, f.mtime_ns, f.ctime_ns, f.inode, record, error});
    }
  }
  if (o.progress && to_decode > 0) o.progress(to_decode, to_decode);
  // Old records past the last one kept (files gone from the listing): a shorter file.
  if (!writer && (same_prefix != old.records || records_file.empty())) start_writing();

  if (writer) writer->commit();
  if (relist || writer) {
    nlohmann::json j = {{"format", "convpool image-folder cache"},
                        {"version", kCacheVersion},
                        {"root", folder.root},
                        {"split", split.name},
                        {"side", o.side},
                        {"fit", fit_name(o.fit)},
                        {"classes", folder.class_names},
                        {"records_file", records_file},
                        {"records", all.labels.size()},
                        {"files", std::move(files)}};
    // Paths and class names are UTF-8 (scan_image_folder); the root as given may not be.
    write_file_atomic(manifest_path.string(),
                      j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    if (records_file != old.records_file)
      remove_orphans(cache, stem, records_file);  // the records the old manifest named
  }
  r.cache_path = (cache / records_file).string();
  if (changed)
    CP_USER_ERROR(changed << " file(s) changed while being decoded (the first: " << first_changed
                          << "); run again once the folder has settled (the others are cached)");
  if (all.labels.empty())
    CP_USER_ERROR(folder.root << "/" << split.name << ": none of its " << n
                              << " image files could be read (the first: "
                              << (r.failures.empty() ? "?" : r.failures[0]) << ")");
  if (stream) {
    all.mapped = map_records(r.cache_path, all.labels.size() * bytes, MADV_RANDOM);
    if (!all.mapped) CP_USER_ERROR(r.cache_path << ": cannot map the image cache");
    r.streamed = limit == 0 || limit >= all.size();
  }
  if (limit == 0 || limit >= all.size()) return all;
  return subset_of(all, limit);
}

}  // namespace convpool
