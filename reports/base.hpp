#pragma once
// The base a sweep's runs started from (sweep.json "base": a pretrain stage
// or a checkpoint; harness/sweep/base.hpp writes it), as the report shows
// it, and the runs that disagree about it.
#include <string>
#include <vector>

#include "reports/report.hpp"

namespace masklab::reports {

// One line per disagreement: runs naming different bases (their sweep.json
// base_hash or metrics.json base.hash) or none while the sweep has one,
// runs whose metrics.json base.init_from differ (among those that recorded
// one), and, when the sweep has a
// base, ok runs whose initial weights differ (metrics.json same_job.init_hash).
// Empty when the runs agree.
std::vector<std::string> base_disagreements(const ReportInputs& inputs);

// The report's "Base" section: kind, hash, path, and for a stage its
// strategy, seed, steps, model, data and its own record; then every
// disagreement as a note. "" when the sweep has no base and no run names one.
std::string base_section_html(const ReportInputs& inputs);

}  // namespace masklab::reports
