#include "harness/train/trainer.hpp"

#include <cmath>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/hashing.hpp"
#include "harness/train/adamw.hpp"
#include "harness/train/batching.hpp"
#include "harness/train/loss.hpp"
#include "harness/train/model.hpp"
#include "strategies/labels.hpp"
#include "strategies/registry.hpp"

namespace masklab {

torch::Device resolve_device(const DeviceSetting& setting) {
  const bool has_cuda = torch::cuda::is_available();
  if (setting.kind == DeviceKind::kCpu || (setting.kind == DeviceKind::kAuto && !has_cuda)) return torch::kCPU;
  if (setting.kind == DeviceKind::kAuto) return torch::Device(torch::kCUDA, 0);
  const std::string name = device_name(setting);
  if (!has_cuda) throw UserError("train.device '" + name + "': this LibTorch build has no usable CUDA device");
  if (setting.index >= static_cast<int>(torch::cuda::device_count())) {
    throw UserError(fmt::format("train.device '{}': only {} CUDA device(s)", name, torch::cuda::device_count()));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(setting.index));
}

double training_progress(const TrainConfig& t, int step) {
  return t.steps > 1 ? static_cast<double>(step) / (t.steps - 1) : 0.0;
}

double learning_rate_at(const TrainConfig& t, int step) {
  if (t.warmup_steps > 0 && step < t.warmup_steps) return t.lr * (step + 1) / t.warmup_steps;
  const int decay_steps = std::max(1, t.steps - t.warmup_steps);
  const double progress = std::clamp(static_cast<double>(step - t.warmup_steps) / decay_steps, 0.0, 1.0);
  const double min_lr = t.lr * t.min_lr_ratio;
  return min_lr + 0.5 * (t.lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

namespace {

// AdamW with two groups: matrices decay, 1-D parameters (norm gains, biases) do not.
std::unique_ptr<torch::optim::AdamW> make_optimizer(Transformer& model, const TrainConfig& t) {
  std::vector<torch::Tensor> decay, no_decay;
  for (auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(t.lr).betas({t.beta1, t.beta2}).eps(t.eps).weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(t.weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(t.lr));
}

// Global-norm clipping that stays on the device: clip_grad_norm_ returns a
// double, which would sync the host every step.
void clip_gradients(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.grad().defined()) norms.push_back(p.grad().norm(2).to(torch::kFloat));
  }
  if (norms.empty()) return;
  const auto total = torch::stack(norms).norm(2);
  const auto scale = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (const auto& p : params) {
    if (p.grad().defined()) p.grad().mul_(scale.to(p.grad().scalar_type()));
  }
}

// Host -> device without a host sync: a copy from pinned memory is
// asynchronous (from pageable memory it is not). A no-op on the CPU.
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device) {
  if (!device.is_cuda()) return t;
  return t.pin_memory().to(device, /*non_blocking=*/true);
}

// A data-parallel rank's share of one micro-batch: example i goes to rank
// i % world, so that uneven lengths spread over the ranks and a micro-batch
// that does not divide by the ranks still trains every example once.
std::vector<const TokenizedExample*> rank_share(const std::vector<const TokenizedExample*>& examples,
                                                const DistContext& dist) {
  if (dist.world() == 1) return examples;
  std::vector<const TokenizedExample*> share;
  for (size_t i = static_cast<size_t>(dist.rank()); i < examples.size(); i += static_cast<size_t>(dist.world())) {
    share.push_back(examples[i]);
  }
  return share;
}

// Sums over the ranks what each computed on its share: the gradients (one
// flat buffer, so one all-reduce), the loss and the token counts. A parameter
// whose gradient no rank formed stays without one, as in a single process
// (AdamW then skips it).
void sum_over_ranks(const DistContext& dist, const std::vector<torch::Tensor>& params, StepResult& out) {
  if (dist.world() == 1) return;
  std::vector<torch::Tensor> parts;
  for (const auto& p : params) {
    parts.push_back(p.grad().defined() ? p.grad().flatten().to(torch::kFloat)
                                       : torch::zeros({p.numel()}, p.options().dtype(torch::kFloat)));
  }
  std::vector<float> formed;
  for (const auto& p : params) formed.push_back(p.grad().defined() ? 1.0f : 0.0f);
  parts.push_back(out.loss.to(torch::kFloat).view({1}));
  parts.push_back(torch::tensor(formed).to(out.loss.device()));
  const auto flat = torch::cat(parts);
  dist.allreduce_sum(flat);
  const auto formed_anywhere = flat.slice(0, flat.numel() - static_cast<int64_t>(params.size())).gt(0).cpu();
  int64_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    const auto grad = flat.slice(0, offset, offset + p.numel()).view_as(p).to(p.scalar_type());
    offset += p.numel();
    if (p.grad().defined()) p.mutable_grad().copy_(grad);
    else if (formed_anywhere[static_cast<int64_t>(i)].item<bool>()) p.mutable_grad() = grad.clone();
  }
  out.loss = flat[offset].to(out.loss.scalar_type());
  const auto counts = torch::tensor({static_cast<double>(out.tokens_trained), static_cast<double>(out.tokens_seen),
                                     static_cast<double>(out.tokens_total)},
                                    torch::kDouble);
  dist.allreduce_sum(counts);
  out.tokens_trained = static_cast<long long>(counts[0].item<double>());
  out.tokens_seen = static_cast<long long>(counts[1].item<double>());
  out.tokens_total = static_cast<long long>(counts[2].item<double>());
}

// Every rank starts from rank 0's weights. They are identical already (the
// same seed, the same init_from file); broadcasting once makes it certain at
// the cost of one copy of the model.
void start_from_rank0_weights(const DistContext& dist, Transformer& model) {
  if (dist.world() == 1) return;
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) dist.broadcast(p.data(), /*root=*/0);
}

}  // namespace

StepLoss forward_backward(Transformer& model, const std::vector<Batch>& micro_batches, const Strategy& strategy,
                          Normalization normalization, double progress, int64_t chunk_size,
                          const torch::Device& device, const DistContext& dist) {
  // Weights: the strategy sees labels only; the denominators span every micro-batch.
  std::vector<torch::Tensor> weights, segments;
  for (const auto& b : micro_batches) {
    weights.push_back(strategy.weights(LabelView{b.label_role, b.label_flags, progress}));
    segments.push_back(b.segment_ids);
  }
  std::optional<double> step_denominator_all_ranks;
  if (dist.world() > 1) {
    const auto denominator = torch::full({1}, step_denominator(weights, segments, normalization), torch::kDouble);
    dist.allreduce_sum(denominator);
    step_denominator_all_ranks = denominator.item<double>();
  }
  const auto coeffs = normalize_step(weights, segments, normalization, step_denominator_all_ranks);

  StepLoss out;
  out.loss = torch::zeros({}, torch::TensorOptions().device(device));
  for (size_t m = 0; m < micro_batches.size(); ++m) {
    const Batch& b = micro_batches[m];
    const LossRows rows = select_loss_rows(coeffs[m], b.targets);  // on the CPU: no device sync
    out.tokens_trained += rows.index.numel();
    const int64_t B = b.input_ids.size(0), T = b.input_ids.size(1);
    const auto index = to_device(rows.index, device);
    const auto input_ids = to_device(b.input_ids, device), position_ids = to_device(b.position_ids, device);
    const auto segment_ids = b.packed ? to_device(b.segment_ids, device) : torch::Tensor();
    // The LM head runs only at rows that carry weight. When they are few (the
    // prompt carries none), so does the last block: it computes only there.
    const bool few_rows = rows.index.numel() * 2 <= b.real_tokens;
    const auto selected = few_rows ? model->forward(input_ids, position_ids, segment_ids, index)  // (N, C)
                                   : model->forward(input_ids, position_ids, segment_ids)        // (B, T, C)
                                         .reshape({B * T, -1})
                                         .index_select(0, index);
    const auto loss = weighted_nll(selected, model->head_weight(), to_device(rows.targets, device),
                                   to_device(rows.coeff, device), chunk_size);
    loss.backward();
    out.loss.add_(loss.detach());
  }
  return out;
}

void require_trained_tokens(const Strategy& strategy, const Config& config, const Dataset& dataset) {
  // A schedule can weigh nothing at the start and something later, so the
  // first, middle and last steps are all asked; chunks keep the padded rows small.
  constexpr size_t kChunk = 256;
  const int pad_id = dataset.tokenizer->pad_id();
  for (const int step : {0, config.train.steps / 2, std::max(0, config.train.steps - 1)}) {
    const double progress = training_progress(config.train, step);
    for (size_t start = 0; start < dataset.train.size(); start += kChunk) {
      std::vector<const TokenizedExample*> chunk;
      for (size_t i = start; i < std::min(dataset.train.size(), start + kChunk); ++i) chunk.push_back(&dataset.train[i]);
      const Batch b = make_padded_batch(chunk, pad_id);
      if (strategy.weights(LabelView{b.label_role, b.label_flags, progress}).gt(0).any().item<bool>()) return;
    }
  }
  const std::string data = config.data.train.empty() ? std::string("data.tasks") : config.data.train;
  throw UserError("strategy '" + strategy.spec() + "': no training token of " + data +
                  " has a weight above 0 under it (nothing to train on)");
}

TrainJob make_train_job(const Config& config, const Dataset& dataset, const DistEnv& dist_env) {
  validate(config);
  check_world_fits(config.train, dist_env.world);
  TrainJob job;
  job.config = config;
  job.strategy = make_strategy(config.strategy);
  require_trained_tokens(*job.strategy, config, dataset);
  job.normalization = config.loss.normalization;
  job.device = resolve_device(config.train.device);
  if (job.device.is_cuda() && dist_env.world > 1) {
    // One device per rank on a machine, whichever train.device named.
    job.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(dist_env.local_rank %
                                                                           torch::cuda::device_count()));
  }
  job.dist = DistContext::connect(dist_env, job.device.is_cuda());
  job.threads = resolve_threads(config);
  apply_thread_policy(job.threads);
  if (job.device.is_cuda()) {
    // TF32 for the fp32 matmuls that remain (optimizer-side, head gradients).
    at::globalContext().setAllowTF32CuBLAS(true);
    at::globalContext().setAllowTF32CuDNN(true);
  }
  const auto seed = static_cast<std::uint64_t>(config.seed);
  // Dropout draws from the global generator; seed it from the run seed alone
  // (and, past rank 0 of a data-parallel run, the rank: each rank's share
  // gets its own masks).
  torch::manual_seed(job.dist.rank() == 0 ? derive_seed(seed, "dropout")
                                          : derive_seed(seed, "dropout/rank" + std::to_string(job.dist.rank())));
  const int vocab = std::max(dataset.tokenizer->vocab_size(), config.model.vocab_size);
  job.model = Transformer(config.model, vocab);
  job.model->initialize(derive_seed(seed, "init"));
  if (!config.model.init_from.empty()) load_parameters(*job.model, config.model.init_from);
  start_from_rank0_weights(job.dist, job.model);
  job.init_hash = parameters_hash(*job.model);
  job.model->to(job.device);
  if (job.device.is_cuda()) job.model->set_compute_dtype(torch::kBFloat16);
  job.optimizer = make_optimizer(job.model, config.train);
  job.params = job.model->parameters();
  job.order = std::make_unique<ExampleOrder>(training_order(config, dataset));
  return job;
}

StepResult train_step(TrainJob& job, const Dataset& dataset, int step) {
  const TrainConfig& tc = job.config.train;
  const double lr = learning_rate_at(tc, step);
  for (auto& group : job.optimizer->param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  }

  // 1. batch: the next batch_size * grad_accum examples in the run's order
  // (every rank draws them all: the order stays the run's), this rank's share.
  const int pad_id = dataset.tokenizer->pad_id();
  std::vector<Batch> micro;
  StepResult out;
  for (const auto& step_examples : draw_step(*job.order, dataset, tc, &job.order_hash)) {
    const auto examples = rank_share(step_examples, job.dist);
    micro.push_back(job.config.data.packing ? make_packed_batch(examples, pad_id, job.config.data.pack_len)
                                            : make_padded_batch(examples, pad_id));
    out.tokens_seen += micro.back().real_tokens;
    out.tokens_total += micro.back().total_tokens;
    for (const auto* ex : examples) out.example_positions.push_back(static_cast<int64_t>(ex->ids.size()) - 1);
  }

  // 2 + 3. weights (strategy, step-wide normalization), forward, backward.
  const double progress = training_progress(tc, step);
  job.optimizer->zero_grad();
  const StepLoss loss = forward_backward(job.model, micro, *job.strategy, job.normalization, progress,
                                         job.config.loss.chunk_size, job.device, job.dist);
  out.loss = loss.loss;
  out.tokens_trained = loss.tokens_trained;

  // 4. sum over the ranks, clip, update.
  sum_over_ranks(job.dist, job.params, out);
  if (tc.grad_clip > 0) clip_gradients(job.params, tc.grad_clip);
  adamw_step(*job.optimizer);
  return out;
}

}  // namespace masklab
