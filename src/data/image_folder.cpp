// Image folders: the listing. Every image file under each class folder of train/ and val/
// (or test/), with what identifies its content (image_folder_stat.h); what is passed over is
// counted. Decoding and the cache are image_folder_cache.cpp.
#include "convpool/image_folder.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "convpool/error.h"
#include "data/image_folder_stat.h"

namespace convpool {

namespace fs = std::filesystem;

namespace {
bool hidden(const fs::path& p) {
  const std::string n = p.filename().string();
  return !n.empty() && n[0] == '.';
}

// Whether `s` is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): the
// manifest (JSON) and checkpoints hold paths and class names as text.
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80           ? 0
                  : (c >> 5) == 0x6  ? 1
                  : (c >> 4) == 0xE  ? 2
                  : (c >> 3) == 0x1E ? 3
                                     : -1;  // continuation bytes that follow this one
    if (n < 0 || s.size() - i <= size_t(n)) return false;
    uint32_t cp = n == 0 ? c : c & (0x3F >> n);
    for (int k = 1; k <= n; ++k) {
      const unsigned char t = static_cast<unsigned char>(s[i + size_t(k)]);
      if ((t >> 6) != 0x2) return false;
      cp = (cp << 6) | (t & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += size_t(n) + 1;
  }
  return true;
}

// A name as an error line can show it, odd bytes as \xNN.
// Control bytes and backslashes are always escaped (a name may hold a newline or a terminal
// escape); bytes from 0x80 are kept when the whole name is UTF-8.
std::string printable(const std::string& s) {
  const bool utf8 = valid_utf8(s);
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 0x20 && c < 0x7F && c != '\\') || (c >= 0x80 && utf8)) {
      out += char(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    }
  }
  return out;
}
// The non-hidden subfolders of `dir`, sorted; hidden entries are counted in `hidden`.
std::vector<std::string> sorted_subdirectories(const fs::path& dir, size_t& hidden_entries) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;  // a dangling link is not a folder, not a failed listing
    if (hidden(it->path()))
      ++hidden_entries;
    else if (it->is_directory(entry_ec))
      names.push_back(it->path().filename().string());
  }
  if (ec) CP_USER_ERROR(dir.string() << ": cannot list the folder (" << ec.message() << ")");
  std::sort(names.begin(), names.end());
  return names;
}

// The images under one class folder (recursively, not following directory links), labelled
// `label`, appended to split.files.
void list_class(const fs::path& root, const fs::path& class_dir, int label, ImageFolderSplit& split,
                size_t max_files, size_t& total) {
  std::vector<ImageFolderFile> found;
  std::error_code ec;
  fs::recursive_directory_iterator it(class_dir, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& e = *it;
    std::error_code ec2;
    if (hidden(e.path())) {
      if (e.is_directory(ec2)) it.disable_recursion_pending();
      ++split.hidden;
      continue;
    }
    if (e.is_symlink(ec2) && e.is_directory(ec2)) {
      ++split.symlinked_dirs;
      continue;
    }
    if (e.is_directory(ec2)) continue;
    if (!e.is_regular_file(ec2) || !has_image_extension(e.path().filename().string())) {
      ++split.not_images;
      continue;
    }
    if (++total > max_files)
      CP_USER_ERROR(root.string() << ": more than " << max_files << " image files");
    ImageFolderFile f;
    f.path = e.path().lexically_relative(root).generic_string();
    if (!valid_utf8(f.path)) {
      if (split.bad_names++ == 0) split.first_bad_name = printable(e.path().string());
      continue;
    }
    f.label = label;
    const FileStat st = stat_file(e.path().string());
    f.size = st.size;
    f.mtime_ns = st.mtime_ns;
    f.ctime_ns = st.ctime_ns;
    f.inode = st.inode;
    found.push_back(std::move(f));
  }
  if (ec) CP_USER_ERROR(class_dir.string() << ": cannot list the folder (" << ec.message() << ")");
  std::sort(found.begin(), found.end(),
            [](const ImageFolderFile& a, const ImageFolderFile& b) { return a.path < b.path; });
  split.per_class[size_t(label)] += found.size();
  split.files.insert(split.files.end(), std::make_move_iterator(found.begin()),
                     std::make_move_iterator(found.end()));
}

// Files directly in the split's folder: counted, since they belong to no class (hidden ones
// are counted with the hidden folders, by sorted_subdirectories).
size_t loose_files(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code entry_ec;
    if (!hidden(it->path()) && !it->is_directory(entry_ec)) ++n;
  }
  return n;
}

// Class names go into checkpoints and manifests as text.
void require_utf8_class(const std::string& root, const std::string& split,
                        const std::string& name) {
  if (!valid_utf8(name))
    CP_USER_ERROR(root << "/" << split << "/" << printable(name)
                       << ": a class folder whose name is not UTF-8 (rename it)");
}
}  // namespace

bool has_image_extension(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext == "png" || ext == "jpg" || ext == "jpeg";
}

bool is_image_folder(const std::string& dir) {
  std::error_code ec;
  return !dir.empty() && fs::is_directory(fs::path(dir) / "train", ec);
}

ImageFolder scan_image_folder(const std::string& root_name, size_t max_files) {
  const fs::path root(root_name);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) CP_USER_ERROR("--data " << root_name << ": not a folder");
  if (!fs::is_directory(root / "train", ec))
    CP_USER_ERROR(root_name << ": no train/ folder (an image folder holds train/<class>/*.png or "
                               "*.jpg, and val/<class>/ for evaluation)");
  const bool val = fs::is_directory(root / "val", ec), test = fs::is_directory(root / "test", ec);
  if (val && test)
    CP_USER_ERROR(root_name << ": holds both val/ and test/; convpool evaluates on one of them: "
                               "move the other away");
  if (!val && !test)
    CP_USER_ERROR(root_name << ": no val/ (or test/) folder beside train/: convpool evaluates on "
                               "it (put some images of each class there)");
  ImageFolder f;
  f.root = root_name;
  f.class_names = sorted_subdirectories(root / "train", f.train.hidden);
  for (const std::string& name : f.class_names) require_utf8_class(root_name, "train", name);
  if (f.class_names.empty())
    CP_USER_ERROR(root_name << "/train: no class folders (expected train/<class>/*.png or *.jpg)");
  if (f.class_names.size() > size_t(kMaxFolderClasses))
    CP_USER_ERROR(root_name << "/train: " << f.class_names.size() << " class folders; convpool's "
                            << "labels are 8-bit, so at most " << kMaxFolderClasses << " classes");
  size_t total = 0;
  f.train.name = "train";
  f.train.per_class.assign(f.class_names.size(), 0);
  f.train.loose = loose_files(root / "train");
  for (size_t c = 0; c < f.class_names.size(); ++c) {
    list_class(root, root / "train" / f.class_names[c], int(c), f.train, max_files, total);
    if (f.train.per_class[c] == 0)
      CP_USER_ERROR(root_name << "/train/" << f.class_names[c]
                              << ": no images (.png, .jpg or .jpeg) in this class folder");
  }
  f.test.name = val ? "val" : "test";
  f.test.per_class.assign(f.class_names.size(), 0);
  f.test.loose = loose_files(root / f.test.name);
  for (const std::string& name : sorted_subdirectories(root / f.test.name, f.test.hidden)) {
    require_utf8_class(root_name, f.test.name, name);
    const auto at = std::find(f.class_names.begin(), f.class_names.end(), name);
    if (at == f.class_names.end())
      CP_USER_ERROR(root_name << "/" << f.test.name << "/" << name
                              << ": a class that train/ does not have (add train/" << name
                              << "/ or remove it)");
    list_class(root, root / f.test.name / name, int(at - f.class_names.begin()), f.test, max_files,
               total);
  }
  std::stable_sort(
      f.test.files.begin(), f.test.files.end(),
      [](const ImageFolderFile& a, const ImageFolderFile& b) { return a.label < b.label; });
  if (f.test.files.empty())
    CP_USER_ERROR(root_name << "/" << f.test.name << ": no images in its class folders");
  return f;
}
std::string describe_split(const ImageFolder& folder, const ImageFolderSplit& split) {
  std::ostringstream s;
  s << split.name << "/: " << split.files.size() << " images in " << folder.class_names.size()
    << " classes (";
  for (size_t c = 0; c < folder.class_names.size(); ++c) {
    if (c == 8 && folder.class_names.size() > 10) {
      s << ", ... " << folder.class_names.size() - 8 << " more";
      break;
    }
    s << (c ? ", " : "") << folder.class_names[c] << " " << split.per_class[c];
  }
  s << ")";
  if (split.not_images)
    s << "; passed over " << split.not_images << " file(s) that are not .png/.jpg/.jpeg";
  if (split.hidden) s << "; passed over " << split.hidden << " hidden file(s) or folder(s)";
  if (split.bad_names)
    s << "; passed over " << split.bad_names
      << " file(s) whose names are not UTF-8 (the first: " << split.first_bad_name << ")";
  if (split.loose) s << "; passed over " << split.loose << " file(s) outside the class folders";
  if (split.symlinked_dirs)
    s << "; did not follow " << split.symlinked_dirs << " linked folder(s) inside class folders";
  return s.str();
}
}  // namespace convpool
