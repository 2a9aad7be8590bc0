#pragma once
// What a report shows about the data itself, computed from a sweep's run
// configs: each task's prompt/completion length profile, and one example
// with every strategy's weights.
#include <string>

#include "reports/report.hpp"

namespace masklab {

// Fills inputs.tasks and inputs.example from the datasets of the sweep's
// conditions (read through the sweep's dataset cache in DIR/cache).
void add_data_views(reports::ReportInputs& inputs, const std::string& sweep_dir);

}  // namespace masklab
