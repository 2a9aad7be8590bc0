#pragma once
// What a report shows about the data itself, computed from a sweep's run
// configs: each task's prompt/completion length profile, and one example
// with every strategy's weights.
#include <string>
#include <vector>

#include "harness/data/data.hpp"
#include "reports/report.hpp"

namespace masklab {

// One tokenized example with each strategy's weight per token: the weight
// of *predicting* that token (the first token, which nothing predicts, gets 0).
// Scheduled strategies are shown at `progress`.
reports::WeightedExample weigh_example(const TokenizedExample& example, const Tokenizer& tokenizer,
                                       const std::string& task, const std::vector<std::string>& strategy_specs,
                                       double progress = 0.0);

// Fills inputs.tasks and inputs.example from the datasets of the sweep's
// conditions (read through the sweep's dataset cache in DIR/cache). These
// views are optional: when a run's data cannot be read (a relative path from
// another directory, data moved) nothing more is added and the returned note
// says what was left out and why; a report needs only the run records.
std::vector<std::string> add_data_views(reports::ReportInputs& inputs, const std::string& sweep_dir);

}  // namespace masklab
