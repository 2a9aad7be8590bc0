#pragma once
// The sweep's child processes: each `masklab train` (a run or the pretrain
// stage) runs in its own process with its output in a log file, and an
// interrupt (SIGINT, SIGTERM) is noticed rather than killing the sweep
// mid-write.
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace masklab {

// From now on SIGINT, SIGTERM and SIGUSR1 set a flag (interrupted())
// instead of ending the process; blocking calls return early with EINTR.
// SIGTERM and SIGUSR1 (a scheduler's preemption warning) also set
// preempted().
void install_interrupt_handler();
bool interrupted();

// From now on SIGTERM and SIGUSR1 set preempted() instead of ending the
// process, and interrupted system calls restart; SIGINT keeps its default
// action (`masklab train`).
void install_preemption_handler();
bool preempted();

// Starts argv[0] with argv in a child process whose stdout and stderr go to
// `log` (truncated), with `extra_env` ("NAME=value") added to or replacing
// this process's environment. Throws std::runtime_error when fork fails; a
// child that cannot exec exits with status 127.
pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log,
                   const std::vector<std::string>& extra_env = {});

// The environment of a `masklab train` child given `threads` threads:
// OpenBLAS starts that many threads when it loads, not one per core (each
// maps a buffer: under a memory limit a sweep's runs would spend it on
// threads they never use).
std::vector<std::string> thread_environment(int threads);

// Whether a child's wait status says it was preempted: it exited 75
// (kExitPreempted: it checkpointed), or SIGTERM/SIGUSR1 ended it before it
// could install its handler (it starts again from step 0).
bool was_preempted(int wstatus);

// The last non-empty line of a file ("" when it has none): why a child died.
std::string last_line(const std::string& path);

}  // namespace masklab

namespace masklab {

// A claim on one run: an exclusive flock on RUN_DIR/claim.lock, held while
// this sweep launches and waits for the run, released when the claim is
// destroyed (or the sweep dies: the kernel drops the lock). Two sweeps on one
// folder (or shards on shared storage) so never run or record one run at once.
class RunClaim {
 public:
  // The claim, or nullopt when another process holds it; `holder` then gets
  // the pid written in the lock file ("" when unknown).
  static std::optional<RunClaim> try_claim(const std::string& lock_path, std::string& holder);
  RunClaim(RunClaim&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunClaim& operator=(RunClaim&& other) noexcept;
  RunClaim(const RunClaim&) = delete;
  RunClaim& operator=(const RunClaim&) = delete;
  ~RunClaim();

 private:
  explicit RunClaim(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace masklab
