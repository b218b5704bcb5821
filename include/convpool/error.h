// Errors: every failure in library code is thrown as convpool::Error.
// User-facing errors (bad files, bad options) carry a one-line message that the CLI prints
// as-is; internal failures (CUDA calls, broken invariants) also carry the file:line that threw.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace convpool {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] inline void throw_at(const char* file, int line, const std::string& msg) {
  std::ostringstream os;
  os << msg << " (" << file << ":" << line << ")";
  throw Error(os.str());
}
}  // namespace detail

}  // namespace convpool

// Throws convpool::Error with a message built from stream insertions: CP_FAIL("bad " << x).
#define CP_FAIL(msg_stream)                                         \
  do {                                                              \
    std::ostringstream cp_os_;                                      \
    cp_os_ << msg_stream;                                           \
    ::convpool::detail::throw_at(__FILE__, __LINE__, cp_os_.str()); \
  } while (0)

// Checks an internal invariant; on failure throws with the condition text and file:line.
#define CP_CHECK(cond, msg_stream)                                   \
  do {                                                               \
    if (!(cond)) CP_FAIL("check failed: " #cond ": " << msg_stream); \
  } while (0)

// A user-facing error: one clear line, no source location.
#define CP_USER_ERROR(msg_stream)          \
  do {                                     \
    std::ostringstream cp_os_;             \
    cp_os_ << msg_stream;                  \
    throw ::convpool::Error(cp_os_.str()); \
  } while (0)
