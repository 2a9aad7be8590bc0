#include "harness/core/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness/core/errors.hpp"

namespace masklab {
namespace {

// "cannot write PATH: No space left on device": the OS's reason, read from
// errno right after the call that failed, before anything can overwrite it.
[[noreturn]] void throw_os_error(const std::string& what, const std::string& path, int error) {
  throw std::runtime_error("cannot " + what + " " + path + ": " + std::strerror(error));
}

// Writes every byte to fd; the errno of the failing call, 0 on success.
int write_all(int fd, std::string_view content) {
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    done += static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

std::optional<std::string> read_file(const std::string& path, std::string* error) {
  // An ifstream opens a directory and then reads nothing: it would hand
  // back "" as if the file were empty.
  auto fail = [&](int os_error) -> std::optional<std::string> {
    if (error) *error = std::strerror(os_error);
    return std::nullopt;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int os_error = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    return fail(os_error);
  }
  std::string bytes;
  if (S_ISREG(st.st_mode)) bytes.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int os_error = errno;
      ::close(fd);
      return fail(os_error);
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return bytes;
}

std::string read_file_for(const std::string& key, const std::string& path) {
  std::string why;
  auto bytes = read_file(path, &why);
  if (!bytes) throw UserError(key + ": " + path + ": " + why);
  return std::move(*bytes);
}

void write_file_atomic(const std::string& path, std::string_view content) {
  // The pid keeps two processes writing the same file (shards of one sweep,
  // runs sharing a dataset cache) off each other's temporary.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_os_error("write", path, errno);
  int error = write_all(fd, content);
  // close() is where some filesystems (NFS, quotas) first report a failed write.
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    std::remove(tmp.c_str());
    throw_os_error("write", path, error);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = errno;
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + std::strerror(error));
  }
}

AppendFile::AppendFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_os_error("write", path, errno);
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AppendFile::append(std::string_view content) {
  if (const int error = write_all(fd_, content); error != 0) throw_os_error("write", path_, error);
}

}  // namespace masklab
