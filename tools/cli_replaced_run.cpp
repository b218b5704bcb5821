// --overwrite without losing the old run before the new one has something to show: the old
// files wait in DIR/.convpool-replaced until the new run's first checkpoint (or, for a study
// or merge, until it has finished), with a manifest of what moved and which kind of directory
// it was, so that any later command restores exactly that.
#include <cstdio>
#include <fstream>
#include <filesystem>
#include <sstream>

#include "cli_run.h"
#include "convpool/error.h"
#include "convpool/file_io.h"

namespace convpool::cli {

namespace fs = std::filesystem;

namespace {
constexpr const char* kAside = ".convpool-replaced";
// The decision to delete is this rename: a folder of this name is never restored.
constexpr const char* kDiscarding = ".convpool-replaced.discard";
constexpr const char* kManifest = "MANIFEST";  // "kind run|study", then one moved name a line

bool is_study_file(const std::string& name) {
  for (const char* f : {"study.json", "results.csv", "summary.md", "study.png", "runs",
                        "results.partial.csv", "summary.partial.md"})
    if (name == f) return true;
  return is_run_file(name);
}

using Predicate = bool (*)(const std::string&);
Predicate predicate_of(ReplacedKind kind) {
  return kind == ReplacedKind::study ? is_study_file : is_run_file;
}

std::vector<std::string> names_in(const fs::path& dir, Predicate is_ours) {
  std::vector<std::string> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_ours(it->path().filename().string())) found.push_back(it->path().filename().string());
  return found;
}

void remove_or_fail(const fs::path& p, const char* why) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) CP_USER_ERROR(why << ": cannot remove " << p.string() << " (" << ec.message() << ")");
}

// Puts back every name of the manifest that reached the folder (a name not there was never
// moved: the old file is still in place), after removing the new command's files of that
// kind; then removes the folder.
void restore_from(const fs::path& dir) {
  const fs::path aside = dir / kAside;
  std::istringstream manifest(
      read_regular_file((aside / kManifest).string(), size_t(1) << 20, "replaced-run manifest"));
  std::string word, kind;
  manifest >> word >> kind;
  if (word != "kind" || (kind != "run" && kind != "study"))
    CP_USER_ERROR((aside / kManifest).string() << " is not a convpool manifest; move "
                                               << aside.string() << " away by hand");
  std::vector<std::string> moved;
  for (std::string line; std::getline(manifest, line);)
    if (!line.empty()) moved.push_back(line);
  const char* why = "restoring the replaced run";
  for (const std::string& name : names_in(dir, predicate_of(kind == "study" ? ReplacedKind::study
                                                                              : ReplacedKind::run))) {
    bool old_still_here = false;  // listed, but not yet moved when the process died
    for (const std::string& m : moved)
      old_still_here = old_still_here || (m == name && !fs::exists(aside / name));
    if (!old_still_here) remove_or_fail(dir / name, why);
  }
  for (const std::string& name : moved) {
    std::error_code ec;
    if (!fs::exists(aside / name, ec)) continue;
    fs::rename(aside / name, dir / name, ec);
    if (ec) CP_USER_ERROR(why << ": cannot move " << (aside / name).string() << " back ("
                              << ec.message() << ")");
  }
  remove_or_fail(aside, why);
}

// The kind the manifest in DIR/.convpool-replaced records ("run" or "study"; "" if unreadable).
std::string manifest_kind(const fs::path& dir) {
  std::ifstream f(dir / kAside / kManifest);
  std::string word, kind;
  f >> word >> kind;
  return word == "kind" ? kind : "";
}

// Whether the new command saved a checkpoint: a run's own at the top of DIR, a study's under
// runs/METHOD/seed-N/ (the old ones are in the folder aside, so any there is new).
bool new_checkpoint_saved(const fs::path& dir, const std::string& kind) {
  if (kind != "study") return holds_checkpoint(dir.string());
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir / "runs", ec), end; !ec && it != end;
       it.increment(ec))
    if (it->path().filename() == "last.safetensors") return true;
  return false;
}
}  // namespace

ReplacedRun::ReplacedRun(std::string dir, ReplacedKind kind) : dir_(std::move(dir)) {
  const fs::path aside = fs::path(dir_) / kAside;
  std::error_code ec;
  fs::create_directory(aside, ec);
  if (ec)
    CP_USER_ERROR("--overwrite: cannot create " << aside.string() << " (" << ec.message() << ")");
  const std::vector<std::string> names = names_in(dir_, predicate_of(kind));
  // The manifest first: a process killed in the middle of the moves is restored exactly.
  std::string manifest = std::string("kind ") + (kind == ReplacedKind::study ? "study" : "run") + "\n";
  for (const std::string& n : names) manifest += n + "\n";
  write_file_atomic((aside / kManifest).string(), manifest);
  for (const std::string& n : names) {
    fs::rename(fs::path(dir_) / n, aside / n, ec);
    if (ec) {
      const std::string why = ec.message();
      restore_from(dir_);  // puts back what moved
      CP_USER_ERROR("--overwrite: cannot move " << (fs::path(dir_) / n).string() << " aside ("
                                                << why << "); nothing was replaced");
    }
  }
}

void ReplacedRun::discard() {
  if (done_) return;
  done_ = true;
  std::error_code ec;
  const fs::path aside = fs::path(dir_) / kAside, doomed = fs::path(dir_) / kDiscarding;
  fs::rename(aside, doomed, ec);
  if (!ec) fs::remove_all(doomed, ec);
  if (ec)
    std::fprintf(stderr,
                 "convpool: note: the replaced run in %s could not be removed (%s); the next "
                 "command in that directory tries again\n",
                 aside.string().c_str(), ec.message().c_str());
}

void ReplacedRun::restore() {
  if (done_) return;
  done_ = true;
  restore_from(dir_);
}

void ReplacedRun::restore_after_failure(const char* what) {
  if (done_) return;
  restore();
  std::fprintf(stderr, "convpool: note: the %s --overwrite replaced is restored in %s\n", what,
               dir_.c_str());
}

std::string finish_interrupted_replace(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(fs::path(dir) / kDiscarding, ec))  // deletion was decided, then cut short
    remove_or_fail(fs::path(dir) / kDiscarding, "removing the replaced run");
  if (!fs::is_directory(fs::path(dir) / kAside, ec)) return "";
  if (new_checkpoint_saved(dir, manifest_kind(dir))) {  // saved; only the deletion was cut short
    remove_or_fail(fs::path(dir) / kAside, "removing the replaced run");
    return "";
  }
  restore_from(dir);
  return "note: " + dir +
         ": an earlier --overwrite ended before its replacement saved anything; what it "
         "replaced is restored";
}

bool replace_pending(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(fs::path(dir) / kAside, ec);
}

}  // namespace convpool::cli
