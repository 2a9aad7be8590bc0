#pragma once
// The report's charts, built from the analysis: held-out loss curves per
// strategy, each headline metric against the prompt weight λ, per-task bars,
// and per-wording bars of each evaluation set with several wordings. Each is a standalone SVG (figures/NAME.svg) that the HTML page also
// shows inline.
#include <string>
#include <vector>

#include "reports/report.hpp"
#include "reports/tables.hpp"

namespace masklab::reports {

struct Figure {
  std::string file;     // path relative to the report directory: "figures/loss_curves.svg"
  std::string section;  // where the page shows it: "curves", "plw", "tasks" or "set:<name>"
  std::string caption;  // what is drawn, including what the bands and bars mean
  std::string svg;      // the whole <svg> element
};

// Only charts with something to draw: no curve points, no λ variation or no
// per-task metrics leave their charts out.
std::vector<Figure> build_figures(const ReportInputs& inputs, const Analysis& analysis);

}  // namespace masklab::reports
