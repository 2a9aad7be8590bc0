#include "reports/svg.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "reports/io.hpp"

namespace masklab::reports {
namespace {

// Layout in SVG user units (= CSS pixels at 100%).
constexpr double kWidth = 760;
constexpr double kMinHeight = 400;
constexpr double kMarginLeft = 78;    // room for y tick labels and the y label
constexpr double kMarginTop = 46;     // the title
constexpr double kMarginBottom = 56;  // x tick labels and the x label
constexpr double kCharWidth = 6.6;    // mean glyph width of the 12px sans-serif font, for layout estimates
constexpr double kLegendRow = 18;
constexpr size_t kLegendChars = 30;   // longer legend labels are cut, the full text goes in a tooltip

const char* const kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                "#CC79A7", "#56B4E9", "#000000", "#F0E442"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

std::string num(double v) { return fmt::format("{:.1f}", v); }

std::string series_colour(size_t i) { return kPalette[i % kPaletteSize]; }

struct Range {
  double lo = INFINITY;
  double hi = -INFINITY;
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  void add(const std::vector<double>& vs) {
    for (double v : vs) add(v);
  }
  bool empty() const { return lo > hi; }
};

// Widens a data range a little so that no point sits on the frame, and
// gives a single value some room.
Range padded(Range r) {
  if (r.empty()) return {0, 1};
  if (r.lo == r.hi) {
    const double pad = r.lo == 0 ? 1 : std::fabs(r.lo) * 0.1;
    return {r.lo - pad, r.hi + pad};
  }
  const double pad = (r.hi - r.lo) * 0.05;
  return {r.lo - pad, r.hi + pad};
}

// Round-number ticks (1, 2 or 5 × 10^k apart) inside [lo, hi].
std::vector<AxisTick> nice_ticks(double lo, double hi) {
  constexpr int kTargetTicks = 6;
  const double raw = (hi - lo) / kTargetTicks;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double normalized = raw / magnitude;
  const double step = (normalized < 1.5 ? 1 : normalized < 3 ? 2 : normalized < 7 ? 5 : 10) * magnitude;
  const bool scientific = step >= 1e5 || step < 1e-4;
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  std::vector<AxisTick> ticks;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    const double at = std::fabs(v) < step * 1e-9 ? 0.0 : v;
    ticks.push_back({at, scientific ? fmt::format("{:.3g}", at) : fmt::format("{:.{}f}", at, decimals)});
  }
  return ticks;
}

std::string shortened(const std::string& text, size_t max_chars) {
  if (text.size() <= max_chars) return text;
  size_t cut = max_chars - 1;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return text.substr(0, cut) + "\u2026";
}

// The plot area and the mapping from data to pixels.
struct Frame {
  double left, right, top, bottom;  // pixels
  Range x, y;                       // data
  double px(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * (right - left); }
  double py(double v) const { return bottom - (v - y.lo) / (y.hi - y.lo) * (bottom - top); }
};

enum class LegendMark { kLine, kDashedLine, kBox };
struct LegendEntry {
  std::string label;
  size_t style;
  LegendMark mark;
};

double legend_width(const std::vector<LegendEntry>& entries) {
  size_t chars = 0;
  for (const auto& e : entries) chars = std::max(chars, std::min(kLegendChars, e.label.size()));
  return chars == 0 ? 0 : 34 + static_cast<double>(chars) * kCharWidth;
}

std::string svg_open(double width, double height, const std::string& title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\" role=\"img\">\n"
      "<title>{2}</title>\n<rect width=\"{0}\" height=\"{1}\" fill=\"#ffffff\"/>\n"
      "<text x=\"{3}\" y=\"26\" font-size=\"15\" font-weight=\"bold\" fill=\"#222\">{2}</text>\n",
      num(width), num(height), html_escape(title), num(kMarginLeft));
}

// Grid, ticks, axis lines and axis labels (an empty x label is left to the caller).
std::string axes(const Frame& f, const std::vector<AxisTick>& x_ticks, const std::vector<AxisTick>& y_ticks,
                 const std::string& x_label, const std::string& y_label) {
  std::string out = "<g stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (const auto& t : y_ticks) {
    out += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>\n", num(f.left), num(f.right), num(f.py(t.at)),
                       num(f.py(t.at)));
  }
  out += "</g>\n<g fill=\"#333\" text-anchor=\"end\">\n";
  for (const auto& t : y_ticks) {
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", num(f.left - 6), num(f.py(t.at) + 4), html_escape(t.label));
  }
  out += "</g>\n<g fill=\"#333\" text-anchor=\"middle\">\n";
  double last_label_right = -INFINITY;  // ticks whose labels would overlap the previous one stay unlabelled
  for (const auto& t : x_ticks) {
    const double x = f.px(t.at);
    out += fmt::format("<line x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#333\"/>\n", num(x), num(f.bottom),
                       num(f.bottom + 4));
    const double half = static_cast<double>(t.label.size()) * kCharWidth / 2;
    if (x - half < last_label_right + 4) continue;
    out += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", num(x), num(f.bottom + 18), html_escape(t.label));
    last_label_right = x + half;
  }
  out += "</g>\n";
  out += fmt::format("<path d=\"M{0} {1} V{2} H{3}\" fill=\"none\" stroke=\"#333\"/>\n", num(f.left), num(f.top),
                     num(f.bottom), num(f.right));
  if (!x_label.empty()) {
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#222\">{}</text>\n",
                       num((f.left + f.right) / 2), num(f.bottom + 40), html_escape(x_label));
  }
  out += fmt::format("<text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\" fill=\"#222\">{}</text>\n",
                     num((f.top + f.bottom) / 2), html_escape(y_label));
  return out;
}

std::string legend(const std::vector<LegendEntry>& entries, double x, double y) {
  std::string out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const double row_y = y + static_cast<double>(i) * kLegendRow;
    const std::string colour = series_colour(e.style);
    out += "<g>";
    if (e.label.size() > kLegendChars) out += "<title>" + html_escape(e.label) + "</title>";
    if (e.mark == LegendMark::kBox) {
      out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"16\" height=\"11\" fill=\"{}\"/>", num(x), num(row_y - 9), colour);
    } else {
      out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"2.5\"{4}/>",
                         num(x), num(x + 22), num(row_y - 4), colour,
                         e.mark == LegendMark::kDashedLine ? " stroke-dasharray=\"6 3\"" : "");
    }
    out += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#222\">{}</text></g>\n", num(x + 28), num(row_y),
                       html_escape(shortened(e.label, kLegendChars)));
  }
  return out;
}

// Index runs [begin, end) where every one of `columns` is finite.
std::vector<std::pair<size_t, size_t>> finite_runs(size_t n, const std::vector<const std::vector<double>*>& columns) {
  std::vector<std::pair<size_t, size_t>> runs;
  size_t begin = 0;
  for (size_t i = 0; i <= n; ++i) {
    const bool ok = i < n && std::all_of(columns.begin(), columns.end(),
                                         [&](const std::vector<double>* c) { return std::isfinite((*c)[i]); });
    if (ok) continue;
    if (i > begin) runs.emplace_back(begin, i);
    begin = i + 1;
  }
  return runs;
}

bool is_dashed(const XYSeries& s) { return s.dashed || s.style >= kPaletteSize; }

// A vertical bar from pixel lo to hi with caps reaching `cap` pixels either side.
std::string whisker(double x, double lo, double hi, double cap, const std::string& colour, const char* stroke_width) {
  return fmt::format("<path d=\"M{0} {1} V{2} M{3} {1} H{4} M{3} {2} H{4}\" stroke=\"{5}\" stroke-width=\"{6}\"/>",
                     num(x), num(lo), num(hi), num(x - cap), num(x + cap), colour, stroke_width);
}

// The frame of an x–y chart: the data range of every series and tick, left of the legend.
Frame xy_frame(const XYChart& chart, double legend_w, double height) {
  Range x_range, y_range;
  for (const auto& s : chart.series) {
    x_range.add(s.x);
    for (const auto* column : {&s.y, &s.band_low, &s.band_high, &s.err_low, &s.err_high}) y_range.add(*column);
  }
  for (const auto& t : chart.x_ticks) x_range.add(t.at);
  return {kMarginLeft, kWidth - legend_w - 24, kMarginTop, height - kMarginBottom, padded(x_range), padded(y_range)};
}

// A series' shaded band: one polygon per stretch where x and both edges are finite.
std::string band(const Frame& f, const XYSeries& s) {
  std::string out;
  if (s.band_low.empty()) return out;
  for (const auto& [begin, end] : finite_runs(s.x.size(), {&s.x, &s.band_low, &s.band_high})) {
    std::string points;
    for (size_t i = begin; i < end; ++i) points += num(f.px(s.x[i])) + "," + num(f.py(s.band_high[i])) + " ";
    for (size_t i = end; i-- > begin;) points += num(f.px(s.x[i])) + "," + num(f.py(s.band_low[i])) + " ";
    out += fmt::format("<polygon points=\"{}\" fill=\"{}\" fill-opacity=\"0.18\" stroke=\"none\"/>\n", points,
                       series_colour(s.style));
  }
  return out;
}

// A series' line, broken where a point is not finite.
std::string line(const Frame& f, const XYSeries& s) {
  std::string out;
  for (const auto& [begin, end] : finite_runs(s.x.size(), {&s.x, &s.y})) {
    std::string points;
    for (size_t i = begin; i < end; ++i) points += num(f.px(s.x[i])) + "," + num(f.py(s.y[i])) + " ";
    out += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", points,
                       series_colour(s.style), is_dashed(s) ? " stroke-dasharray=\"6 3\"" : "");
  }
  return out;
}

std::string error_bars(const Frame& f, const XYSeries& s) {
  std::string out;
  for (size_t i = 0; i < s.err_low.size() && i < s.x.size(); ++i) {
    if (!std::isfinite(s.x[i]) || !std::isfinite(s.err_low[i]) || !std::isfinite(s.err_high[i])) continue;
    out += whisker(f.px(s.x[i]), f.py(s.err_low[i]), f.py(s.err_high[i]), 4, series_colour(s.style), "1.5") + "\n";
  }
  return out;
}

std::string markers(const Frame& f, const XYSeries& s) {
  std::string out;
  for (size_t i = 0; s.markers && i < s.x.size(); ++i) {
    if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
    out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"/>\n", num(f.px(s.x[i])),
                       num(f.py(s.y[i])), series_colour(s.style));
  }
  return out;
}

// Where a bar chart's groups go. Group labels that do not fit their slot are
// written at a slant, which needs more room below.
struct BarLayout {
  Frame frame;
  double group_w;
  double height;
  bool slanted;
};

BarLayout bar_layout(const BarChart& chart, double legend_w, size_t legend_rows) {
  Range y_range;
  y_range.add(0.0);  // bars start at zero, so zero is always on the axis
  for (size_t s = 0; s < chart.series.size(); ++s) {
    for (const auto* column : {&chart.values, &chart.low, &chart.high}) {
      if (s < column->size()) y_range.add((*column)[s]);
    }
  }
  const double plot_left = kMarginLeft, plot_right = kWidth - legend_w - 24;
  const double group_w = (plot_right - plot_left) / static_cast<double>(std::max<size_t>(1, chart.groups.size()));
  size_t longest = 0;
  for (const auto& g : chart.groups) longest = std::max(longest, std::min<size_t>(24, g.size()));
  const bool slanted = static_cast<double>(longest) * kCharWidth > group_w - 6;
  const double bottom_margin = slanted ? 40 + static_cast<double>(longest) * kCharWidth * 0.6 : kMarginBottom;
  const double height = std::max(kMinHeight + (slanted ? bottom_margin - kMarginBottom : 0),
                                 kMarginTop + static_cast<double>(legend_rows) * kLegendRow + 24);
  Range padded_y = padded(y_range);
  padded_y.lo = std::max(padded_y.lo, std::min(0.0, y_range.lo));  // no empty strip under the zero line
  return {{plot_left, plot_right, kMarginTop, height - bottom_margin, {0, 1}, padded_y}, group_w, height, slanted};
}

std::string group_label(const BarLayout& layout, double centre, const std::string& name) {
  const std::string label = html_escape(shortened(name, 24));
  if (layout.slanted) {
    return fmt::format("<text transform=\"translate({} {}) rotate(-35)\" text-anchor=\"end\" fill=\"#333\">{}</text>\n",
                       num(centre), num(layout.frame.bottom + 14), label);
  }
  return fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>\n", num(centre),
                     num(layout.frame.bottom + 18), label);
}

// Series s's bar in group g, left edge at x, with its whisker and a tooltip; "" for a NaN value.
std::string bar(const BarChart& chart, const Frame& f, size_t s, size_t g, double x, double bar_w) {
  const double v = chart.values[s][g];
  if (!std::isfinite(v)) return "";
  const double top = std::min(f.py(v), f.py(0)), bar_h = std::fabs(f.py(v) - f.py(0));
  const double lo = chart.low[s][g], hi = chart.high[s][g];
  const std::string interval = std::isfinite(lo) && std::isfinite(hi) ? fmt::format(" [{:.4g}, {:.4g}]", lo, hi) : "";
  std::string out = fmt::format(
      "<g><title>{} \u00b7 {}: {:.4g}{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
      html_escape(chart.series[s]), html_escape(chart.groups[g]), v, interval, num(x), num(top),
      num(std::max(1.0, bar_w - 1)), num(bar_h), series_colour(s));
  if (!interval.empty()) out += whisker(x + bar_w / 2, f.py(lo), f.py(hi), 3, "#222", "1.2");
  return out + "</g>\n";
}

}  // namespace

bool has_data(const XYChart& chart) {
  for (const auto& s : chart.series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) return true;
    }
  }
  return false;
}

bool has_data(const BarChart& chart) {
  for (const auto& row : chart.values) {
    if (std::any_of(row.begin(), row.end(), [](double v) { return std::isfinite(v); })) return true;
  }
  return false;
}

std::string render_svg(const XYChart& chart) {
  std::vector<LegendEntry> entries;
  for (const auto& s : chart.series) {
    entries.push_back({s.label, s.style, is_dashed(s) ? LegendMark::kDashedLine : LegendMark::kLine});
  }
  const double height = std::max(kMinHeight, kMarginTop + static_cast<double>(entries.size()) * kLegendRow + 24);
  const Frame f = xy_frame(chart, legend_width(entries), height);
  const auto x_ticks = chart.x_ticks.empty() ? nice_ticks(f.x.lo, f.x.hi) : chart.x_ticks;

  std::string out = svg_open(kWidth, height, chart.title);
  out += axes(f, x_ticks, nice_ticks(f.y.lo, f.y.hi), chart.x_label, chart.y_label);
  for (const auto& s : chart.series) out += band(f, s);  // bands first, under every line
  for (const auto& s : chart.series) {
    out += "<g><title>" + html_escape(s.label) + "</title>\n";
    if (s.line) out += line(f, s);
    out += error_bars(f, s) + markers(f, s) + "</g>\n";
  }
  out += legend(entries, f.right + 16, kMarginTop + 8);
  return out + "</svg>\n";
}

std::string render_svg(const BarChart& chart) {
  std::vector<LegendEntry> entries;
  for (size_t s = 0; s < chart.series.size(); ++s) entries.push_back({chart.series[s], s, LegendMark::kBox});
  const BarLayout layout = bar_layout(chart, legend_width(entries), entries.size());
  const Frame& f = layout.frame;

  std::string out = svg_open(kWidth, layout.height, chart.title);
  out += axes(f, {}, nice_ticks(f.y.lo, f.y.hi), "", chart.y_label);  // the x label goes below the slanted names
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#222\">{}</text>\n",
                     num((f.left + f.right) / 2), num(layout.height - 8), html_escape(chart.x_label));
  const double bar_w = layout.group_w * 0.8 / static_cast<double>(std::max<size_t>(1, chart.series.size()));
  for (size_t g = 0; g < chart.groups.size(); ++g) {
    const double group_left = f.left + static_cast<double>(g) * layout.group_w + layout.group_w * 0.1;
    out += group_label(layout, f.left + (static_cast<double>(g) + 0.5) * layout.group_w, chart.groups[g]);
    for (size_t s = 0; s < chart.series.size(); ++s) {
      out += bar(chart, f, s, g, group_left + static_cast<double>(s) * bar_w, bar_w);
    }
  }
  out += legend(entries, f.right + 16, kMarginTop + 8);
  return out + "</svg>\n";
}

}  // namespace masklab::reports
