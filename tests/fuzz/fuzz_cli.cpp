// libFuzzer target: the command-line parser (every subcommand, option and check, and the
// typo suggestions) and the config-file reader. The first byte picks which; the rest is a
// command line (arguments split at NUL bytes) or a config file's text. Any failure must be a
// CLI11 usage error or a convpool::Error; nothing is run.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/cli_common.h"
#include "tools/cli_run.h"
#include "convpool/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  CLI::App app{"convpool"};
  convpool::cli::Commands commands;
  convpool::cli::build_cli(app, commands);
  try {
    if (data[0] & 1) {
      convpool::cli::apply_config_text(app.get_subcommand("train"), text, "fuzz.toml");
      return 0;
    }
    std::vector<std::string> args{"convpool"};
    for (size_t at = 0; at <= text.size();) {
      const size_t end = std::min(text.find('\0', at), text.size());
      args.push_back(text.substr(at, end - at));
      at = end + 1;
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    try {
      app.parse(int(argv.size()), argv.data());
    } catch (const CLI::Error&) {
      convpool::cli::suggest_flag(app, int(argv.size()), argv.data());
    }
  } catch (const convpool::Error&) {
  } catch (const CLI::Error&) {
  }
  return 0;
}
