#pragma once
// Whole files in and out. Writes are atomic (docs/design.md, invariant 8:
// nothing is lost): the content goes to a temporary name beside the target,
// then rename() puts it in place, so a reader sees the old file or the new
// one, never half of one.
#include <optional>
#include <string>
#include <string_view>

namespace masklab {

// The file's bytes, or nullopt when it cannot be read: missing, a
// directory, no permission. `error`, when given, receives the OS's reason
// ("Is a directory"); callers say what the file was for in their own error.
std::optional<std::string> read_file(const std::string& path, std::string* error = nullptr);

// The file's bytes; otherwise throws UserError "KEY: PATH: <OS error>"
// ("data.template: tpl/: Is a directory"), KEY naming the setting or flag
// that gave the path.
std::string read_file_for(const std::string& key, const std::string& path);

// Throws std::runtime_error naming the path and the OS error (strerror:
// "No space left on device") when the write or the rename fails.
void write_file_atomic(const std::string& path, std::string_view content);

// A file written a piece at a time and read while it grows (curve.jsonl):
// created or truncated when opened; every append is checked, and a failed
// one throws std::runtime_error naming the path and the OS error, so that a
// disk that fills mid-run fails the run instead of silently shortening it.
class AppendFile {
 public:
  explicit AppendFile(const std::string& path);
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  ~AppendFile();
  void append(std::string_view content);

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace masklab
