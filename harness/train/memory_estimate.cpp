#include "harness/train/memory_estimate.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <new>
#include <regex>
#include <vector>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/text.hpp"
#include "harness/data/data.hpp"
#include "harness/train/loss.hpp"
#include "harness/train/model.hpp"

// OpenBLAS's thread count, when the BLAS behind LibTorch is OpenBLAS.
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace masklab {
namespace {

constexpr double kMB = 1024.0 * 1024.0;
constexpr double kFloat = 4;  // parameters, gradients, moments and CPU activations are fp32

// OpenBLAS maps one buffer of this much address space per thread that runs a
// GEMM (its BUFFER_SIZE, 32 << 22 on x86-64, plus a page), and retries a
// failed mapping forever. The calling thread's buffer is mapped at its first
// GEMM, so the check below reserves it under an address-space limit and then
// maps it (warm_up_blas) while it is known to fit.
constexpr double kBlasBufferBytes = (32.0 * (1 << 22)) + 4096;

// Fields of /proc/self/status, in bytes (0 when absent).
double status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") == 0) return std::atof(line.c_str() + field.size() + 1) * 1024;
  }
  return 0;
}

double meminfo_bytes(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, field.size() + 1, field + ":") == 0) return std::atof(line.c_str() + field.size() + 1) * 1024;
  }
  return 0;
}

// A number in a cgroup file, or nullopt when the file is absent or says "max".
std::optional<double> cgroup_number(const std::string& path) {
  const auto text = read_file(path);
  if (!text) return std::nullopt;
  const std::string value = trim(*text);
  if (value.empty() || value == "max") return std::nullopt;
  char* end = nullptr;
  const double n = std::strtod(value.c_str(), &end);
  if (end == value.c_str()) return std::nullopt;
  return n;
}

// This process's cgroup limit and usage: v2 (memory.max, memory.current) or
// v1 (memory.limit_in_bytes, memory.usage_in_bytes); a v1 "no limit" is a
// huge number, which never wins below.
std::optional<std::pair<double, double>> cgroup_limit_and_usage(std::string& source) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1), path = line.substr(second + 1);
    if (line.compare(0, 2, "0:") == 0 && controllers.empty()) {
      const std::string dir = "/sys/fs/cgroup" + path;
      const auto max = cgroup_number(dir + "/memory.max");
      if (max) {
        source = "cgroup memory.max";
        return std::make_pair(*max, cgroup_number(dir + "/memory.current").value_or(0));
      }
    } else if (controllers.find("memory") != std::string::npos) {
      const std::string dir = "/sys/fs/cgroup/memory" + path;
      const auto max = cgroup_number(dir + "/memory.limit_in_bytes");
      if (max) {
        source = "cgroup memory.limit_in_bytes";
        return std::make_pair(*max, cgroup_number(dir + "/memory.usage_in_bytes").value_or(0));
      }
    }
  }
  return std::nullopt;
}

std::int64_t parameter_count(const ModelConfig& m, std::int64_t vocab) {
  const std::int64_t d = m.d_model, f = resolved_d_ff(m), hd = resolved_head_dim(m);
  const std::int64_t q = m.n_heads * hd, kv = resolved_kv_heads(m) * hd;
  std::int64_t block = (q + 2 * kv) * d + d * q + 2 * d;  // qkv, proj, two norms
  if (m.attention_bias || m.qkv_bias) block += q + 2 * kv;
  if (m.attention_bias) block += d;
  if (m.qk_norm) block += 2 * hd;
  block += ((m.mlp == MlpKind::kSwiGLU ? 2 : 1) * f) * d + d * f;
  return vocab * d * (m.tie_embeddings ? 1 : 2) + m.n_layers * block + d;
}

// The largest single parameter tensor: the embedding (or the LM head), a
// projection or an MLP matrix. AdamW's update temporaries are one tensor at
// a time, so they are this size, not the whole model's.
std::int64_t largest_parameter(const ModelConfig& m, std::int64_t vocab) {
  const std::int64_t d = m.d_model, f = resolved_d_ff(m), hd = resolved_head_dim(m);
  const std::int64_t q = m.n_heads * hd, kv = resolved_kv_heads(m) * hd;
  return std::max({vocab * d, (q + 2 * kv) * d, d * q, f * d});
}

// fp32 values kept for backward per token of one block, read off
// model.cpp's forward with the fused layers of fp32 (fused_layers.hpp): each
// norm's input and statistic, q and k after RoPE and a copy of v, the
// attention output (kept by attention and the output projection), and the
// MLP's up projection (SwiGLU's input; GELU's input and output). A biased qkv
// projection is composed (its norm's output and the projection's output kept
// too), and so are Qwen3's per-head q/k norms.
double block_values_per_token(const ModelConfig& m) {
  const double d = m.d_model, f = static_cast<double>(resolved_d_ff(m)), hd = static_cast<double>(resolved_head_dim(m));
  const double q = m.n_heads * hd, kv = resolved_kv_heads(m) * hd;
  const double norms = 2 * (d + 1) + (m.attention_bias || m.qkv_bias ? 2 * d + q + 2 * kv : 0);
  const double attention = (q + kv) + kv + q + (m.qk_norm ? 3 * (q + kv) : 0);
  return norms + attention + 2 * f;
}

// Whether backward keeps each row's (H, T, T) attention probabilities. On
// the CPU the per-example attention (packed rows on both LibTorch versions,
// unpacked training rows on 1.13) keeps them only with dropout on them, and
// recomputes them without. LibTorch 2.x's SDPA is counted as keeping them:
// its CPU and fallback kernels may.
bool keeps_attention_probabilities(const Config& config) {
  const bool cpu = config.train.device.kind == DeviceKind::kCpu ||
                   (config.train.device.kind == DeviceKind::kAuto && !torch::cuda::is_available());
#if TORCH_VERSION_MAJOR >= 2
  const bool per_example = cpu && config.data.packing;
#else
  const bool per_example = cpu;
#endif
  return !per_example || config.model.dropout > 0;
}

std::int64_t round_up_8(std::int64_t n) { return (n + 7) / 8 * 8; }

}  // namespace


DataShape data_shape(const Config& config, const Dataset& dataset) {
  DataShape shape;
  shape.vocab = std::max<std::int64_t>(dataset.tokenizer->vocab_size(), config.model.vocab_size);
  double sum = 0;
  for (const auto& ex : dataset.train) {
    shape.longest_train = std::max<std::int64_t>(shape.longest_train, static_cast<std::int64_t>(ex.ids.size()));
    sum += static_cast<double>(ex.ids.size());
  }
  shape.mean_train = dataset.train.empty() ? 0 : sum / static_cast<double>(dataset.train.size());
  for (const auto& ex : dataset.eval) {
    shape.longest_eval = std::max<std::int64_t>(shape.longest_eval, static_cast<std::int64_t>(ex.ids.size()));
  }
  return shape;
}

MemoryEstimate estimate_peak_memory(const Config& config, const DataShape& data, double baseline_bytes) {
  const ModelConfig& m = config.model;
  MemoryEstimate e;
  e.parameter_count = parameter_count(m, data.vocab);
  const double P = static_cast<double>(e.parameter_count);
  e.parameters = P * kFloat;
  e.gradients = P * kFloat;
  // exp_avg and exp_avg_sq, and the update's temporary for one tensor at a time.
  e.optimizer = (2 * P + static_cast<double>(largest_parameter(m, data.vocab))) * kFloat;

  // One training micro-batch: rows of the longest example (packed: the
  // micro-batch's tokens in rows of that length), every block's kept values,
  // the attention weights of the math path, the chunked LM head's logits and
  // its saved gradients, and a block's worth of gradients in flight backward.
  const double B = config.train.batch_size, H = m.n_heads;
  const std::int64_t T = round_up_8(std::min<std::int64_t>(std::max<std::int64_t>(1, data.longest_train), m.max_seq_len));
  const double tokens = config.data.packing ? std::max<double>(static_cast<double>(T), B * data.mean_train)
                                            : B * static_cast<double>(T);
  const double rows = std::ceil(tokens / static_cast<double>(T));
  const double probabilities = keeps_attention_probabilities(config) ? 3 * rows * H * static_cast<double>(T * T) : 0;
  const double per_block = block_values_per_token(m) * tokens + probabilities;
  const double layers_kept = m.checkpoint_activations ? 1 : m.n_layers;
  const double head_rows = std::min<double>(tokens, static_cast<double>(resolve_chunk_size(config.loss.chunk_size, data.vocab)));
  const double lm_head = 4 * head_rows * static_cast<double>(data.vocab) + 2 * tokens * m.d_model +
                         static_cast<double>(data.vocab) * m.d_model;
  const double train_batch = (layers_kept + 2) * per_block + lm_head + 4 * tokens * m.d_model;

  // One evaluation batch, no gradients: a block's values and its attention
  // weights at a time, and the scored logits.
  const double Be = config.eval.batch_size;
  const std::int64_t Te = round_up_8(std::min<std::int64_t>(std::max<std::int64_t>(1, data.longest_eval), m.max_seq_len));
  const double eval_tokens = Be * static_cast<double>(Te);
  const double eval_batch = 2 * per_block / std::max(1.0, tokens) * eval_tokens +
                            3 * Be * H * static_cast<double>(Te * Te) +
                            4 * std::min<double>(eval_tokens, static_cast<double>(resolve_chunk_size(config.loss.chunk_size, data.vocab))) *
                                static_cast<double>(data.vocab);
  e.activations = std::max(train_batch, eval_batch) * kFloat;
  e.baseline = baseline_bytes;
  return e;
}

namespace {

double g_estimated_peak_bytes = 0;

}  // namespace

double estimated_peak_bytes() { return g_estimated_peak_bytes; }

double resident_bytes() { return status_bytes("VmRSS"); }
double peak_resident_bytes() { return status_bytes("VmHWM"); }

std::optional<MemoryLimit> memory_limit(int threads) {
  std::vector<MemoryLimit> limits;
  const double rss = resident_bytes();
  // Address space still to be mapped: the BLAS buffers of the threads that
  // will run GEMMs and do not exist yet, and the calling thread's.
  const int blas_threads_now = openblas_get_num_threads != nullptr ? openblas_get_num_threads() : threads;
  const double blas_to_map = openblas_get_num_threads != nullptr
                                 ? (std::max(0, threads - blas_threads_now) + 1) * kBlasBufferBytes
                                 : 0;
  auto address_limit = [&](int resource, const char* name, double mapped) {
    struct rlimit rl {};
    if (::getrlimit(resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
    const double limit = static_cast<double>(rl.rlim_cur);
    const double not_resident = std::max(0.0, mapped - rss) + blas_to_map;
    limits.push_back({limit - not_resident, fmt::format("{} {:.0f} MB, {:.0f} MB of it mapped but not resident",
                                                        name, limit / kMB, not_resident / kMB)});
  };
  address_limit(RLIMIT_AS, "RLIMIT_AS", status_bytes("VmSize"));
  address_limit(RLIMIT_DATA, "RLIMIT_DATA", status_bytes("VmData"));
  std::string cgroup_source;
  if (const auto cgroup = cgroup_limit_and_usage(cgroup_source)) {
    // The rest of the cgroup (other processes, page cache) keeps what it uses.
    limits.push_back({cgroup->first - std::max(0.0, cgroup->second - rss), cgroup_source});
  }
  if (const double available = meminfo_bytes("MemAvailable"); available > 0) {
    limits.push_back({available + rss, "MemAvailable"});
  }
  if (limits.empty()) return std::nullopt;
  return *std::min_element(limits.begin(), limits.end(),
                           [](const MemoryLimit& a, const MemoryLimit& b) { return a.bytes < b.bytes; });
}

namespace {

// One GEMM on the calling thread: OpenBLAS maps its buffer now, under the
// limit just checked, instead of at the first training step.
void warm_up_blas() {
  const auto a = torch::ones({32, 32});  // small enough to stay on the calling thread
  (void)torch::mm(a, a);
}

}  // namespace

MemoryEstimate check_memory_fits(const Config& config, const Dataset& dataset, int threads,
                       const std::function<void(const std::string&)>& print) {
  const MemoryEstimate estimate = estimate_peak_memory(config, data_shape(config, dataset), resident_bytes());
  g_estimated_peak_bytes = estimate.total();
  const auto limit = memory_limit(threads);
  print(fmt::format("memory: estimated peak {:.0f} MB; limit {}", estimate.total() / kMB,
                    limit ? fmt::format("{:.0f} MB ({})", limit->bytes / kMB, limit->source) : "none found"));
  const char* check = std::getenv("MASKLAB_MEMORY_CHECK");
  const bool skip = check != nullptr && to_lower(check) == "off";
  if (limit && estimate.total() > limit->bytes && !skip) {
    throw UserError(fmt::format(
        "memory: estimated peak {:.0f} MB exceeds the limit of {:.0f} MB ({}); a smaller model, train.batch_size "
        "or eval.batch_size fits (MASKLAB_MEMORY_CHECK=off skips this check)",
        estimate.total() / kMB, limit->bytes / kMB, limit->source));
  }
  warm_up_blas();
  return estimate;
}

namespace {

std::string format_size(double bytes) {
  if (bytes >= 1024 * kMB) return fmt::format("{:.1f} GB", bytes / (1024 * kMB));
  if (bytes >= kMB) return fmt::format("{:.0f} MB", bytes / kMB);
  return fmt::format("{:.0f} bytes", bytes);
}

}  // namespace

std::optional<std::string> out_of_memory_message(const std::exception& e, const std::string& phase) {
  auto line = [&](const std::string& size) { return "out of memory: " + phase + ": could not allocate " + size; };
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) return line("(size not reported)");
  const auto* error = dynamic_cast<const c10::Error*>(&e);
  if (error == nullptr) return std::nullopt;
  const std::string what = error->what_without_backtrace();
  std::smatch match;
  // DefaultCPUAllocator: "can't allocate memory: you tried to allocate 123 bytes";
  // the CUDA caching allocator: "CUDA out of memory. Tried to allocate 2.00 GiB".
  static const std::regex cpu(R"(can't allocate memory: you tried to allocate (\d+) bytes)");
  static const std::regex cuda(R"(out of memory\. Tried to allocate ([0-9.]+ [KMGT]?i?B))");
  if (std::regex_search(what, match, cpu)) return line(format_size(std::stod(match[1])));
  if (std::regex_search(what, match, cuda)) return line(match[1].str() + " on the device");
  if (what.find("DefaultCPUAllocator") != std::string::npos || what.find("out of memory") != std::string::npos) {
    return line("(size not reported)");
  }
  return std::nullopt;
}

}  // namespace masklab
