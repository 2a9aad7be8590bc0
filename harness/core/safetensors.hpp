#pragma once
// safetensors files (https://github.com/huggingface/safetensors), read and
// written by masklab itself: an 8-byte little-endian header length N, N
// bytes of JSON ({name: {dtype, shape, data_offsets: [begin, end]}}, and an
// optional "__metadata__"), then the raw tensor bytes. Reading maps the file
// (mmap) and checks every header field against the file before any byte is
// used; every failure is a UserError naming the file and the tensor.
// LibTorch-free: callers turn the bytes into tensors.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace masklab {

enum class TensorDtype { kF32, kBF16, kF16 };
size_t dtype_size(TensorDtype dtype);
const char* dtype_name(TensorDtype dtype);  // "F32", "BF16", "F16"

// One tensor of a mapped file: its bytes stay valid while the file object lives.
struct TensorBytes {
  std::string name;
  TensorDtype dtype = TensorDtype::kF32;
  std::vector<std::int64_t> shape;
  const std::uint8_t* data = nullptr;
  size_t size = 0;  // bytes
};

class SafetensorsFile {
 public:
  // Maps and checks `path`; throws UserError naming the file (and tensor).
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorBytes>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The whole file's bytes (for content hashes).
  const std::uint8_t* bytes() const { return base_; }
  size_t file_size() const { return file_size_; }

 private:
  void parse_header();
  std::string path_;
  const std::uint8_t* base_ = nullptr;
  size_t file_size_ = 0;
  std::map<std::string, TensorBytes> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint folder's weights: DIR/model.safetensors, or the shards that
// DIR/model.safetensors.index.json's weight_map names. Tensors are looked up
// by name across shards; a name in two shards, or a weight_map entry its
// shard lacks, is a UserError.
class SafetensorsCheckpoint {
 public:
  explicit SafetensorsCheckpoint(const std::string& dir);
  const std::map<std::string, const TensorBytes*>& tensors() const { return tensors_; }
  // FNV-1a hex of every weight file's bytes, in file-name order.
  std::string content_hash() const;
  std::vector<std::string> files() const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorBytes*> tensors_;
};

// A tensor to write: `data` holds prod(shape) * dtype_size(dtype) bytes.
struct TensorToWrite {
  std::string name;
  TensorDtype dtype = TensorDtype::kF32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
};

// Writes a file that the python safetensors library (and transformers)
// loads: names sorted, "__metadata__": {"format": "pt"}, the header padded
// with spaces to a multiple of 8 bytes; atomically (write_file_atomic).
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors);

}  // namespace masklab
