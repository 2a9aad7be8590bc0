#pragma once
// Sweeps: a YAML spec (base config, a grid of factors, named conditions)
// expands into runs; each run's id is a hash of its resolved config, so an
// identical run is never done twice and a finished one is never redone.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/core/config.hpp"
#include "harness/sweep/base.hpp"
#include "harness/sweep/slurm.hpp"

namespace masklab {

struct SweepRun {
  std::string id;       // 16 hex digits: hash of the resolved config (threads excluded; a base by its hash)
  Config config;        // the resolved config
  std::vector<std::pair<std::string, std::string>> factors;  // factor -> value text, in spec order
};

struct SweepSpec {
  std::string name;     // "name:" in the spec, else the file's stem
  std::string path;
  std::string text;     // the spec verbatim, for the report
  std::string baseline = "completion_only";  // "baseline:" in the spec: what the report compares against
  std::vector<std::string> factors;          // factor names in spec order (conditions first, then the grid)
  std::vector<SweepRun> runs;                // in expansion order, duplicates removed
  // "pretrain:" in the spec: the base every run starts from. Each run's
  // model.init_from is then base_init_token(*base) (config.yaml gets the path).
  std::optional<SweepBase> base;
  std::vector<int> seeds;    // the values of the grid's `seed` factor; empty when the spec has none
  nlohmann::json until_ci;   // `sweep --until-ci`: the stopping rule and what stopped it; null otherwise
  SlurmSettings slurm;       // "slurm:" in the spec: what `sweep --slurm` writes into its scripts
};

// Parses and expands a spec. Every run's config is validated and its
// strategy parsed up front, so a bad key or spec fails before anything runs,
// naming the spec file and line. Non-empty `seeds` replace the values of the
// grid's `seed` factor (`sweep --until-ci` adds seeds in rounds); a spec
// without one is then an error.
SweepSpec load_sweep_spec(const std::string& path, const std::vector<int>& seeds = {});
// As load_sweep_spec, on the text of a spec: `path` names it in errors and gives the default name.
SweepSpec parse_sweep_spec(const std::string& text, const std::string& path, const std::vector<int>& seeds = {});

// "factor=value ...": a run's factors, for progress lines and messages.
std::string describe(const SweepRun& run);

// The run id of a config: every key but train.threads and train.device,
// which change speed (and where the run trains), not results.
std::string run_id(const Config& config);

// "K/N" -> the runs whose index i satisfies i % N == K-1; every run lands in exactly one shard.
std::pair<int, int> parse_shard(const std::string& text);
std::vector<const SweepRun*> shard_runs(const SweepSpec& spec, int k, int n);

// DIR/sweep.json: what the report reads. Identical for every shard of a sweep.
nlohmann::json sweep_manifest(const SweepSpec& spec);

struct SweepOptions {
  std::string out_dir;
  int jobs = 1;                 // runs at once; CPU threads are divided between them
  // --devices: one run at a time on each (jobs = devices.size()), each child
  // given `--device D`; a device a run cannot use is retired and the run
  // goes back to the queue. Empty: every child trains on its config's device.
  std::vector<std::string> devices;
  int shard_k = 1, shard_n = 1;
  bool dry_run = false;
  bool retry_failed = false;    // rerun runs recorded as failed or timeout (not diverged: that is a result)
  double run_timeout = 0;       // seconds a run may take before it is killed and recorded as timeout; 0: no limit
  std::string masklab_binary;   // the executable that runs each `masklab train`
};

// Prepares the spec's base first (prepare_base: a failed stage returns 1
// and starts no run), then runs every pending run of this shard (those
// without metrics.json) and returns the process exit status: 0 when every
// run of the shard is ok. Each run is claimed (RunClaim, a flock on
// DIR/runs/<id>/claim.lock) before it is launched: a run another sweep holds
// is left to it, and a run found finished once claimed is not run again, so a
// finished record is never removed or rewritten by a launch.
int run_sweep(const SweepSpec& spec, const SweepOptions& options);

}  // namespace masklab
