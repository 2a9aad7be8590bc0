#include "reports/headline.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace masklab::reports {
namespace {

using nlohmann::json;

const char* direction_words(const std::string& metric) {
  return better_direction(metric) == Better::kHigher ? "higher is better" : "lower is better";
}

bool improves(const ComparisonRow& c) {
  return (c.test.mean_diff > 0) == (better_direction(c.metric) == Better::kHigher);
}

// "difference +0.1 [0.05, 0.15] (95% t interval; bootstrap [0.06, 0.14]), Holm p = 0.002, 5 seeds"
std::string evidence(const ComparisonRow& c) {
  std::string out = fmt::format("difference {}{} [{}, {}] (strategy \u2212 baseline, 95% t interval", c.test.mean_diff > 0 ? "+" : "",
                                headline_number(c.test.mean_diff), headline_number(c.test.low), headline_number(c.test.high));
  if (c.bootstrap.seeds > 0) {
    out += fmt::format("; paired bootstrap over seeds and examples [{}, {}]", headline_number(c.bootstrap.low),
                       headline_number(c.bootstrap.high));
  }
  return out + fmt::format("), Holm p = {}, {} seeds", headline_number(c.p_holm), c.test.n);
}

std::string resolved_sentences(const std::vector<const ComparisonRow*>& resolved, const std::string& baseline) {
  std::string out;
  for (const ComparisonRow* c : resolved) {
    out += fmt::format("{} {} {} on {} ({}): {}. ", c->strategy, improves(*c) ? "beats" : "is worse than", baseline,
                       c->metric, direction_words(c->metric), evidence(*c));
  }
  return out;
}

// "a", "a and b", "a, b and c".
std::string joined_names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  }
  return out;
}

// For the comparisons Holm does not resolve: that nothing is, and which are underpowered.
std::string unresolved_sentences(const std::vector<const ComparisonRow*>& rows, bool any_resolved,
                                 const std::string& baseline, const std::string& metric) {
  double smallest_p = NAN;
  std::vector<const ComparisonRow*> underpowered;
  for (const ComparisonRow* c : rows) {
    if (std::isfinite(c->p_holm) && !(smallest_p <= c->p_holm)) smallest_p = c->p_holm;
    if (c->underpowered()) underpowered.push_back(c);
  }
  std::string out;
  const bool all_flat = std::all_of(rows.begin(), rows.end(), [](const ComparisonRow* c) { return c->no_variation(); });
  if (!any_resolved && all_flat) {
    return fmt::format("On {}, every strategy scores exactly as {} does on every seed: there is no difference to test. ",
                       metric, baseline);
  }
  if (!any_resolved) {
    out += fmt::format("On {}, nothing is resolved: no strategy differs from {} at Holm p < {} (smallest Holm p {}). ",
                       metric, baseline, kAlpha, headline_number(smallest_p));
  }
  if (underpowered.empty()) return out;
  std::vector<std::string> names;
  for (const ComparisonRow* c : underpowered) names.push_back(c->strategy);
  const std::string who = joined_names(names) + " against " + baseline;
  long untestable = std::count_if(underpowered.begin(), underpowered.end(), [](const ComparisonRow* c) { return c->test.n < 2; });
  if (untestable == static_cast<long>(underpowered.size())) {
    return out + fmt::format("Underpowered: {} {} fewer than two paired seeds and cannot be tested. ", who,
                             names.size() == 1 ? "has" : "have");
  }
  double mde_low = INFINITY, mde_high = 0;
  for (const ComparisonRow* c : underpowered) {
    if (!std::isfinite(c->mde)) continue;
    mde_low = std::min(mde_low, c->mde);
    mde_high = std::max(mde_high, c->mde);
  }
  const std::string range = mde_low == mde_high ? headline_number(mde_low)
                                                : headline_number(mde_low) + " to " + headline_number(mde_high);
  return out + fmt::format("Underpowered: {}: with their seeds the paired t-test detects a difference of {} with {:.0f}% "
                           "power after Holm, and the observed difference is smaller{}. ",
                           who, range, 100 * kPower,
                           untestable > 0 ? fmt::format(" (or has fewer than two seeds: {})", untestable) : "");
}

std::string trim_end(std::string text) {
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

}  // namespace

std::string headline_number(double value) {
  if (std::isnan(value)) return "n/a";
  if (value == 0) return "0";  // never "-0"
  return fmt::format("{:.3g}", value);
}

std::vector<std::string> headline_sentence_metrics(const Analysis& a) {
  std::vector<std::string> out;
  for (const auto& metric : headline_metrics()) {
    if (std::find(a.metrics.begin(), a.metrics.end(), metric) != a.metrics.end()) out.push_back(metric);
  }
  for (const auto& set : a.sets) {
    for (const auto& metric : set_metric_columns(a, set.name)) {
      if (better_direction(metric) != Better::kNeither) out.push_back(metric);
    }
  }
  return out;
}

std::vector<std::string> headline_sentences(const Analysis& a) {
  std::vector<std::string> out;
  for (size_t setting = 0; setting < a.settings.size(); ++setting) {
    const std::string prefix = a.settings.size() > 1 ? a.setting_label(setting) + ": " : "";
    for (const auto& metric : headline_sentence_metrics(a)) {
      std::vector<const ComparisonRow*> rows, resolved, unresolved;
      for (const auto& c : a.comparisons) {
        if (c.setting == setting && c.metric == metric) rows.push_back(&c);
      }
      if (rows.empty()) continue;
      for (const ComparisonRow* c : rows) (c->p_holm < kAlpha ? resolved : unresolved).push_back(c);
      // Improvements first, each group by the size of the difference.
      std::stable_sort(resolved.begin(), resolved.end(), [](const ComparisonRow* x, const ComparisonRow* y) {
        if (improves(*x) != improves(*y)) return improves(*x);
        return std::fabs(x->test.mean_diff) > std::fabs(y->test.mean_diff);
      });
      std::string text = resolved_sentences(resolved, a.baseline);
      if (!unresolved.empty()) text += unresolved_sentences(unresolved, !resolved.empty(), a.baseline, metric);
      out.push_back(prefix + trim_end(text));
    }
  }
  return out;
}

std::string stopping_rule_sentence(const SweepInfo& sweep) {
  if (!sweep.until_ci.is_object()) return "";
  auto field = [&](const char* key) {
    const json& v = sweep.until_ci.value(key, json());
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number()) return headline_number(v.get<double>());
    return std::string("n/a");
  };
  const std::string stopped = field("stopped_by");
  const std::string why = stopped == "half_width" ? "because every interval was that narrow"
                          : stopped == "max_seeds" ? "because it reached the seed limit, with intervals still wider"
                                                   : "by " + stopped;
  return fmt::format("Seeds were added in rounds until the 95% interval of every pairwise difference between strategies "
                     "on {} had a half-width of at most {}, with at most {} seeds; the sweep stopped after {} rounds at {} "
                     "seeds, {} (widest half-width {}).",
                     field("metric"), field("half_width"), field("max_seeds"), field("rounds"), field("seeds"), why,
                     field("widest_half_width"));
}

std::string headline_markdown(const ReportInputs& inputs, const Analysis& a) {
  std::string out = "# Headline: " + (inputs.sweep.name.empty() ? std::string("sweep") : inputs.sweep.name) + "\n\n";
  const std::string stopping = stopping_rule_sentence(inputs.sweep);
  if (!stopping.empty()) out += stopping + "\n\n";
  const auto sentences = headline_sentences(a);
  if (sentences.empty()) {
    out += a.baseline_present ? "No strategy shares a seed with the baseline " + a.baseline + ": nothing is compared.\n"
                              : "The baseline " + a.baseline + " is not in this sweep: nothing is compared.\n";
  }
  for (const auto& s : sentences) out += "- " + s + "\n";
  return out;
}

}  // namespace masklab::reports
