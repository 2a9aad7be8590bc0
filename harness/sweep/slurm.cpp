#include "harness/sweep/slurm.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/text.hpp"
#include "harness/core/yaml_file.hpp"

namespace masklab {

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

long slurm_time_seconds(const std::string& time, const std::string& origin) {
  const std::string upper = to_lower(time);
  if (upper == "unlimited" || upper == "infinite") return -1;
  // Slurm's forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
  static const std::regex form(R"(^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$)");
  std::smatch m;
  if (!std::regex_match(time, m, form)) {
    throw UserError(origin + " '" + time + "': expected a Slurm time limit (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S)");
  }
  auto num = [&](int i) { return m[i].matched ? std::stol(m[i].str()) : 0L; };
  long seconds = 0;
  if (m[1].matched) {  // D-H[:M[:S]]
    seconds = num(1) * 86400 + num(2) * 3600 + num(3) * 60 + num(4);
  } else if (m[4].matched) {  // H:M:S
    seconds = num(2) * 3600 + num(3) * 60 + num(4);
  } else {  // M or M:S
    seconds = num(2) * 60 + num(3);
  }
  if (seconds <= 0) throw UserError(origin + " '" + time + "': a time limit must be longer than 0");
  return seconds;
}

void check_slurm_time(const std::string& time, const std::string& origin) { slurm_time_seconds(time, origin); }

void check_slurm_count(int value, int minimum, const std::string& origin) {
  if (value < minimum) throw UserError(fmt::format("{} {}: must be at least {}", origin, value, minimum));
}

void check_slurm_partition(const std::string& partition, const std::string& origin) {
  static const std::regex name(R"(^[A-Za-z0-9_.\-]+(,[A-Za-z0-9_.\-]+)*$)");
  if (!std::regex_match(partition, name)) {
    throw UserError(origin + " '" + partition + "': expected a partition name (letters, digits, _ . -; several joined by commas)");
  }
}

namespace {

// An extra sbatch option as written in the spec, "--account=abc" or
// "#SBATCH --account=abc": the option alone, or a UserError naming `origin`.
std::string sbatch_option(const std::string& line, const std::string& origin) {
  std::string option = trim(line);
  if (option.rfind("#SBATCH", 0) == 0) option = trim(option.substr(7));
  if (option.empty() || option[0] != '-' || option.find('\n') != std::string::npos) {
    throw UserError(origin + ": sbatch line '" + line + "' must be one sbatch option such as --account=abc");
  }
  return option;
}

int int_value(const YAML::Node& value, const std::string& where, const std::string& key) {
  try {
    return value.as<int>();
  } catch (const YAML::Exception&) {
    throw UserError(where + ": slurm." + key + " must be an integer");
  }
}

std::string string_value(const YAML::Node& value, const std::string& where, const std::string& key) {
  if (!value.IsScalar()) throw UserError(where + ": slurm." + key + " must be a string");
  return value.as<std::string>();
}

void read_slurm_key(SlurmSettings& s, const std::string& key, const YAML::Node& value, const std::string& where) {
  const std::string origin = where + ": slurm." + key;
  if (key == "partition") {
    s.partition = string_value(value, where, key);
    check_slurm_partition(s.partition, origin);
  } else if (key == "time") {
    s.time = string_value(value, where, key);
    check_slurm_time(s.time, origin);
  } else if (key == "gpus_per_task" || key == "cpus_per_task" || key == "max_parallel" || key == "array_tasks" ||
             key == "signal_grace") {
    const int v = int_value(value, where, key);
    check_slurm_count(v, key == "gpus_per_task" ? 0 : 1, origin);
    (key == "gpus_per_task"   ? s.gpus_per_task
     : key == "cpus_per_task" ? s.cpus_per_task
     : key == "max_parallel"  ? s.max_parallel
     : key == "array_tasks"   ? s.array_tasks
                              : s.signal_grace) = v;
  } else if (key == "sbatch") {
    if (!value.IsSequence()) throw UserError(origin + " must be a list of sbatch options");
    for (const auto& line : value) s.sbatch.push_back(sbatch_option(string_value(line, where, key), origin));
  } else if (key == "setup") {
    s.setup = string_value(value, where, key);
  } else {
    throw UserError(where + ": unknown slurm key '" + key +
                    "' (valid: partition, time, gpus_per_task, cpus_per_task, max_parallel, array_tasks, "
                    "signal_grace, sbatch, setup)");
  }
}

}  // namespace

SlurmSettings parse_slurm_block(const YAML::Node& block, const std::string& path) {
  if (!block.IsMap()) throw UserError(yaml_location(path, block) + ": slurm must map keys to values");
  SlurmSettings s;
  for (const auto& kv : block) {
    read_slurm_key(s, kv.first.as<std::string>(), kv.second, yaml_location(path, kv.first));
  }
  return s;
}

void check_slurm_settings(const SlurmSettings& settings, int run_count) {
  if (!settings.time.empty()) {
    const long limit = slurm_time_seconds(settings.time, "--time");
    if (limit > 0 && limit <= settings.signal_grace) {
      throw UserError(fmt::format("--signal-grace {}: must be shorter than the time limit {} ({} s)",
                                  settings.signal_grace, settings.time, limit));
    }
  }
  if (settings.array_tasks > std::max(1, run_count)) {
    throw UserError(fmt::format("--array-tasks {}: the sweep has only {} run(s)", settings.array_tasks, run_count));
  }
}

int array_task_count(const SlurmSettings& settings, int run_count) {
  return settings.array_tasks > 0 ? settings.array_tasks : std::max(1, std::min(run_count, kMaxDefaultArrayTasks));
}

namespace {

// A job name sbatch takes as one word.
std::string job_name(const std::string& name) {
  std::string out = "masklab-";
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ? c : '_';
  return out;
}

// The #SBATCH lines both scripts share: where, how long, the user's extras.
std::string common_sbatch_lines(const SlurmSettings& s) {
  std::string out;
  if (!s.partition.empty()) out += "#SBATCH --partition=" + s.partition + "\n";
  if (!s.time.empty()) out += "#SBATCH --time=" + s.time + "\n";
  if (s.cpus_per_task > 0) out += fmt::format("#SBATCH --cpus-per-task={}\n", s.cpus_per_task);
  return out;
}

std::string extra_sbatch_lines(const SlurmSettings& s) {
  std::string out;
  for (const auto& option : s.sbatch) out += "#SBATCH " + option + "\n";
  return out;
}

std::string setup_lines(const SlurmSettings& s) { return s.setup.empty() ? "" : s.setup + "\n"; }

// The arguments every task passes to its sweep: the user's, and with GPUs
// one device per GPU Slurm gives the task (it numbers them from 0).
std::vector<std::string> task_sweep_args(const SlurmJob& job, const SlurmSettings& s) {
  std::vector<std::string> args = job.sweep_args;
  const bool has_devices = std::find(args.begin(), args.end(), "--devices") != args.end();
  if (s.gpus_per_task > 0 && !has_devices) {
    std::string devices;
    for (int i = 0; i < s.gpus_per_task; ++i) devices += fmt::format("{}cuda:{}", i ? "," : "", i);
    args.insert(args.end(), {"--devices", devices});
  }
  return args;
}

std::string logs_dir(const SlurmJob& job) { return job.out_dir + "/slurm/logs"; }

// The array script around the sweep: the sweep runs in the background so
// that this shell can forward Slurm's signals to it (exec would leave no
// shell to requeue the task); the traps come first so that no signal finds
// the shell without them, and one that comes before the sweep's pid is
// known is kept and forwarded as soon as it is.
constexpr const char* kForwardSignals = R"(sweep_pid=
pending=
signalled=0
forward() {
  signalled=1
  if [ -n "$sweep_pid" ]; then kill -s "$1" "$sweep_pid" 2>/dev/null; else pending=$1; fi
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
)";

// A trapped signal makes `wait` return early (status > 128) with the sweep
// still running: wait again, for the sweep's own status. 75: the sweep was
// preempted and checkpointed its runs; requeued, the task runs the same
// shard again, which skips every run with a metrics.json.
constexpr const char* kAwaitSweep = R"(
sweep_pid=$!
if [ -n "$pending" ]; then kill -s "$pending" "$sweep_pid" 2>/dev/null; fi
while :; do
  signalled=0
  wait "$sweep_pid"
  status=$?
  if [ "$signalled" = 1 ] && [ "$status" -gt 128 ]; then continue; fi
  break
done
if [ "$status" -eq 75 ]; then
  echo "masklab: shard $shard exited 75 (preempted): requeueing ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
fi
exit "$status"
)";

}  // namespace

std::string array_script(const SlurmJob& job, const SlurmSettings& s) {
  const int tasks = array_task_count(s, job.run_count);
  std::string out = "#!/bin/bash\n";
  out += fmt::format("# masklab sweep {} as a Slurm job array (written by `masklab sweep --slurm`):\n", job.name);
  out += fmt::format("# task K of {} runs shard K+1/{} of the sweep's {} runs.\n", tasks, tasks, job.run_count);
  out += "#SBATCH --job-name=" + job_name(job.name) + "\n";
  out += fmt::format("#SBATCH --array=0-{}{}\n", tasks - 1, s.max_parallel > 0 ? fmt::format("%{}", s.max_parallel) : "");
  out += "#SBATCH --ntasks=1\n";
  out += "#SBATCH --output=" + logs_dir(job) + "/array-%A_%a.out\n";
  out += "#SBATCH --open-mode=append\n";
  out += "#SBATCH --requeue\n";
  out += fmt::format("#SBATCH --signal=B:USR1@{}\n", s.signal_grace);
  out += common_sbatch_lines(s);
  if (s.gpus_per_task > 0) out += fmt::format("#SBATCH --gpus-per-task={}\n", s.gpus_per_task);
  out += extra_sbatch_lines(s);
  out += setup_lines(s) + kForwardSignals;
  out += "shard=\"$((SLURM_ARRAY_TASK_ID + 1))/${SLURM_ARRAY_TASK_COUNT}\"\n";
  std::string command = shell_quote(job.masklab_binary) + " sweep " + shell_quote(job.spec_path) + " --out " +
                        shell_quote(job.out_dir) + " --shard \"$shard\"";
  for (const auto& a : task_sweep_args(job, s)) command += " " + shell_quote(a);
  return out + command + " &" + kAwaitSweep;
}

std::string report_script(const SlurmJob& job, const SlurmSettings& s) {
  std::string out = "#!/bin/bash\n";
  out += fmt::format("# The report of masklab sweep {}: Slurm runs it once every array task has ended (afterany).\n",
                     job.name);
  out += "#SBATCH --job-name=" + job_name(job.name) + "-report\n";
  out += "#SBATCH --ntasks=1\n";
  out += "#SBATCH --output=" + logs_dir(job) + "/report-%j.out\n";
  out += common_sbatch_lines(s) + extra_sbatch_lines(s);
  out += setup_lines(s);
  return out + "exec " + shell_quote(job.masklab_binary) + " report " + shell_quote(job.out_dir) + "\n";
}

std::pair<std::string, std::string> write_slurm_scripts(const SlurmJob& job, const SlurmSettings& settings) {
  // sbatch splits #SBATCH lines at whitespace, so the log paths must not hold any.
  if (std::any_of(job.out_dir.begin(), job.out_dir.end(), [](unsigned char c) { return std::isspace(c); })) {
    throw UserError("--out '" + job.out_dir + "': with --slurm the sweep directory's path cannot contain whitespace");
  }
  const std::string array = array_script(job, settings), report = report_script(job, settings);
  std::filesystem::create_directories(logs_dir(job));
  const std::string dir = job.out_dir + "/slurm/";
  write_file_atomic(dir + "array.sbatch", array);
  write_file_atomic(dir + "report.sbatch", report);
  return {dir + "array.sbatch", dir + "report.sbatch"};
}

namespace {

// Runs argv (found on PATH) and returns its exit status and stdout+stderr.
std::pair<int, std::string> capture(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error(std::string("pipe failed: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string output;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  return {WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus), output};
}

// `sbatch --parsable` prints "ID" or "ID;CLUSTER".
std::string sbatch_parsable(const std::vector<std::string>& argv) {
  const auto [status, output] = capture(argv);
  const std::string id = trim(output.substr(0, output.find(';')));
  if (status != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
    throw UserError(fmt::format("{} failed (exit {}): {}", fmt::join(argv, " "), status, trim(output)), 1);
  }
  return id;
}

}  // namespace

std::pair<std::string, std::string> submit_slurm_scripts(const std::string& array_path,
                                                         const std::string& report_path) {
  const std::string array_id = sbatch_parsable({"sbatch", "--parsable", array_path});
  const std::string report_id =
      sbatch_parsable({"sbatch", "--parsable", "--dependency=afterany:" + array_id, report_path});
  return {array_id, report_id};
}

std::string submit_commands(const std::string& array_path, const std::string& report_path) {
  return "array=$(sbatch --parsable " + shell_quote(array_path) + ") && sbatch --dependency=afterany:${array%%;*} " +
         shell_quote(report_path);
}

}  // namespace masklab
