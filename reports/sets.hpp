#pragma once
// Evaluation sets in the report: what each set is (metrics.json
// "eval_sets"), the per-example score tables the paired bootstrap draws
// from, and how each strategy's score spreads across a set's wordings
// (wordings.csv).
#include <string>
#include <utility>
#include <vector>

#include "reports/report.hpp"
#include "reports/stats.hpp"
#include "reports/tables.hpp"

namespace masklab::reports {

// The per-example tables of `metric` for paired runs (ours[i] pairs
// theirs[i], one seed each): the wordings every run scored, and in each the
// examples every run scored in every one of those wordings, by ascending id.
// Both empty when some run has no per-example scores for the metric or
// nothing is shared.
std::pair<std::vector<ExampleScoresTable>, std::vector<ExampleScoresTable>> example_tables(
    const ReportInputs& inputs, const std::string& metric, const std::vector<size_t>& ours,
    const std::vector<size_t>& theirs);

// The evaluation sets, by name, as the first run record that describes each
// one says; kind "" and no wordings for a set whose metrics appear without a description.
std::vector<EvalSetInfo> eval_sets(const ReportInputs& inputs);

// For every setting, set with more than one wording, strategy and metric of
// the set: the per-wording means over seeds (summary rows of
// eval.<set>.wording<i>.<metric>) and their spread.
std::vector<WordingSpread> wording_spreads(const Analysis& analysis);

// wordings.csv: the setting factors, set, strategy, metric, n_wordings,
// spread, sd, then mean_wording0 ... up to the most wordings of any set.
std::string wordings_csv(const Analysis& analysis);

}  // namespace masklab::reports
