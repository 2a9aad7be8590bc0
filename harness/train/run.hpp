#pragma once
// One training run, as the CLI and the sweep runner see it: resolved config
// + dataset -> run record. Free of LibTorch headers, so callers compile fast;
// run.cpp implements it around the training step of trainer.hpp/.cpp.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "harness/core/config.hpp"
#include "harness/data/data.hpp"
#include "harness/data/eval_sets.hpp"
#include "harness/core/progress.hpp"
#include "harness/train/distributed.hpp"

namespace masklab {

// The compute thread count a run uses: train.threads, or every core.
int resolve_threads(const Config& config);

// Puts `threads` threads to work. Debian's LibTorch sends matmuls to
// OpenBLAS (pthreads), which parallelizes them itself; LibTorch's own OpenMP
// pool on top of it oversubscribes the cores (2-3x slower steps measured on
// 2 cores, see docs/performance.md). So when OpenBLAS is present, it gets
// the threads and LibTorch's intra-op pool one; otherwise LibTorch gets them.
void apply_thread_policy(int threads);

struct TrainOptions {
  std::string out_dir;          // the run record goes here (created if missing)
  bool save_model = false;      // write the Hugging Face folder DIR/model/
  Progress* progress = nullptr; // where to report; null = silent
  // config.eval.sets, loaded by a caller that must fail on a bad set before it
  // prints anything (cmd_train); null = train_run loads them itself.
  const std::vector<EvalSet>* eval_sets = nullptr;
  DistEnv dist;                 // which rank of a data-parallel run this process is (default: the only one)
  // True once the run should stop for preemption (SIGTERM, SIGUSR1): at the
  // next step boundary it writes a checkpoint and returns status
  // "preempted" without a metrics.json. Null = never.
  std::function<bool()> preempt_requested;
};

// Runs the job and writes the record. Returns the contents of metrics.json.
// A NaN/inf loss ends the run with status "diverged"; a runtime failure
// (out of memory, a LibTorch error) with status "failed"; both are recorded
// in metrics.json rather than thrown. Config and data errors found before
// training starts throw UserError and write no metrics.json. A valid
// checkpoint in DIR/checkpoint/ is resumed from (harness/train/resume.hpp);
// a preempted run returns {"status": "preempted", "steps": N} and leaves
// its checkpoint, not metrics.json.
// Data-parallel (options.dist of several ranks): rank 0 evaluates and writes
// the record; every other rank trains its share of each step, writes nothing
// and returns {"status", "rank"} when the steps are done (it does not wait
// for rank 0's evaluation, which may outlast any collective's timeout).
nlohmann::json train_run(const Config& config, const Dataset& dataset, const TrainOptions& options);

}  // namespace masklab
