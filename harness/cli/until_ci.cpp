#include "harness/cli/until_ci.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "reports/report.hpp"
#include "reports/stats.hpp"
#include "reports/tables.hpp"

namespace masklab {

UntilCiRule parse_until_ci(const std::string& text) {
  const auto colon = text.rfind(':');
  UntilCiRule rule;
  const std::string bad = "--until-ci '" + text + "': expected METRIC:HALF_WIDTH, e.g. eval.exact_match:0.05";
  if (colon == std::string::npos || colon == 0) throw UserError(bad);
  rule.metric = text.substr(0, colon);
  try {
    size_t used = 0;
    rule.half_width = std::stod(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) throw UserError(bad);
  } catch (const std::logic_error&) {
    throw UserError(bad);
  }
  if (!(rule.half_width > 0) || !std::isfinite(rule.half_width)) {
    throw UserError("--until-ci '" + text + "': the half-width must be a positive number");
  }
  return rule;
}

IntervalCheck widest_interval(const reports::ReportInputs& inputs, const std::string& metric) {
  const reports::Analysis a = reports::analyze(inputs);
  // (setting, strategy) -> seed -> value, ok runs with a finite value only.
  std::map<std::pair<size_t, std::string>, std::map<std::string, double>> values;
  IntervalCheck check;
  for (size_t r = 0; r < inputs.runs.size(); ++r) {
    const auto& run = inputs.runs[r];
    const double v = a.value(r, metric);
    const auto strategy = run.factors.find("strategy"), seed = run.factors.find("seed");
    if (run.status != "ok" || !std::isfinite(v) || strategy == run.factors.end() || seed == run.factors.end()) continue;
    check.metric_seen = true;
    values[{a.run_setting[r], strategy->second}].emplace(seed->second, v);
  }
  for (size_t s = 0; s < a.settings.size(); ++s) {
    for (size_t i = 0; i < a.strategies.size(); ++i) {
      for (size_t j = i + 1; j < a.strategies.size(); ++j) {
        const auto& first = values[{s, a.strategies[i]}];
        const auto& second = values[{s, a.strategies[j]}];
        std::vector<double> x, y;
        for (const auto& [seed, v] : first) {
          if (const auto it = second.find(seed); it != second.end()) {
            x.push_back(v);
            y.push_back(it->second);
          }
        }
        ++check.pairs;
        const reports::PairedTest t = reports::paired_t_test(x, y);
        const double half = (t.high - t.low) / 2;
        std::string label = a.strategies[i] + " vs " + a.strategies[j];
        if (!a.setting_label(s).empty()) label += " (" + a.setting_label(s) + ")";
        if (x.size() < 2 || !std::isfinite(half)) {
          ++check.undefined;
          check.widest_half_width = std::nan("");
          check.widest = label;
        } else if (check.undefined == 0 && half > check.widest_half_width) {
          check.widest_half_width = half;
          check.widest = label;
        }
      }
    }
  }
  return check;
}

namespace {

nlohmann::json rule_record(const UntilCiRule& rule, int rounds, size_t seeds, const IntervalCheck* check,
                           const char* stopped_by) {
  nlohmann::json record = {{"metric", rule.metric},      {"half_width", rule.half_width},
                           {"max_seeds", rule.max_seeds}, {"round_seeds", rule.round_seeds},
                           {"rounds", rounds},            {"seeds", seeds},
                           {"stopped_by", stopped_by ? nlohmann::json(stopped_by) : nlohmann::json()}};
  if (check) {
    record["widest_half_width"] =
        std::isfinite(check->widest_half_width) ? nlohmann::json(check->widest_half_width) : nlohmann::json();
    record["widest"] = check->widest;
  }
  return record;
}

void check_can_run(const SweepSpec& spec, const SweepOptions& options, const UntilCiRule& rule) {
  if (options.shard_n > 1) throw UserError("--until-ci decides after whole rounds: it cannot be combined with --shard");
  if (options.dry_run) throw UserError("--until-ci runs rounds until a result decides: it cannot be combined with --dry-run");
  if (rule.max_seeds < static_cast<int>(spec.seeds.size())) {
    throw UserError(fmt::format("--max-seeds {} is below the {} seeds {} already lists", rule.max_seeds,
                                spec.seeds.size(), spec.path));
  }
  if (rule.round_seeds < 1) throw UserError("--round-seeds must be at least 1");
}

}  // namespace

int sweep_until_ci(const std::string& spec_path, const SweepOptions& options, const UntilCiRule& rule) {
  std::vector<int> seeds = load_sweep_spec(spec_path).seeds;
  if (seeds.empty()) throw UserError(spec_path + ": --until-ci adds seeds, but the spec's grid has no `seed` factor");
  for (int round = 1;; ++round) {
    SweepSpec spec = load_sweep_spec(spec_path, seeds);
    check_can_run(spec, options, rule);
    spec.until_ci = rule_record(rule, round, seeds.size(), nullptr, nullptr);
    const int status = run_sweep(spec, options);
    if (status != 0 && status != 1) return status;  // interrupted, or the base failed: nothing to decide on

    const IntervalCheck check = widest_interval(reports::load_sweep(options.out_dir), rule.metric);
    if (!check.metric_seen) {
      throw UserError("--until-ci: no finished run of " + options.out_dir + " has a value of metric '" + rule.metric +
                      "' (see the columns of runs.csv after `masklab report`)");
    }
    const bool narrow = check.undefined == 0 && check.widest_half_width <= rule.half_width;
    const bool full = static_cast<int>(seeds.size()) >= rule.max_seeds;
    std::printf("until-ci round %d: %zu seeds, widest 95%% half-width on %s %s (%s), target %g\n", round,
                seeds.size(), rule.metric.c_str(),
                std::isfinite(check.widest_half_width) ? fmt::format("{:.4g}", check.widest_half_width).c_str()
                                                       : "undefined",
                check.widest.c_str(), rule.half_width);
    std::fflush(stdout);
    if (narrow || full) {
      spec.until_ci = rule_record(rule, round, seeds.size(), &check, narrow ? "half_width" : "max_seeds");
      write_file_atomic(options.out_dir + "/sweep.json", sweep_manifest(spec).dump(2) + "\n");
      std::printf("until-ci: stopped by %s\n", narrow ? "the half-width" : "--max-seeds");
      return status;
    }
    const int add = std::min(rule.round_seeds, rule.max_seeds - static_cast<int>(seeds.size()));
    const int next = *std::max_element(seeds.begin(), seeds.end()) + 1;
    for (int k = 0; k < add; ++k) seeds.push_back(next + k);
  }
}

}  // namespace masklab
