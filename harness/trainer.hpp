#pragma once
// One training run: resolved config + dataset -> run record. The whole step
// (batch -> weights -> forward -> loss -> backward -> step) is visible in
// train_run() in trainer.cpp.
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "harness/batching.hpp"
#include "harness/config.hpp"
#include "harness/hashing.hpp"
#include "harness/data.hpp"
#include "harness/loss.hpp"
#include "harness/model.hpp"
#include "harness/progress.hpp"
#include "strategies/strategy.hpp"

namespace masklab {

// "auto" -> CUDA when available; "cpu", "cuda", "cuda:N". UserError when CUDA
// is asked for and absent.
torch::Device resolve_device(const std::string& spec);

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
  bool save_model = false;      // write DIR/model.pt
  Progress* progress = nullptr; // where to report; null = silent
};

// Runs the job and writes the record. Returns the contents of metrics.json.
// A NaN/inf loss ends the run with status "diverged"; a runtime failure
// (out of memory, a LibTorch error) with status "failed"; both are recorded
// in metrics.json rather than thrown. Config and data errors found before
// training starts throw UserError and write no metrics.json.
nlohmann::json train_run(const Config& config, const Dataset& dataset, const TrainOptions& options);

// Everything a run's optimizer steps share, set up once from the config: the
// same for every strategy but the strategy itself (invariant 3).
struct TrainJob {
  Config config;
  std::unique_ptr<Strategy> strategy;
  Normalization normalization = Normalization::kWeightSum;
  torch::Device device = torch::kCPU;
  int threads = 1;
  Transformer model{nullptr};
  std::string init_hash;  // hash of the initial weights, before any step
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<torch::Tensor> params;
  std::unique_ptr<ExampleOrder> order;
  Fnv1a order_hash;       // hash of every example index drawn, in order
};

// Validates the config, resolves the device and threads, seeds, builds and
// initializes the model (or loads model.init_from), the optimizer and the
// example order. Throws UserError for config problems.
TrainJob make_train_job(const Config& config, const Dataset& dataset);

struct StepResult {
  torch::Tensor loss;            // the step's loss (scalar, on the device; no sync)
  long long tokens_trained = 0;  // positions with nonzero weight
  long long tokens_seen = 0;     // positions holding an example token
  long long tokens_total = 0;    // positions including padding
};

// One optimizer step: the next batch_size * grad_accum examples, the
// strategy's weights normalized over the step, forward and backward, clip,
// AdamW with the scheduled learning rate.
StepResult train_step(TrainJob& job, const Dataset& dataset, int step);

struct StepLoss {
  torch::Tensor loss;            // the step's loss (scalar, on the device; no sync)
  long long tokens_trained = 0;  // positions with nonzero weight
};

// Steps 2 and 3 of a training step: the strategy's weights for every
// micro-batch, normalized over the whole step, then forward and backward
// micro-batch by micro-batch (gradients accumulate in the parameters).
StepLoss forward_backward(Transformer& model, const std::vector<Batch>& micro_batches, const Strategy& strategy,
                          Normalization normalization, double progress, int64_t chunk_size,
                          const torch::Device& device);

// Linear warmup to train.lr, then cosine decay to lr * min_lr_ratio.
double learning_rate_at(const TrainConfig& train, int step);

}  // namespace masklab
