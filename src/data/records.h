// What the CIFAR-10 and CIFAR-100 readers share (src/data/cifar.cpp, cifar100.cpp): one record
// parser over the two binary layouts, which differ only in their label bytes.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "convpool/data.h"

namespace convpool {

struct RecordLayout {
  const char* name;     // "CIFAR-10", for errors
  size_t record_bytes;  // label bytes then 3072 pixel bytes
  int classes;          // the last label byte's range: the class trained on
  int coarse_classes;   // CIFAR-100: the first label byte's range (superclasses); else 0
  size_t max_records;   // more in one file means it is not such a file
};
constexpr RecordLayout kCifar10Layout{"CIFAR-10", kCifarRecordBytes, kCifarClasses, 0, 100000};
constexpr RecordLayout kCifar100Layout{"CIFAR-100", kCifar100RecordBytes, kCifar100Classes,
                                       kCifar100CoarseClasses, 100000};

// Validates every label and appends up to max_records records to `out` (its classes set from
// the layout); returns the number of records in `bytes`. One-line errors name `path`.
size_t parse_records(const RecordLayout& layout, const std::string& bytes,
                     const std::string& path, Dataset& out, size_t max_records);

bool is_dir(const std::string& path);

// The class names of a data set's name file (one per line, blank lines skipped, a CRLF's
// carriage return dropped), or `fallback` when there is no such file. Another number of names
// than `classes`, or a name with a NUL or other control byte, is a one-line error.
std::vector<std::string> read_class_names(const std::string& path, int classes,
                                          const std::vector<std::string>& fallback);

// Where a data set's binary files may be, and how to say so.
struct DataDirSpec {
  const char* name;        // "CIFAR-10"
  const char* env;         // "CIFAR10_DIR"
  const char* folder;      // the archive's folder: "cifar-10-batches-bin"
  const char* train_file;  // two files whose presence marks the folder
  const char* test_file;
  const char* expected;    // the files, as errors name them
  const char* get_script;  // "data/get-cifar10"
};
// --data (the folder itself or its parent), else $env (the same), else data/FOLDER; a one-line
// error naming every place looked at when none holds the files.
std::string resolve_dir(const DataDirSpec& spec, const std::string& flag_value);

}  // namespace convpool
