#include "harness/sweep/sweep.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include <yaml-cpp/yaml.h>

#include "harness/core/cores.hpp"
#include "harness/core/errors.hpp"
#include "harness/core/hf_config.hpp"
#include "harness/core/files.hpp"
#include "harness/core/yaml_file.hpp"
#include "harness/core/hashing.hpp"
#include "harness/core/progress.hpp"
#include "harness/core/run_record.hpp"
#include "harness/sweep/devices.hpp"
#include "harness/sweep/process.hpp"
#include "strategies/registry.hpp"

namespace masklab {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string run_dir(const SweepOptions& options, const SweepRun& r) { return options.out_dir + "/runs/" + r.id; }

// The status a run recorded in its metrics.json; "" when it has none yet.
std::string finished_status(const std::string& rdir) {
  const std::string m = rdir + "/metrics.json";
  if (!std::filesystem::exists(m)) return "";
  try {
    return read_json_file(m).value("status", "failed");
  } catch (const UserError&) {
    return "";  // unreadable: treat as not finished
  }
}

// A run with no record yet, or (with --retry-failed) one that failed or timed out.
bool needs_run(const std::string& status, const SweepOptions& options) {
  return status.empty() || (options.retry_failed && (status == "failed" || status == "timeout"));
}

// What resuming finds: the runs of this shard, and which of them still have to run.
struct SweepPlan {
  std::vector<const SweepRun*> runs;
  std::vector<const SweepRun*> pending;
  int already_ok = 0, already_bad = 0;
};

SweepPlan plan_sweep(const SweepSpec& spec, const SweepOptions& options) {
  SweepPlan plan;
  plan.runs = shard_runs(spec, options.shard_k, options.shard_n);
  for (const auto* r : plan.runs) {
    const std::string status = finished_status(run_dir(options, *r));
    if (needs_run(status, options)) {
      plan.pending.push_back(r);
    } else {
      (status == "ok" ? plan.already_ok : plan.already_bad)++;
    }
  }
  return plan;
}

void print_plan(const SweepSpec& spec, const SweepOptions& options, const SweepPlan& plan) {
  if (spec.base) {
    const bool ready = base_ready(*spec.base, options.out_dir);
    fmt::print("base {} ({}): {} {}\n", spec.base->hash, name_of(spec.base->kind),
               ready ? "ready" : "to pretrain", base_model_path(*spec.base, options.out_dir));
  }
  fmt::print("sweep {}: {} runs{} ({} pending)\n", spec.name, plan.runs.size(),
             options.shard_n > 1 ? fmt::format(" in shard {}/{} of {}", options.shard_k, options.shard_n, spec.runs.size()) : "",
             plan.pending.size());
  for (const auto* r : plan.runs) {
    const std::string status = finished_status(run_dir(options, *r));
    fmt::print("{}  {:<8} {}\n", r->id, status.empty() ? "pending" : status, describe(*r));
  }
}

// Starts `masklab train` for one run in a child process that writes its
// output to the run's train.log; a non-empty `device` is passed as --device
// (it is not part of the run id). The caller holds the run's claim and has
// checked that it needs to run, so the only record removed is a failed or
// timeout one being retried: a record present afterwards is this attempt's.
pid_t launch_run(const SweepSpec& spec, const SweepRun& r, const SweepOptions& options, int threads,
                 const std::string& device) {
  const std::string rdir = run_dir(options, r);
  if (!finished_status(rdir).empty()) std::filesystem::remove(rdir + "/metrics.json");
  Config c = r.config;
  c.train.threads = threads;
  if (spec.base) c.model.init_from = base_model_path(*spec.base, options.out_dir);
  write_file_atomic(rdir + "/config.yaml", to_yaml(c));
  const std::string config_path = rdir + "/config.yaml", cache = options.out_dir + "/cache";
  std::vector<std::string> argv = {options.masklab_binary, "train", "--config", config_path,
                                   "--out", rdir, "--cache", cache};
  if (!device.empty()) argv.insert(argv.end(), {"--device", device});
  return spawn_logged(argv, rdir + "/train.log", thread_environment(threads));
}

// The record of a run that died before writing its own (bad input, crash,
// killed): why it died, from its exit status or the last line it logged.
// A run killed for --run-timeout is "timeout" whatever it managed to write.
nlohmann::json failure_record(const SweepRun& r, int wstatus, double seconds, const std::string& rdir,
                              double timed_out_after) {
  if (timed_out_after > 0) {
    return {{"status", "timeout"}, {"error", fmt::format("exceeded --run-timeout {:g} s", timed_out_after)},
            {"strategy", r.config.strategy}, {"seed", r.config.seed}, {"wall_seconds", seconds}};
  }
  const std::string why = WIFSIGNALED(wstatus) ? fmt::format("killed by signal {}", WTERMSIG(wstatus))
                                               : last_line(rdir + "/train.log");
  return {{"status", "failed"}, {"error", why.empty() ? "exited without a record" : why},
          {"strategy", r.config.strategy}, {"seed", r.config.seed}, {"wall_seconds", seconds}};
}

std::string result_line(const SweepRun& r, const std::string& status, double seconds, const nlohmann::json& metrics) {
  const auto em = lookup_dotted(metrics, "eval.exact_match");
  const auto nll = lookup_dotted(metrics, "eval.completion_nll");
  return fmt::format("{} {:<8} {:6.1f}s  {}{}", r.id, status, seconds, describe(r),
                     status == "ok" ? fmt::format("  exact_match {:.3f} completion_nll {:.4f}",
                                                  em.is_number() ? em.get<double>() : NAN,
                                                  nll.is_number() ? nll.get<double>() : NAN)
                                    : "  (" + metrics.value("error", std::string()) + ")");
}

// Each run's thread count, fixed by the sweep's settings (--jobs, the
// shard's run count, the cores) and never by how many runs remain: a resumed
// sweep's last run gets the threads an uninterrupted sweep gives it, so its
// numbers match to the bit.
int threads_per_run(const SweepOptions& options, const SweepPlan& plan) {
  const int slots = std::max(1, std::min<int>(options.jobs, static_cast<int>(std::max<size_t>(1, plan.runs.size()))));
  return std::max(1, available_cores() / slots);
}

// A run past --run-timeout gets SIGTERM, then SIGKILL this much later.
constexpr double kKillGraceSeconds = 5;

// Runs the pending runs of a plan, `jobs` child processes at a time.
class SweepRunner {
 public:
  SweepRunner(const SweepSpec& spec, const SweepOptions& options, const SweepPlan& plan)
      : spec_(spec),
        options_(options),
        plan_(plan),
        jobs_(std::max(1, std::min<int>(options.jobs, static_cast<int>(std::max<size_t>(1, plan.pending.size()))))),
        threads_each_(threads_per_run(options, plan)) {}

  // The process exit status: 0 when every run of the shard is ok, 1 when
  // some is not, 75 (kExitPreempted) when the sweep got SIGTERM or SIGUSR1,
  // or, with nothing failed, some run was preempted on its own; 130 on SIGINT.
  int run() {
    progress_.line(fmt::format("sweep {}: {} runs, {} done, {} to run, {} at a time with {} thread(s) each -> {}",
                               spec_.name, plan_.runs.size(), plan_.already_ok + plan_.already_bad,
                               plan_.pending.size(), jobs_, threads_each_, options_.out_dir));
    start_ = std::chrono::steady_clock::now();
    while (has_queued() || !running_.empty()) {
      while (!interrupted() && has_queued() && slot_free()) launch_claimed(take_queued());
      if (interrupted()) break;
      show_status();
      if (!reap_one()) break;
    }
    return interrupted() ? stop_interrupted() : summary();
  }

 private:
  struct Running {
    const SweepRun* run;
    std::chrono::steady_clock::time_point start;
    RunClaim claim;       // held until the run is recorded
    bool terminated = false;  // sent SIGTERM for --run-timeout
    int device_slot = -1;     // index into options_.devices; -1 without --devices
  };

  // The next run to launch: one a retired device sent back first, then the plan's.
  bool has_queued() const { return !requeued_.empty() || next_ < plan_.pending.size(); }
  const SweepRun& take_queued() {
    if (requeued_.empty()) return *plan_.pending[next_++];
    const SweepRun* r = requeued_.front();
    requeued_.pop_front();
    return *r;
  }

  // Below --jobs and, with --devices, a device free (or none usable left,
  // so that launch_claimed records the remaining runs failed).
  bool slot_free() const {
    if (static_cast<int>(running_.size()) >= jobs_) return false;
    return devices_.empty() || devices_.all_retired() || devices_.free_slot(busy_slots()) >= 0;
  }
  std::vector<int> busy_slots() const {
    std::vector<int> busy;
    for (const auto& [pid, r] : running_) busy.push_back(r.device_slot);
    return busy;
  }

  // A run that ended because its device is unusable retires the device and
  // goes back to the queue, for another device; true when so.
  bool retire_device_of(const Running& finished, int wstatus) {
    if (finished.device_slot < 0) return false;
    const std::string why = last_line(run_dir(options_, *finished.run) + "/train.log");
    if (!device_unusable(wstatus, why)) return false;
    devices_.retire(finished.device_slot, why);
    progress_.line(fmt::format("device {} retired ({}); run {} goes back to the queue",
                               devices_.name(finished.device_slot), why, finished.run->id));
    requeued_.push_back(finished.run);
    return true;
  }

  // Every device retired: the run is recorded failed, with why, under its claim.
  void record_no_device(const SweepRun& r) {
    const nlohmann::json metrics = {{"status", "failed"},
                                    {"error", "no usable device: every --devices entry was retired (" +
                                                  devices_.retired_reasons() + ")"},
                                    {"strategy", r.config.strategy}, {"seed", r.config.seed}, {"wall_seconds", 0.0}};
    write_file_atomic(run_dir(options_, r) + "/metrics.json", metrics.dump(2) + "\n");
    ++done_bad_;
    progress_.line(result_line(r, "failed", 0, metrics));
  }

  // Launches a run once this sweep holds its claim and it still needs to
  // run (another sweep may have finished it since the plan was made).
  void launch_claimed(const SweepRun& r) {
    const std::string rdir = run_dir(options_, r);
    std::filesystem::create_directories(rdir);
    std::string holder;
    std::optional<RunClaim> claim = RunClaim::try_claim(rdir + "/claim.lock", holder);
    if (!claim) {
      ++claimed_elsewhere_;
      progress_.line(fmt::format("{} running in another sweep (pid {}): left to it  {}", r.id,
                                 holder.empty() ? "unknown" : holder, describe(r)));
      return;
    }
    if (const std::string status = finished_status(rdir); !needs_run(status, options_)) {
      (status == "ok" ? done_ok_ : done_bad_)++;
      progress_.line(fmt::format("{} {:<8} finished by another sweep  {}", r.id, status, describe(r)));
      return;
    }
    if (devices_.all_retired()) return record_no_device(r);
    const int slot = devices_.empty() ? -1 : devices_.free_slot(busy_slots());
    const std::string device = slot < 0 ? "" : devices_.name(slot);
    const pid_t pid = launch_run(spec_, r, options_, threads_each_, device);
    running_.emplace(pid, Running{&r, std::chrono::steady_clock::now(), std::move(*claim), false, slot});
  }

  // Waits for a child to end and records its run, killing runs past
  // --run-timeout meanwhile; false when there is nothing left to wait for.
  bool reap_one() {
    int wstatus = 0;
    const pid_t pid = ::waitpid(-1, &wstatus, WNOHANG);
    if (pid < 0) return errno == EINTR;
    if (pid == 0) {
      enforce_timeouts();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      return true;
    }
    auto it = running_.find(pid);
    if (it == running_.end()) return true;
    Running finished = std::move(it->second);
    running_.erase(it);
    if (retire_device_of(finished, wstatus)) return true;
    // A child that died of the same interrupt stays unrecorded, to run again.
    if (interrupted()) return true;
    const double seconds = seconds_since(finished.start);
    if (!finished.terminated && was_preempted(wstatus)) {
      // Signalled by someone else (the scheduler): no record, so the next start resumes it.
      ++preempted_;
      progress_.line(fmt::format("{} {:<8} {:6.1f}s  {}  (checkpointed: the next sweep start resumes it)",
                                 finished.run->id, "preempted", seconds, describe(*finished.run)));
      return true;
    }
    record(*finished.run, wstatus, seconds, finished.terminated ? options_.run_timeout : 0);
    return true;
  }

  void enforce_timeouts() {
    if (options_.run_timeout <= 0) return;
    for (auto& [pid, r] : running_) {
      const double seconds = seconds_since(r.start);
      if (!r.terminated && seconds > options_.run_timeout) {
        ::kill(pid, SIGTERM);
        r.terminated = true;
      } else if (r.terminated && seconds > options_.run_timeout + kKillGraceSeconds) {
        ::kill(pid, SIGKILL);
      }
    }
  }

  void record(const SweepRun& r, int wstatus, double seconds, double timed_out_after) {
    seconds_total_ += seconds;
    const std::string rdir = run_dir(options_, r);
    std::string status = finished_status(rdir);
    nlohmann::json metrics;
    if (status != "ok" && (status.empty() || timed_out_after > 0)) {
      metrics = failure_record(r, wstatus, seconds, rdir, timed_out_after);
      write_file_atomic(rdir + "/metrics.json", metrics.dump(2) + "\n");
      status = metrics["status"].get<std::string>();
    } else {
      metrics = read_json_file(rdir + "/metrics.json");
    }
    (status == "ok" ? done_ok_ : done_bad_)++;
    progress_.line(result_line(r, status, seconds, metrics));
  }

  void show_status() {
    const int done = done_ok_ + done_bad_;
    const double per_run = done ? seconds_total_ / done : 0;
    const size_t left = plan_.pending.size() - static_cast<size_t>(done + claimed_elsewhere_ + preempted_);
    const double eta = done ? per_run * static_cast<double>(left) / jobs_ : NAN;
    progress_.status(fmt::format("runs {}/{} done ({} not ok), {} running, ETA {}",
                                 plan_.already_ok + plan_.already_bad + done, plan_.runs.size(),
                                 plan_.already_bad + done_bad_, running_.size(), format_duration(eta)));
  }

  // Unfinished runs are left without metrics.json, so the next start redoes
  // them. SIGTERM makes each checkpoint at its next step boundary (and exit
  // 75), so the next start resumes them; the wait lasts as long as that takes.
  int stop_interrupted() {
    for (const auto& [pid, r] : running_) ::kill(pid, SIGTERM);
    while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
    if (preempted()) {
      progress_.line("preempted: rerun the same command to resume");
      return kExitPreempted;
    }
    progress_.line("sweep interrupted: unfinished runs have no metrics.json and run again on the next start");
    return 130;
  }

  int summary() {
    progress_.finish();
    const int bad = plan_.already_bad + done_bad_;
    progress_.line(fmt::format("sweep {}: {} runs ok, {} not ok, {}{}{:.0f}s", spec_.name,
                               plan_.already_ok + done_ok_, bad,
                               preempted_ ? fmt::format("{} preempted (rerun to resume), ", preempted_) : "",
                               claimed_elsewhere_ ? fmt::format("{} left to another sweep, ", claimed_elsewhere_) : "",
                               seconds_since(start_)));
    if (bad > 0) {
      // The result lines are progress, on stdout; that some runs failed is
      // also said where errors go, for a caller that keeps stderr only.
      std::fprintf(stderr, "masklab: sweep %s: %d of %zu runs not ok; each one's error is in its metrics.json under %s/runs\n",
                   spec_.name.c_str(), bad, plan_.runs.size(), options_.out_dir.c_str());
      return 1;
    }
    if (preempted_ > 0) return kExitPreempted;
    return claimed_elsewhere_ == 0 ? 0 : 1;
  }

  const SweepSpec& spec_;
  const SweepOptions& options_;
  const SweepPlan& plan_;
  const int jobs_;
  const int threads_each_;
  Progress progress_{Progress::stdout_is_terminal()};
  std::map<pid_t, Running> running_;
  size_t next_ = 0;  // index into plan_.pending of the next run to launch
  std::deque<const SweepRun*> requeued_;  // runs sent back by a retired device, launched before next_
  DeviceSlots devices_{options_.devices};
  int done_ok_ = 0, done_bad_ = 0;
  int claimed_elsewhere_ = 0;  // runs another sweep held when this one came to them
  int preempted_ = 0;          // runs that exited 75 without this sweep being signalled
  double seconds_total_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

int run_sweep(const SweepSpec& spec, const SweepOptions& options) {
  const SweepPlan plan = plan_sweep(spec, options);
  if (options.dry_run) {
    print_plan(spec, options, plan);
    return 0;
  }
  std::filesystem::create_directories(options.out_dir + "/runs");
  std::filesystem::create_directories(options.out_dir + "/cache");
  write_file_atomic(options.out_dir + "/sweep.json", sweep_manifest(spec).dump(2) + "\n");
  install_interrupt_handler();
  // Only a shard with runs to do needs the base; it runs alone, on every core.
  if (spec.base && !plan.pending.empty()) {
    const int threads = available_cores();
    if (const int status = prepare_base(*spec.base, {options.out_dir, options.masklab_binary, threads}); status != 0) {
      return status == 130 && preempted() ? kExitPreempted : status;
    }
  }
  return SweepRunner(spec, options, plan).run();
}

}  // namespace masklab
