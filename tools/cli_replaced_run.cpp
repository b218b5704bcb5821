// --overwrite without losing the old run before the new one has something to show: the old
// files wait in DIR/.convpool-replaced until the new run's first checkpoint.
#include <filesystem>

#include "cli_run.h"
#include "convpool/error.h"

namespace convpool::cli {

namespace fs = std::filesystem;

namespace {
constexpr const char* kAside = ".convpool-replaced";

std::vector<fs::path> matching(const fs::path& dir, const std::function<bool(const std::string&)>& is_ours) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_ours(it->path().filename().string())) found.push_back(it->path());
  return found;
}

void move_all(const std::vector<fs::path>& from, const fs::path& to, const char* why) {
  for (const fs::path& p : from) {
    std::error_code ec;
    fs::rename(p, to / p.filename(), ec);
    if (ec) CP_USER_ERROR(why << ": cannot move " << p.string() << " (" << ec.message() << ")");
  }
}

void remove_all_of(const std::vector<fs::path>& paths, const char* why) {
  for (const fs::path& p : paths) {
    std::error_code ec;
    fs::remove_all(p, ec);
    if (ec) CP_USER_ERROR(why << ": cannot remove " << p.string() << " (" << ec.message() << ")");
  }
}
}  // namespace

ReplacedRun::ReplacedRun(std::string dir, std::function<bool(const std::string&)> is_ours)
    : dir_(std::move(dir)), is_ours_(std::move(is_ours)) {
  const fs::path aside = fs::path(dir_) / kAside;
  std::error_code ec;
  fs::create_directory(aside, ec);
  if (ec)
    CP_USER_ERROR("--overwrite: cannot create " << aside.string() << " (" << ec.message() << ")");
  move_all(matching(dir_, is_ours_), aside, "--overwrite");
}

void ReplacedRun::discard() {
  if (done_) return;
  done_ = true;
  std::error_code ec;
  fs::remove_all(fs::path(dir_) / kAside, ec);  // a leftover is removed by the next run
}

void ReplacedRun::restore() {
  if (done_) return;
  done_ = true;
  const fs::path aside = fs::path(dir_) / kAside;
  remove_all_of(matching(dir_, is_ours_), "restoring the replaced run");
  move_all(matching(aside, [](const std::string&) { return true; }), dir_,
           "restoring the replaced run");
  std::error_code ec;
  fs::remove(aside, ec);
}

std::string finish_interrupted_replace(const std::string& dir,
                                       const std::function<bool(const std::string&)>& is_ours) {
  const fs::path aside = fs::path(dir) / kAside;
  std::error_code ec;
  if (!fs::is_directory(aside, ec)) return "";
  if (holds_checkpoint(dir)) {  // the new run saved; only the deletion was cut short
    fs::remove_all(aside, ec);
    return "";
  }
  remove_all_of(matching(dir, is_ours), "restoring the replaced run");
  move_all(matching(aside, [](const std::string&) { return true; }), dir,
           "restoring the replaced run");
  fs::remove(aside, ec);
  return "note: " + dir +
         ": an earlier --overwrite ended before its run saved a checkpoint; the run it replaced "
         "is restored";
}

}  // namespace convpool::cli
