#include "harness/cli/bench.hpp"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <torch/torch.h>
#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define MASKLAB_HAVE_LEGACY_PROFILER 1
#endif

#include "harness/train/batching.hpp"
#include "harness/data/data_cache.hpp"
#include "harness/core/errors.hpp"
#include "harness/core/hashing.hpp"
#include "harness/train/generate.hpp"
#include "harness/train/model.hpp"
#include "harness/core/run_record.hpp"
#include "harness/train/trainer.hpp"
#include "strategies/labels.hpp"
#include "strategies/registry.hpp"

#if defined(MASKLAB_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/cuda.h>
#endif

namespace masklab {
namespace {

using Clock = std::chrono::steady_clock;

void synchronize(const torch::Device& device) {
#if defined(MASKLAB_CUDA)
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
#else
  (void)device;
#endif
}

// Resident memory of this process in bytes: current, or the peak since the last reset.
long long read_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::strlen(key)));
  }
  return 0;
}
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

struct Memory {
  double baseline_mb = 0;  // before the first timed step
  double peak_mb = 0;      // peak during the steps
};

void memory_start(const torch::Device& device, Memory& m) {
#if defined(MASKLAB_CUDA)
  if (device.is_cuda()) {
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
    m.baseline_mb = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index())
                        .allocated_bytes[0].current / 1048576.0;
    return;
  }
#endif
  (void)device;
  reset_peak_rss();
  m.baseline_mb = read_status_kb("VmRSS:") / 1024.0;
}

void memory_end(const torch::Device& device, Memory& m) {
#if defined(MASKLAB_CUDA)
  if (device.is_cuda()) {
    m.peak_mb = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index()).allocated_bytes[0].peak / 1048576.0;
    return;
  }
#endif
  (void)device;
  m.peak_mb = read_status_kb("VmHWM:") / 1024.0;
}

// Model FLOPs one step needs (forward + backward = 3x forward, 2 per
// multiply-add): every block for every token, except that the last block's
// output projection and MLP, and the LM head, matter only at the positions
// that carry loss; causal attention as each example needs it (6·C·n² per
// layer). Padding, packing waste and unneeded logits are not counted, so MFU
// measures how well the hardware does the necessary work.
double step_model_flops(const ModelConfig& c, int64_t vocab, const std::vector<int64_t>& example_positions,
                        long long loss_rows) {
  const double C = c.d_model, L = c.n_layers, F = static_cast<double>(resolved_d_ff(c));
  const double mlp = (c.mlp == MlpKind::kSwiGLU ? 3.0 : 2.0) * C * F;
  const double every_token = (L - 1) * (4.0 * C * C + mlp) + 3.0 * C * C;  // all blocks but the last's tail
  const double loss_token = C * C + mlp + C * static_cast<double>(vocab);    // last block's tail and the head
  double flops = 6.0 * loss_token * static_cast<double>(loss_rows);
  for (int64_t n : example_positions) {
    flops += 6.0 * every_token * static_cast<double>(n) + 6.0 * L * C * static_cast<double>(n) * static_cast<double>(n);
  }
  return flops;
}

std::string file_label(const std::string& spec) {
  std::string out;
  for (char c : spec) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.') ? c : '_';
  return out;
}

// The examples and label weights of every step, reconstructed from the run
// seed alone, as bench/reference_train.py needs them.
nlohmann::json export_steps(const Config& config, const Dataset& ds, const Strategy& strategy, int steps) {
  ExampleOrder order = training_order(config, ds);
  nlohmann::json out = nlohmann::json::array();
  for (int step = 0; step < steps; ++step) {
    const double progress = training_progress(config.train, step);
    nlohmann::json examples = nlohmann::json::array();
    for (const auto& micro : draw_step(order, ds, config.train)) {
      for (const TokenizedExample* ex : micro) {
        const Batch b = make_padded_batch({ex}, ds.tokenizer->pad_id());
        const auto w = strategy.weights(LabelView{b.label_role, b.label_flags, progress})[0].contiguous();
        examples.push_back({{"ids", ex->ids},
                            {"weights", std::vector<float>(w.data_ptr<float>(), w.data_ptr<float>() + w.numel())}});
      }
    }
    out.push_back({{"lr", learning_rate_at(config.train, step)}, {"examples", examples}});
  }
  return out;
}

// What bench/reference_train.py and bench/trl_peer.py need to train the
// identical job: the initial weights (the same for every strategy: same
// seed; the checkpoint folder too when the model starts from one), the model
// and optimizer settings, and every step's examples and weights.
void export_job(const TrainJob& job, const Dataset& ds, const BenchOptions& o) {
  const Config& c = job.config;
  const std::string dir = o.export_dir + "/" + file_label(job.strategy->spec());
  std::filesystem::create_directories(dir);
  save_parameters(*job.model, o.export_dir + "/init.pt");
  const nlohmann::json model = {{"n_layers", c.model.n_layers},   {"d_model", c.model.d_model},
                                {"n_heads", c.model.n_heads},     {"d_ff", resolved_d_ff(c.model)},
                                {"mlp", name_of(c.model.mlp)},    {"tie_embeddings", c.model.tie_embeddings},
                                {"rope_theta", c.model.rope_theta}, {"max_seq_len", c.model.max_seq_len}};
  const nlohmann::json train = {{"batch_size", c.train.batch_size}, {"grad_accum", c.train.grad_accum},
                                {"weight_decay", c.train.weight_decay}, {"beta1", c.train.beta1},
                                {"beta2", c.train.beta2}, {"eps", c.train.eps},
                                {"grad_clip", c.train.grad_clip}, {"warmup_steps", o.warmup_steps},
                                {"steps", o.steps}, {"threads", resolve_threads(c)}};
  const nlohmann::json meta = {{"strategy", job.strategy->spec()},
                               {"normalization", name_of(c.loss.normalization)},
                               {"init_from", c.model.init_from},  // a Hugging Face folder: bench/trl_peer.py trains it
                               {"vocab_size", job.model->vocab_size},
                               {"pad_id", ds.tokenizer->pad_id()},
                               {"model", model},
                               {"train", train},
                               {"steps", export_steps(c, ds, *job.strategy, o.warmup_steps + o.steps)}};
  write_file_atomic(dir + "/batches.json", meta.dump() + "\n");
}

// LibTorch's profiler over the timed steps, writing a Chrome trace when it
// ends; nothing when no path is given.
class ProfileScope {
 public:
  explicit ProfileScope(const std::string& path) {
    if (path.empty()) return;
#if defined(MASKLAB_HAVE_LEGACY_PROFILER)
    profile_ = std::make_unique<torch::autograd::profiler::RecordProfile>(path);
#else
    throw UserError("bench --profile: this LibTorch has no legacy profiler");
#endif
  }
  void stop() { profile_.reset(); }

 private:
#if defined(MASKLAB_HAVE_LEGACY_PROFILER)
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile_;
#else
  std::unique_ptr<int> profile_;
#endif
};

struct Timing {
  long long tokens = 0, tokens_trained = 0, tokens_total = 0;
  double flops = 0;
  double seconds = 0;
  Memory memory;
  std::vector<double> losses;  // warmup steps, then timed steps
};

// Warmup steps, then the timed steps; the losses are read only after the
// clock stops, so that no host sync falls inside the timing.
Timing time_steps(TrainJob& job, const Dataset& ds, const BenchOptions& o) {
  Timing t;
  for (int step = 0; step < o.warmup_steps; ++step) t.losses.push_back(train_step(job, ds, step).loss.item<double>());
  memory_start(job.device, t.memory);
  synchronize(job.device);
  std::vector<torch::Tensor> step_losses;
  ProfileScope profile(o.profile.empty() ? "" : o.profile + "." + file_label(job.strategy->spec()) + ".json");
  const auto t0 = Clock::now();
  for (int step = o.warmup_steps; step < o.warmup_steps + o.steps; ++step) {
    const StepResult r = train_step(job, ds, step);
    step_losses.push_back(r.loss);
    t.tokens += r.tokens_seen;
    t.tokens_trained += r.tokens_trained;
    t.tokens_total += r.tokens_total;
    t.flops += step_model_flops(job.config.model, job.model->vocab_size, r.example_positions, r.tokens_trained);
  }
  synchronize(job.device);
  t.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  profile.stop();
  memory_end(job.device, t.memory);
  for (const auto& l : step_losses) t.losses.push_back(l.item<double>());
  return t;
}

nlohmann::json bench_entry(const std::string& spec, const Timing& t, int steps, double peak) {
  return {{"strategy", spec},
          {"steps", steps},
          {"step_seconds", t.seconds / steps},
          {"tokens_per_second", t.tokens / t.seconds},
          {"loss_tokens_per_second", t.tokens_trained / t.seconds},
          {"padding_waste", t.tokens_total ? 1.0 - static_cast<double>(t.tokens) / t.tokens_total : 0.0},
          {"model_flops_per_second", t.flops / t.seconds},
          {"mfu", t.flops / t.seconds / peak},
          {"peak_memory_mb", t.memory.peak_mb},
          {"memory_baseline_mb", t.memory.baseline_mb},
          {"step_memory_mb", t.memory.peak_mb - t.memory.baseline_mb},
          {"losses", t.losses}};
}

// The held-out prompts of the first examples, each cut to its last
// (max_seq_len - new_tokens) tokens so that every row can take all new tokens.
std::vector<std::vector<std::int32_t>> decode_prompts(const Dataset& ds, int count, int new_tokens, int64_t max_seq_len) {
  const auto& pool = ds.eval.empty() ? ds.train : ds.eval;
  const auto room = static_cast<long>(std::max<int64_t>(1, max_seq_len - new_tokens));
  std::vector<std::vector<std::int32_t>> prompts;
  for (size_t i = 0; i < pool.size() && static_cast<int>(prompts.size()) < count; ++i) {
    const auto end = pool[i].ids.begin() + std::max<std::int32_t>(1, pool[i].completion_begin);
    prompts.emplace_back(std::max(pool[i].ids.begin(), end - room), end);
  }
  return prompts;
}

// Greedy decoding of one batch of prompts, with the KV cache and without
// (the whole prefix recomputed each step): tokens/s both ways. The tokens
// must be equal, or the bench fails.
nlohmann::json time_decoding(Transformer& model, const Dataset& ds, const BenchOptions& o, const torch::Device& device) {
  const auto prompts = decode_prompts(ds, o.decode_batch, o.decode_tokens, model->config.max_seq_len);
  std::vector<std::int64_t> index(prompts.size());
  for (size_t i = 0; i < index.size(); ++i) index[i] = static_cast<std::int64_t>(i);
  DecodeOptions options;
  options.max_new_tokens = o.decode_tokens;
  options.batch_size = o.decode_batch;
  DecodeStats warm, cached, uncached;
  generate(model, prompts, index, options, *ds.tokenizer, device, &warm);  // allocator and thread pools warm up
  const auto with_cache = generate(model, prompts, index, options, *ds.tokenizer, device, &cached);
  options.use_cache = false;
  const auto without = generate(model, prompts, index, options, *ds.tokenizer, device, &uncached);
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (with_cache[i].tokens != without[i].tokens) {
      throw std::runtime_error(fmt::format("bench: greedy decoding of prompt {} differs with and without the KV cache", i));
    }
  }
  return {{"prompts", prompts.size()},
          {"new_tokens", o.decode_tokens},
          {"generated_tokens", cached.generated_tokens},
          {"cache_tokens_per_second", cached.generated_tokens / cached.seconds},
          {"nocache_tokens_per_second", uncached.generated_tokens / uncached.seconds},
          {"cache_seconds", cached.seconds},
          {"nocache_seconds", uncached.seconds}};
}

}  // namespace

double measure_matmul_peak(const DeviceSetting& device_setting, int threads) {
  const torch::Device device = resolve_device(device_setting);
  apply_thread_policy(threads);
  torch::NoGradGuard no_grad;
  const int64_t n = device.is_cuda() ? 8192 : 1024;
  const auto dtype = device.is_cuda() ? torch::kBFloat16 : torch::kFloat;
  const auto a = torch::randn({n, n}, torch::TensorOptions().dtype(dtype).device(device));
  const auto b = torch::randn({n, n}, torch::TensorOptions().dtype(dtype).device(device));
  auto c = torch::matmul(a, b);  // warm-up
  synchronize(device);
  double best = 0;
  for (int trial = 0; trial < 5; ++trial) {
    const int reps = device.is_cuda() ? 20 : 4;
    const auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) torch::matmul_out(c, a, b);
    synchronize(device);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n * reps / seconds);
  }
  return best;
}

nlohmann::json run_bench(const Config& base, const BenchOptions& o) {
  if (o.steps < 1 || o.warmup_steps < 0) throw UserError("bench: --steps must be >= 1 and --warmup >= 0");
  if (o.decode_tokens < 0 || o.decode_batch < 1) throw UserError("bench: --decode-tokens must be >= 0");
  Config config = base;
  // The schedule spans exactly the steps run, as the exported reference sees it.
  config.train.steps = o.warmup_steps + o.steps;
  config.train.eval_every = 0;
  validate(config);
  for (const auto& s : o.strategies) make_strategy(s);

  const Dataset ds = load_dataset(config, "");
  const int threads = resolve_threads(config);
  const double peak = measure_matmul_peak(config.train.device, threads);
  nlohmann::json result = {{"device", resolve_device(config.train.device).str()},
                           {"threads", threads},
                           {"matmul_peak_flops", peak},
                           {"config", to_yaml(config)},
                           {"strategies", nlohmann::json::object()}};
  if (!o.export_dir.empty()) std::filesystem::create_directories(o.export_dir);

  for (const auto& spec : o.strategies) {
    Config c = config;
    c.strategy = spec;
    TrainJob job = make_train_job(c, ds);
    if (!o.export_dir.empty()) export_job(job, ds, o);
    const nlohmann::json entry = bench_entry(job.strategy->spec(), time_steps(job, ds, o), o.steps, peak);
    result["strategies"][job.strategy->spec()] = entry;
    if (!o.export_dir.empty()) {
      write_file_atomic(o.export_dir + "/" + file_label(job.strategy->spec()) + "/masklab.json", entry.dump(2) + "\n");
    }
    if (&spec == &o.strategies.back() && o.decode_tokens > 0) {
      result["decode"] = time_decoding(job.model, ds, o, job.device);
    }
  }
  return result;
}

}  // namespace masklab
