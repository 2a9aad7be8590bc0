#include "harness/train/choice_eval.hpp"

#include "harness/train/evaluator.hpp"

namespace masklab {

bool ChoiceResult::correct() const { return predicted == answer; }
bool ChoiceResult::correct_norm() const { return predicted_norm == answer; }

int argmax_raw(const std::vector<double>& loglik) {
  int best = 0;
  for (size_t c = 1; c < loglik.size(); ++c) {
    if (loglik[c] > loglik[static_cast<size_t>(best)]) best = static_cast<int>(c);
  }
  return best;
}

int argmax_per_byte(const std::vector<double>& loglik, const std::vector<std::string>& choices) {
  std::vector<double> per_byte(loglik.size());
  for (size_t c = 0; c < loglik.size(); ++c) per_byte[c] = loglik[c] / static_cast<double>(choices[c].size());
  return argmax_raw(per_byte);
}

std::vector<ChoiceResult> score_choices(Transformer& model, const WordedSet& worded,
                                        const std::vector<EvalSetItem>& items, int pad_id, int batch_size,
                                        int64_t chunk_size, const torch::Device& device) {
  // Each choice is one sequence whose only completion tokens are the choice's
  // (eval_sets.cpp cut_to_choice), so the evaluator's completion sum is -loglik.
  std::vector<const TokenizedExample*> sequences;
  for (const auto& t : worded.tokens) sequences.push_back(&t);
  std::vector<ExampleScores> scores;
  evaluate(model, sequences, /*n_tasks=*/1, pad_id, batch_size, chunk_size, device, &scores);

  std::vector<ChoiceResult> results;
  for (size_t k = 0; k < sequences.size(); ++k) {
    if (worded.choice[k] == 0) {
      results.emplace_back();
      results.back().item = worded.item[k];
    }
    results.back().loglik.push_back(-scores[k].completion_nll);
  }
  for (auto& r : results) {
    const EvalSetItem& item = items[static_cast<size_t>(r.item)];
    r.answer = item.answer;
    r.predicted = argmax_raw(r.loglik);
    r.predicted_norm = argmax_per_byte(r.loglik, item.choices);
  }
  return results;
}

}  // namespace masklab
