#pragma once
// A sweep as a Slurm job array: `masklab sweep SPEC --out DIR --slurm`
// writes DIR/slurm/array.sbatch, whose task K runs shard K+1/N of the sweep,
// and DIR/slurm/report.sbatch, which runs `masklab report DIR` once every
// task has ended (afterany). Settings come from the spec's `slurm:` block and
// the command's flags (flags win). Requeued tasks resume: the sweep skips
// runs that have a metrics.json.
#include <string>
#include <utility>
#include <vector>

namespace YAML {
class Node;
}

namespace masklab {

// The default number of array tasks is min(runs, kMaxDefaultArrayTasks):
// one task per run for small sweeps, and for big ones few enough tasks that
// the scheduler is not flooded (each task runs its shard's runs in turn).
constexpr int kMaxDefaultArrayTasks = 100;
// Seconds before the time limit at which Slurm sends USR1 to the task, which
// the sweep turns into a checkpoint and exit 75, and the task into a requeue.
constexpr int kDefaultSignalGraceSeconds = 120;

struct SlurmSettings {
  std::string partition;           // "" : the cluster's default partition
  std::string time;                // Slurm time limit ("4:00:00", "1-00:00:00"); "" : the partition's
  int gpus_per_task = 0;           // 0: no --gpus-per-task line; > 0 also gives the sweep --devices cuda:0..N-1
  int cpus_per_task = 0;           // 0: no --cpus-per-task line
  int max_parallel = 0;            // the array's %throttle; 0: none
  int array_tasks = 0;             // 0: min(runs, kMaxDefaultArrayTasks)
  int signal_grace = kDefaultSignalGraceSeconds;  // --signal=B:USR1@<this>
  std::vector<std::string> sbatch;  // extra sbatch options, one per #SBATCH line ("--account=abc")
  std::string setup;               // shell text run before masklab in both scripts ("module load cuda")
};

// Reads a spec's `slurm:` block (keys: partition, time, gpus_per_task,
// cpus_per_task, max_parallel, array_tasks, signal_grace, sbatch, setup);
// a bad key or value is a UserError naming the spec file:line and the key.
SlurmSettings parse_slurm_block(const YAML::Node& block, const std::string& path);

// The same checks for values given as flags; `origin` names the flag
// ("--time"). Throws UserError (exit 2) with one line.
void check_slurm_time(const std::string& time, const std::string& origin);
void check_slurm_count(int value, int minimum, const std::string& origin);
void check_slurm_partition(const std::string& partition, const std::string& origin);
// Checks what only the whole can tell: the grace inside the time limit, no
// more array tasks than runs. `run_count` is the sweep's number of runs.
void check_slurm_settings(const SlurmSettings& settings, int run_count);

// Seconds of a Slurm time limit ("M", "M:S", "H:M:S", "D-H", "D-H:M",
// "D-H:M:S"); -1 for UNLIMITED/INFINITE; throws UserError naming `origin`.
long slurm_time_seconds(const std::string& time, const std::string& origin);

// What the scripts run: absolute paths, and the sweep's own flags that each
// task passes on (--jobs, --run-timeout, ...).
struct SlurmJob {
  std::string name;                   // the sweep's name, for --job-name
  std::string masklab_binary;         // absolute
  std::string spec_path;              // absolute
  std::string out_dir;                // absolute
  std::vector<std::string> sweep_args;  // extra `masklab sweep` arguments for every task
  int run_count = 0;
};

// The number of array tasks the settings give for `run_count` runs.
int array_task_count(const SlurmSettings& settings, int run_count);

// The text of DIR/slurm/array.sbatch and DIR/slurm/report.sbatch.
std::string array_script(const SlurmJob& job, const SlurmSettings& settings);
std::string report_script(const SlurmJob& job, const SlurmSettings& settings);

// Writes both scripts (atomically) and creates DIR/slurm/logs/; returns
// {array script path, report script path}.
std::pair<std::string, std::string> write_slurm_scripts(const SlurmJob& job, const SlurmSettings& settings);

// Submits the array (`sbatch --parsable`), then the report with
// --dependency=afterany:<array id>; returns {array id, report id}. A failed
// sbatch is a UserError (exit 1) with its output.
std::pair<std::string, std::string> submit_slurm_scripts(const std::string& array_path,
                                                         const std::string& report_path);

// The shell commands that submit both scripts, for the user to run.
std::string submit_commands(const std::string& array_path, const std::string& report_path);

// 'text' quoted for a POSIX shell.
std::string shell_quote(const std::string& text);

}  // namespace masklab
