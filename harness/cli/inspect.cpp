#include "harness/cli/inspect.hpp"

#include <array>
#include <ostream>

#include <fmt/format.h>

#include "harness/data/data.hpp"
#include "harness/core/errors.hpp"
#include "harness/cli/report_data.hpp"
#include "harness/core/run_record.hpp"
#include "harness/data/tasks.hpp"
#include "reports/html.hpp"

namespace masklab {
namespace {

// Examples from a file or from built-in tasks ("builtin:lookup,count").
std::vector<Example> load_examples(const InspectOptions& o, LoadStats& stats) {
  const std::string prefix = "builtin:";
  if (o.data.rfind(prefix, 0) == 0) {
    std::vector<Example> out;
    std::string names = o.data.substr(prefix.size());
    size_t start = 0;
    while (start <= names.size()) {
      const size_t comma = names.find(',', start);
      const std::string task = names.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!task.empty()) {
        for (auto& ex : generate_task(task, std::max(o.n, 50), 0, /*seed=*/1234).train) out.push_back(std::move(ex));
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return out;
  }
  return load_jsonl(o.data, o.format, o.skip_invalid, "data", &stats);
}

// A background colour for a weight: none at 0, deepening green up to 1.
std::string ansi_for(double w) {
  if (w <= 0) return "\x1b[2m";  // dim: not trained
  const double t = std::min(1.0, w);
  const int r = static_cast<int>(230 - 150 * t), g = static_cast<int>(245 - 45 * t), b = static_cast<int>(230 - 150 * t);
  return fmt::format("\x1b[48;2;{};{};{}m\x1b[38;2;0;0;0m", r, g, b);
}

}  // namespace

void run_inspect(const InspectOptions& o, std::ostream& out) {
  std::vector<std::string> specs = o.strategies;
  if (specs.empty()) specs = {"full", "completion_only"};
  const auto tokenizer = make_tokenizer(o.tokenizer);
  const ChatTemplate tmpl = load_template(o.template_name);
  LoadStats load_stats;
  const std::vector<Example> examples = load_examples(o, load_stats);
  const int max_len = o.max_len > 0 ? o.max_len : std::numeric_limits<int>::max();

  TokenizeStats trunc;
  std::array<long, kNumRoles> tokens_per_role{};
  double prompt_tokens = 0, completion_tokens = 0;
  long kept = 0;
  std::vector<reports::WeightedExample> shown;
  for (const auto& ex : examples) {
    const auto tok = tokenize_example(ex, tmpl, *tokenizer, max_len, o.truncation == Truncation::kLeft, &trunc);
    if (!tok) continue;
    ++kept;
    for (auto r : tok->roles) ++tokens_per_role[r];
    prompt_tokens += tok->completion_begin;
    completion_tokens += tok->completion_end - tok->completion_begin;
    if (static_cast<int>(shown.size()) >= o.n) continue;

    reports::WeightedExample view = weigh_example(*tok, *tokenizer, ex.task, specs);
    out << fmt::format("# example {} ({}, {}): {} tokens\n", shown.size() + 1, ex.task, ex.origin, tok->ids.size());
    if (o.colour) {
      // One line per strategy, each token shaded by the weight of predicting it.
      for (const auto& [spec, weights] : view.weights) {
        out << fmt::format("\x1b[1m{:>18}\x1b[0m ", spec);
        for (size_t i = 0; i < view.tokens.size(); ++i) out << ansi_for(weights[i]) << view.tokens[i] << "\x1b[0m";
        out << "\n";
      }
      out << "\n";
    } else {
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
    shown.push_back(std::move(view));
  }

  // Summary over every example of the data, not only those shown.
  out << fmt::format("# summary: {} examples ({} invalid lines skipped, {} truncated, {} skipped as too long)\n",
                     kept, load_stats.invalid_skipped, trunc.truncated, trunc.skipped_too_long);
  std::string roles;
  for (int r = 0; r < kNumRoles; ++r) {
    if (tokens_per_role[r]) roles += fmt::format(" {}={}", role_name(static_cast<Role>(r)), tokens_per_role[r]);
  }
  out << "# tokens per role:" << roles << "\n";
  if (kept > 0 && prompt_tokens > 0) {
    out << fmt::format("# mean prompt {:.1f} tokens, mean final completion {:.1f} tokens: R_g = completion/prompt = {:.3f}\n",
                       prompt_tokens / kept, completion_tokens / kept, completion_tokens / prompt_tokens);
  }
  if (trunc.straddling_tokens > 0) {
    out << fmt::format("# {} tokens span a role boundary and take the role of their first character "
                       "(a template ending in a space before the completion often causes this)\n",
                       trunc.straddling_tokens);
  }
  if (trunc.earlier_turn_tokens_dropped > 0) {
    out << fmt::format("# truncation dropped {} assistant tokens of earlier turns\n", trunc.earlier_turn_tokens_dropped);
  }
  out << "# weight = loss weight of predicting the token (the label decides); 0 = not trained\n";

  if (!o.html_path.empty()) {
    write_file_atomic(o.html_path, reports::examples_page("masklab inspect: " + o.data, shown));
    out << "# wrote " << o.html_path << "\n";
  }
}

}  // namespace masklab
