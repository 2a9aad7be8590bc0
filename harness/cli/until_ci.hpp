#pragma once
// `masklab sweep SPEC --until-ci METRIC:HALF_WIDTH [--max-seeds N]`: runs the
// sweep in rounds, adding seeds to every strategy, until the 95% interval of
// every pairwise difference between strategies on METRIC (seed-level paired
// t, within each setting) is at most HALF_WIDTH wide on each side, or the
// sweep has N seeds. Each round is a plain sweep of the spec with a longer
// seed list, so finished runs are never rerun and an interrupted round
// resumes where it stopped; sweep.json's "until_ci" records the rule and
// what stopped it, for the report.
#include <string>

#include <nlohmann/json.hpp>

#include "harness/sweep/sweep.hpp"

namespace masklab {

namespace reports {
struct ReportInputs;
}

struct UntilCiRule {
  std::string metric;       // a metric name as the report's CSVs spell it: eval.exact_match, eval.gen.f1, ...
  double half_width = 0;    // > 0
  int max_seeds = 20;       // at most this many seeds per strategy
  int round_seeds = 1;      // seeds added per round
};

// "METRIC:HALF_WIDTH" -> the rule (max_seeds and round_seeds left as given).
UntilCiRule parse_until_ci(const std::string& text);

// The widest 95% half-width over every setting and pair of strategies.
struct IntervalCheck {
  bool metric_seen = false;    // some ok run has a finite value of the metric
  int pairs = 0;               // (setting, strategy pair) comparisons
  int undefined = 0;           // of them, those with fewer than 2 paired seeds
  double widest_half_width = 0;  // NaN when some pair is undefined
  std::string widest;          // "a vs b" (with the setting, when the sweep has several)
};
IntervalCheck widest_interval(const reports::ReportInputs& inputs, const std::string& metric);

// Runs the rounds; returns the exit status of the last round's sweep (130
// when interrupted: the next start resumes).
int sweep_until_ci(const std::string& spec_path, const SweepOptions& options, const UntilCiRule& rule);

}  // namespace masklab
