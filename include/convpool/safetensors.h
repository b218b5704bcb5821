// safetensors files: an 8-byte little-endian header length, a JSON header giving each
// tensor's dtype, shape and data_offsets plus a "__metadata__" string map, then raw
// little-endian row-major data. convpool writes only F32 tensors, 8-byte aligned.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "convpool/file_io.h"

namespace convpool {

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

struct SafetensorsFile {
  std::vector<NamedTensor> tensors;  // in file order
  std::map<std::string, std::string> metadata;
  const NamedTensor* find(const std::string& name) const;  // O(1) after the first call

 private:
  mutable std::unordered_map<std::string, size_t> index_;
};

// Metadata key of the CRC32 over the header's canonical JSON (which includes "data_crc32",
// so it covers the data too). Files from before it existed carry "data_crc32" alone.
constexpr const char* kHeaderCrcKey = "header_crc32";

// `skip` exists for the fuzz targets alone: it lets mutated headers reach the parsers behind
// the checksum. Everything else verifies.
enum class ChecksumPolicy { verify, skip };

uint32_t crc32(const void* data, size_t bytes, uint32_t crc = 0);

// Serialises to bytes; metadata gains "data_crc32" (hex CRC32 of the data section) and
// kHeaderCrcKey.
std::string encode_safetensors(const std::vector<NamedTensor>& tensors,
                               std::map<std::string, std::string> metadata);
// Parses and validates bytes (sizes, offsets, dtypes, JSON, CRC when present). Every failure
// is a one-line Error prefixed with `origin`.
SafetensorsFile decode_safetensors(const std::string& bytes, const std::string& origin,
                                   ChecksumPolicy checksums = ChecksumPolicy::verify);

}  // namespace convpool
