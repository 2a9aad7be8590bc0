#include "reports/sets.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "reports/io.hpp"

namespace masklab::reports {
namespace {

using nlohmann::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using WordingScores = std::map<long, std::map<long, std::pair<double, double>>>;  // wording -> example -> score

// The wordings and examples every one of `scores` has (see example_tables).
std::pair<std::vector<long>, std::vector<long>> shared_keys(const std::vector<const WordingScores*>& scores) {
  std::vector<long> wordings;
  for (const auto& [wording, examples] : *scores[0]) {
    const auto has_wording = [&wording = wording](const WordingScores* s) { return s->count(wording) > 0; };
    if (std::all_of(scores.begin(), scores.end(), has_wording)) {
      wordings.push_back(wording);
    }
  }
  std::vector<long> examples;
  if (wordings.empty()) return {wordings, examples};
  for (const auto& [example, score] : scores[0]->at(wordings[0])) {
    const bool everywhere = std::all_of(scores.begin(), scores.end(), [&, &example = example](const WordingScores* s) {
      return std::all_of(wordings.begin(), wordings.end(), [&](long w) { return s->at(w).count(example) > 0; });
    });
    if (everywhere) examples.push_back(example);
  }
  return {wordings, examples};
}

ExampleScoresTable table_of(const WordingScores& scores, const std::vector<long>& wordings, const std::vector<long>& examples) {
  ExampleScoresTable table;
  for (long w : wordings) {
    table.num.emplace_back();
    table.den.emplace_back();
    for (long e : examples) {
      const auto& [num, den] = scores.at(w).at(e);
      table.num.back().push_back(num);
      table.den.back().push_back(den);
    }
  }
  return table;
}


}  // namespace

std::pair<std::vector<ExampleScoresTable>, std::vector<ExampleScoresTable>> example_tables(
    const ReportInputs& inputs, const std::string& metric, const std::vector<size_t>& ours,
    const std::vector<size_t>& theirs) {
  std::vector<const WordingScores*> scores;
  for (const auto* side : {&ours, &theirs}) {
    for (size_t r : *side) {
      const auto it = inputs.runs[r].examples.find(metric);
      if (it == inputs.runs[r].examples.end()) return {};
      scores.push_back(&it->second);
    }
  }
  if (scores.empty()) return {};
  const auto [wordings, examples] = shared_keys(scores);
  if (examples.empty()) return {};
  std::vector<ExampleScoresTable> a, b;
  for (size_t i = 0; i < ours.size(); ++i) a.push_back(table_of(*scores[i], wordings, examples));
  for (size_t i = 0; i < theirs.size(); ++i) b.push_back(table_of(*scores[ours.size() + i], wordings, examples));
  return {a, b};
}

std::vector<EvalSetInfo> eval_sets(const ReportInputs& inputs) {
  std::map<std::string, EvalSetInfo> sets;
  for (const auto& run : inputs.runs) {
    if (!run.metrics.is_object()) continue;
    const auto described = run.metrics.find("eval_sets");
    if (described != run.metrics.end() && described->is_object()) {
      for (const auto& [name, info] : described->items()) {
        if (sets.count(name) || !info.is_object()) continue;
        EvalSetInfo set{name, info.value("kind", ""), info.value("examples", 0L), {}};
        for (const auto& w : info.value("wordings", json::array())) {
          if (w.is_string()) set.wordings.push_back(w.get<std::string>());
        }
        sets[name] = std::move(set);
      }
    }
    // A set whose metrics the record holds but does not describe still gets a section.
    const auto eval = run.metrics.find("eval");
    if (eval == run.metrics.end() || !eval->is_object()) continue;
    for (const auto& [name, value] : eval->items()) {
      if (value.is_object() && !sets.count(name)) sets[name] = EvalSetInfo{name, "", 0, {}};
    }
  }
  std::vector<EvalSetInfo> out;
  for (auto& [name, set] : sets) out.push_back(std::move(set));
  return out;
}

std::vector<WordingSpread> wording_spreads(const Analysis& a) {
  std::vector<WordingSpread> out;
  for (const auto& set : a.sets) {
    if (set.wordings.size() < 2) continue;
    for (size_t setting = 0; setting < a.settings.size(); ++setting) {
      for (const auto& strategy : a.strategies) {
        for (const auto& column : set_metric_columns(a, set.name)) {
          WordingSpread row{setting, set.name, strategy, column.substr(6 + set.name.size()), {}, kNaN, kNaN};
          std::vector<double> finite;
          for (size_t w = 0; w < set.wordings.size(); ++w) {
            const std::string metric = "eval." + set.name + ".wording" + std::to_string(w) + "." + row.metric;
            const SummaryRow* summary = a.find_summary(setting, strategy, metric);
            row.means.push_back(summary && summary->stats.n > 0 ? summary->stats.mean : kNaN);
            if (std::isfinite(row.means.back())) finite.push_back(row.means.back());
          }
          if (finite.empty()) continue;  // the strategy has no ok run in this setting
          row.spread = *std::max_element(finite.begin(), finite.end()) - *std::min_element(finite.begin(), finite.end());
          row.sd = sample_sd(finite);
          out.push_back(std::move(row));
        }
      }
    }
  }
  return out;
}

std::string wordings_csv(const Analysis& a) {
  size_t most = 0;
  for (const auto& set : a.sets) most = std::max(most, set.wordings.size());
  std::vector<std::string> header = a.setting_factors;
  for (const char* column : {"set", "strategy", "metric", "n_wordings", "spread", "sd"}) header.push_back(column);
  for (size_t w = 0; w < most; ++w) header.push_back("mean_wording" + std::to_string(w));
  std::string out = csv_row(header);
  for (const auto& row : a.wording_spreads) {
    std::vector<std::string> fields = a.settings[row.setting];
    for (const auto& text : {row.set, row.strategy, row.metric, std::to_string(row.means.size())}) fields.push_back(text);
    fields.push_back(csv_number(row.spread));
    fields.push_back(csv_number(row.sd));
    for (size_t w = 0; w < most; ++w) fields.push_back(w < row.means.size() ? csv_number(row.means[w]) : "");
    out += csv_row(fields);
  }
  return out;
}

}  // namespace masklab::reports
