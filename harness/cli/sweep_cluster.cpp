#include "harness/cli/sweep_cluster.hpp"

#include <filesystem>

#include <fmt/format.h>

#include "harness/core/config.hpp"
#include "harness/core/errors.hpp"
#include "harness/core/text.hpp"
#include "harness/sweep/slurm.hpp"

namespace po = boost::program_options;

namespace masklab {

void add_sweep_cluster_options(po::options_description& options) {
  options.add_options()
      ("devices", po::value<std::string>(), "D1,D2,...: one run at a time on each device (cpu, cuda:N), each child given --device; replaces --jobs")
      ("slurm", "write DIR/slurm/array.sbatch (task K runs --shard K+1/N) and DIR/slurm/report.sbatch instead of running")
      ("submit", "with --slurm: submit the array, then the report with --dependency=afterany, and print both job ids")
      ("partition", po::value<std::string>(), "with --slurm: #SBATCH --partition (spec: slurm.partition)")
      ("time", po::value<std::string>(), "with --slurm: #SBATCH --time per array task, e.g. 4:00:00 (spec: slurm.time)")
      ("gpus-per-task", po::value<int>(), "with --slurm: #SBATCH --gpus-per-task; each task's sweep gets --devices cuda:0..N-1 (spec: slurm.gpus_per_task)")
      ("cpus-per-task", po::value<int>(), "with --slurm: #SBATCH --cpus-per-task (spec: slurm.cpus_per_task)")
      ("max-parallel", po::value<int>(), "with --slurm: at most this many array tasks at once, --array=...%N (spec: slurm.max_parallel)")
      ("array-tasks", po::value<int>(), "with --slurm: number of array tasks (default min(runs, 100); spec: slurm.array_tasks)")
      ("signal-grace", po::value<int>(), "with --slurm: SECONDS before the time limit that Slurm sends USR1, for a checkpoint and requeue (default 120; spec: slurm.signal_grace)");
}

const char* const kSweepClusterHelp =
    "--devices runs one run at a time on each listed device; a device a run cannot\n"
    "use (train exits 2 naming train.device) is retired and the run goes to another.\n"
    "\n"
    "--slurm writes a job array whose task K runs shard K+1/N of this sweep, and a\n"
    "report job that runs after every task (settings: the spec's slurm: block, then\n"
    "these flags). A task signalled before its time limit requeues itself; the\n"
    "rerun skips finished runs.";

void apply_devices(const po::variables_map& vm, SweepOptions& o) {
  if (vm.count("devices") == 0) return;
  if (!vm["jobs"].defaulted()) throw UserError("--jobs and --devices: give one (--devices runs one run per device at a time)");
  o.devices = parse_devices(vm["devices"].as<std::string>());
  o.jobs = static_cast<int>(o.devices.size());
}

void reject_slurm_flags(const po::variables_map& vm) {
  for (const char* flag : {"partition", "time", "gpus-per-task", "cpus-per-task", "max-parallel", "array-tasks",
                           "signal-grace", "submit"}) {
    if (vm.count(flag)) throw UserError(std::string("--") + flag + " goes with --slurm");
  }
}

std::vector<std::string> parse_devices(const std::string& text) {
  std::vector<std::string> devices = split(text, ',');
  for (const auto& d : devices) {
    if (!parse_device(d)) {
      throw UserError("--devices '" + text + "': '" + d + "' is not a device (auto | cpu | cuda | cuda:N)");
    }
  }
  return devices;
}


namespace {

// The spec's slurm: block with the flags on top (flags win), checked whole.
SlurmSettings slurm_settings(const po::variables_map& vm, const SweepSpec& spec) {
  SlurmSettings s = spec.slurm;
  if (vm.count("partition")) check_slurm_partition(s.partition = vm["partition"].as<std::string>(), "--partition");
  if (vm.count("time")) check_slurm_time(s.time = vm["time"].as<std::string>(), "--time");
  auto count = [&](const char* flag, int minimum, int& field) {
    if (vm.count(flag)) check_slurm_count(field = vm[flag].as<int>(), minimum, std::string("--") + flag);
  };
  count("gpus-per-task", 0, s.gpus_per_task);
  count("cpus-per-task", 1, s.cpus_per_task);
  count("max-parallel", 1, s.max_parallel);
  count("array-tasks", 1, s.array_tasks);
  count("signal-grace", 1, s.signal_grace);
  check_slurm_settings(s, static_cast<int>(spec.runs.size()));
  return s;
}

}  // namespace

int sweep_on_slurm(const po::variables_map& vm, const SweepSpec& spec, const SweepOptions& o) {
  for (const char* flag : {"shard", "dry-run", "until-ci"}) {
    if (vm.count(flag)) throw UserError(std::string("--") + flag + " does not go with --slurm (each array task runs one shard)");
  }
  const SlurmSettings settings = slurm_settings(vm, spec);
  SlurmJob job;
  job.name = spec.name;
  job.masklab_binary = o.masklab_binary;
  job.spec_path = std::filesystem::absolute(spec.path).lexically_normal().string();
  job.out_dir = std::filesystem::absolute(o.out_dir).lexically_normal().string();
  while (job.out_dir.size() > 1 && job.out_dir.back() == '/') job.out_dir.pop_back();
  job.run_count = static_cast<int>(spec.runs.size());
  if (!vm["jobs"].defaulted()) job.sweep_args = {"--jobs", std::to_string(o.jobs)};
  if (vm.count("devices")) job.sweep_args.insert(job.sweep_args.end(), {"--devices", vm["devices"].as<std::string>()});
  if (o.run_timeout > 0) job.sweep_args.insert(job.sweep_args.end(), {"--run-timeout", fmt::format("{:g}", o.run_timeout)});
  if (o.retry_failed) job.sweep_args.push_back("--retry-failed");
  const auto [array_path, report_path] = write_slurm_scripts(job, settings);
  fmt::print("sweep {}: {} runs in {} array tasks: {}, {}\n", spec.name, job.run_count,
             array_task_count(settings, job.run_count), array_path, report_path);
  if (vm.count("submit") == 0) {
    fmt::print("submit with:\n  {}\n", submit_commands(array_path, report_path));
    return 0;
  }
  const auto [array_id, report_id] = submit_slurm_scripts(array_path, report_path);
  fmt::print("submitted array job {} and report job {} (afterany:{}); logs in {}/slurm/logs/\n", array_id, report_id,
             array_id, job.out_dir);
  return 0;
}

}  // namespace masklab
