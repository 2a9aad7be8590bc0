#include "harness/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

#include <fmt/format.h>

#include "harness/train/batching.hpp"
#include "harness/core/errors.hpp"
#include "harness/train/evaluator.hpp"
#include "harness/core/hashing.hpp"
#include "harness/train/loss.hpp"
#include "harness/train/model.hpp"
#include "harness/core/run_record.hpp"
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

int resolve_threads(const Config& config) {
  if (config.train.threads > 0) return config.train.threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace masklab

// OpenBLAS's thread control, when the BLAS behind LibTorch is OpenBLAS.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace masklab {

void apply_thread_policy(int threads) {
  if (openblas_set_num_threads != nullptr) {
    openblas_set_num_threads(threads);
    torch::set_num_threads(1);
  } else {
    torch::set_num_threads(threads);
  }
}

double learning_rate_at(const TrainConfig& t, int step) {
  if (t.warmup_steps > 0 && step < t.warmup_steps) return t.lr * (step + 1) / t.warmup_steps;
  const int decay_steps = std::max(1, t.steps - t.warmup_steps);
  const double progress = std::clamp(static_cast<double>(step - t.warmup_steps) / decay_steps, 0.0, 1.0);
  const double min_lr = t.lr * t.min_lr_ratio;
  return min_lr + 0.5 * (t.lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

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

nlohmann::json eval_json(const EvalResult& held_out, const EvalResult& train_subset,
                         const std::vector<std::string>& tasks) {
  nlohmann::json out;
  out["eval"] = held_out.overall.to_json();
  const auto seen = train_subset.overall.to_json();
  out["train"] = {{"completion_nll", seen["completion_nll"]},
                  {"completion_token_accuracy", seen["completion_token_accuracy"]},
                  {"exact_match", seen["exact_match"]}};
  nlohmann::json per_task = nlohmann::json::object();
  for (size_t i = 0; i < tasks.size(); ++i) {
    auto m = held_out.per_task[i].to_json();
    const auto tm = train_subset.per_task[i].to_json();
    m["train_completion_nll"] = tm["completion_nll"];
    m["train_exact_match"] = tm["exact_match"];
    per_task[tasks[i]] = m;
  }
  out["per_task"] = per_task;
  return out;
}

// A few held-out examples per task, greedy-decoded, for reading by eye.
void write_samples(Transformer& model, const Dataset& dataset, int per_task, const torch::Device& device,
                   const std::string& path) {
  std::string lines;
  std::vector<int> taken(dataset.tasks.size(), 0);
  const Tokenizer& tok = *dataset.tokenizer;
  for (const auto& ex : dataset.eval) {
    if (taken[ex.task] >= per_task) continue;
    ++taken[ex.task];
    const std::vector<std::int32_t> prompt(ex.ids.begin(), ex.ids.begin() + ex.completion_begin);
    const std::vector<std::int32_t> reference(ex.ids.begin() + ex.completion_begin, ex.ids.begin() + ex.completion_end);
    const auto generated =
        greedy_decode(model, ex, static_cast<int>(reference.size()), tok.eos_id(), device);
    lines += nlohmann::json{{"task", dataset.tasks[ex.task]},
                            {"prompt", tok.decode(prompt)},
                            {"reference", tok.decode(reference)},
                            {"generated", tok.decode(generated)},
                            {"exact", generated == reference}}
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
             "\n";
  }
  write_file_atomic(path, lines);
}

// Host -> device without a host sync: a copy from pinned memory is
// asynchronous (from pageable memory it is not). A no-op on the CPU.
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device) {
  if (!device.is_cuda()) return t;
  return t.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace

StepLoss forward_backward(Transformer& model, const std::vector<Batch>& micro_batches, const Strategy& strategy,
                          Normalization normalization, double progress, int64_t chunk_size,
                          const torch::Device& device) {
  // Weights: the strategy sees labels only; the denominators span every micro-batch.
  std::vector<torch::Tensor> weights, segments;
  for (const auto& b : micro_batches) {
    weights.push_back(strategy.weights(LabelView{b.label_role, b.label_flags, progress}));
    segments.push_back(b.segment_ids);
  }
  const auto coeffs = normalize_step(weights, segments, normalization);

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

TrainJob make_train_job(const Config& config, const Dataset& dataset) {
  validate(config);
  TrainJob job;
  job.config = config;
  job.strategy = make_strategy(config.strategy);
  job.normalization = config.loss.normalization;
  job.device = resolve_device(config.train.device);
  job.threads = resolve_threads(config);
  apply_thread_policy(job.threads);
  if (job.device.is_cuda()) {
    // TF32 for the fp32 matmuls that remain (optimizer-side, head gradients).
    at::globalContext().setAllowTF32CuBLAS(true);
    at::globalContext().setAllowTF32CuDNN(true);
  }
  const auto seed = static_cast<std::uint64_t>(config.seed);
  // Dropout draws from the global generator; seed it from the run seed alone.
  torch::manual_seed(derive_seed(seed, "dropout"));
  const int vocab = std::max(dataset.tokenizer->vocab_size(), config.model.vocab_size);
  job.model = Transformer(config.model, vocab);
  job.model->initialize(derive_seed(seed, "init"));
  if (!config.model.init_from.empty()) load_parameters(*job.model, config.model.init_from);
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

  // 1. batch: the next batch_size * grad_accum examples in the run's order.
  const int pad_id = dataset.tokenizer->pad_id();
  std::vector<Batch> micro;
  StepResult out;
  for (int m = 0; m < tc.grad_accum; ++m) {
    std::vector<const TokenizedExample*> examples;
    for (int i = 0; i < tc.batch_size; ++i) {
      const auto idx = job.order->next();
      job.order_hash.add_value(idx);
      examples.push_back(&dataset.train[idx]);
    }
    micro.push_back(job.config.data.packing ? make_packed_batch(examples, pad_id, job.config.data.pack_len)
                                            : make_padded_batch(examples, pad_id));
    out.tokens_seen += micro.back().real_tokens;
    out.tokens_total += micro.back().total_tokens;
  }

  // 2 + 3. weights (strategy, step-wide normalization), forward, backward.
  const double progress = tc.steps > 1 ? static_cast<double>(step) / (tc.steps - 1) : 0.0;
  job.optimizer->zero_grad();
  const StepLoss loss = forward_backward(job.model, micro, *job.strategy, job.normalization, progress,
                                         job.config.loss.chunk_size, job.device);
  out.loss = loss.loss;
  out.tokens_trained = loss.tokens_trained;

  // 4. clip, update.
  if (tc.grad_clip > 0) clip_gradients(job.params, tc.grad_clip);
  job.optimizer->step();
  return out;
}

nlohmann::json train_run(const Config& config, const Dataset& dataset, const TrainOptions& options) {
  const auto wall_start = Clock::now();
  const std::string start_time = iso_time_now();
  const TrainConfig& tc = config.train;

  // ---- setup: everything that can fail because of the config fails here ----
  TrainJob job = make_train_job(config, dataset);
  Transformer& model = job.model;
  const torch::Device device = job.device;

  std::filesystem::create_directories(options.out_dir);
  const std::string dir = options.out_dir + "/";
  std::filesystem::remove(dir + "metrics.json");  // a stale one would mark this run finished
  write_file_atomic(dir + "config.yaml", to_yaml(config));
  CurveWriter curve(dir + "curve.jsonl");

  std::vector<const TokenizedExample*> held_out, train_subset;
  for (const auto& ex : dataset.eval) held_out.push_back(&ex);
  for (auto i : dataset.train_eval) train_subset.push_back(&dataset.train[i]);
  const int pad_id = dataset.tokenizer->pad_id();
  const int64_t chunk = config.loss.chunk_size;
  auto run_eval = [&] {
    const auto held = evaluate(model, held_out, dataset.tasks.size(), pad_id, config.eval.batch_size, chunk, device);
    const auto seen = evaluate(model, train_subset, dataset.tasks.size(), pad_id, config.eval.batch_size, chunk, device);
    return eval_json(held, seen, dataset.tasks);
  };

  std::string status = "ok", error;
  int steps_done = 0;
  long long tokens_trained = 0, tokens_seen = 0, tokens_total = 0;
  auto loss_since_log = torch::zeros({}, torch::TensorOptions().device(device));  // stays on device
  int steps_since_log = 0;
  double last_logged_loss = std::nan("");
  double train_seconds = 0;
  nlohmann::json final_eval;
  Progress* progress = options.progress;

  try {
    if (tc.eval_every > 0) {
      auto point = run_eval();
      point["step"] = 0;
      point["train_loss"] = nullptr;
      point["lr"] = 0.0;
      curve.append(point);
    }
    const auto train_start = Clock::now();
    for (int step = 0; step < tc.steps; ++step) {
      const StepResult result = train_step(job, dataset, step);
      tokens_trained += result.tokens_trained;
      tokens_seen += result.tokens_seen;
      tokens_total += result.tokens_total;
      loss_since_log.add_(result.loss);
      ++steps_done;
      ++steps_since_log;

      // After the step: log, check, evaluate. On CUDA these are the only host syncs.
      const bool last = step + 1 == tc.steps;
      const bool log_now = device.is_cpu() || last || steps_done % tc.log_every == 0;
      const bool eval_now = tc.eval_every > 0 && steps_done % tc.eval_every == 0 && !last;
      if (log_now || eval_now) {
        const double mean_loss = loss_since_log.item<double>() / std::max(1, steps_since_log);
        if (!std::isfinite(mean_loss)) {
          status = "diverged";
          error = fmt::format("non-finite loss at step {}", steps_done);
          break;
        }
        const double elapsed = seconds_since(train_start);
        const double tok_s = tokens_seen / std::max(elapsed, 1e-9);
        const double eta = elapsed / steps_done * (tc.steps - steps_done);
        if (progress && (steps_done % tc.log_every == 0 || last || progress->interactive())) {
          const std::string text = fmt::format("step {}/{}  loss {:.4f}  lr {:.2e}  {:.0f} tok/s  ETA {}", steps_done,
                                               tc.steps, mean_loss, learning_rate_at(tc, step), tok_s,
                                               format_duration(eta));
          if (progress->interactive()) progress->status(text);
          else if (steps_done % tc.log_every == 0 || last) progress->line(text);
        }
        last_logged_loss = mean_loss;
        loss_since_log.zero_();
        steps_since_log = 0;
      }
      if (eval_now) {
        auto point = run_eval();
        point["step"] = steps_done;
        point["train_loss"] = last_logged_loss;
        point["lr"] = learning_rate_at(tc, steps_done - 1);
        curve.append(point);
        if (progress) {
          progress->line(fmt::format("eval @ {}: completion_nll {:.4f}  exact_match {:.3f}", steps_done,
                                     point["eval"]["completion_nll"].is_number() ? point["eval"]["completion_nll"].get<double>() : NAN,
                                     point["eval"]["exact_match"].is_number() ? point["eval"]["exact_match"].get<double>() : NAN));
        }
      }
    }
    train_seconds = seconds_since(train_start);
    if (progress) progress->finish();
    if (status == "ok") {
      final_eval = run_eval();
      auto point = final_eval;
      point["step"] = steps_done;
      point["train_loss"] = last_logged_loss;
      point["lr"] = learning_rate_at(tc, std::max(0, steps_done - 1));
      curve.append(point);
      if (options.save_model) save_parameters(*model, dir + "model.pt");
      write_samples(model, dataset, config.eval.samples, device, dir + "samples.jsonl");
    }
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    // A runtime failure (out of memory, a LibTorch error): record it, keep going.
    status = "failed";
    std::string what = e.what();
    error = what.substr(0, what.find('\n'));
  }

  nlohmann::json metrics;
  metrics["status"] = status;
  metrics["error"] = error.empty() ? nlohmann::json() : nlohmann::json(error);
  metrics["strategy"] = job.strategy->spec();
  metrics["role_weights"] = role_weights_record(*job.strategy);
  metrics["seed"] = config.seed;
  metrics["steps"] = steps_done;
  metrics["steps_planned"] = tc.steps;
  metrics["tokens_trained"] = tokens_trained;
  metrics["tokens_seen"] = tokens_seen;
  metrics["padding_waste"] = tokens_total ? 1.0 - static_cast<double>(tokens_seen) / tokens_total : 0.0;
  metrics["final_train_loss"] = std::isfinite(last_logged_loss) ? nlohmann::json(last_logged_loss) : nlohmann::json();
  metrics["train_seconds"] = train_seconds;
  metrics["tokens_per_second"] = train_seconds > 0 ? tokens_seen / train_seconds : 0.0;
  if (!final_eval.is_null()) {
    for (const auto& [k, v] : final_eval.items()) metrics[k] = v;
  }
  const auto& st = dataset.stats;
  metrics["data"] = {{"fingerprint", dataset.fingerprint},
                     {"tasks", dataset.tasks},
                     {"train_examples", dataset.train.size()},
                     {"eval_examples", dataset.eval.size()},
                     {"invalid_skipped", st.load.invalid_skipped},
                     {"truncated", st.truncation.truncated},
                     {"skipped_too_long", st.truncation.skipped_too_long},
                     {"earlier_turn_tokens_dropped", st.truncation.earlier_turn_tokens_dropped},
                     {"straddling_tokens", st.truncation.straddling_tokens}};
  metrics["same_job"] = {{"init_hash", job.init_hash},
                         {"order_hash", job.order_hash.hex()},
                         {"data_fingerprint", dataset.fingerprint}};
  auto prov = provenance(device.str(), job.threads);
  prov["start_time"] = start_time;
  prov["end_time"] = iso_time_now();
  metrics["provenance"] = prov;
  metrics["wall_seconds"] = seconds_since(wall_start);
  write_file_atomic(dir + "metrics.json", metrics.dump(2) + "\n");
  return metrics;
}

}  // namespace masklab
