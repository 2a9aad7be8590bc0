#pragma once
// The findings page (`masklab report DIR --findings FILE`): one Markdown page
// written from the analysis alone, from which docs/findings.md is generated:
// the sweep, the headline, the quadratic fit on the λ axis per set kind and
// setting, and the comparisons of the held-out and set metrics with their
// intervals and minimum detectable effects. Deterministic: no dates or paths
// beyond the spec's.
#include <string>

#include "reports/report.hpp"
#include "reports/tables.hpp"

namespace masklab::reports {

std::string findings_markdown(const ReportInputs& inputs, const Analysis& analysis);

}  // namespace masklab::reports
