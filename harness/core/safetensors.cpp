#include "harness/core/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/hashing.hpp"

namespace masklab {
namespace {

// A header longer than this is a damaged file, not a model: real ones are
// a few hundred kB even for thousands of tensors.
constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

UserError bad_file(const std::string& path, const std::string& why) {
  return UserError(fmt::format("{}: {}", path, why));
}

UserError bad_tensor(const std::string& path, const std::string& name, const std::string& why) {
  return UserError(fmt::format("{}: tensor '{}': {}", path, name, why));
}

std::optional<TensorDtype> dtype_from_name(const std::string& name) {
  if (name == "F32") return TensorDtype::kF32;
  if (name == "BF16") return TensorDtype::kBF16;
  if (name == "F16") return TensorDtype::kF16;
  return std::nullopt;
}

// prod(shape) * itemsize, or nullopt when a dimension is negative, not an
// integer, or the product overflows.
std::optional<std::uint64_t> byte_count(const nlohmann::json& shape, size_t itemsize,
                                        std::vector<std::int64_t>& dims) {
  std::uint64_t n = itemsize;
  for (const auto& d : shape) {
    if (!d.is_number_integer()) return std::nullopt;
    const auto v = d.get<std::int64_t>();
    if (v < 0) return std::nullopt;
    if (v != 0 && n > std::numeric_limits<std::uint64_t>::max() / static_cast<std::uint64_t>(v)) return std::nullopt;
    n *= static_cast<std::uint64_t>(v);
    dims.push_back(v);
  }
  return n;
}

// One header entry, checked against the data region [data, data + data_size).
TensorBytes parse_entry(const std::string& path, const std::string& name, const nlohmann::json& entry,
                        const std::uint8_t* data, std::uint64_t data_size) {
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets") ||
      !entry["dtype"].is_string() || !entry["shape"].is_array() || !entry["data_offsets"].is_array() ||
      entry["data_offsets"].size() != 2 || !entry["data_offsets"][0].is_number_unsigned() ||
      !entry["data_offsets"][1].is_number_unsigned()) {
    throw bad_tensor(path, name, "entry needs dtype, shape and data_offsets [begin, end]");
  }
  const std::string dtype_text = entry["dtype"].get<std::string>();
  const auto dtype = dtype_from_name(dtype_text);
  if (!dtype) throw bad_tensor(path, name, "dtype " + dtype_text + " cannot be read (F32, BF16, F16 can)");
  TensorBytes t;
  t.name = name;
  t.dtype = *dtype;
  const auto bytes = byte_count(entry["shape"], dtype_size(*dtype), t.shape);
  if (!bytes) throw bad_tensor(path, name, "shape " + entry["shape"].dump() + " is negative or overflows");
  const auto begin = entry["data_offsets"][0].get<std::uint64_t>();
  const auto end = entry["data_offsets"][1].get<std::uint64_t>();
  if (begin > end || end > data_size) {
    throw bad_tensor(path, name, fmt::format("data_offsets [{}, {}] lie outside the data region of {} bytes",
                                             begin, end, data_size));
  }
  if (end - begin != *bytes) {
    throw bad_tensor(path, name, fmt::format("data_offsets [{}, {}] hold {} bytes but shape {} of {} needs {}",
                                             begin, end, end - begin, entry["shape"].dump(), dtype_text, *bytes));
  }
  t.data = data + begin;
  t.size = static_cast<size_t>(*bytes);
  return t;
}

}  // namespace

size_t dtype_size(TensorDtype dtype) { return dtype == TensorDtype::kF32 ? 4 : 2; }

const char* dtype_name(TensorDtype dtype) {
  switch (dtype) {
    case TensorDtype::kF32: return "F32";
    case TensorDtype::kBF16: return "BF16";
    case TensorDtype::kF16: return "F16";
  }
  return "?";
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw bad_file(path, "cannot open the weight file");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw bad_file(path, "not a regular file");
  }
  file_size_ = static_cast<size_t>(st.st_size);
  if (file_size_ < 8) {
    ::close(fd);
    throw bad_file(path, fmt::format("truncated safetensors file ({} bytes, shorter than its 8-byte header length)",
                                     file_size_));
  }
  void* map = ::mmap(nullptr, file_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file
  if (map == MAP_FAILED) throw bad_file(path, "cannot map the weight file");
  base_ = static_cast<const std::uint8_t*>(map);
  try {
    parse_header();
  } catch (...) {
    ::munmap(const_cast<std::uint8_t*>(base_), file_size_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (base_) ::munmap(const_cast<std::uint8_t*>(base_), file_size_);
}

void SafetensorsFile::parse_header() {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | base_[i];  // little-endian
  if (n > kMaxHeaderBytes) throw bad_file(path_, fmt::format("header length {} is absurd (over 100 MB)", n));
  if (n > file_size_ - 8) {
    throw bad_file(path_, fmt::format("truncated safetensors file: header of {} bytes, file of {}", n, file_size_));
  }
  nlohmann::json header;
  // nlohmann keeps the last of two equal keys silently; a duplicate tensor
  // name is a damaged header, so the parser reports top-level keys here.
  std::set<std::string> names;
  std::string duplicate;
  const auto check_key = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    const auto* text = reinterpret_cast<const char*>(base_) + 8;
    header = nlohmann::json::parse(text, text + n, check_key);
  } catch (const nlohmann::json::exception&) {
    throw bad_file(path_, "the safetensors header is not JSON");
  }
  if (!duplicate.empty()) throw bad_tensor(path_, duplicate, "named twice in the header");
  if (!header.is_object()) throw bad_file(path_, "the safetensors header is not a JSON object");
  const std::uint64_t data_size = file_size_ - 8 - n;
  const std::uint8_t* data = base_ + 8 + n;
  std::vector<std::pair<std::pair<std::uint64_t, std::uint64_t>, std::string>> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw bad_file(path_, "__metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    TensorBytes t = parse_entry(path_, name, entry, data, data_size);
    const std::uint64_t begin = static_cast<std::uint64_t>(t.data - data), end = begin + t.size;
    ranges.push_back({{begin, end}, name});
    tensors_.emplace(name, std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first.first < ranges[i - 1].first.second) {
      throw bad_tensor(path_, ranges[i].second, "its data_offsets overlap those of '" + ranges[i - 1].second + "'");
    }
  }
}

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& dir) {
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  std::vector<std::string> shard_names;
  nlohmann::json weight_map;
  if (std::filesystem::exists(index_path)) {
    const auto text = read_file(index_path);
    if (!text) throw bad_file(index_path, "cannot read the shard index");
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(*text);
    } catch (const nlohmann::json::exception&) {
      throw bad_file(index_path, "not JSON");
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw bad_file(index_path, "has no \"weight_map\" object");
    }
    weight_map = index["weight_map"];
    for (const auto& [name, shard] : weight_map.items()) {
      if (!shard.is_string()) throw bad_file(index_path, "weight_map entry '" + name + "' is not a file name");
      const std::string s = shard.get<std::string>();
      if (std::find(shard_names.begin(), shard_names.end(), s) == shard_names.end()) shard_names.push_back(s);
    }
    std::sort(shard_names.begin(), shard_names.end());
    for (const auto& s : shard_names) {
      if (!std::filesystem::exists(dir + "/" + s)) throw bad_file(index_path, "names shard '" + s + "', which is missing");
    }
  } else if (std::filesystem::exists(single)) {
    shard_names.push_back("model.safetensors");
  } else {
    throw bad_file(dir, "has neither model.safetensors nor model.safetensors.index.json");
  }
  for (const auto& s : shard_names) {
    files_.push_back(std::make_unique<SafetensorsFile>(dir + "/" + s));
    for (const auto& [name, t] : files_.back()->tensors()) {
      if (!tensors_.emplace(name, &t).second) {
        throw bad_tensor(files_.back()->path(), name, "also appears in another shard");
      }
    }
  }
  for (const auto& [name, shard] : weight_map.items()) {
    const auto it = tensors_.find(name);
    if (it == tensors_.end()) throw bad_tensor(dir + "/" + shard.get<std::string>(), name, "listed in the index but absent");
  }
}

std::string SafetensorsCheckpoint::content_hash() const {
  Fnv1a h;
  for (const auto& f : files_) h.add(f->bytes(), f->file_size());
  return h.hex();
}

std::vector<std::string> SafetensorsCheckpoint::files() const {
  std::vector<std::string> out;
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  std::vector<const TensorToWrite*> sorted;
  for (const auto& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  std::uint64_t offset = 0;
  std::vector<std::uint64_t> sizes;
  for (const auto* t : sorted) {
    std::uint64_t n = dtype_size(t->dtype);
    for (auto d : t->shape) n *= static_cast<std::uint64_t>(d);
    header[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    sizes.push_back(n);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((static_cast<std::uint64_t>(text.size()) >> (8 * i)) & 0xff));
  out += text;
  for (size_t i = 0; i < sorted.size(); ++i) out.append(static_cast<const char*>(sorted[i]->data), sizes[i]);
  write_file_atomic(path, out);
}

}  // namespace masklab
