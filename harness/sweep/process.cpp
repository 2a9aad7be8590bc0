#include "harness/sweep/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"

namespace masklab {
namespace {

volatile sig_atomic_t g_interrupted = 0;
volatile sig_atomic_t g_preempted = 0;
void on_interrupt(int) { g_interrupted = 1; }
void on_preemption(int) {
  g_interrupted = 1;
  g_preempted = 1;
}

void handle(int signal, void (*handler)(int), int flags) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  sigaction(signal, &sa, nullptr);
}

}  // namespace

// No SA_RESTART: the sweep's waits return early, to act on the signal.
void install_interrupt_handler() {
  handle(SIGINT, on_interrupt, 0);
  handle(SIGTERM, on_preemption, 0);
  handle(SIGUSR1, on_preemption, 0);
}

// SA_RESTART: a run's reads and waits carry on; the loop checks the flag at each step boundary.
void install_preemption_handler() {
  handle(SIGTERM, on_preemption, SA_RESTART);
  handle(SIGUSR1, on_preemption, SA_RESTART);
}

bool interrupted() { return g_interrupted != 0; }
bool preempted() { return g_preempted != 0; }

namespace {

// This process's environment without the variables that would make a
// `masklab train` child a rank of a data-parallel run (harness/train/
// distributed.hpp): a sweep started by srun or torchrun runs each of its runs
// as one process; `extra` ("NAME=value") replaces a variable of the same
// name. Built before fork, so the child only calls execve.
std::vector<char*> environment_of_a_single_process(const std::vector<std::string>& extra) {
  static const char* const kRankVariables[] = {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "MASKLAB_DIST_STORE=",
                                               "SLURM_NTASKS=", "SLURM_PROCID=", "SLURM_LOCALID="};
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    bool rank_variable = false;
    for (const char* prefix : kRankVariables) rank_variable |= std::strncmp(*e, prefix, std::strlen(prefix)) == 0;
    for (const auto& variable : extra) {
      const size_t name_end = variable.find('=') + 1;
      rank_variable |= std::strncmp(*e, variable.c_str(), name_end) == 0;
    }
    if (!rank_variable) env.push_back(*e);
  }
  for (const auto& variable : extra) env.push_back(const_cast<char*>(variable.c_str()));
  env.push_back(nullptr);
  return env;
}

}  // namespace

pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log, const std::vector<std::string>& extra_env) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<char*> env = environment_of_a_single_process(extra_env);
  // Opened here, not in the child, so a log that cannot be written is an
  // error naming it and why, instead of a run with no output.
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + log + ": " + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::close(fd);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(error));
  }
  if (pid > 0) {
    ::close(fd);
    return pid;
  }
  ::dup2(fd, STDOUT_FILENO);  // dup2 clears close-on-exec on the copies
  ::dup2(fd, STDERR_FILENO);
  ::execve(args[0], args.data(), env.data());
  std::fprintf(stderr, "masklab sweep: cannot run %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

std::optional<RunClaim> RunClaim::try_claim(const std::string& lock_path, std::string& holder) {
  // O_CLOEXEC: a run's child must not inherit another run's claim.
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write " + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    holder = read_file(lock_path).value_or("");
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ::close(fd);
    if (error == EWOULDBLOCK) return std::nullopt;
    throw std::runtime_error("cannot lock " + lock_path + ": " + std::strerror(error));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int error = errno;
    ::close(fd);
    throw std::runtime_error("cannot write " + lock_path + ": " + std::strerror(error));
  }
  return RunClaim(fd);
}

RunClaim& RunClaim::operator=(RunClaim&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

RunClaim::~RunClaim() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

std::vector<std::string> thread_environment(int threads) {
  return {"OPENBLAS_NUM_THREADS=" + std::to_string(threads)};
}

bool was_preempted(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus) == kExitPreempted;
  return WIFSIGNALED(wstatus) && (WTERMSIG(wstatus) == SIGTERM || WTERMSIG(wstatus) == SIGUSR1);
}

std::string last_line(const std::string& path) {
  std::istringstream in(read_file(path).value_or(""));
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace masklab
