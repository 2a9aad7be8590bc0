#include "harness/train/set_eval.hpp"

#include <chrono>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "harness/data/text_metrics.hpp"
#include "harness/train/choice_eval.hpp"
#include "harness/train/generate.hpp"

namespace masklab {
namespace {

using json = nlohmann::json;

std::string dump_line(const json& line) { return line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

json number(double v) { return std::isfinite(v) ? json(v) : json(); }

// The teacher-forced figures of one example, as the held-out set's lines hold them.
void add_nll_fields(json& line, const ExampleScores& s) {
  line["values"] = {{"exact_match", s.exact ? 1 : 0}};
  line["ratios"] = {{"completion_nll", {s.completion_nll, s.completion_tokens}},
                    {"completion_token_accuracy", {s.completion_correct, s.completion_tokens}},
                    {"prompt_nll", {s.prompt_nll, s.prompt_tokens}}};
}

json line_head(const std::string& set, size_t wording, std::int64_t example, const std::string& task) {
  return {{"set", set}, {"wording", wording}, {"example", example}, {"task", task}};
}

// One wording's figures and lines.
struct WordingScore {
  json metrics = json::object();
  std::string lines;
};

WordingScore score_nll(Transformer& model, const EvalSet& set, size_t w, const Config& config, int pad_id,
                       const torch::Device& device) {
  const WordedSet& worded = set.worded[w];
  std::vector<const TokenizedExample*> examples;
  for (const auto& t : worded.tokens) examples.push_back(&t);
  std::vector<ExampleScores> scores;
  const EvalResult result =
      evaluate(model, examples, 1, pad_id, config.eval.batch_size, config.loss.chunk_size, device, &scores);
  WordingScore out;
  const json all = result.overall.to_json();
  for (const char* key : {"completion_nll", "completion_ppl", "completion_token_accuracy", "exact_match", "prompt_nll"}) {
    out.metrics[key] = all[key];
  }
  for (size_t k = 0; k < scores.size(); ++k) {
    const EvalSetItem& item = set.items[static_cast<size_t>(worded.item[k])];
    json line = line_head(set.config.name, w, item.id, item.task);
    add_nll_fields(line, scores[k]);
    out.lines += dump_line(line);
  }
  return out;
}

WordingScore score_choice(Transformer& model, const EvalSet& set, size_t w, const Config& config, int pad_id,
                          const torch::Device& device) {
  const auto results = score_choices(model, set.worded[w], set.items, pad_id, config.eval.batch_size,
                                     config.loss.chunk_size, device);
  WordingScore out;
  double acc = 0, acc_norm = 0;
  for (const auto& r : results) {
    const EvalSetItem& item = set.items[static_cast<size_t>(r.item)];
    acc += r.correct();
    acc_norm += r.correct_norm();
    json line = line_head(set.config.name, w, item.id, item.task);
    line["values"] = {{"acc", r.correct() ? 1 : 0}, {"acc_norm", r.correct_norm() ? 1 : 0}};
    line["ratios"] = json::object();
    line["loglik"] = r.loglik;  // per choice, for checking against a reference
    out.lines += dump_line(line);
  }
  const double n = static_cast<double>(results.size());
  out.metrics = {{"acc", number(acc / n)}, {"acc_norm", number(acc_norm / n)}};
  return out;
}

// The user prompt as the wording made it, for reading the lines by eye.
std::string worded_prompt(const EvalSetItem& item, const std::string& wording) {
  const Example worded = apply_wording(item.example, wording);
  for (auto it = worded.messages.rbegin(); it != worded.messages.rend(); ++it) {
    if (it->role == Role::kUser) return it->content;
  }
  return "";
}

// Decoded from the prompt's tokens (template text included) with the set's
// options; scored against the reference text by score_answer.
WordingScore score_generate(Transformer& model, const EvalSet& set, size_t w, const Config& config,
                            const Tokenizer& tokenizer, const torch::Device& device, SetRecords& records) {
  const WordedSet& worded = set.worded[w];
  const EvalSetConfig& sc = set.config;
  std::vector<std::vector<std::int32_t>> prompts;
  std::vector<std::int64_t> example_ids;
  for (size_t k = 0; k < worded.tokens.size(); ++k) {
    const TokenizedExample& t = worded.tokens[k];
    prompts.emplace_back(t.ids.begin(), t.ids.begin() + t.completion_begin);
    example_ids.push_back(set.items[static_cast<size_t>(worded.item[k])].id);  // sampled streams follow the example
  }
  DecodeOptions options;
  options.max_new_tokens = sc.max_new_tokens;
  options.temperature = sc.temperature;
  options.top_p = sc.top_p;
  options.seed = static_cast<std::uint64_t>(sc.seed);
  options.eos_id = tokenizer.eos_id();
  options.stop = sc.stop;
  options.batch_size = config.eval.batch_size;
  DecodeStats stats;
  const auto generations = generate(model, prompts, example_ids, options, tokenizer, device, &stats);
  records.decode_seconds += stats.seconds;
  records.generated_tokens += stats.generated_tokens;

  WordingScore out;
  std::map<std::string, double> sums;
  for (size_t k = 0; k < generations.size(); ++k) {
    const EvalSetItem& item = set.items[static_cast<size_t>(worded.item[k])];
    const AnswerScores a = score_answer(generations[k].text, item.reference);
    const json values = {{"exact_match", a.exact_match}, {"f1", a.f1}, {"rouge_l", a.rouge_l},
                         {"length_ratio", a.length_ratio}, {"output_tokens", generations[k].tokens.size()}};
    for (const auto& [key, v] : values.items()) sums[key] += v.get<double>();
    json line = line_head(sc.name, w, item.id, item.task);
    line["values"] = values;
    line["ratios"] = json::object();
    line["prompt"] = worded_prompt(item, worded.wording);
    line["reference"] = item.reference;
    line["output"] = generations[k].text;
    line["stop_reason"] = generations[k].stop_reason;
    out.lines += dump_line(line);
  }
  for (const auto& [key, sum] : sums) out.metrics[key] = number(sum / static_cast<double>(generations.size()));
  return out;
}

// The mean over wordings of each metric (null when a wording has none).
json mean_over_wordings(const std::vector<WordingScore>& wordings) {
  json mean = json::object();
  for (const auto& [key, first] : wordings[0].metrics.items()) {
    double sum = 0;
    bool all_numbers = true;
    for (const auto& w : wordings) {
      const json& v = w.metrics[key];
      all_numbers = all_numbers && v.is_number();
      if (v.is_number()) sum += v.get<double>();
    }
    mean[key] = all_numbers ? number(sum / static_cast<double>(wordings.size())) : json();
  }
  return mean;
}

WordingScore score_wording(Transformer& model, const EvalSet& set, size_t w, const Config& config,
                           const Tokenizer& tokenizer, const torch::Device& device, SetRecords& records) {
  switch (set.config.kind) {
    case EvalSetKind::kNll:
      return score_nll(model, set, w, config, tokenizer.pad_id(), device);
    case EvalSetKind::kChoice:
      return score_choice(model, set, w, config, tokenizer.pad_id(), device);
    case EvalSetKind::kGenerate:
      return score_generate(model, set, w, config, tokenizer, device, records);
  }
  throw std::logic_error("score_wording: unhandled set kind");
}

}  // namespace

SetRecords score_eval_sets(Transformer& model, const std::vector<EvalSet>& sets, const Config& config,
                           const Tokenizer& tokenizer, const torch::Device& device) {
  SetRecords records;
  for (const auto& set : sets) {
    const std::string& name = set.config.name;
    json described = {{"kind", std::string(name_of(set.config.kind))},
                      {"examples", set.items.size()},
                      {"wordings", set.config.wordings}};
    const double seconds_before = records.decode_seconds;
    const long tokens_before = records.generated_tokens;
    try {
      std::vector<WordingScore> wordings;
      long skipped = 0;
      for (size_t w = 0; w < set.worded.size(); ++w) {
        wordings.push_back(score_wording(model, set, w, config, tokenizer, device, records));
        skipped += set.worded[w].skipped_too_long;
      }
      json metrics = mean_over_wordings(wordings);
      if (wordings.size() > 1) {
        for (size_t w = 0; w < wordings.size(); ++w) metrics[fmt::format("wording{}", w)] = wordings[w].metrics;
      }
      records.eval[name] = metrics;
      for (const auto& w : wordings) records.lines += w.lines;
      described["status"] = "ok";
      described["skipped_too_long"] = skipped;
    } catch (const std::exception& e) {
      // A set that cannot be scored (out of memory, a decoding error) is recorded; the run stays ok.
      const std::string what = e.what();
      described["status"] = "failed";
      described["error"] = what.substr(0, what.find('\n'));
    }
    described["decode_seconds"] = records.decode_seconds - seconds_before;
    described["generated_tokens"] = records.generated_tokens - tokens_before;
    records.eval_sets[name] = described;
  }
  return records;
}

std::string held_out_lines(const Dataset& dataset, const std::vector<ExampleScores>& scores) {
  std::string lines;
  for (size_t i = 0; i < scores.size(); ++i) {
    json line = line_head("", 0, static_cast<std::int64_t>(i), dataset.tasks[static_cast<size_t>(dataset.eval[i].task)]);
    add_nll_fields(line, scores[i]);
    lines += dump_line(line);
  }
  return lines;
}

}  // namespace masklab
