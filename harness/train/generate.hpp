#pragma once
// Decoding: batched greedy or sampled continuation of prompts with the
// model's KV cache (TransformerImpl::forward_cached), the one decoder of
// masklab (samples.jsonl, generation sets, the bench).
//
// Rows of a batch have different prompt lengths: they are left-padded, each
// row with its own positions (0 at its first real token) and padding that no
// real token attends to, so a prompt decodes to the same tokens whatever else
// shares its batch. Sampled decoding draws each example from its own stream,
// seeded by (seed, example index), for the same reason.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "harness/data/tokenizer.hpp"
#include "harness/train/model.hpp"

namespace masklab {

struct DecodeOptions {
  int max_new_tokens = 64;
  double temperature = 0;        // 0 = greedy (argmax); > 0 = sampled
  double top_p = 1.0;            // nucleus sampling; 1 = off
  std::uint64_t seed = 1;        // sampled decoding: example i draws from its own stream seeded by (seed, i),
                                 // so batched equals unbatched and the batch order does not matter
  int eos_id = -1;               // stop when generated; -1 = none
  std::vector<std::string> stop; // stop strings, matched on the decoded text of the generated tokens
  int batch_size = 16;           // prompts decoded together (left-padded, per-row positions)
  bool use_cache = true;         // KV cache; false = recompute the whole prefix every step (the reference)
};

struct Generation {
  std::vector<std::int32_t> tokens;  // generated tokens, EOS excluded; cut before the stop string's tokens
  std::string text;                  // decoded, cut before the first stop string
  std::string stop_reason;           // "eos" | "stop" | "length" | "context" (model.max_seq_len reached)
};

// generated_tokens counts every token the model chose, EOS and the tokens
// cut by a stop string included (the decoding work done); seconds is wall time.
struct DecodeStats {
  long generated_tokens = 0;
  double seconds = 0;
};

// prompts[i] are token ids (non-empty); example_index[i] (same length) seeds
// sampled decoding per example. A prompt and its continuation never exceed
// model.max_seq_len tokens ("context"). Runs in eval mode without autograd
// and restores the model's training flag.
std::vector<Generation> generate(Transformer& model, const std::vector<std::vector<std::int32_t>>& prompts,
                                 const std::vector<std::int64_t>& example_index, const DecodeOptions& options,
                                 const Tokenizer& tokenizer, const torch::Device& device, DecodeStats* stats = nullptr);

// The next token from one row's logits (V) float on the CPU: the first
// argmax when temperature <= 0; else a draw from softmax(logits / T)
// restricted to the nucleus: the most probable tokens (ties by lower id),
// fewest first, whose probabilities sum to at least top_p of the total.
std::int32_t choose_token(const torch::Tensor& logits, double temperature, double top_p, std::mt19937_64& rng);

// The stream example `example_index` draws from under `seed`.
std::mt19937_64 example_stream(std::uint64_t seed, std::int64_t example_index);

}  // namespace masklab
