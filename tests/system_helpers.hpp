#pragma once
// Fixtures that reach further into the operating system than running the
// CLI (tests/test_helpers.hpp): a masklab process group to SIGKILL whole,
// a small disk that fills.
#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/test_helpers.hpp"

namespace masklab::test {

// Starts the masklab binary with `args` as the leader of a new process
// group (so kill(-pid, ...) reaches the children it starts), its output
// appended to `log`; returns its pid, which is the group's id.
pid_t spawn_masklab_group(const std::vector<std::string>& args, const std::string& log);

// A tmpfs of `kilobytes` KB mounted on a fresh directory and unmounted when
// the object dies: a disk that fills. Mounting needs root; mounted() is false
// (and the caller skips, saying so) where it failed.
class SmallDisk {
 public:
  explicit SmallDisk(int kilobytes);
  ~SmallDisk();
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
};

}  // namespace masklab::test
