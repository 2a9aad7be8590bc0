#include "harness/cli/launch.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/train/distributed.hpp"

extern char** environ;

namespace masklab {

namespace {

// The ranks a forwarded signal goes to. A signal handler can reach only
// globals; written before the handlers are installed, read-only after.
constexpr int kMaxRanks = 1024;
pid_t g_rank_pids[kMaxRanks];
volatile sig_atomic_t g_rank_count = 0;
volatile sig_atomic_t g_forwarded = 0;

void forward_signal(int sig) {
  g_forwarded = 1;
  for (int i = 0; i < g_rank_count; ++i) {
    if (g_rank_pids[i] > 0) ::kill(g_rank_pids[i], sig);
  }
}

constexpr int kPreempted = 75;
constexpr int kInterrupted = 130;
constexpr int kDiverged = 3;

// The parent's environment without any rank variables, plus this rank's.
std::vector<std::string> rank_env(int rank, int world, const std::string& store) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (name == "RANK" || name == "LOCAL_RANK" || name == "WORLD_SIZE" || name == "MASKLAB_DIST_STORE" ||
        name.rfind("SLURM_", 0) == 0) {
      continue;  // a stale rank identity, or srun's, must not win over this launch's
    }
    env.push_back(entry);
  }
  for (auto& v : rank_environment(rank, world, store)) env.push_back(std::move(v));
  return env;
}

pid_t spawn_rank(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    ::execve(args[0], args.data(), envp.data());
    std::fprintf(stderr, "masklab train: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

// A rank ended by a signal the launcher forwarded (SIGTERM, SIGUSR1, SIGINT)
// was stopped, not failed.
bool stopped_by_forwarded_signal(int status) {
  if (!WIFSIGNALED(status) || !g_forwarded) return false;
  const int sig = WTERMSIG(status);
  return sig == SIGTERM || sig == SIGUSR1 || sig == SIGINT;
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return stopped_by_forwarded_signal(status) ? 128 + WTERMSIG(status) : 1;
}

bool is_failure(int status) {
  if (stopped_by_forwarded_signal(status)) return false;
  if (!WIFEXITED(status)) return true;
  const int code = WEXITSTATUS(status);
  return code != 0 && code != kPreempted && code != kInterrupted && code != kDiverged;
}

// Waits for every rank. The first failure stops the others: SIGTERM now,
// SIGKILL after a grace period, so that no rank waits on a dead peer.
int wait_ranks(std::vector<pid_t>& pids) {
  using Clock = std::chrono::steady_clock;
  int result = 0, failed_rank = -1;
  Clock::time_point kill_at{};
  size_t running = pids.size();
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno != EINTR && errno != ECHILD) throw std::runtime_error(std::strerror(errno));
    if (pid <= 0) {
      if (failed_rank >= 0 && Clock::now() >= kill_at) {
        for (pid_t p : pids) if (p > 0) ::kill(p, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const auto it = std::find(pids.begin(), pids.end(), pid);
    if (it == pids.end()) continue;
    int rank = static_cast<int>(it - pids.begin());
    *it = 0;
    g_rank_pids[rank] = 0;
    --running;
    if (failed_rank >= 0) continue;  // stopped by us: the first failure is the cause
    if (is_failure(status)) {
      // A rank killed by a signal takes its peers down with it a moment
      // later (their collectives fail): that rank, not the first reaped, is the cause.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      for (int other = 0; !WIFSIGNALED(status) && other < static_cast<int>(pids.size()); ++other) {
        int other_status = 0;
        if (pids[other] <= 0 || ::waitpid(pids[other], &other_status, WNOHANG) != pids[other]) continue;
        pids[other] = 0;
        g_rank_pids[other] = 0;
        --running;
        if (WIFSIGNALED(other_status)) status = other_status, rank = other;
      }
      failed_rank = rank;
      result = exit_code(status);
      std::fprintf(stderr, "masklab train: rank %d of %zu %s; stopping the other ranks\n", rank, pids.size(),
                   describe(status).c_str());
      for (pid_t p : pids) if (p > 0) ::kill(p, SIGTERM);
      kill_at = Clock::now() + std::chrono::seconds(5);
    } else if (result == 0) {
      result = exit_code(status);
    }
  }
  return result;
}

}  // namespace

// --nproc N starts N ranks here; inside a launched rank (srun, torchrun,
// or --nproc's own children) it would start ranks of ranks.
void check_nproc(int nproc, const DistEnv& dist) {
  if (nproc < 1) throw UserError(fmt::format("--nproc {}: expected a number of processes >= 1", nproc));
  if (nproc > 1 && dist.world > 1) {
    throw UserError(fmt::format("--nproc {} inside rank {} of {} (from {}): start the ranks one way, not both", nproc,
                                dist.rank, dist.world, dist.launcher));
  }
}

// `args` without `name VALUE` / `name=VALUE`.
std::vector<std::string> without_option(const std::vector<std::string>& args, const std::string& name) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name) {
      ++i;
      continue;
    }
    if (args[i].rfind(name + "=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

int launch_ranks(const std::vector<std::string>& train_args, int nproc, int threads_per_rank) {
  if (nproc > kMaxRanks) throw UserError(fmt::format("--nproc {}: at most {} ranks on one machine", nproc, kMaxRanks));
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  // A fresh rendezvous file: a stale one would hold another launch's keys.
  const auto store = std::filesystem::temp_directory_path() /
                     fmt::format("masklab-ddp-{}-{}.store", ::getpid(),
                                 std::chrono::steady_clock::now().time_since_epoch().count());
  std::vector<std::string> argv{self, "train"};
  argv.insert(argv.end(), train_args.begin(), train_args.end());
  argv.push_back("--set");
  argv.push_back(fmt::format("train.threads={}", threads_per_rank));

  std::vector<pid_t> pids;
  try {
    for (int rank = 0; rank < nproc; ++rank) {
      pids.push_back(spawn_rank(argv, rank_env(rank, nproc, store.string())));
      g_rank_pids[rank] = pids.back();
      g_rank_count = rank + 1;
    }
  } catch (...) {
    for (pid_t p : pids) ::kill(p, SIGKILL);  // they would wait for the missing rank until the timeout
    throw;
  }
  struct sigaction action {};
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGTERM, SIGUSR1, SIGINT}) ::sigaction(sig, &action, nullptr);
  const int result = wait_ranks(pids);
  std::error_code ignored;
  std::filesystem::remove(store, ignored);
  return result;
}

}  // namespace masklab
