#include "convpool/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "convpool/error.h"

namespace convpool {

namespace {

std::string read_all(int fd) {
  std::string text;
  char buf[512];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) break;
    text.append(buf, size_t(n));
    at += n;
    if (text.size() > 4096) break;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  // One line: a holder's description never splits an error message.
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

std::string this_process() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  return "pid " + std::to_string(::getpid()) + " on " + host;
}

}  // namespace

RunDirectoryLock::RunDirectoryLock(const std::string& dir, const std::string& what) {
  acquire(dir, what, true);
}

std::unique_ptr<RunDirectoryLock> RunDirectoryLock::try_lock(const std::string& dir,
                                                             const std::string& what) {
  std::unique_ptr<RunDirectoryLock> lock(new RunDirectoryLock());
  if (!lock->acquire(dir, what, false)) return nullptr;
  return lock;
}

bool RunDirectoryLock::acquire(const std::string& dir, const std::string& what,
                               bool busy_is_error) {
  const std::string path = dir + "/" + kFileName;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    CP_USER_ERROR(what << " " << dir << ": cannot create its lock file " << path << " ("
                       << std::strerror(errno) << ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = read_all(fd_);
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK && !busy_is_error) return false;
    if (err == EWOULDBLOCK)
      CP_USER_ERROR(what << " " << dir << " is in use by "
                         << (holder.empty() ? std::string("another process") : holder)
                         << " (" << path
                         << "): two runs cannot write one directory; wait for it to finish or "
                            "choose another directory");
    CP_USER_ERROR(what << " " << dir << ": cannot lock " << path << " (" << std::strerror(err)
                       << ")");
  }
  previous_ = read_all(fd_);
  const std::string me = this_process() + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != ssize_t(me.size()))
    previous_.clear();  // the lock is held; its description is only a courtesy
  return true;
}

RunDirectoryLock::~RunDirectoryLock() {
  if (fd_ < 0) return;
  // Emptied on a clean exit, so only a holder that died leaves its name behind.
  (void)::ftruncate(fd_, 0);
  ::close(fd_);
}

}  // namespace convpool
