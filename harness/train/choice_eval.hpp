#pragma once
// Multiple choice scored by log-likelihood, as lm-evaluation-harness scores
// it: for each choice, the summed log-probability of the choice's tokens
// given the prompt. The context is everything the template renders before the
// completion (its assistant prefix included); the choice is tokenized as a
// completion would be and cut before the end marker, so the end marker is not
// scored (lm-eval scores the continuation alone). acc: the argmax of the raw
// sums; acc_norm: the argmax of sum / the choice's length in UTF-8 bytes.
// Ties go to the first choice.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "harness/data/eval_sets.hpp"
#include "harness/train/model.hpp"

namespace masklab {

struct ChoiceResult {
  std::int32_t item = 0;            // index into the set's items
  std::vector<double> loglik;       // per choice: Σ log p(choice tokens | context)
  int answer = 0;                   // the item's answer
  int predicted = 0;                // argmax loglik
  int predicted_norm = 0;           // argmax loglik / bytes
  bool correct() const;             // predicted == answer (acc)
  bool correct_norm() const;        // predicted_norm == answer (acc_norm)
};

// The predictions from the summed log-likelihoods and the choices' texts.
int argmax_raw(const std::vector<double>& loglik);
int argmax_per_byte(const std::vector<double>& loglik, const std::vector<std::string>& choices);

// Scores every item of one wording of a choice set, in batched forward
// passes of `batch_size` sequences (one sequence per choice).
std::vector<ChoiceResult> score_choices(Transformer& model, const WordedSet& worded,
                                        const std::vector<EvalSetItem>& items, int pad_id, int batch_size,
                                        int64_t chunk_size, const torch::Device& device);

}  // namespace masklab
