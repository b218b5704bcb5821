#include "convpool/safetensors.h"


#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "convpool/error.h"

namespace convpool {

namespace {
constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the safetensors reference limit

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

std::string hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// The header checksum is the CRC32 of the header text as stored, with the checksum's own 8
// hex digits read as zeros. Its key and value appear in that text exactly as `"key":"value"`:
// inside a JSON string a quote is escaped, so no string value can hold that pattern.
constexpr const char* kCrcPlaceholder = "00000000";
std::string crc_field(const std::string& value) {
  return std::string("\"") + kHeaderCrcKey + "\":\"" + value + "\"";
}
std::string header_crc_of(std::string text, size_t value_at) {
  text.replace(value_at, 8, kCrcPlaceholder);
  return hex32(crc32(text.data(), text.size()));
}
}  // namespace

uint32_t crc32(const void* data, size_t bytes, uint32_t crc) {
  const auto& t = crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < bytes; ++i) crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

const NamedTensor* SafetensorsFile::find(const std::string& name) const {
  if (index_.size() != tensors.size()) {  // built on first use: tensors is a public vector
    index_.clear();
    index_.reserve(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) index_.emplace(tensors[i].name, i);
  }
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors[it->second];
}

std::string encode_safetensors(const std::vector<NamedTensor>& tensors,
                               std::map<std::string, std::string> metadata) {
  static_assert(sizeof(float) == 4);
  std::string data;
  // nlohmann::json keeps keys in a std::map: O(log n) inserts (ordered_json is a linear
  // search per insert, quadratic over 10^4 tensors). Readers order tensors by offset.
  nlohmann::json header = nlohmann::json::object();
  for (auto& t : tensors) {
    int64_t count = 1;
    for (auto d : t.shape) count *= d;
    CP_CHECK(size_t(count) == t.data.size(), t.name << ": shape does not match data");
    const size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * 4);
    CP_CHECK(t.name != "__metadata__" && !header.contains(t.name), "duplicate tensor " << t.name);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  metadata["data_crc32"] = hex32(crc32(data.data(), data.size()));
  metadata.erase(kHeaderCrcKey);
  header["__metadata__"] = metadata;
  header["__metadata__"][kHeaderCrcKey] = kCrcPlaceholder;
  std::string json = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Pad with spaces so the data section, and so every F32 tensor, starts 8-byte aligned.
  while ((8 + json.size()) % 8) json.push_back(' ');
  const size_t value_at = json.find(crc_field(kCrcPlaceholder)) + crc_field("").size() - 1;
  json.replace(value_at, 8, header_crc_of(json, value_at));
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xFF);
  return out + json + data;
}

SafetensorsFile decode_safetensors(const std::string& bytes, const std::string& origin,
                                   ChecksumPolicy checksums) {
  auto bad = [&](const std::string& why) -> void { CP_USER_ERROR(origin << ": " << why); };
  if (bytes.size() < 8) bad("truncated: shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  if (n > kMaxHeaderBytes || n > bytes.size() - 8)
    bad("truncated or not a safetensors file: header length " + std::to_string(n) +
        " exceeds the file");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(n));
  } catch (const nlohmann::json::exception&) {
    bad("header is not valid JSON");
  }
  if (!header.is_object()) bad("header is not a JSON object");
  const size_t data_begin = 8 + n, data_size = bytes.size() - data_begin;
  SafetensorsFile f;
  struct Located {
    size_t begin, end;
    NamedTensor tensor;
  };
  std::vector<Located> located;
  for (auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) bad("__metadata__ is not an object");
      for (auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) bad("metadata value '" + mk + "' is not a string");
        f.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
        !value.contains("data_offsets"))
      bad("tensor '" + key + "' lacks dtype, shape or data_offsets");
    const auto& dtype = value["dtype"];
    if (!dtype.is_string() || dtype.get<std::string>() != "F32")
      bad("tensor '" + key + "' has dtype " + dtype.dump() + "; convpool reads F32 only");
    const auto& shape = value["shape"];
    const auto& offs = value["data_offsets"];
    if (!shape.is_array() || shape.size() > 8) bad("tensor '" + key + "' has a bad shape");
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() ||
        !offs[1].is_number_unsigned())
      bad("tensor '" + key + "' has bad data_offsets");
    NamedTensor t;
    t.name = key;
    uint64_t count = 1;
    for (auto& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 32))
        bad("tensor '" + key + "' has a bad dimension " + d.dump());
      t.shape.push_back(d.get<int64_t>());
      count *= d.get<uint64_t>();
      if (count > (1ull << 34)) bad("tensor '" + key + "' is impossibly large");
    }
    const uint64_t b = offs[0].get<uint64_t>(), e = offs[1].get<uint64_t>();
    if (b > e || e > data_size)
      bad("tensor '" + key + "' data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
          "] lie outside the " + std::to_string(data_size) + "-byte data section (truncated?)");
    if (e - b != count * 4)
      bad("tensor '" + key + "' has " + std::to_string(e - b) + " bytes for " +
          std::to_string(count) + " floats");
    t.data.resize(count);
    if (count) std::memcpy(t.data.data(), bytes.data() + data_begin + b, count * 4);
    located.push_back({b, e, std::move(t)});
  }
  // File order is offset order, whatever order the header lists them in.
  // Empty tensors sort before the one starting where they stand, and overlap nothing.
  std::stable_sort(located.begin(), located.end(), [](auto& a, auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  size_t covered = 0;  // end of the data claimed so far
  for (size_t i = 0; i < located.size(); covered = std::max(covered, located[i++].end))
    if (located[i].begin < located[i].end && located[i].begin < covered)
      bad("tensor '" + located[i].tensor.name + "' overlaps the data of another tensor");
  if (checksums == ChecksumPolicy::verify) {
    if (auto it = f.metadata.find("data_crc32"); it != f.metadata.end()) {
      const std::string got = hex32(crc32(bytes.data() + data_begin, data_size));
      if (got != it->second)
        bad("data checksum mismatch (CRC32 " + got + ", header says " + it->second +
            "): the file is corrupt");
    }
    if (auto it = f.metadata.find(kHeaderCrcKey); it != f.metadata.end()) {
      const std::string text = bytes.substr(8, n);
      const size_t field = text.find(crc_field(it->second));
      if (it->second.size() != 8 || field == std::string::npos)
        bad("header checksum '" + it->second + "' is malformed or misplaced");
      const std::string got = header_crc_of(text, field + crc_field("").size() - 1);
      if (got != it->second)
        bad("header checksum mismatch (CRC32 " + got + ", header says " + it->second +
            "): the metadata was edited or is corrupt");
    }
  }
  f.tensors.reserve(located.size());
  for (auto& l : located) f.tensors.push_back(std::move(l.tensor));
  return f;
}

}  // namespace convpool
