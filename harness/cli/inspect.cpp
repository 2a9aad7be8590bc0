#include "harness/cli/inspect.hpp"

#include <array>
#include <ostream>

#include <fmt/format.h>

#include "harness/data/data.hpp"
#include "harness/core/errors.hpp"
#include "harness/cli/report_data.hpp"
#include "harness/core/files.hpp"
#include "harness/core/text.hpp"
#include "harness/data/tasks.hpp"
#include "reports/html.hpp"

namespace masklab {
namespace {

// Examples from a file or from built-in tasks ("builtin:lookup,count").
std::vector<Example> load_examples(const InspectOptions& o, LoadStats& stats) {
  const std::string prefix = "builtin:";
  if (o.data.rfind(prefix, 0) != 0) return load_jsonl(o.data, o.format, o.skip_invalid, "data", &stats);
  std::vector<Example> out;
  for (const auto& task : split(o.data.substr(prefix.size()), ',')) {
    if (task.empty()) continue;
    for (auto& ex : generate_task(task, std::max(o.n, 50), 0, /*seed=*/1234).train) out.push_back(std::move(ex));
  }
  return out;
}

// A background colour for a weight: none at 0, deepening green up to 1.
std::string ansi_for(double w) {
  if (w <= 0) return "\x1b[2m";  // dim: not trained
  const double t = std::min(1.0, w);
  const int r = static_cast<int>(230 - 150 * t), g = static_cast<int>(245 - 45 * t), b = static_cast<int>(230 - 150 * t);
  return fmt::format("\x1b[48;2;{};{};{}m\x1b[38;2;0;0;0m", r, g, b);
}

// One line per strategy, each token shaded by the weight of predicting it.
void print_coloured(std::ostream& out, const reports::WeightedExample& view) {
  for (const auto& [spec, weights] : view.weights) {
    out << fmt::format("\x1b[1m{:>18}\x1b[0m ", spec);
    for (size_t i = 0; i < view.tokens.size(); ++i) out << ansi_for(weights[i]) << view.tokens[i] << "\x1b[0m";
    out << "\n";
  }
  out << "\n";
}

// token|role|<weight per strategy>, one token a line; '|' in a token is escaped.
void print_table(std::ostream& out, const reports::WeightedExample& view) {
  out << "token|role";
  for (const auto& w : view.weights) out << "|" << w.first;
  out << "\n";
  for (size_t i = 0; i < view.tokens.size(); ++i) {
    std::string text = view.tokens[i];
    for (size_t p = 0; (p = text.find('|', p)) != std::string::npos; p += 2) text.replace(p, 1, "\\|");
    out << text << "|" << view.roles[i];
    for (const auto& w : view.weights) out << "|" << fmt::format("{:g}", w.second[i]);
    out << "\n";
  }
  out << "\n";
}

// Counts over every example of the data, not only those shown.
struct DataSummary {
  TokenizeStats trunc;
  std::array<long, kNumRoles> tokens_per_role{};
  double prompt_tokens = 0, completion_tokens = 0;
  long kept = 0;

  void add(const TokenizedExample& tok) {
    ++kept;
    for (auto r : tok.roles) ++tokens_per_role[r];
    prompt_tokens += tok.completion_begin;
    completion_tokens += tok.completion_end - tok.completion_begin;
  }
};

void print_summary(std::ostream& out, const DataSummary& s, const LoadStats& load_stats) {
  out << fmt::format("# summary: {} examples ({} invalid lines skipped, {} truncated, {} skipped as too long)\n",
                     s.kept, load_stats.invalid_skipped, s.trunc.truncated, s.trunc.skipped_too_long);
  std::string roles;
  for (int r = 0; r < kNumRoles; ++r) {
    if (s.tokens_per_role[r]) roles += fmt::format(" {}={}", role_name(static_cast<Role>(r)), s.tokens_per_role[r]);
  }
  out << "# tokens per role:" << roles << "\n";
  if (s.kept > 0 && s.prompt_tokens > 0) {
    out << fmt::format("# mean prompt {:.1f} tokens, mean final completion {:.1f} tokens: R_g = completion/prompt = {:.3f}\n",
                       s.prompt_tokens / s.kept, s.completion_tokens / s.kept, s.completion_tokens / s.prompt_tokens);
  }
  if (s.trunc.straddling_tokens > 0) {
    out << fmt::format("# {} tokens span a role boundary and take the role of their first character, or of the "
                       "first message text they hold when that character is template text (BPE merges the space "
                       "a template puts before a message into its first word)\n",
                       s.trunc.straddling_tokens);
  }
  if (s.trunc.earlier_turn_tokens_dropped > 0) {
    out << fmt::format("# truncation dropped {} assistant tokens of earlier turns\n", s.trunc.earlier_turn_tokens_dropped);
  }
  out << "# weight = loss weight of predicting the token (the label decides); 0 = not trained\n";
}

}  // namespace

void run_inspect(const InspectOptions& o, std::ostream& out) {
  std::vector<std::string> specs = o.strategies;
  if (specs.empty()) specs = {"full", "completion_only"};
  const auto tokenizer = make_tokenizer(o.tokenizer);
  const ChatTemplate tmpl = load_template(o.template_name, *tokenizer);
  LoadStats load_stats;
  const std::vector<Example> examples = load_examples(o, load_stats);
  const int max_len = o.max_len > 0 ? o.max_len : std::numeric_limits<int>::max();

  DataSummary summary;
  std::vector<reports::WeightedExample> shown;
  for (const auto& ex : examples) {
    const auto tok = tokenize_example(ex, tmpl, *tokenizer, max_len, o.truncation == Truncation::kLeft, &summary.trunc);
    if (!tok) continue;
    summary.add(*tok);
    if (static_cast<int>(shown.size()) >= o.n) continue;
    reports::WeightedExample view = weigh_example(*tok, *tokenizer, ex.task, specs);
    out << fmt::format("# example {} ({}, {}): {} tokens\n", shown.size() + 1, ex.task, ex.origin, tok->ids.size());
    if (o.colour) print_coloured(out, view);
    else print_table(out, view);
    shown.push_back(std::move(view));
  }
  print_summary(out, summary, load_stats);

  if (!o.html_path.empty()) {
    write_file_atomic(o.html_path, reports::examples_page("masklab inspect: " + o.data, shown));
    out << "# wrote " << o.html_path << "\n";
  }
}

}  // namespace masklab
