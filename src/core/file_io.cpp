#include "convpool/file_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "convpool/error.h"

namespace convpool {

namespace {
// Closes the descriptor on every path out of the reader.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

// This machine's name as a temporary file carries it ('/' replaced).
std::string this_host() {
  char host[64] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  for (char& ch : host)
    if (ch == '/') ch = '_';
  return host;
}

}  // namespace

bool is_regular_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_regular_file(const std::string& path, size_t max_bytes, const char* what) {
  // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting forever;
  // the fstat below then refuses it.
  FileDescriptor f{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)};
  if (f.fd < 0)
    CP_USER_ERROR("cannot open " << what << " " << path << ": " << std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0)
    CP_USER_ERROR("cannot read " << what << " " << path << ": " << std::strerror(errno));
  if (S_ISDIR(st.st_mode)) CP_USER_ERROR(path << " is a directory, not a " << what);
  if (!S_ISREG(st.st_mode))
    CP_USER_ERROR(path << " is not a regular file (a FIFO, device or socket cannot be a " << what
                       << ")");
  if (uint64_t(st.st_size) > max_bytes)
    CP_USER_ERROR(path << ": " << what << " is too large (" << st.st_size << " bytes; at most "
                       << max_bytes << ")");
  std::string bytes(size_t(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t r = ::read(f.fd, bytes.data() + done, bytes.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) CP_USER_ERROR("cannot read " << what << " " << path << ": " << std::strerror(errno));
    if (r == 0) break;  // shrank while we read: take what is there
    done += size_t(r);
  }
  bytes.resize(done);
  return bytes;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Host and pid: processes on several machines may write one file of a shared directory.
  const std::string tmp = path + ".tmp-" + this_host() + "-" + std::to_string(::getpid());
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CP_USER_ERROR("cannot save " << path << ": " << what << ": " << std::strerror(err)
                                 << " (the previous file, if any, is intact)");
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create " + tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;
      ::close(fd);
      fail("write failed");
    }
    done += size_t(w);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("fsync failed");
  }
  if (::close(fd) != 0) fail("close failed");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename failed");
  // Make the rename itself durable.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

int remove_stale_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto at = name.rfind(".tmp-");
    if (at == std::string::npos) continue;
    // NAME.tmp-HOST-PID (NAME.tmp-PID from older versions): only this host's can be checked.
    std::string pid_text = name.substr(at + 5);
    if (const auto dash = pid_text.rfind('-'); dash != std::string::npos) {
      if (pid_text.substr(0, dash) != this_host()) continue;
      pid_text = pid_text.substr(dash + 1);
    }
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos ||
        pid_text.size() > 9)
      continue;
    const pid_t pid = pid_t(std::stol(pid_text));
    // Our own temporaries, and those of a writer still running, are left alone.
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (fs::remove(it->path(), ec)) ++removed;
  }
  return removed;
}

}  // namespace convpool
