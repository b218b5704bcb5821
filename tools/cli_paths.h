// Where the binary finds its companion files, with no source path compiled in. An installed
// prefix P holds P/bin/convpool, P/share/convpool/{models,recipes} and
// P/libexec/convpool/{onnx-export,plot}; a build folder mirrors that layout (CMake links
// build/share/convpool and build/libexec/convpool to the source tree). The roots searched, in
// order: $CONVPOOL_HOME (a prefix with that layout), the binary's own folder (a build folder),
// the binary's folder's parent (an install prefix).
#pragma once
#include <string>
#include <vector>

namespace convpool::cli {

// The roots above that exist, in search order.
std::vector<std::string> install_roots();
// A data file such as "models/keras_cifar10.cfg" under ROOT/share/convpool, or "" if none.
std::string find_data_file(const std::string& relative);
// A helper program such as "onnx-export" under ROOT/libexec/convpool; a one-line error naming
// the folders searched if there is none.
std::string find_helper(const std::string& name);

}  // namespace convpool::cli
