#pragma once
// The evaluation sets of eval.sets, scored once after the final evaluation,
// and the per-example lines of DIR/eval_examples.jsonl (the default held-out
// set's with "set": ""); README, "The run record".
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "harness/core/config.hpp"
#include "harness/data/data.hpp"
#include "harness/data/eval_sets.hpp"
#include "harness/train/evaluator.hpp"
#include "harness/train/model.hpp"

namespace masklab {

struct SetRecords {
  nlohmann::json eval = nlohmann::json::object();       // metrics.json eval.<set>
  nlohmann::json eval_sets = nlohmann::json::object();  // metrics.json eval_sets.<set>
  double decode_seconds = 0;
  long generated_tokens = 0;
  std::string lines;                                    // eval_examples.jsonl, one line per (set, wording, example)
};

// Scores every set. A set whose scoring throws is recorded in
// eval_sets.<set> with "status": "failed" and its error, and gives no
// metrics; the others are still scored.
SetRecords score_eval_sets(Transformer& model, const std::vector<EvalSet>& sets, const Config& config,
                           const Tokenizer& tokenizer, const torch::Device& device);

// The default held-out set's lines: example i is dataset.eval[i]; "values"
// holds exact_match, "ratios" completion_nll, completion_token_accuracy and
// prompt_nll as [Σ numerator, Σ denominator], so pooled over the lines they
// give metrics.json's eval.* .
std::string held_out_lines(const Dataset& dataset, const std::vector<ExampleScores>& scores);

}  // namespace masklab
