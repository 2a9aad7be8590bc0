// reports/headline: the sentences on fixed fake sweeps whose differences are
// worked by hand: a clear winner is named with its interval, a null result
// says nothing is resolved, an underpowered comparison says so, and the
// stopping rule of an until_ci sweep is stated.
#include <catch2/catch.hpp>

#include <cmath>

#include <fmt/format.h>

#include "reports/headline.hpp"
#include "reports/report.hpp"
#include "reports/stats.hpp"
#include "reports/tables.hpp"

using namespace masklab;
using namespace masklab::reports;
using nlohmann::json;

namespace {

// Two strategies on held-out exact match: the baseline scores base[i] at seed
// i + 1, `full` scores base[i] + diffs[i].
ReportInputs two_strategies(const std::vector<double>& diffs) {
  ReportInputs inputs;
  inputs.sweep.name = "fixed";
  inputs.sweep.factors = {"strategy", "seed"};
  for (const char* strategy : {"completion_only", "full"}) {
    for (size_t i = 0; i < diffs.size(); ++i) {
      const double base = 0.3 + 0.05 * std::sin(static_cast<double>(i));
      RunRow run;
      run.id = fmt::format("{}-{}", strategy, i);
      run.factors = {{"strategy", strategy}, {"seed", std::to_string(i + 1)}};
      run.status = "ok";
      run.metrics = {{"status", "ok"}, {"eval", {{"exact_match", std::string(strategy) == "full" ? base + diffs[i] : base}}}};
      inputs.runs.push_back(run);
    }
  }
  return inputs;
}

std::string only_sentence(const ReportInputs& inputs) {
  const auto sentences = headline_sentences(analyze(inputs));
  REQUIRE(sentences.size() == 1);
  return sentences[0];
}

}  // namespace

TEST_CASE("the headline names a clear winner with its interval", "[fast][reports]") {
  // Differences 0.2 + (0.01, −0.01, 0.02, −0.02, 0): mean 0.2, sd √(10e-4 / 4) = 0.0158114, so the 95% t
  // interval is 0.2 ∓ 2.7764451 (scipy.stats.t.ppf(0.975, 4)) × 0.0158114 / √5 = [0.18037, 0.21963].
  const std::string sentence = only_sentence(two_strategies({0.21, 0.19, 0.22, 0.18, 0.2}));
  INFO(sentence);
  CHECK_THAT(sentence, Catch::StartsWith("full beats completion_only on eval.exact_match (higher is better): "
                                         "difference +0.2 [0.18, 0.22]"));
  CHECK_THAT(sentence, Catch::Contains("5 seeds"));
  CHECK_THAT(sentence, !Catch::Contains("nothing is resolved"));
  CHECK_THAT(sentence, !Catch::Contains("underpowered"));
  // A lower-is-better metric that went up is "worse than".
  ReportInputs nll = two_strategies({0.21, 0.19, 0.22, 0.18, 0.2});
  for (auto& run : nll.runs) run.metrics["eval"] = {{"completion_nll", run.metrics["eval"]["exact_match"]}};
  CHECK_THAT(only_sentence(nll), Catch::StartsWith("full is worse than completion_only on eval.completion_nll (lower is better)"));
}

TEST_CASE("the headline says a null result resolves nothing, and what it could have detected", "[fast][reports]") {
  // Ten differences ±0.05: mean 0, p = 1; sd = 0.05 · √(10/9).
  const std::string sentence = only_sentence(two_strategies({0.05, -0.05, 0.05, -0.05, 0.05, -0.05, 0.05, -0.05, 0.05, -0.05}));
  INFO(sentence);
  CHECK_THAT(sentence, Catch::StartsWith("On eval.exact_match, nothing is resolved: no strategy differs from completion_only"));
  CHECK_THAT(sentence, Catch::Contains("Underpowered: full against completion_only: with their seeds"));
  // One comparison in the family: its Holm step is α = 0.05 itself.
  const double mde = minimum_detectable_effect(10, 0.05 * std::sqrt(10.0 / 9.0), 0.05);
  CHECK_THAT(sentence, Catch::Contains(fmt::format("detects a difference of {} with 80% power", headline_number(mde))));
}

TEST_CASE("the headline says an underpowered comparison is underpowered", "[fast][reports]") {
  // Two seeds, differences 0.1 and 0.3: t = 2 on 1 df, p = 0.295; detecting 0.2 would take an effect of ~1.6.
  const std::string two = only_sentence(two_strategies({0.1, 0.3}));
  INFO(two);
  CHECK_THAT(two, Catch::Contains("nothing is resolved"));
  CHECK_THAT(two, Catch::Contains("Underpowered: full against completion_only: with their seeds"));
  const auto analysis = analyze(two_strategies({0.1, 0.3}));  // the row lives as long as its analysis
  const ComparisonRow& row = analysis.comparisons.at(0);
  CHECK(row.underpowered());
  CHECK(row.mde > 1.5);
  // One seed: nothing can be tested at all.
  const std::string one = only_sentence(two_strategies({0.4}));
  INFO(one);
  CHECK_THAT(one, Catch::Contains("Underpowered: full against completion_only has fewer than two paired seeds and "
                                  "cannot be tested."));
}

TEST_CASE("headline.md states an until_ci stopping rule and is the same text every time", "[fast][reports]") {
  ReportInputs inputs = two_strategies({0.21, 0.19, 0.22, 0.18, 0.2});
  inputs.sweep.until_ci = {{"metric", "eval.exact_match"}, {"half_width", 0.02}, {"max_seeds", 10}, {"rounds", 3},
                           {"seeds", 5}, {"stopped_by", "half_width"}, {"widest_half_width", 0.0185}};
  const Analysis a = analyze(inputs);
  const std::string md = headline_markdown(inputs, a);
  CHECK_THAT(md, Catch::StartsWith("# Headline: fixed\n\nSeeds were added in rounds until the 95% interval of "
                                   "every pairwise difference between strategies on eval.exact_match had a half-width of "
                                   "at most 0.02, with at most 10 seeds; the sweep stopped after 3 rounds at 5 seeds, "
                                   "because every interval was that narrow (widest half-width 0.0185).\n\n- full beats completion_only"));
  CHECK(md == headline_markdown(inputs, analyze(inputs)));
  inputs.sweep.until_ci = nullptr;
  CHECK(stopping_rule_sentence(inputs.sweep).empty());
}

TEST_CASE("a metric on which every paired difference is 0 is said to have no variation, not to be underpowered",
          "[fast][reports]") {
  const ReportInputs flat = two_strategies({0, 0, 0});
  const std::string sentence = only_sentence(flat);
  INFO(sentence);
  CHECK(sentence == "On eval.exact_match, every strategy scores exactly as completion_only does on every seed: there is "
                    "no difference to test.");
  const auto analysis = analyze(flat);
  const ComparisonRow& row = analysis.comparisons.at(0);
  CHECK(row.no_variation());
  CHECK_FALSE(row.underpowered());
  CHECK(row.power_label() == "no variation");
  // One nonzero difference is variation: then the usual power statement applies.
  CHECK(analyze(two_strategies({0, 0, 0.01})).comparisons.at(0).power_label() == "underpowered");
}
