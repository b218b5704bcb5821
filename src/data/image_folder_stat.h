// What the image-folder listing records of each file and the cache compares: shared by
// image_folder.cpp (the listing) and image_folder_cache.cpp (the cache).
#pragma once
#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "convpool/image_folder.h"

namespace convpool {

// What identifies a file's content without reading it: its size and modification time, and
// its status-change time and inode, which tools that restore a modification time (touch -r,
// cp -p, rsync -t, tar) cannot set, and chmod changes.
struct FileStat {
  bool ok = false;
  uint64_t size = 0, inode = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
};

inline FileStat stat_file(const std::string& path) {
  struct stat st {};
  FileStat s;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return s;
  s.ok = true;
  s.size = uint64_t(st.st_size);
  // Not the device: anonymous device numbers (NFS, overlayfs, FUSE) change across remounts, and
  // the path already places the file.
  s.inode = uint64_t(st.st_ino);
  s.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + int64_t(st.st_mtim.tv_nsec);
  s.ctime_ns = int64_t(st.st_ctim.tv_sec) * 1000000000 + int64_t(st.st_ctim.tv_nsec);
  return s;
}

inline bool same_file(const FileStat& s, const ImageFolderFile& f) {
  return s.ok && s.size == f.size && s.mtime_ns == f.mtime_ns && s.ctime_ns == f.ctime_ns &&
         s.inode == f.inode;
}

}  // namespace convpool
