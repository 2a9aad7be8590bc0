#pragma once
// The training job's LibTorch side: device, model, optimizer, the step
// (batch -> weights -> forward -> loss -> backward -> update, in train_step()
// in trainer.cpp). harness/train/run.hpp is its LibTorch-free face.
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "harness/train/batching.hpp"
#include "harness/core/config.hpp"
#include "harness/core/hashing.hpp"
#include "harness/data/data.hpp"
#include "harness/train/distributed.hpp"
#include "harness/train/loss.hpp"
#include "harness/train/model.hpp"
#include "harness/core/progress.hpp"
#include "harness/train/run.hpp"
#include "strategies/strategy.hpp"

namespace masklab {

// "auto" -> CUDA when available; "cpu", "cuda", "cuda:N". UserError when CUDA
// is asked for and absent.
torch::Device resolve_device(const DeviceSetting& setting);

// Everything a run's optimizer steps share, set up once from the config: the
// same for every strategy but the strategy itself (docs/design.md, invariant 3).
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
  DistContext dist;       // the data-parallel group; world 1: none
};

// Throws UserError naming the strategy and the data when no training token
// has a weight above 0 under it at any point of training (every assistant
// turn "weight": 0, wit:0,0, last_turn_only where every final turn is
// masked): such a run would train on nothing (loss 0) and be recorded ok.
void require_trained_tokens(const Strategy& strategy, const Config& config, const Dataset& dataset);

// Validates the config, resolves the device and threads, seeds, builds and
// initializes the model (or loads model.init_from), the optimizer and the
// example order. Throws UserError for config problems. With `dist_env` of
// several ranks it joins their process group (on CUDA, rank r takes device
// local_rank) and starts from rank 0's weights.
TrainJob make_train_job(const Config& config, const Dataset& dataset, const DistEnv& dist_env = {});

struct StepResult {
  torch::Tensor loss;            // the step's loss (scalar, on the device; no sync)
  long long tokens_trained = 0;  // positions with nonzero weight
  long long tokens_seen = 0;     // positions holding an example token
  long long tokens_total = 0;    // positions including padding
  std::vector<int64_t> example_positions;  // per example drawn: positions that predict a token
};

// One optimizer step: the next batch_size * grad_accum examples, the
// strategy's weights normalized over the step, forward and backward, clip,
// AdamW with the scheduled learning rate. Data-parallel: every rank draws the
// whole step and trains on its share of it (example i of each micro-batch on
// rank i % world); denominators, gradients, the loss and the token counts are
// summed over ranks, so every rank applies the update of the whole step and
// the result's counts and loss are the whole step's.
StepResult train_step(TrainJob& job, const Dataset& dataset, int step);

struct StepLoss {
  torch::Tensor loss;            // the step's loss (scalar, on the device; no sync)
  long long tokens_trained = 0;  // positions with nonzero weight
};

// Steps 2 and 3 of a training step: the strategy's weights for every
// micro-batch, normalized over the whole step, then forward and backward
// micro-batch by micro-batch (gradients accumulate in the parameters).
// With `dist` of several ranks the micro-batches are this rank's share, and
// the normalization's denominator is summed over the ranks first.
StepLoss forward_backward(Transformer& model, const std::vector<Batch>& micro_batches, const Strategy& strategy,
                          Normalization normalization, double progress, int64_t chunk_size,
                          const torch::Device& device, const DistContext& dist = DistContext());

// Linear warmup to train.lr, then cosine decay to lr * min_lr_ratio.
double learning_rate_at(const TrainConfig& train, int step);

// Training progress at `step`, 0 at the first step and 1 at the last: what
// a strategy's schedule follows (LabelView::progress).
double training_progress(const TrainConfig& train, int step);

}  // namespace masklab
