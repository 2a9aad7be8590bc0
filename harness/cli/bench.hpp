#pragma once
// `masklab bench`: training throughput, step time, peak memory and MFU of the
// real training step, per strategy, on the configured model and data. With
// an export directory it also writes what bench/reference_train.py needs to
// train the identical job in PyTorch (initial weights, every step's examples
// and weights, masklab's losses), for parity and speed comparisons. Greedy
// decoding is timed with and without the KV cache on the last strategy's
// model; the two must produce the same tokens.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/core/config.hpp"

namespace masklab {

struct BenchOptions {
  std::vector<std::string> strategies = {"completion_only", "full", "weighted:0.1"};
  int warmup_steps = 3;   // untimed steps first (allocator and thread pools warm up)
  int steps = 20;         // timed steps
  std::string export_dir; // "" = no export
  std::string profile;    // "" = none; else a Chrome trace of the timed steps (LibTorch's profiler)
  int decode_tokens = 64; // greedy decoding timed with and without the KV cache, new tokens per prompt; 0 = skip
  int decode_batch = 16;  // held-out prompts decoded together
};

// Runs the benchmark and returns its JSON (one entry per strategy, the
// machine's measured matmul peak, and "decode"). Throws UserError for bad
// options, std::runtime_error when cached and uncached decoding differ.
nlohmann::json run_bench(const Config& config, const BenchOptions& options);

// Peak matmul throughput of this device and thread setting: fp32 on CPU,
// bf16 on CUDA, measured with square matmuls. FLOP/s.
double measure_matmul_peak(const DeviceSetting& device, int threads);

}  // namespace masklab
