#include "reports/figures.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "reports/svg.hpp"

namespace masklab::reports {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One strategy's bars: the mean over seeds of each metric with its 95% t
// interval, NaN where the summary has no ok run.
void add_summary_bars(const Analysis& a, size_t setting, const std::string& strategy,
                      const std::vector<std::string>& metrics, BarChart& chart) {
  std::vector<double> values, low, high;
  for (const auto& metric : metrics) {
    const SummaryRow* row = a.find_summary(setting, strategy, metric);
    const bool present = row && row->stats.n > 0;
    values.push_back(present ? row->stats.mean : kNaN);
    low.push_back(present ? row->stats.low : kNaN);
    high.push_back(present ? row->stats.high : kNaN);
  }
  chart.series.push_back(strategy);
  chart.values.push_back(std::move(values));
  chart.low.push_back(std::move(low));
  chart.high.push_back(std::move(high));
}

constexpr int kFitCurvePoints = 60;

// Readable axis names for the headline metrics; others use the metric's own name.
std::string metric_title(const std::string& metric) {
  static const std::map<std::string, std::string> titles = {
      {"eval.exact_match", "held-out exact match"},
      {"eval.completion_nll", "held-out completion NLL (nats/token)"},
      {"eval.completion_token_accuracy", "held-out completion token accuracy"},
      {"eval.prompt_nll", "held-out prompt NLL (nats/token)"},
      {"train.completion_nll", "train-subset completion NLL (nats/token)"}};
  const auto it = titles.find(metric);
  return it == titles.end() ? metric : it->second;
}

// " (condition=small)" for charts of one setting among several; "" when the sweep has one.
std::string setting_suffix(const Analysis& a, size_t setting) {
  const std::string label = a.setting_label(setting);
  return label.empty() ? "" : " (" + label + ")";
}

// "-2" after a file stem when the sweep has several settings, so each gets its own file.
std::string setting_stem(const Analysis& a, size_t setting) {
  return a.settings.size() > 1 ? fmt::format("-{}", setting + 1) : "";
}

const json* curve_value(const json& point, const char* group, const char* metric) {
  const auto g = point.find(group);
  if (g == point.end() || !g->is_object()) return nullptr;
  const auto m = g->find(metric);
  return m == g->end() || !m->is_number() ? nullptr : &*m;
}

// step -> the held-out completion NLL of each ok run of (setting, strategy) that evaluated then.
std::map<double, std::vector<double>> nll_by_step(const ReportInputs& inputs, const Analysis& a, size_t setting,
                                                  const std::string& strategy) {
  std::map<double, std::vector<double>> by_step;
  for (size_t r = 0; r < inputs.runs.size(); ++r) {
    const RunRow& run = inputs.runs[r];
    const auto it = run.factors.find("strategy");
    if (a.run_setting[r] != setting || run.status != "ok" || it == run.factors.end() || it->second != strategy) {
      continue;
    }
    for (const auto& point : run.curve) {
      const json* nll = curve_value(point, "eval", "completion_nll");
      if (nll && point.contains("step") && point["step"].is_number()) {
        by_step[point["step"].get<double>()].push_back(nll->get<double>());
      }
    }
  }
  return by_step;
}

// (a) Held-out completion NLL against the step: per strategy, the mean over
// its ok runs with a mean ± 1 sd band across seeds.
std::vector<Figure> loss_curves(const ReportInputs& inputs, const Analysis& a) {
  std::vector<Figure> out;
  for (size_t setting = 0; setting < a.settings.size(); ++setting) {
    XYChart chart;
    chart.title = "Held-out completion loss during training" + setting_suffix(a, setting);
    chart.x_label = "training step";
    chart.y_label = metric_title("eval.completion_nll");
    for (size_t k = 0; k < a.strategies.size(); ++k) {
      const auto by_step = nll_by_step(inputs, a, setting, a.strategies[k]);
      if (by_step.empty()) continue;
      XYSeries s;
      s.label = a.strategies[k];
      s.style = k;
      s.markers = by_step.size() <= 40;
      for (const auto& [step, values] : by_step) {
        const double m = mean(values), sd = sample_sd(values);
        s.x.push_back(step);
        s.y.push_back(m);
        s.band_low.push_back(m - sd);  // NaN (no band) where only one seed reached this step
        s.band_high.push_back(m + sd);
      }
      chart.series.push_back(std::move(s));
    }
    if (!has_data(chart)) continue;
    out.push_back({"figures/loss_curves" + setting_stem(a, setting) + ".svg", "curves",
                   "Held-out completion NLL at each evaluation step" + setting_suffix(a, setting) +
                       ". Line: mean over seeds (runs with status ok); band: mean \u00b1 1 standard deviation "
                       "across seeds (absent where a single seed reached that step).",
                   render_svg(chart)});
  }
  return out;
}

// The x axis of the λ charts: a tick at every λ of the sweep, labelled with λ itself.
std::vector<AxisTick> lambda_ticks(const Analysis& a) {
  std::set<double> lambdas;
  for (const auto& [strategy, lambda] : a.strategy_lambda) lambdas.insert(lambda);
  std::vector<AxisTick> ticks;
  for (double lambda : lambdas) ticks.push_back({transform_lambda(lambda, a.transform), fmt::format("{:g}", lambda)});
  return ticks;
}

std::string lambda_axis_label(PlwTransform transform) {
  switch (transform) {
    case PlwTransform::kLog: return "prompt-loss weight \u03bb (log scale: " + transform_formula(transform) + ")";
    case PlwTransform::kQuarter: return "prompt-loss weight \u03bb (scale: " + transform_formula(transform) + ")";
    case PlwTransform::kLinear: break;
  }
  return "prompt-loss weight \u03bb";
}

// One setting's summaries of `metric` at each strategy's λ, in order of λ.
XYSeries lambda_points(const Analysis& a, size_t setting, const std::string& metric) {
  std::vector<std::pair<double, const SummaryRow*>> points;  // (λ, summary)
  for (const auto& strategy : a.strategies) {
    const auto lambda = a.lambda(strategy);
    const SummaryRow* row = a.find_summary(setting, strategy, metric);
    if (lambda && row && row->stats.n > 0) points.emplace_back(*lambda, row);
  }
  std::stable_sort(points.begin(), points.end(), [](const auto& p, const auto& q) { return p.first < q.first; });
  XYSeries s;
  s.label = a.settings.size() > 1 ? a.setting_label(setting) : "mean \u00b1 95% CI";
  s.style = setting;
  s.markers = true;
  for (const auto& [lambda, row] : points) {
    s.x.push_back(transform_lambda(lambda, a.transform));
    s.y.push_back(row->stats.mean);
    s.err_low.push_back(row->stats.low);
    s.err_high.push_back(row->stats.high);
  }
  return s;
}

// The fitted quadratic over the observed range of x, dashed in the setting's colour.
XYSeries fit_curve(const Analysis& a, const PlwFitRow& fit) {
  XYSeries curve;
  curve.label = a.settings.size() > 1      ? a.setting_label(fit.setting) + " (quadratic fit)"
                : std::isfinite(fit.fit.r2) ? fmt::format("quadratic fit, R\u00b2 = {:.2f}", fit.fit.r2)
                                            : "quadratic fit";  // a constant metric has no R²
  curve.style = fit.setting;
  curve.dashed = true;
  const auto& b = fit.fit.beta;
  for (int i = 0; i <= kFitCurvePoints; ++i) {
    const double x = fit.x_min + (fit.x_max - fit.x_min) * i / kFitCurvePoints;
    curve.x.push_back(x);
    curve.y.push_back(b(0) + b(1) * x + b(2) * x * x);
  }
  return curve;
}

// (b) Each headline metric against λ: mean ± 95% CI over seeds for each
// strategy on the λ axis, and the fitted quadratic when there is one.
std::vector<Figure> plw_charts(const Analysis& a) {
  std::vector<Figure> out;
  if (!a.plw_varies) return out;
  for (const auto& metric : headline_metrics()) {
    XYChart chart;
    chart.title = metric_title(metric) + " vs prompt weight";
    chart.x_label = lambda_axis_label(a.transform);
    chart.y_label = metric_title(metric);
    chart.x_ticks = lambda_ticks(a);
    for (size_t setting = 0; setting < a.settings.size(); ++setting) {
      chart.series.push_back(lambda_points(a, setting, metric));
      if (const PlwFitRow* fit = a.find_plw_fit(setting, metric)) chart.series.push_back(fit_curve(a, *fit));
    }
    if (!has_data(chart)) continue;
    std::string stem = metric;
    std::replace(stem.begin(), stem.end(), '.', '_');
    out.push_back({"figures/plw_" + stem + ".svg", "plw",
                   metric_title(metric) + " against the prompt-loss weight \u03bb (completion_only = 0, full = 1). "
                   "Dots: mean over seeds (runs with status ok); bars: 95% t interval of the mean; dashed: the "
                   "least-squares quadratic in the transformed \u03bb (plw_fit.csv).",
                   render_svg(chart)});
  }
  return out;
}

// The tasks with per-task metrics ("per_task.<task>.exact_match"), in column order.
std::vector<std::string> metric_tasks(const Analysis& a) {
  const std::string prefix = "per_task.", suffix = ".exact_match";
  std::vector<std::string> tasks;
  for (const auto& metric : a.metrics) {
    if (metric.size() > prefix.size() + suffix.size() && metric.rfind(prefix, 0) == 0 &&
        metric.compare(metric.size() - suffix.size(), suffix.size(), suffix) == 0) {
      tasks.push_back(metric.substr(prefix.size(), metric.size() - prefix.size() - suffix.size()));
    }
  }
  return tasks;
}

// (c) Per-task exact match and completion NLL: one bar per strategy, whiskers the 95% CI.
std::vector<Figure> task_bars(const Analysis& a) {
  std::vector<Figure> out;
  const auto tasks = metric_tasks(a);
  if (tasks.empty()) return out;
  for (size_t setting = 0; setting < a.settings.size(); ++setting) {
    for (const char* leaf : {"exact_match", "completion_nll"}) {
      BarChart chart;
      chart.title = std::string("Held-out ") + (leaf == std::string("exact_match") ? "exact match" : "completion NLL") +
                    " per task" + setting_suffix(a, setting);
      chart.x_label = "task";
      chart.y_label = metric_title(std::string("eval.") + leaf);
      chart.groups = tasks;
      for (const auto& strategy : a.strategies) {
        std::vector<std::string> metrics;
        for (const auto& task : tasks) metrics.push_back("per_task." + task + "." + leaf);
        add_summary_bars(a, setting, strategy, metrics, chart);
      }
      if (!has_data(chart)) continue;
      out.push_back({std::string("figures/tasks_") + leaf + setting_stem(a, setting) + ".svg", "tasks",
                     chart.title + ". Bars: mean over seeds (runs with status ok); whiskers: 95% t interval of the "
                                   "mean (none with a single seed).",
                     render_svg(chart)});
    }
  }
  return out;
}

// A name that is safe in a file name as it stands (a set's name is [a-z][a-z0-9_]*).
bool plain_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// (d) A set's metric under each of its wordings: one bar per strategy, whiskers the 95% CI.
std::vector<Figure> wording_bars(const Analysis& a) {
  std::vector<Figure> out;
  for (const auto& set : a.sets) {
    if (set.wordings.size() < 2 || !plain_name(set.name)) continue;
    for (size_t setting = 0; setting < a.settings.size(); ++setting) {
      for (const auto& column : set_metric_columns(a, set.name)) {
        const std::string leaf = column.substr(6 + set.name.size());
        BarChart chart;
        chart.title = "Set " + set.name + ": " + leaf + " per wording" + setting_suffix(a, setting);
        chart.x_label = "wording";
        chart.y_label = leaf;
        for (size_t w = 0; w < set.wordings.size(); ++w) chart.groups.push_back("wording " + std::to_string(w));
        for (const auto& strategy : a.strategies) {
          std::vector<std::string> metrics;
          for (size_t w = 0; w < set.wordings.size(); ++w) {
            metrics.push_back("eval." + set.name + ".wording" + std::to_string(w) + "." + leaf);
          }
          add_summary_bars(a, setting, strategy, metrics, chart);
        }
        if (!has_data(chart)) continue;
        out.push_back({"figures/wordings_" + set.name + "_" + leaf + setting_stem(a, setting) + ".svg", "set:" + set.name,
                       chart.title + ". Bars: mean over seeds of the set scored under that wording alone (runs with "
                                     "status ok); whiskers: 95% t interval of the mean (none with a single seed).",
                       render_svg(chart)});
      }
    }
  }
  return out;
}

}  // namespace

std::vector<Figure> build_figures(const ReportInputs& inputs, const Analysis& analysis) {
  std::vector<Figure> out = loss_curves(inputs, analysis);
  for (auto& part : {plw_charts(analysis), task_bars(analysis), wording_bars(analysis)}) {
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace masklab::reports
