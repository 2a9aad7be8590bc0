#include "harness/train/evaluator.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "harness/train/batching.hpp"
#include "harness/train/loss.hpp"

namespace masklab {
namespace {

struct Tally {
  double completion_nll = 0, completion_correct = 0, prompt_nll = 0;
  long completion_tokens = 0, prompt_tokens = 0, examples = 0, exact = 0;

  void add(const Tally& o) {
    completion_nll += o.completion_nll;
    completion_correct += o.completion_correct;
    prompt_nll += o.prompt_nll;
    completion_tokens += o.completion_tokens;
    prompt_tokens += o.prompt_tokens;
    examples += o.examples;
    exact += o.exact;
  }

  EvalMetrics metrics() const {
    const double nan = std::nan("");
    EvalMetrics m;
    m.completion_tokens = completion_tokens;
    m.prompt_tokens = prompt_tokens;
    m.examples = examples;
    m.completion_nll = completion_tokens ? completion_nll / completion_tokens : nan;
    m.completion_ppl = std::exp(m.completion_nll);
    m.completion_token_accuracy = completion_tokens ? completion_correct / completion_tokens : nan;
    m.exact_match = examples ? static_cast<double>(exact) / examples : nan;
    m.prompt_nll = prompt_tokens ? prompt_nll / prompt_tokens : nan;
    return m;
  }
};

bool is_completion(Role r) { return r == Role::kAssistant || r == Role::kEos; }
bool is_prompt(Role r) { return r == Role::kUser || r == Role::kSystem; }

}  // namespace

nlohmann::json EvalMetrics::to_json() const {
  // NaN (no tokens of a kind) is written as null, which JSON can hold.
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  return {{"completion_nll", num(completion_nll)},
          {"completion_ppl", num(completion_ppl)},
          {"completion_token_accuracy", num(completion_token_accuracy)},
          {"exact_match", num(exact_match)},
          {"prompt_nll", num(prompt_nll)},
          {"completion_tokens", completion_tokens},
          {"prompt_tokens", prompt_tokens},
          {"examples", examples}};
}

namespace {

// Example positions sorted by length: less padding, and the order is fixed by the data alone.
std::vector<size_t> by_length(const std::vector<const TokenizedExample*>& examples) {
  std::vector<size_t> sorted(examples.size());
  std::iota(sorted.begin(), sorted.end(), size_t{0});
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](size_t a, size_t b) { return examples[a]->ids.size() < examples[b]->ids.size(); });
  return sorted;
}

// Where one padded batch's rows go: the examples and, for per-example scores, their slots.
struct BatchRows {
  std::vector<const TokenizedExample*> examples;
  std::vector<ExampleScores*> scores;  // null entries when per-example scores are not wanted
};

// Scores one padded batch into the per-task tallies: every completion and
// prompt position's NLL and argmax, and exact match of the final completion.
void score_batch(Transformer& model, const BatchRows& rows_of, int pad_id, int64_t chunk_size,
                 const torch::Device& device, std::vector<Tally>& tally) {
  const std::vector<const TokenizedExample*>& group = rows_of.examples;
  const Batch batch = make_padded_batch(group, pad_id);
  const int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1);

  // Which positions to score, decided on the CPU from the labels alone.
  const auto* role = batch.label_role.data_ptr<uint8_t>();
  std::vector<int64_t> selected;
  for (int64_t i = 0; i < B * T; ++i) {
    const auto r = static_cast<Role>(role[i]);
    if (is_completion(r) || is_prompt(r)) selected.push_back(i);
  }
  const auto index = torch::tensor(selected, torch::kLong);
  const auto hidden = model->forward(batch.input_ids.to(device), batch.position_ids.to(device));  // (B, T, C)
  const auto rows = hidden.reshape({B * T, -1}).index_select(0, index.to(device));               // (N, C)
  const auto targets = batch.targets.flatten().index_select(0, index).to(device);
  const TokenScores scores = score_tokens(rows, model->head_weight(), targets, chunk_size);
  const auto nll = scores.nll.to(torch::kCPU).to(torch::kDouble);
  const auto correct = scores.correct.to(torch::kCPU);
  const auto* nll_p = nll.data_ptr<double>();
  const auto* correct_p = correct.data_ptr<bool>();

  std::vector<long> final_wrong(group.size(), 0);
  for (size_t k = 0; k < selected.size(); ++k) {
    const int64_t row = selected[k] / T, t = selected[k] % T;
    const TokenizedExample& ex = *group[row];
    Tally& tl = tally[ex.task];
    ExampleScores* one = rows_of.scores[row];
    if (is_completion(static_cast<Role>(role[selected[k]]))) {
      tl.completion_nll += nll_p[k];
      tl.completion_correct += correct_p[k];
      ++tl.completion_tokens;
      if (one) {
        one->completion_nll += nll_p[k];
        one->completion_correct += correct_p[k];
        ++one->completion_tokens;
      }
      // Position t predicts token t+1: part of the final completion?
      if (t + 1 >= ex.completion_begin && t + 1 < ex.completion_end && !correct_p[k]) ++final_wrong[row];
    } else {
      tl.prompt_nll += nll_p[k];
      ++tl.prompt_tokens;
      if (one) {
        one->prompt_nll += nll_p[k];
        ++one->prompt_tokens;
      }
    }
  }
  for (size_t row = 0; row < group.size(); ++row) {
    Tally& tl = tally[group[row]->task];
    ++tl.examples;
    const bool has_completion = group[row]->completion_end > group[row]->completion_begin;
    const bool exact = has_completion && final_wrong[row] == 0;
    tl.exact += exact ? 1 : 0;
    if (rows_of.scores[row]) rows_of.scores[row]->exact = exact;
  }
}

}  // namespace

EvalResult evaluate(Transformer& model, const std::vector<const TokenizedExample*>& examples,
                    std::size_t n_tasks, int pad_id, int batch_size, int64_t chunk_size,
                    const torch::Device& device, std::vector<ExampleScores>* per_example) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;

  const auto sorted = by_length(examples);
  if (per_example) per_example->assign(examples.size(), ExampleScores{});
  std::vector<Tally> tally(n_tasks);
  for (size_t start = 0; start < sorted.size(); start += static_cast<size_t>(batch_size)) {
    BatchRows rows;
    for (size_t k = start; k < std::min(sorted.size(), start + batch_size); ++k) {
      rows.examples.push_back(examples[sorted[k]]);
      rows.scores.push_back(per_example ? &(*per_example)[sorted[k]] : nullptr);
    }
    score_batch(model, rows, pad_id, chunk_size, device, tally);
  }

  EvalResult result;
  Tally all;
  for (const auto& tl : tally) {
    result.per_task.push_back(tl.metrics());
    all.add(tl);
  }
  result.overall = all.metrics();
  model->train(was_training);
  return result;
}

}  // namespace masklab
