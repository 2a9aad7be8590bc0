#pragma once
// The training checkpoint a preempted run resumes from (docs/design.md,
// "Preemption and resume"). RUN_DIR/checkpoint/step-NNNNNNNN/ holds
//   tensors.pt     the weights ("model.<name>"), the global generators'
//                  states ("rng.cpu", and "rng.cuda" on CUDA: dropout draws
//                  from them), the example order's epoch ("order") and the
//                  device-side loss sum since the last log ("loss_since_log"),
//                  a {name: tensor} dict that python's torch.load reads;
//   optimizer.pt   AdamW's state of both parameter groups (exp_avg,
//                  exp_avg_sq, step), as LibTorch's torch::save writes it;
//   state.json     the format, the config hash, the step, the order's
//                  position and next seed, the order hash, the loop's
//                  counters and curve.jsonl's points up to the step;
//   manifest.json  written last: each file's size and FNV-1a hash.
// A checkpoint is written into a temporary directory, each file fsynced,
// then renamed into place; older ones are removed only after that (unless
// train.keep_checkpoints). Resuming restores all of it, so a resumed run on
// the CPU gives the uninterrupted run's numbers bit for bit.
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "harness/core/config.hpp"
#include "harness/train/trainer.hpp"

namespace masklab {

// What the training loop accumulates between steps; a checkpoint carries it.
struct LoopState {
  int steps_done = 0;
  long long tokens_trained = 0, tokens_seen = 0, tokens_total = 0;
  torch::Tensor loss_since_log;  // summed on the device: reading it is the host sync
  int steps_since_log = 0;
  double last_logged_loss = std::nan("");
  double train_seconds = 0;            // training time so far, over every process of the run
  std::vector<nlohmann::json> curve;   // curve.jsonl's points so far, in order
};

// Bumped whenever what a checkpoint holds changes; another format is refused.
constexpr int kCheckpointFormat = 1;

// RUN_DIR/checkpoint: the folder of a run's checkpoints.
std::string checkpoint_dir(const std::string& run_dir);

// FNV-1a of the resolved config without the keys that change speed or
// bookkeeping but not numbers (train.threads, train.checkpoint_every,
// train.keep_checkpoints): a checkpoint resumes only a run of the same hash.
std::string checkpoint_config_hash(const Config& config);

// Writes RUN_DIR/checkpoint/step-<loop.steps_done>/ atomically and, unless
// train.keep_checkpoints, then removes every other checkpoint. Throws
// std::runtime_error naming the path and the OS error when a write fails.
void save_checkpoint(const std::string& run_dir, const TrainJob& job, const LoopState& loop);

// Restores `job` (weights, AdamW, generators, order, order hash) and `loop`
// from the newest checkpoint in RUN_DIR/checkpoint/ that is whole and of
// this config, and returns its step. Each refused one (unreadable, a bad
// checksum, truncated, another config or format) is reported to `refused`
// as one line naming its path and why, and the next older one is tried;
// nullopt when none is left (start from step 0). A refused checkpoint
// leaves `job` and `loop` untouched.
std::optional<int> resume_from_checkpoint(const std::string& run_dir, TrainJob& job, LoopState& loop,
                                          const std::function<void(const std::string&)>& refused);

// Removes RUN_DIR/checkpoint/ (a finished run needs none).
void remove_checkpoints(const std::string& run_dir);

}  // namespace masklab
