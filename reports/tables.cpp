#include "reports/tables.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/text.hpp"
#include "reports/io.hpp"
#include "reports/sets.hpp"

namespace masklab::reports {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Top-level record fields that are measurements of the run; the rest of the
// top level (seed, steps_planned, same_job, data, provenance) describes it.
const std::vector<std::string> kTopLevelMetrics = {"tokens_trained", "tokens_seen",      "wall_seconds",
                                                   "final_train_loss", "steps",          "padding_waste",
                                                   "tokens_per_second", "decode_seconds",
                                                   "decode_tokens_per_second"};

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

std::string factor_of(const RunRow& run, const std::string& factor) {
  const auto it = run.factors.find(factor);
  return it == run.factors.end() ? "" : it->second;
}

// Numeric and null leaves under `node`, named prefix.key.key...; null becomes NaN.
void flatten(const json& node, const std::string& prefix, std::map<std::string, double>& out) {
  if (node.is_object()) {
    for (const auto& [key, child] : node.items()) flatten(child, prefix + "." + key, out);
  } else if (node.is_number()) {
    out[prefix] = node.get<double>();
  } else if (node.is_null()) {
    out[prefix] = kNaN;
  }
}

std::map<std::string, double> flatten_metrics(const json& metrics) {
  std::map<std::string, double> out;
  if (!metrics.is_object()) return out;
  for (const char* group : {"eval", "train", "per_task"}) {
    if (metrics.contains(group) && metrics[group].is_object()) flatten(metrics[group], group, out);
  }
  for (const auto& key : kTopLevelMetrics) {
    if (!metrics.contains(key)) continue;
    const json& v = metrics[key];
    if (v.is_number()) out[key] = v.get<double>();
    if (v.is_null()) out[key] = kNaN;
  }
  return out;
}

// Where an eval.* column sorts: the default set's metrics ("eval.<metric>")
// first, then each evaluation set by name, its own metrics before its
// wordings' ("eval.<set>.wording<i>.<metric>"), wordings in number order.
std::tuple<std::string, long, std::string> eval_column_key(const std::string& name) {
  const std::string rest = name.substr(5);  // after "eval."
  const size_t dot = rest.find('.');
  if (dot == std::string::npos) return {"", -1, rest};
  const std::string set = rest.substr(0, dot), tail = rest.substr(dot + 1);
  const size_t wording_dot = tail.find('.');
  if (tail.rfind("wording", 0) == 0 && wording_dot != std::string::npos && wording_dot > 7 &&
      std::all_of(tail.begin() + 7, tail.begin() + static_cast<long>(wording_dot), ::isdigit)) {
    return {set, std::stol(tail.substr(7, wording_dot - 7)), tail.substr(wording_dot + 1)};
  }
  return {set, -1, tail};
}

// Metric columns: eval.* (in eval_column_key order), train.*, per_task.*
// (each alphabetical), then the top-level measurements in their fixed order;
// the union over all runs.
std::vector<std::string> metric_columns(const std::vector<std::map<std::string, double>>& values) {
  std::set<std::string> grouped;
  std::set<std::string> top_level;
  for (const auto& run : values) {
    for (const auto& [name, value] : run) {
      if (std::find(kTopLevelMetrics.begin(), kTopLevelMetrics.end(), name) != kTopLevelMetrics.end()) {
        top_level.insert(name);
      } else {
        grouped.insert(name);
      }
    }
  }
  std::vector<std::string> out;
  for (const char* group : {"eval.", "train.", "per_task."}) {
    for (const auto& name : grouped) {
      if (name.rfind(group, 0) == 0) out.push_back(name);
    }
  }
  const auto eval_end = std::partition_point(out.begin(), out.end(), [](const std::string& n) { return n.rfind("eval.", 0) == 0; });
  std::stable_sort(out.begin(), eval_end, [](const std::string& x, const std::string& y) {
    return eval_column_key(x) < eval_column_key(y);
  });
  for (const auto& name : kTopLevelMetrics) {
    if (top_level.count(name)) out.push_back(name);
  }
  return out;
}

// The metrics the λ fits cover: held-out quality metrics and, per task, exact
// match and completion NLL.
bool is_plw_metric(const std::string& metric) {
  if (metric.rfind("eval.", 0) == 0) {  // wordings alone are fitted only through their set's mean
    return better_direction(metric) != Better::kNeither && std::get<1>(eval_column_key(metric)) < 0;
  }
  if (metric.rfind("per_task.", 0) != 0) return false;
  auto ends_with = [&](const std::string& suffix) {
    return metric.size() > suffix.size() && metric.compare(metric.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with(".exact_match") || ends_with(".completion_nll");  // not train_exact_match, train_completion_nll
}

void add_summaries(const ReportInputs& inputs, Analysis& a) {
  for (size_t s = 0; s < a.settings.size(); ++s) {
    for (const auto& strategy : a.strategies) {
      std::vector<size_t> runs;  // every run of this condition, any status
      for (size_t r = 0; r < inputs.runs.size(); ++r) {
        if (a.run_setting[r] == s && factor_of(inputs.runs[r], "strategy") == strategy) runs.push_back(r);
      }
      if (runs.empty()) continue;
      std::vector<std::string> condition;
      for (const auto& f : a.condition_factors) condition.push_back(factor_of(inputs.runs[runs[0]], f));
      for (const auto& metric : a.metrics) {
        std::vector<double> xs;
        for (size_t r : runs) {
          const double v = a.value(r, metric);
          if (inputs.runs[r].status == "ok" && std::isfinite(v)) xs.push_back(v);
        }
        a.summary.push_back({condition, s, strategy, metric, mean_interval(xs)});
      }
    }
  }
}

// For one setting and strategy: seed -> run index, ok runs only; the first run wins a duplicate seed.
std::map<std::string, size_t> runs_by_seed(const ReportInputs& inputs, const Analysis& a, size_t setting,
                                           const std::string& strategy) {
  std::map<std::string, size_t> out;
  for (size_t r = 0; r < inputs.runs.size(); ++r) {
    const RunRow& run = inputs.runs[r];
    if (a.run_setting[r] == setting && run.status == "ok" && factor_of(run, "strategy") == strategy) {
      out.emplace(factor_of(run, "seed"), r);
    }
  }
  return out;
}

// The paired test of one strategy against the baseline on one metric, over
// the seeds both have a finite value for; nullopt when they share none.
std::optional<ComparisonRow> compare(const ReportInputs& inputs, const Analysis& a, ComparisonRow row,
                                     const std::map<std::string, size_t>& ours_by_seed,
                                     const std::map<std::string, size_t>& baseline_by_seed) {
  const Better better = better_direction(row.metric);
  std::vector<double> ours, theirs;
  std::vector<size_t> our_runs, their_runs;
  for (const auto& [seed, r] : ours_by_seed) {
    const auto base = baseline_by_seed.find(seed);
    if (base == baseline_by_seed.end()) continue;
    const double x = a.value(r, row.metric), y = a.value(base->second, row.metric);
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    ours.push_back(x);
    theirs.push_back(y);
    our_runs.push_back(r);
    their_runs.push_back(base->second);
    if (x == y) {
      ++row.ties;
    } else if ((x > y) == (better == Better::kHigher)) {
      ++row.wins;
    } else {
      ++row.losses;
    }
  }
  if (ours.empty()) return std::nullopt;
  row.test = paired_t_test(ours, theirs);
  const auto [our_tables, their_tables] = example_tables(inputs, row.metric, our_runs, their_runs);
  row.bootstrap = paired_bootstrap(our_tables, their_tables, inputs.bootstrap_replicates);
  return row;
}

// Each comparison's Holm step level (ComparisonRow::mde_alpha) and its MDE.
void add_mde(std::vector<ComparisonRow>& comparisons, const std::vector<size_t>& family) {
  std::vector<size_t> order;
  for (size_t i : family) {
    if (!std::isnan(comparisons[i].test.p_value)) order.push_back(i);
  }
  // As holm_adjust orders them: ascending p, ties in input order.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t i, size_t j) { return comparisons[i].test.p_value < comparisons[j].test.p_value; });
  const double m = static_cast<double>(std::max<size_t>(order.size(), 1));
  for (size_t i : family) comparisons[i].mde_alpha = kAlpha / m;
  for (size_t rank = 0; rank < order.size(); ++rank) comparisons[order[rank]].mde_alpha = kAlpha / (m - static_cast<double>(rank));
  for (size_t i : family) {
    ComparisonRow& row = comparisons[i];
    row.mde = minimum_detectable_effect(row.test.n, row.test.sd_diff, row.mde_alpha, kPower);
  }
}

// The Holm family: every (setting, strategy) comparison of one metric.
void holm_per_metric(std::vector<ComparisonRow>& comparisons) {
  std::map<std::string, std::vector<size_t>> family;
  for (size_t i = 0; i < comparisons.size(); ++i) family[comparisons[i].metric].push_back(i);
  for (const auto& [metric, rows] : family) {
    std::vector<double> p;
    for (size_t i : rows) p.push_back(comparisons[i].test.p_value);
    const auto adjusted = holm_adjust(p);
    for (size_t k = 0; k < rows.size(); ++k) comparisons[rows[k]].p_holm = adjusted[k];
    add_mde(comparisons, rows);
  }
}

void add_comparisons(const ReportInputs& inputs, Analysis& a) {
  if (!a.baseline_present) return;
  for (size_t s = 0; s < a.settings.size(); ++s) {
    const auto baseline_runs = runs_by_seed(inputs, a, s, a.baseline);
    for (const auto& strategy : a.strategies) {
      if (strategy == a.baseline) continue;
      const auto strategy_runs = runs_by_seed(inputs, a, s, strategy);
      for (const auto& metric : a.metrics) {
        if (better_direction(metric) == Better::kNeither) continue;
        ComparisonRow blank;
        blank.setting = s;
        blank.strategy = strategy;
        blank.metric = metric;
        if (auto row = compare(inputs, a, blank, strategy_runs, baseline_runs)) a.comparisons.push_back(std::move(*row));
      }
    }
  }
  holm_per_metric(a.comparisons);
}

// The λ of the fitted curve's optimum over [x_min, x_max]: the vertex when it
// lies inside and is the optimum, else the better endpoint.
double best_lambda(const PlwFitRow& row, double lambda_min, double lambda_max, PlwTransform transform) {
  const auto& b = row.fit.beta;
  auto f = [&](double x) { return b(0) + b(1) * x + b(2) * x * x; };
  auto better = [&](double u, double v) { return row.direction == Better::kHigher ? f(u) > f(v) : f(u) < f(v); };
  double best_x = better(row.x_max, row.x_min) ? row.x_max : row.x_min;
  double best = best_x == row.x_max ? lambda_max : lambda_min;
  if (b(2) != 0) {
    const double vertex = -b(1) / (2 * b(2));
    if (vertex > row.x_min && vertex < row.x_max && better(vertex, best_x)) {
      best = std::clamp(untransform_lambda(vertex, transform), lambda_min, lambda_max);
    }
  }
  return best;
}

// Each run's λ from its own record, and each strategy's from the first of its runs that has one.
void add_lambdas(const ReportInputs& inputs, Analysis& a) {
  std::set<std::string> decided;
  std::set<double> lambdas;
  for (const auto& run : inputs.runs) {
    a.run_lambda.push_back(plw_lambda(run.role_weights));
    const std::string strategy = factor_of(run, "strategy");
    if (!run.role_weights || !decided.insert(strategy).second || !a.run_lambda.back()) continue;
    a.strategy_lambda[strategy] = *a.run_lambda.back();
    lambdas.insert(*a.run_lambda.back());
  }
  a.plw_varies = lambdas.size() >= 3;
}

void add_plw_fits(const ReportInputs& inputs, Analysis& a) {
  if (!a.plw_varies) return;
  for (size_t s = 0; s < a.settings.size(); ++s) {
    for (const auto& metric : a.metrics) {
      if (!is_plw_metric(metric)) continue;
      std::vector<double> x, y;
      std::set<double> distinct;
      double lambda_min = INFINITY, lambda_max = -INFINITY;
      for (size_t r = 0; r < inputs.runs.size(); ++r) {
        const RunRow& run = inputs.runs[r];
        const auto& lambda = a.run_lambda[r];
        const double v = a.value(r, metric);
        if (a.run_setting[r] != s || run.status != "ok" || !lambda || !std::isfinite(v)) continue;
        x.push_back(transform_lambda(*lambda, a.transform));
        y.push_back(v);
        distinct.insert(*lambda);
        lambda_min = std::min(lambda_min, *lambda);
        lambda_max = std::max(lambda_max, *lambda);
      }
      if (distinct.size() < 3) continue;  // a quadratic needs three distinct λ
      PlwFitRow row;
      row.setting = s;
      row.metric = metric;
      row.fit = quadratic_fit(x, y);
      if (!row.fit.full_rank) continue;
      row.x_min = *std::min_element(x.begin(), x.end());
      row.x_max = *std::max_element(x.begin(), x.end());
      row.direction = better_direction(metric);
      row.best_lambda = best_lambda(row, lambda_min, lambda_max, a.transform);
      a.plw_fits.push_back(std::move(row));
    }
  }
}

// A CSV header: the factor columns, then the file's own.
std::vector<std::string> header(std::vector<std::string> factors, std::initializer_list<const char*> columns) {
  factors.insert(factors.end(), columns.begin(), columns.end());
  return factors;
}

void index_rows(Analysis& a) {
  for (size_t i = 0; i < a.summary.size(); ++i) {
    a.summary_index[{a.summary[i].setting, a.summary[i].strategy, a.summary[i].metric}] = i;
  }
  for (size_t i = 0; i < a.comparisons.size(); ++i) {
    a.comparison_index[{a.comparisons[i].setting, a.comparisons[i].strategy, a.comparisons[i].metric}] = i;
  }
  for (size_t i = 0; i < a.plw_fits.size(); ++i) a.plw_fit_index[{a.plw_fits[i].setting, a.plw_fits[i].metric}] = i;
}

}  // namespace

Better better_direction(const std::string& metric) {
  // Each run's training loss is its own strategy's weighted objective, so
  // it cannot rank strategies: it has no direction here.
  if (metric == "final_train_loss") return Better::kNeither;
  const std::string leaf = to_lower(metric.substr(metric.rfind('.') == std::string::npos ? 0 : metric.rfind('.') + 1));
  if (contains(leaf, "accuracy") || contains(leaf, "exact_match")) return Better::kHigher;
  if (leaf == "f1" || leaf == "rouge_l" || leaf == "acc" || leaf == "acc_norm") return Better::kHigher;
  if (contains(leaf, "nll") || contains(leaf, "ppl") || contains(leaf, "loss")) return Better::kLower;
  return Better::kNeither;
}

const std::vector<std::string>& headline_metrics() {
  static const std::vector<std::string> metrics = {"eval.exact_match", "eval.completion_nll",
                                                   "eval.completion_token_accuracy", "eval.prompt_nll",
                                                   "train.completion_nll"};
  return metrics;
}

std::optional<double> plw_lambda(const std::optional<RoleWeightsRecord>& record) {
  if (!record || record->schedule != "constant") return std::nullopt;
  const RecordedWeights& w = record->start;
  if (w.completion != 1 || w.earlier_completion != 1 || w.system != w.prompt) return std::nullopt;
  return w.prompt;
}

double transform_lambda(double lambda, PlwTransform transform) {
  switch (transform) {
    case PlwTransform::kLog: return std::log10(lambda + 0.001);
    case PlwTransform::kQuarter: return std::pow(lambda, 0.25);
    case PlwTransform::kLinear: return lambda;
  }
  return lambda;
}

double untransform_lambda(double x, PlwTransform transform) {
  switch (transform) {
    case PlwTransform::kLog: return std::pow(10.0, x) - 0.001;
    case PlwTransform::kQuarter: return std::pow(x, 4.0);
    case PlwTransform::kLinear: return x;
  }
  return x;
}

std::string transform_formula(PlwTransform transform) {
  switch (transform) {
    case PlwTransform::kLog: return "log10(\u03bb + 0.001)";
    case PlwTransform::kQuarter: return "\u03bb^0.25";
    case PlwTransform::kLinear: return "\u03bb";
  }
  return "";
}

std::vector<std::string> factor_levels(const ReportInputs& inputs, const std::string& factor) {
  std::vector<std::string> levels;
  for (const auto& run : inputs.runs) {
    const auto it = run.factors.find(factor);
    if (it != run.factors.end() && std::find(levels.begin(), levels.end(), it->second) == levels.end()) {
      levels.push_back(it->second);
    }
  }
  return levels;
}

bool ComparisonRow::underpowered() const {
  return !no_variation() && (test.n < 2 || !(std::fabs(test.mean_diff) >= mde));
}

bool ComparisonRow::no_variation() const { return test.n >= 2 && test.mean_diff == 0 && test.sd_diff == 0; }

std::string ComparisonRow::power_label() const {
  return no_variation() ? "no variation" : underpowered() ? "underpowered" : "adequate";
}

std::vector<std::string> set_metric_columns(const Analysis& analysis, const std::string& set) {
  std::vector<std::string> out;
  for (const auto& metric : analysis.metrics) {
    if (metric.rfind("eval.", 0) != 0) continue;
    const auto [metric_set, wording, leaf] = eval_column_key(metric);
    if (metric_set == set && wording < 0 && leaf.find('.') == std::string::npos) out.push_back(metric);
  }
  return out;
}

std::optional<double> Analysis::lambda(const std::string& strategy) const {
  const auto it = strategy_lambda.find(strategy);
  return it == strategy_lambda.end() ? std::nullopt : std::optional<double>(it->second);
}

double Analysis::value(size_t run, const std::string& metric) const {
  const auto it = values[run].find(metric);
  return it == values[run].end() ? kNaN : it->second;
}

const SummaryRow* Analysis::find_summary(size_t setting, const std::string& strategy,
                                         const std::string& metric) const {
  const auto it = summary_index.find({setting, strategy, metric});
  return it == summary_index.end() ? nullptr : &summary[it->second];
}

const ComparisonRow* Analysis::find_comparison(size_t setting, const std::string& strategy,
                                               const std::string& metric) const {
  const auto it = comparison_index.find({setting, strategy, metric});
  return it == comparison_index.end() ? nullptr : &comparisons[it->second];
}

const PlwFitRow* Analysis::find_plw_fit(size_t setting, const std::string& metric) const {
  const auto it = plw_fit_index.find({setting, metric});
  return it == plw_fit_index.end() ? nullptr : &plw_fits[it->second];
}

std::string Analysis::setting_label(size_t setting) const {
  std::string out;
  for (size_t i = 0; i < setting_factors.size(); ++i) {
    out += (i ? ", " : "") + setting_factors[i] + "=" + settings[setting][i];
  }
  return out;
}

Analysis analyze(const ReportInputs& inputs) {
  Analysis a;
  a.transform = inputs.plw_transform;
  for (const auto& f : inputs.sweep.factors) {
    if (f == "seed") continue;
    a.condition_factors.push_back(f);
    if (f != "strategy") a.setting_factors.push_back(f);
  }
  a.baseline = inputs.baseline;
  for (const auto& run : inputs.runs) {
    const std::string strategy = factor_of(run, "strategy");
    if (std::find(a.strategies.begin(), a.strategies.end(), strategy) == a.strategies.end()) {
      a.strategies.push_back(strategy);
    }
    // Strategy names are case-insensitive: adopt the sweep's spelling of the baseline.
    if (!a.baseline_present && to_lower(strategy) == to_lower(inputs.baseline)) {
      a.baseline = strategy;
      a.baseline_present = true;
    }
    std::vector<std::string> setting;
    for (const auto& f : a.setting_factors) setting.push_back(factor_of(run, f));
    const auto it = std::find(a.settings.begin(), a.settings.end(), setting);
    a.run_setting.push_back(static_cast<size_t>(it - a.settings.begin()));
    if (it == a.settings.end()) a.settings.push_back(setting);
    a.values.push_back(flatten_metrics(run.metrics));
  }
  if (a.baseline_present) {
    std::stable_partition(a.strategies.begin(), a.strategies.end(),
                          [&](const std::string& s) { return s == a.baseline; });
  }
  a.metrics = metric_columns(a.values);
  add_summaries(inputs, a);
  add_comparisons(inputs, a);
  add_lambdas(inputs, a);
  add_plw_fits(inputs, a);
  index_rows(a);
  a.sets = eval_sets(inputs);
  a.wording_spreads = wording_spreads(a);
  return a;
}

std::string runs_csv(const ReportInputs& inputs, const Analysis& a) {
  std::vector<std::string> header = {"run_id"};
  header.insert(header.end(), inputs.sweep.factors.begin(), inputs.sweep.factors.end());
  header.push_back("status");
  header.push_back("error");
  // Only a sweep with a base has the column, so older sweeps keep their runs.csv.
  const bool with_base = !inputs.sweep.base.is_null() ||
                         std::any_of(inputs.runs.begin(), inputs.runs.end(), [](const RunRow& r) { return !r.base_hash.empty(); });
  if (with_base) header.push_back("base_hash");
  header.insert(header.end(), a.metrics.begin(), a.metrics.end());
  std::string out = csv_row(header);
  for (size_t r = 0; r < inputs.runs.size(); ++r) {
    const RunRow& run = inputs.runs[r];
    std::vector<std::string> row = {run.id};
    for (const auto& f : inputs.sweep.factors) row.push_back(factor_of(run, f));
    row.push_back(run.status);
    row.push_back(run.error);
    if (with_base) row.push_back(run.base_hash);
    for (const auto& metric : a.metrics) row.push_back(csv_number(a.value(r, metric)));
    out += csv_row(row);
  }
  return out;
}

std::string summary_csv(const Analysis& a) {
  std::string out = csv_row(header(a.condition_factors, {"metric", "n", "mean", "std", "ci95_low", "ci95_high"}));
  for (const auto& row : a.summary) {
    std::vector<std::string> fields = row.condition;
    fields.push_back(row.metric);
    fields.push_back(std::to_string(row.stats.n));
    for (double v : {row.stats.mean, row.stats.sd, row.stats.low, row.stats.high}) fields.push_back(csv_number(v));
    out += csv_row(fields);
  }
  return out;
}

std::string comparisons_csv(const Analysis& a) {
  std::string out = csv_row(header(a.setting_factors, {"strategy", "baseline", "metric", "n_pairs", "mean_diff", "ci95_low",
                                                        "ci95_high", "t", "p_value", "p_holm", "cohens_d", "wins",
                                                        "losses", "ties", "mde", "bootstrap_low", "bootstrap_high",
                                                        "bootstrap_p"}));
  for (const auto& row : a.comparisons) {
    std::vector<std::string> fields = a.settings[row.setting];
    fields.push_back(row.strategy);
    fields.push_back(a.baseline);
    fields.push_back(row.metric);
    fields.push_back(std::to_string(row.test.n));
    for (double v : {row.test.mean_diff, row.test.low, row.test.high, row.test.t, row.test.p_value, row.p_holm,
                     row.test.cohens_dz}) {
      fields.push_back(csv_number(v));
    }
    for (long count : {row.wins, row.losses, row.ties}) fields.push_back(std::to_string(count));
    for (double v : {row.mde, row.bootstrap.low, row.bootstrap.high, row.bootstrap.p_value}) fields.push_back(csv_number(v));
    out += csv_row(fields);
  }
  return out;
}

std::string plw_fit_csv(const Analysis& a) {
  std::string out = csv_row(header(a.setting_factors, {"metric", "transform", "n", "b0", "b1", "b2", "se_b0", "se_b1",
                                                        "se_b2", "p_b0", "p_b1", "p_b2", "r2", "best_lambda",
                                                        "direction"}));
  for (const auto& row : a.plw_fits) {
    std::vector<std::string> fields = a.settings[row.setting];
    fields.push_back(row.metric);
    fields.push_back(std::string(name_of(a.transform)));
    fields.push_back(std::to_string(row.fit.n));
    for (const Eigen::VectorXd* v : {&row.fit.beta, &row.fit.se, &row.fit.p}) {
      for (int j = 0; j < 3; ++j) fields.push_back(csv_number((*v)(j)));
    }
    fields.push_back(csv_number(row.fit.r2));
    fields.push_back(csv_number(row.best_lambda));
    fields.push_back(row.direction == Better::kHigher ? "max" : "min");
    out += csv_row(fields);
  }
  return out;
}

}  // namespace masklab::reports
