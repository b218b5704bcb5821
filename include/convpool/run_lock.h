// One writer per run directory. A training run, a resume, a study or a merge holds an advisory
// lock (flock) on DIR/.convpool.lock for as long as it writes there; a second writer is
// refused with one line naming the holder's PID and host. The kernel drops the lock when its
// holder dies, so a killed run never blocks the next one: the next writer notes that it takes
// over from a process that is gone.
#pragma once
#include <memory>
#include <string>

namespace convpool {

class RunDirectoryLock {
 public:
  // Locks `dir` (which must exist); `what` names the directory in errors ("--out").
  RunDirectoryLock(const std::string& dir, const std::string& what);
  ~RunDirectoryLock();
  // Locks `dir` unless another process holds it: null then, instead of an error (a genetic
  // search's processes share out the individuals this way).
  static std::unique_ptr<RunDirectoryLock> try_lock(const std::string& dir,
                                                    const std::string& what);
  RunDirectoryLock(const RunDirectoryLock&) = delete;
  RunDirectoryLock& operator=(const RunDirectoryLock&) = delete;

  // The holder a previous writer left behind (empty if none): set when this lock took over
  // from a process that died holding it.
  const std::string& taken_over_from() const { return previous_; }

  static constexpr const char* kFileName = ".convpool.lock";

 private:
  RunDirectoryLock() = default;
  // Takes the lock; false when another process holds it and `busy_is_error` is false.
  bool acquire(const std::string& dir, const std::string& what, bool busy_is_error);
  int fd_ = -1;
  std::string previous_;
};

}  // namespace convpool
