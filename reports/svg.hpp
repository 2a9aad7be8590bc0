#pragma once
// Charts as standalone SVG text: an x–y chart (lines, markers, shaded bands,
// error bars) and a grouped bar chart with whiskers. They know series and
// axes, not sweeps. Every chart has a white background, a title, axis labels
// and a legend, and draws with the Okabe–Ito palette, which stays
// distinguishable under the common colour-vision deficiencies. The markup
// has no ids, so several charts can sit inline in one HTML page.
#include <string>
#include <vector>

namespace masklab::reports {

struct XYSeries {
  std::string label;                        // legend text
  size_t style = 0;                         // palette index; past the 8 colours, lines are dashed
  std::vector<double> x, y;                 // the points; a NaN y breaks the line
  std::vector<double> band_low, band_high;  // empty, or a shaded band per point
  std::vector<double> err_low, err_high;    // empty, or an error bar per point
  bool line = true;                         // join the points
  bool markers = false;                     // a dot at each point
  bool dashed = false;
};

struct AxisTick {
  double at = 0;      // in data units
  std::string label;
};

struct XYChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<XYSeries> series;
  std::vector<AxisTick> x_ticks;  // empty: evenly spaced round numbers
};

struct BarChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<std::string> groups;               // categories along x
  std::vector<std::string> series;               // the bars in every group, one legend entry each
  std::vector<std::vector<double>> values;       // [series][group]; NaN: no bar
  std::vector<std::vector<double>> low, high;    // [series][group] whisker ends; NaN: no whisker
};

// True when the chart has at least one finite point (or bar) to draw.
bool has_data(const XYChart& chart);
bool has_data(const BarChart& chart);

std::string render_svg(const XYChart& chart);
std::string render_svg(const BarChart& chart);

}  // namespace masklab::reports
