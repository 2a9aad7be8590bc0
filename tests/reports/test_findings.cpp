// reports/findings: the findings page of a sweep on the λ axis with a
// generate and a choice set: the sweep, the headline, the quadratic fit per
// set kind with intervals and how the optimum was found, and the comparisons
// with their MDE; written through write_report, with the stopping rule.
#include <catch2/catch.hpp>

#include <cmath>

#include <fmt/format.h>

#include "reports/findings.hpp"
#include "reports/headline.hpp"
#include "reports/report.hpp"
#include "reports/stats.hpp"
#include "reports/tables.hpp"
#include "tests/reports/eval_sweep.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
using namespace masklab::reports;
using nlohmann::json;

TEST_CASE("the findings page: sweep, headline, λ fits per set kind, comparisons with MDE", "[fast][reports]") {
  test::TempDir dir;
  test::EvalSweepShape shape;
  shape.strategies = {"completion_only", "weighted:0.01", "weighted:0.1", "full"};
  shape.role_weights = true;
  const json until_ci = {{"metric", "eval.mc.acc"}, {"half_width", 0.05}, {"max_seeds", 3}, {"rounds", 2},
                         {"seeds", 3}, {"stopped_by", "max_seeds"}, {"widest_half_width", 0.2}};
  test::write_eval_sweep(dir.path(), shape, {{"until_ci", until_ci}});
  ReportInputs inputs = load_sweep(dir.path());
  inputs.findings_path = dir.file("findings.md");
  const auto written = write_report(inputs, dir.file("report"));
  CHECK(std::count(written.begin(), written.end(), inputs.findings_path) == 1);
  const std::string page = test::read_text(inputs.findings_path);
  INFO(page);

  CHECK_THAT(page, Catch::StartsWith("# Findings: eval_sets\n"));
  CHECK_THAT(page, Catch::Contains("| strategy | `completion_only`, `weighted:0.01`, `weighted:0.1`, `full` |"));
  CHECK_THAT(page, Catch::Contains("- Evaluation set `mc`: kind choice, 12 examples, 2 wordings."));
  CHECK_THAT(page, Catch::Contains("because it reached the seed limit, with intervals still wider (widest half-width 0.2)."));
  const Analysis a = analyze(inputs);
  for (const auto& sentence : headline_sentences(a)) CHECK_THAT(page, Catch::Contains("- " + sentence + "\n"));

  // The fit of eval.exact_match, refitted from the runs' own values at x = log10(λ + 0.001).
  CHECK_THAT(page, Catch::Contains("### Sets of kind nll"));
  CHECK_THAT(page, Catch::Contains("### Sets of kind generate"));
  CHECK_THAT(page, Catch::Contains("### Sets of kind choice"));
  std::vector<double> x, y;
  const double lambdas[] = {0, 0.01, 0.1, 1};
  for (size_t s = 0; s < 4; ++s) {
    for (int seed : shape.seeds) {
      x.push_back(std::log10(lambdas[s] + 0.001));
      y.push_back(test::eval_scores(shape, s, seed).metrics["exact_match"].get<double>());
    }
  }
  const OlsFit fit = quadratic_fit(x, y);
  const double half = t_quantile(0.975, 9) * fit.se(2);
  CHECK_THAT(page, Catch::Contains(fmt::format("| eval.exact_match | 12 | ")));
  CHECK_THAT(page, Catch::Contains(fmt::format("| {} [{}, {}] |", headline_number(fit.beta(2)),
                                               headline_number(fit.beta(2) - half), headline_number(fit.beta(2) + half))));
  CHECK_THAT(page, Catch::Contains("found as |"));
  CHECK((page.find("vertex of the parabola") != std::string::npos || page.find("better end of the observed range") != std::string::npos));

  // Every held-out and set comparison, with its MDE and whether it is underpowered; wordings are left to the CSV.
  CHECK_THAT(page, Catch::Contains("## Comparisons with completion_only"));
  const ComparisonRow* acc = a.find_comparison(0, "full", "eval.mc.acc");
  REQUIRE(acc != nullptr);
  CHECK_THAT(page, Catch::Contains(fmt::format("| full | eval.mc.acc | 3 | {} | [{}, {}] | [{}, {}] | {} | {} | {} |",
                                               headline_number(acc->test.mean_diff), headline_number(acc->test.low),
                                               headline_number(acc->test.high), headline_number(acc->bootstrap.low),
                                               headline_number(acc->bootstrap.high), headline_number(acc->p_holm),
                                               headline_number(acc->mde),
                                               acc->power_label())));
  CHECK_THAT(page, !Catch::Contains("wording1.acc |"));

  // The page states the stopping rule too, and headline.md beside it.
  CHECK_THAT(test::read_text(dir.file("report/report.html")), Catch::Contains("because it reached the seed limit"));
  CHECK_THAT(test::read_text(dir.file("report/headline.md")), Catch::Contains("because it reached the seed limit"));
  // Deterministic: a second report writes the same page.
  write_report(inputs, dir.file("report"));
  CHECK(test::read_text(inputs.findings_path) == page);
}
