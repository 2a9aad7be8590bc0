#pragma once
// Memory: what a run will need at its peak, what this process may have, and
// what an allocation failure becomes. `masklab train` states the estimate
// against the limit before training and refuses a config that cannot fit
// (docs/design.md, invariant 27), because a process that runs out of memory
// mid-run can hang instead of failing (OpenBLAS retries a failed buffer
// mmap forever) and LibTorch's failures name no phase.
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>

#include "harness/core/config.hpp"

namespace masklab {

struct Dataset;

// The shape of the data that sizes the activations: the vocabulary and the
// example lengths of the training and held-out sets, in tokens.
struct DataShape {
  std::int64_t vocab = 0;
  std::int64_t longest_train = 0;
  double mean_train = 0;
  std::int64_t longest_eval = 0;
};
DataShape data_shape(const Config& config, const Dataset& dataset);

// The estimated peak resident memory of one training process, in bytes, by part.
struct MemoryEstimate {
  std::int64_t parameter_count = 0;
  double parameters = 0;   // fp32 weights
  double gradients = 0;    // fp32, one per weight
  double optimizer = 0;    // AdamW's two moments, and its step's temporaries
  double activations = 0;  // the larger of a training micro-batch (forward kept for backward, the chunked
                           // LM head) and an evaluation batch
  double baseline = 0;     // this process now: the runtime, the data (VmRSS, measured once)
  double total() const { return parameters + gradients + optimizer + activations + baseline; }
};
MemoryEstimate estimate_peak_memory(const Config& config, const DataShape& data, double baseline_bytes);

// The most resident memory this process may reach: the smallest of
// RLIMIT_AS and RLIMIT_DATA (less the address space mapped but not resident,
// and the BLAS buffers still to be mapped), the cgroup's memory.max (v2) or
// memory.limit_in_bytes (v1) less what the rest of the cgroup uses, and
// MemAvailable plus this process's own resident memory.
struct MemoryLimit {
  double bytes = 0;
  std::string source;  // "RLIMIT_AS 800 MB, 420 MB of it mapped", "cgroup memory.max", "MemAvailable"
};
std::optional<MemoryLimit> memory_limit(int threads);

// This process's resident memory now and at its peak (VmRSS, VmHWM), in bytes.
double resident_bytes();
double peak_resident_bytes();

// The total of the estimate check_memory_fits made in this process (one
// process trains one run), 0 when none: the record keeps it beside the peak.
double estimated_peak_bytes();

// Prints `memory: estimated peak N MB; limit M MB (source)` through `print`
// and throws UserError (one line with both figures, exit 2) when the
// estimate exceeds the limit, unless MASKLAB_MEMORY_CHECK=off. Then maps
// the BLAS library's buffers, while they are known to fit. Returns the estimate.
MemoryEstimate check_memory_fits(const Config& config, const Dataset& dataset, int threads,
                       const std::function<void(const std::string&)>& print);

// `out of memory: PHASE: could not allocate SIZE` when `e` is an allocation
// failure (std::bad_alloc, LibTorch's CPU or CUDA allocator), nullopt otherwise.
std::optional<std::string> out_of_memory_message(const std::exception& e, const std::string& phase);

}  // namespace masklab
