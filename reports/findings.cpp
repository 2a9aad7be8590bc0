#include "reports/findings.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "reports/headline.hpp"

namespace masklab::reports {
namespace {

std::string num(double v) { return headline_number(v); }

// A Markdown table cell: pipes and newlines would end it.
std::string cell(std::string text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out;
}

std::string interval(double low, double high) { return "[" + num(low) + ", " + num(high) + "]"; }

// The set kind a metric column belongs to: the default held-out set is scored
// teacher-forced, as an nll set is.
std::string kind_of(const Analysis& a, const std::string& metric) {
  const std::string rest = metric.substr(5);
  const size_t dot = rest.find('.');
  if (dot == std::string::npos) return "nll";
  const std::string set = rest.substr(0, dot);
  for (const auto& s : a.sets) {
    if (s.name == set) return s.kind.empty() ? "unknown" : s.kind;
  }
  return "unknown";
}

std::string sweep_section(const ReportInputs& inputs, const Analysis& a) {
  long ok = std::count_if(inputs.runs.begin(), inputs.runs.end(), [](const RunRow& r) { return r.status == "ok"; });
  std::string out = fmt::format("## The sweep\n\nSpec `{}`: {} runs, {} with status ok. Baseline `{}`.\n\n",
                                inputs.sweep.spec_path, inputs.runs.size(), ok, a.baseline);
  out += "| factor | values |\n| --- | --- |\n";
  for (const auto& factor : inputs.sweep.factors) {
    const std::vector<std::string> levels = factor_levels(inputs, factor);
    std::string joined;
    for (const auto& level : levels) joined += (joined.empty() ? "`" : ", `") + level + "`";
    out += "| " + cell(factor) + " | " + cell(joined) + " |\n";
  }
  out += "\n";
  for (const auto& set : a.sets) {
    out += fmt::format("- Evaluation set `{}`: kind {}, {} examples, {} wording{}.\n", set.name,
                       set.kind.empty() ? "unknown" : set.kind, set.examples, set.wordings.size(),
                       set.wordings.size() == 1 ? "" : "s");
  }
  const std::string stopping = stopping_rule_sentence(inputs.sweep);
  if (!stopping.empty()) out += "\n" + stopping + "\n";
  return out + "\n";
}

// How the optimum λ of a fit was found, in words.
std::string optimum_method(const PlwFitRow& f) {
  const double b1 = f.fit.beta(1), b2 = f.fit.beta(2);
  const bool wanted_shape = f.direction == Better::kHigher ? b2 < 0 : b2 > 0;
  if (b2 != 0 && wanted_shape) {
    const double vertex = -b1 / (2 * b2);
    if (vertex > f.x_min && vertex < f.x_max) return "vertex of the parabola, inside the observed range";
    return "better end of the observed range (the vertex lies outside it)";
  }
  return std::string("better end of the observed range (the parabola has no inner ") +
         (f.direction == Better::kHigher ? "maximum)" : "minimum)");
}

std::string coefficient(const PlwFitRow& f, int j) {
  const double half = f.fit.df > 0 ? t_quantile(0.975, static_cast<double>(f.fit.df)) * f.fit.se(j) : NAN;
  return num(f.fit.beta(j)) + " " + interval(f.fit.beta(j) - half, f.fit.beta(j) + half);
}

std::string plw_section(const Analysis& a) {
  std::string out = "## Prompt-loss weight \u03bb\n\n";
  if (!a.plw_varies) return out + "The prompt weight does not vary in this sweep (fewer than three distinct \u03bb): no fit.\n\n";
  out += fmt::format("Least squares y = b0 + b1\u00b7x + b2\u00b7x\u00b2, x = {}, one point per ok run; each coefficient "
                     "with its 95% t interval. The optimum \u03bb is the fitted best within the observed range of \u03bb.\n\n",
                     transform_formula(a.transform));
  for (const char* kind : {"nll", "generate", "choice"}) {
    std::string rows;
    for (const auto& f : a.plw_fits) {
      if (f.metric.rfind("eval.", 0) != 0 || kind_of(a, f.metric) != kind) continue;
      rows += "| " + (a.settings.size() > 1 ? cell(a.setting_label(f.setting)) + " | " : std::string()) + cell(f.metric) +
              fmt::format(" | {} | {} | {} | {} | {} | {} | {} |\n", f.fit.n, coefficient(f, 0), coefficient(f, 1),
                          coefficient(f, 2), num(f.fit.r2), num(f.best_lambda), optimum_method(f));
    }
    if (rows.empty()) continue;
    out += fmt::format("### Sets of kind {}\n\n| {}metric | n | b0 | b1 | b2 | R\u00b2 | optimum \u03bb | found as |\n"
                       "| {}--- | --- | --- | --- | --- | --- | --- | --- |\n",
                       kind, a.settings.size() > 1 ? "setting | " : "", a.settings.size() > 1 ? "--- | " : "");
    out += rows + "\n";
  }
  return out;
}

std::string comparisons_section(const Analysis& a) {
  std::string out = fmt::format(
      "## Comparisons with {}\n\nThe held-out and evaluation-set metrics (per-task and per-wording tests: "
      "comparisons.csv). Difference = strategy \u2212 baseline over paired seeds, with the 95% t interval and the paired "
      "bootstrap over (seed, example); Holm p per metric; MDE: the smallest |difference| detectable with 80% power at "
      "the comparison's Holm step.\n\n",
      a.baseline);
  const bool settings = a.settings.size() > 1;
  out += std::string("| ") + (settings ? "setting | " : "") +
         "strategy | metric | seeds | difference | 95% CI | bootstrap 95% CI | Holm p | MDE | power |\n| " +
         (settings ? "--- | " : "") + "--- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  size_t rows = 0;
  for (const auto& c : a.comparisons) {
    if (c.metric.rfind("eval.", 0) != 0 || c.metric.find(".wording") != std::string::npos) continue;
    ++rows;
    out += "| " + (settings ? cell(a.setting_label(c.setting)) + " | " : std::string()) + cell(c.strategy) + " | " +
           cell(c.metric) +
           fmt::format(" | {} | {} | {} | {} | {} | {} | {} |\n", c.test.n, num(c.test.mean_diff),
                       interval(c.test.low, c.test.high),
                       c.bootstrap.seeds > 0 ? interval(c.bootstrap.low, c.bootstrap.high) : std::string("n/a"),
                       num(c.p_holm), num(c.mde), c.power_label());
  }
  if (rows == 0) out += "\nNo comparison of a held-out metric.\n";
  return out + "\n";
}

}  // namespace

std::string findings_markdown(const ReportInputs& inputs, const Analysis& a) {
  std::string out = "# Findings: " + (inputs.sweep.name.empty() ? std::string("sweep") : inputs.sweep.name) + "\n\n";
  out += "Written by `masklab report --findings` from the sweep's run records; regenerate it rather than edit it.\n\n";
  out += sweep_section(inputs, a);
  out += "## Headline\n\n";
  const auto sentences = headline_sentences(a);
  if (sentences.empty()) out += "Nothing is compared with the baseline.\n";
  for (const auto& s : sentences) out += "- " + s + "\n";
  out += "\n" + plw_section(a) + comparisons_section(a);
  return out;
}

}  // namespace masklab::reports
