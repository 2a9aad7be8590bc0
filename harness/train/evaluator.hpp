#pragma once
// The evaluator: the same tokens, the same code, for every strategy
// (docs/design.md, invariant 6). It never sees the strategy.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "harness/data/data.hpp"
#include "harness/train/model.hpp"

namespace masklab {

struct EvalMetrics {
  double completion_nll = 0;             // mean NLL (nats) per completion token (assistant text + end marker)
  double completion_ppl = 0;             // exp(completion_nll)
  double completion_token_accuracy = 0;  // teacher-forced argmax == target over completion tokens
  double exact_match = 0;                // fraction of examples whose greedy decoding reproduces the final completion
  double prompt_nll = 0;                 // mean NLL per prompt token (user and system text)
  long completion_tokens = 0;
  long prompt_tokens = 0;
  long examples = 0;

  nlohmann::json to_json() const;
};

// One example's sums over its tokens, for the per-example lines of
// eval_examples.jsonl: pooled over examples (Σ nll / Σ tokens) they give the
// set's own figures.
struct ExampleScores {
  double completion_nll = 0;      // Σ NLL over completion tokens (assistant text + end marker)
  double completion_correct = 0;  // completion tokens whose teacher-forced argmax is the target
  double prompt_nll = 0;          // Σ NLL over prompt tokens (user and system text)
  long completion_tokens = 0, prompt_tokens = 0;
  bool exact = false;             // greedy decoding reproduces the final completion
};

struct EvalResult {
  EvalMetrics overall;                 // pooled over every token / example
  std::vector<EvalMetrics> per_task;   // indexed like Dataset::tasks
};

// Scores `examples` with teacher forcing. Exact match is read off the same
// pass: greedy decoding reproduces a reference exactly iff every reference
// token is the argmax given the reference prefix, so no decoding loop is
// needed (the tests check the identity against generate(), harness/train/generate.hpp).
// `per_example`, when given, receives each example's sums, indexed like `examples`.
EvalResult evaluate(Transformer& model, const std::vector<const TokenizedExample*>& examples,
                    std::size_t n_tasks, int pad_id, int batch_size, int64_t chunk_size,
                    const torch::Device& device, std::vector<ExampleScores>* per_example = nullptr);

}  // namespace masklab
