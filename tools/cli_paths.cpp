#include "cli_paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "convpool/error.h"

namespace fs = std::filesystem;

namespace convpool::cli {

namespace {

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

}  // namespace

std::vector<std::string> install_roots() {
  std::vector<std::string> roots;
  if (const char* home = std::getenv("CONVPOOL_HOME"); home && *home) roots.push_back(home);
  const fs::path dir = executable_dir();
  if (!dir.empty()) {
    roots.push_back(dir.string());  // a build folder: its own links first
    roots.push_back(dir.parent_path().string());
  }
  return roots;
}

std::string find_data_file(const std::string& relative) {
  for (const std::string& root : install_roots()) {
    const fs::path p = fs::path(root) / "share" / "convpool" / relative;
    if (fs::exists(p)) return p.lexically_normal().string();
  }
  return "";
}

std::string find_helper(const std::string& name) {
  std::string searched;
  for (const std::string& root : install_roots()) {
    const fs::path p = fs::path(root) / "libexec" / "convpool" / name;
    if (::access(p.c_str(), X_OK) == 0) return p.lexically_normal().string();
    searched += (searched.empty() ? "" : ", ") + (fs::path(root) / "libexec" / "convpool").string();
  }
  CP_USER_ERROR("the helper program '" << name << "' is not installed (searched " << searched
                                       << "; set CONVPOOL_HOME to the install prefix)");
}

}  // namespace convpool::cli
