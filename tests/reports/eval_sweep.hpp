#pragma once
// Sweep folders with evaluation sets, built by hand for the reports tests:
// every run's per-example scores come from a formula, and its metrics.json
// holds what a run computes from them (means over examples, pooled ratios,
// means over wordings), as eval_examples.jsonl and metrics.json are laid out
// in the evaluation contract. A test recomputes what it checks from the same
// per-example scores, never from the report.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "strategies/registry.hpp"
#include "tests/test_helpers.hpp"

namespace masklab::test {

// A deterministic 0/1 outcome, true with probability ~p, for (strategy, seed, wording, example, salt).
inline double coin(double p, size_t strategy, int seed, long wording, long example, int salt) {
  const double v = std::sin(static_cast<double>(strategy) * 78.233 + seed * 12.9898 + static_cast<double>(wording) * 3.7 +
                            static_cast<double>(example) * 0.917 + salt * 4.581) *
                   43758.5453;
  return v - std::floor(v) < p ? 1.0 : 0.0;
}

struct EvalSweepShape {
  std::vector<std::string> strategies = {"completion_only", "full"};
  std::vector<int> seeds = {1, 2, 3};
  long examples = 12;
  std::vector<std::string> choice_wordings = {"{prompt}", "Question: {prompt}\nAnswer: <&>"};
  bool role_weights = false;  // record each strategy's registered role weights (puts them on the λ axis)
};

// A set's per-example scores and the metric values a run derives from them.
struct SetScores {
  nlohmann::json lines = nlohmann::json::array();  // eval_examples.jsonl objects
  nlohmann::json metrics = nlohmann::json::object();
};

// The "" default set (exact_match values, completion_nll ratios), "gen"
// (generate, one wording) and "mc" (choice, the shape's wordings); strategy s
// scores higher as s grows.
inline SetScores eval_scores(const EvalSweepShape& shape, size_t s, int seed) {
  SetScores out;
  const double lift = 0.15 * static_cast<double>(s);
  double em = 0, nll_num = 0, nll_den = 0, gen_em = 0, gen_f1 = 0, gen_tokens = 0;
  std::vector<double> acc(shape.choice_wordings.size()), acc_norm(shape.choice_wordings.size());
  for (long e = 0; e < shape.examples; ++e) {
    const double x = coin(0.3 + lift, s, seed, 0, e, 1), tokens = 1 + static_cast<double>(e % 4);
    const double nll = tokens * (2.0 - 0.5 * static_cast<double>(s) + 0.1 * coin(0.5, s, seed, 0, e, 2));
    out.lines.push_back({{"set", ""}, {"wording", 0}, {"example", e}, {"task", "count"},
                         {"values", {{"exact_match", x}}}, {"ratios", {{"completion_nll", {nll, tokens}}}}});
    em += x;
    nll_num += nll;
    nll_den += tokens;
    const double g = coin(0.2 + lift, s, seed, 0, e, 3), f1 = 0.5 * g + 0.25 * coin(0.5, s, seed, 0, e, 4);
    out.lines.push_back({{"set", "gen"}, {"wording", 0}, {"example", e}, {"task", "reverse"},
                         {"values", {{"exact_match", g}, {"f1", f1}, {"output_tokens", tokens}}}, {"ratios", nlohmann::json::object()},
                         {"prompt", "p"}, {"reference", "r"}, {"output", "o"}});
    gen_em += g;
    gen_f1 += f1;
    gen_tokens += tokens;
    for (size_t w = 0; w < shape.choice_wordings.size(); ++w) {
      const double a = coin(0.4 + lift - 0.1 * static_cast<double>(w), s, seed, static_cast<long>(w), e, 5);
      const double an = coin(0.45 + lift, s, seed, static_cast<long>(w), e, 6);
      out.lines.push_back({{"set", "mc"}, {"wording", w}, {"example", e}, {"task", "facts"},
                           {"values", {{"acc", a}, {"acc_norm", an}}}, {"ratios", nlohmann::json::object()}});
      acc[w] += a;
      acc_norm[w] += an;
    }
  }
  const double n = static_cast<double>(shape.examples);
  out.metrics = {{"exact_match", em / n}, {"completion_nll", nll_num / nll_den}, {"examples", shape.examples},
                 {"gen", {{"exact_match", gen_em / n}, {"f1", gen_f1 / n}, {"output_tokens", gen_tokens / n}}}};
  double acc_mean = 0, acc_norm_mean = 0;
  for (size_t w = 0; w < acc.size(); ++w) {
    out.metrics["mc"]["wording" + std::to_string(w)] = {{"acc", acc[w] / n}, {"acc_norm", acc_norm[w] / n}};
    acc_mean += acc[w] / n / static_cast<double>(acc.size());
    acc_norm_mean += acc_norm[w] / n / static_cast<double>(acc.size());
  }
  out.metrics["mc"]["acc"] = acc_mean;
  out.metrics["mc"]["acc_norm"] = acc_norm_mean;
  return out;
}

// DIR/sweep.json (factors strategy, seed; `extra` merged in) and one run per
// (strategy, seed), ids "r00", "r01", ... strategy-major.
inline void write_eval_sweep(const std::string& dir, const EvalSweepShape& shape,
                             const nlohmann::json& extra = nlohmann::json::object()) {
  using nlohmann::json;
  json runs = json::array();
  size_t index = 0;
  for (size_t s = 0; s < shape.strategies.size(); ++s) {
    for (int seed : shape.seeds) {
      const std::string id = fmt::format("r{:02d}", index++);
      json entry = {{"id", id}, {"dir", "runs/" + id}, {"factors", {{"strategy", shape.strategies[s]}, {"seed", std::to_string(seed)}}}};
      const SetScores scores = eval_scores(shape, s, seed);
      json metrics = {{"status", "ok"}, {"eval", scores.metrics}, {"decode_seconds", 0.5}, {"decode_tokens_per_second", 100.0},
                      {"eval_sets",
                       {{"gen", {{"kind", "generate"}, {"examples", shape.examples}, {"wordings", {"{prompt}"}},
                                 {"decode_seconds", 0.5}, {"generated_tokens", 50}}},
                        {"mc", {{"kind", "choice"}, {"examples", shape.examples}, {"wordings", shape.choice_wordings},
                                {"decode_seconds", 0}, {"generated_tokens", 0}}}}}};
      if (shape.role_weights) {
        entry["role_weights"] = role_weights_record(*make_strategy(shape.strategies[s]));
      }
      runs.push_back(entry);
      const std::string run_dir = dir + "/runs/" + id;
      std::filesystem::create_directories(run_dir);
      write_text(run_dir + "/metrics.json", metrics.dump(2));
      std::string lines;
      for (const auto& line : scores.lines) lines += line.dump() + "\n";
      write_text(run_dir + "/eval_examples.jsonl", lines);
    }
  }
  json sweep = {{"name", "eval_sets"}, {"spec_path", "experiments/eval_sets.yaml"}, {"spec_text", "name: eval_sets\n"},
                {"factors", {"strategy", "seed"}}, {"runs", runs}};
  sweep.update(extra);
  write_text(dir + "/sweep.json", sweep.dump(2));
}

}  // namespace masklab::test
