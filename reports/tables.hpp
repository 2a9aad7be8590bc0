#pragma once
// The numbers of a report, computed once from ReportInputs and shared by the
// CSV, SVG and HTML writers.
//
// Vocabulary:
//   metric     a numeric leaf of metrics.json flattened with dots: "eval.exact_match",
//              "per_task.count.completion_nll", "tokens_trained".
//   setting    the values of every factor except strategy and seed: the
//              circumstances under which strategies are compared.
//   condition  a setting plus a strategy (every factor except seed): what
//              repeats across seeds and what summary.csv groups by.
//
// Only runs with status "ok" enter summaries, comparisons and fits; a
// diverged, failed or missing run is listed but never averaged.
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "reports/report.hpp"
#include "reports/stats.hpp"

namespace masklab::reports {

// Which way a metric improves, read from its last name part: accuracy,
// exact_match, f1, rouge_l, acc and acc_norm go up; nll, ppl and loss go
// down; counts, timings, length_ratio, output_tokens and final_train_loss
// (each strategy's own objective, not comparable across strategies) have no direction.
enum class Better { kHigher, kLower, kNeither };
Better better_direction(const std::string& metric);

// The held-out metrics of the headline table and charts.
const std::vector<std::string>& headline_metrics();

// The prompt weight λ of a run whose recorded weights lie on the prompt-loss-
// weight axis: constant over training, every assistant turn weighing 1 and
// system text weighing as prompt. Then λ is the prompt weight (completion_only
// 0, full 1, weighted:λ λ, wit:λ,1 λ); nullopt off the axis or without a record.
// The template and eos options are not part of the test: weighted:λ,template=zero is at λ too.
std::optional<double> plw_lambda(const std::optional<RoleWeightsRecord>& record);

// x = transform(λ) for the quadratic fit: log10(λ + 0.001), λ^0.25 or λ.
double transform_lambda(double lambda, PlwTransform transform);
double untransform_lambda(double x, PlwTransform transform);
// x as the report writes it: "log10(λ + 0.001)", "λ^0.25", "λ".
std::string transform_formula(PlwTransform transform);

struct SummaryRow {
  std::vector<std::string> condition;  // values of Analysis::condition_factors
  size_t setting = 0;                  // index into Analysis::settings
  std::string strategy;
  std::string metric;
  MeanInterval stats;                  // over the condition's ok runs with a finite value
};

// The significance level the report tests at, before Holm's correction.
constexpr double kAlpha = 0.05;
// The power the minimum detectable effect is computed for.
constexpr double kPower = 0.8;

struct ComparisonRow {
  size_t setting = 0;  // index into Analysis::settings
  std::string strategy;
  std::string metric;
  PairedTest test;     // strategy − baseline, paired by seed within the setting
  double p_holm = 0;   // Holm over every (setting, strategy) test of this metric
  long wins = 0;       // pairs where the strategy is better than the baseline
  long losses = 0;
  long ties = 0;
  // The paired bootstrap over (seed, example) of strategy − baseline, on the
  // seeds of `test` and the examples every one of their runs scored; seeds = 0
  // when the metric has no per-example scores (a per_task metric, an older run).
  BootstrapResult bootstrap;
  // The level of this comparison's own Holm step: kAlpha / (m − rank), rank
  // (0-based) of its p among the m finite p-values of the metric's family, so
  // Holm rejects it exactly when p < mde_alpha and every earlier step rejected;
  // kAlpha / m (the strictest step) when its p is undefined.
  double mde_alpha = 0;
  // The smallest |mean difference| the paired t-test at mde_alpha detects with
  // kPower power at n = test.n seeds and sd = test.sd_diff; NaN when n < 2.
  double mde = 0;
  // n < 2, or the observed |difference| below the MDE: a null result here says little.
  bool underpowered() const;
  // Every paired difference is 0 (e.g. both sides score 0 on every seed): nothing to detect.
  bool no_variation() const;
  // "no variation", "underpowered" or "adequate", for the findings and the HTML.
  std::string power_label() const;
};

// An evaluation set of the sweep, as metrics.json "eval_sets" describes it.
struct EvalSetInfo {
  std::string name;
  std::string kind;                    // nll | generate | choice
  long examples = 0;
  std::vector<std::string> wordings;   // the prompt templates, in wording order
};

// One strategy's score on one metric of a set, per wording: the mean over
// seeds of eval.<set>.wording<i>.<metric>, and how far the wordings spread.
struct WordingSpread {
  size_t setting = 0;
  std::string set;
  std::string strategy;
  std::string metric;          // the set's metric name alone: "exact_match"
  std::vector<double> means;   // per wording; NaN where no ok run has a value
  double spread = 0;           // max − min of the finite means
  double sd = 0;               // their sample sd (ddof = 1); NaN with fewer than two
};

struct PlwFitRow {
  size_t setting = 0;  // index into Analysis::settings
  std::string metric;
  OlsFit fit;          // y = b0 + b1·x + b2·x², x = transform(λ), one point per ok run
  double x_min = 0;    // the observed range of x
  double x_max = 0;
  double best_lambda = 0;  // λ of the fitted optimum within the observed range
  Better direction = Better::kHigher;
};

struct Analysis {
  PlwTransform transform = PlwTransform::kLog;     // ReportInputs::plw_transform
  std::string baseline;                           // ReportInputs::baseline as the sweep spells it
  bool baseline_present = false;                  // some run uses the baseline strategy
  std::vector<std::string> metrics;               // runs.csv metric columns, in order
  std::vector<std::string> condition_factors;     // SweepInfo::factors without seed
  std::vector<std::string> setting_factors;       // ... and without strategy
  std::vector<std::vector<std::string>> settings; // distinct settings (values of setting_factors), first seen first
  std::vector<std::string> strategies;            // distinct strategies, baseline first, then first seen first
  std::vector<std::map<std::string, double>> values;  // per run (as ReportInputs::runs): metric -> value, NaN for null
  std::vector<size_t> run_setting;                // per run: index into settings
  std::vector<std::optional<double>> run_lambda;  // per run: plw_lambda of its record
  std::map<std::string, double> strategy_lambda;  // strategy -> λ, for strategies on the λ axis
                                                  // (the first of its runs with a record decides)
  bool plw_varies = false;                        // >= 3 distinct λ among the strategies
  std::vector<SummaryRow> summary;
  std::vector<ComparisonRow> comparisons;
  std::vector<PlwFitRow> plw_fits;
  std::vector<EvalSetInfo> sets;                  // the sweep's evaluation sets, by name
  std::vector<WordingSpread> wording_spreads;     // sets with several wordings: setting × set × strategy × metric

  // The strategy's λ; nullopt when it is not on the λ axis.
  std::optional<double> lambda(const std::string& strategy) const;
  // NaN when the run has no finite value for the metric.
  double value(size_t run, const std::string& metric) const;
  const SummaryRow* find_summary(size_t setting, const std::string& strategy, const std::string& metric) const;
  const ComparisonRow* find_comparison(size_t setting, const std::string& strategy, const std::string& metric) const;
  const PlwFitRow* find_plw_fit(size_t setting, const std::string& metric) const;
  // "condition=small, data.train_size=200"; "" when the sweep varies nothing but strategy and seed.
  std::string setting_label(size_t setting) const;

  // Row lookups for the writers, which ask for every cell of large sweeps:
  // (setting, strategy, metric) -> index into summary / comparisons; (setting, metric) -> into plw_fits.
  std::map<std::tuple<size_t, std::string, std::string>, size_t> summary_index;
  std::map<std::tuple<size_t, std::string, std::string>, size_t> comparison_index;
  std::map<std::pair<size_t, std::string>, size_t> plw_fit_index;
};

Analysis analyze(const ReportInputs& inputs);

// The distinct values of `factor` over the runs, first seen first.
std::vector<std::string> factor_levels(const ReportInputs& inputs, const std::string& factor);

// The CSV files, as text (see write_report for their columns).
std::string runs_csv(const ReportInputs& inputs, const Analysis& analysis);
std::string summary_csv(const Analysis& analysis);
std::string comparisons_csv(const Analysis& analysis);
std::string plw_fit_csv(const Analysis& analysis);

// The metric columns of one evaluation set ("eval.<set>.<metric>", wordings
// left out), in column order; set "" gives the default held-out set's.
std::vector<std::string> set_metric_columns(const Analysis& analysis, const std::string& set);

}  // namespace masklab::reports
