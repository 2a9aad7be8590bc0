#pragma once
// The headline: sentences written from the comparisons (never by hand), for
// headline.md, the top of report.html and the findings page. The text holds
// no timestamps or paths, so a committed copy changes only when results do.
#include <string>
#include <vector>

#include "reports/report.hpp"
#include "reports/tables.hpp"

namespace masklab::reports {

// The metrics the headline speaks of: headline_metrics() that have
// comparisons, then each evaluation set's own metrics with a direction.
std::vector<std::string> headline_sentence_metrics(const Analysis& analysis);

// One sentence group per (setting, headline metric) with comparisons: each
// strategy that Holm resolves as better or worse than the baseline, with the
// difference, its t interval, the bootstrap interval, Holm p and the seeds;
// else that nothing is resolved, and which comparisons are underpowered
// (fewer than two seeds, or an observed |difference| below the MDE).
std::vector<std::string> headline_sentences(const Analysis& analysis);

// How the sweep chose its seed count, from sweep.json "until_ci"; "" without one.
std::string stopping_rule_sentence(const SweepInfo& sweep);

// headline.md: a title, the stopping rule, then the sentences as a list.
std::string headline_markdown(const ReportInputs& inputs, const Analysis& analysis);

// A number as the headline and findings write it: 3 significant digits, "n/a" for NaN.
std::string headline_number(double value);

}  // namespace masklab::reports
