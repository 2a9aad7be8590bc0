// reports/sets and the per-example half of reports/load: eval_examples.jsonl
// is read per metric and wording; a report of a sweep with a generate set and
// a two-wording choice set has the set columns in order, bootstraps drawn from
// the examples the runs scored, the per-wording spread worked from the runs'
// own scores, and a section per set.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "harness/core/errors.hpp"
#include "reports/report.hpp"
#include "reports/sets.hpp"
#include "reports/tables.hpp"
#include "tests/reports/eval_sweep.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
using namespace masklab::reports;
using nlohmann::json;

namespace {

std::vector<std::string> csv_header(const std::string& path) {
  std::istringstream in(test::read_text(path));
  std::string line, field;
  std::getline(in, line);
  std::vector<std::string> out;
  std::istringstream fields(line);
  while (std::getline(fields, field, ',')) out.push_back(field);
  return out;
}

// One side's bootstrap tables of a "values" metric, straight from the fixture's per-example scores.
std::vector<ExampleScoresTable> value_tables(const test::EvalSweepShape& shape, size_t strategy, const std::string& set,
                                             const std::string& metric, size_t wordings) {
  std::vector<ExampleScoresTable> out;
  for (int seed : shape.seeds) {
    ExampleScoresTable table{std::vector<std::vector<double>>(wordings), std::vector<std::vector<double>>(wordings)};
    for (const auto& line : test::eval_scores(shape, strategy, seed).lines) {
      if (line["set"] != set) continue;
      const size_t w = line["wording"];
      table.num[w].push_back(line["values"][metric]);
      table.den[w].push_back(1);
    }
    out.push_back(table);
  }
  return out;
}

}  // namespace

TEST_CASE("eval_examples.jsonl: scores per metric and wording, no file is none, a bad line names file:line",
          "[fast][reports]") {
  test::TempDir dir;
  const test::EvalSweepShape shape;
  test::write_eval_sweep(dir.path(), shape);
  const ReportInputs inputs = load_sweep(dir.path());
  REQUIRE(inputs.runs.size() == 6);
  const ExampleScores& scores = inputs.runs[4].examples;  // full, seed 2
  const auto expected = test::eval_scores(shape, 1, 2).lines;
  // The default set: a value per example, and a ratio's own numerator and denominator.
  CHECK(scores.at("eval.exact_match").at(0).size() == 12);
  CHECK(scores.at("eval.completion_nll").at(0).at(5).first == expected[5 * 4]["ratios"]["completion_nll"][0].get<double>());
  CHECK(scores.at("eval.completion_nll").at(0).at(5).second == expected[5 * 4]["ratios"]["completion_nll"][1].get<double>());
  // A set's metric holds every wording; each wording also has its own.
  CHECK(scores.at("eval.mc.acc").size() == 2);
  CHECK(scores.at("eval.mc.wording1.acc").size() == 1);
  CHECK(scores.at("eval.mc.wording1.acc").at(1).at(3).first == expected[3 * 4 + 3]["values"]["acc"].get<double>());
  CHECK(scores.at("eval.gen.f1").at(0).at(7).second == 1);
  CHECK(scores.count("eval.gen.wording0.f1") == 1);

  // An older run without the file has none, and the report is still written.
  std::filesystem::remove(dir.file("runs/r00/eval_examples.jsonl"));
  CHECK(load_sweep(dir.path()).runs[0].examples.empty());

  const std::string file = dir.file("runs/r01/eval_examples.jsonl");
  auto error_for = [&](const std::string& text) {
    test::write_text(file, text);
    return test::user_error_of([&] { load_sweep(dir.path()); });
  };
  const std::string good = R"({"set": "", "wording": 0, "example": 1, "values": {"exact_match": 1}, "ratios": {}})";
  CHECK_THAT(error_for(good + "\nnot json\n"), Catch::Contains(file + ":2: not a JSON object"));
  CHECK_THAT(error_for(R"({"set": "", "wording": 0, "example": 1, "ratios": {"completion_nll": [1]}})"),
             Catch::Contains(file + ":1: ratios.completion_nll must be [numerator, denominator]"));
  CHECK_THAT(error_for("\n" + good + "\n" + R"({"set": "", "wording": -1, "example": 2})"),
             Catch::Contains(file + ":3: 'wording' must be an integer >= 0"));
  CHECK_THAT(error_for(good + "\n" + good), Catch::Contains(file + ":2: example 1 of wording 0 of set '' appears twice"));
  CHECK_THAT(error_for(R"({"wording": 0, "example": 1})"), Catch::Contains(file + ":1: 'set' must be a string"));
}

TEST_CASE("a sweep with a generate set and a two-wording choice set: columns, bootstrap, wording spread, sections",
          "[fast][reports]") {
  test::TempDir dir;
  const test::EvalSweepShape shape;
  test::write_eval_sweep(dir.path(), shape);
  const ReportInputs inputs = load_sweep(dir.path());
  const auto written = write_report(inputs, dir.file("report"));
  CHECK(std::count(written.begin(), written.end(), dir.file("report/wordings.csv")) == 1);
  CHECK(std::count(written.begin(), written.end(), dir.file("report/headline.md")) == 1);
  // A chart per metric of the two-wording set; none for the one-wording set.
  CHECK(std::count(written.begin(), written.end(), dir.file("report/figures/wordings_mc_acc.svg")) == 1);
  CHECK(std::count(written.begin(), written.end(), dir.file("report/figures/wordings_mc_acc_norm.svg")) == 1);
  CHECK(std::none_of(written.begin(), written.end(), [](const std::string& f) { return f.find("wordings_gen") != std::string::npos; }));

  // The default set's columns, then each set by name, a set's own metrics before its wordings'.
  const std::vector<std::string> columns = {
      "run_id", "strategy", "seed", "status", "error", "eval.completion_nll", "eval.exact_match", "eval.examples",
      "eval.gen.exact_match", "eval.gen.f1", "eval.gen.output_tokens", "eval.mc.acc", "eval.mc.acc_norm",
      "eval.mc.wording0.acc", "eval.mc.wording0.acc_norm", "eval.mc.wording1.acc", "eval.mc.wording1.acc_norm",
      "decode_seconds", "decode_tokens_per_second"};
  CHECK(csv_header(dir.file("report/runs.csv")) == columns);
  const auto comparison_columns = csv_header(dir.file("report/comparisons.csv"));
  CHECK(std::vector<std::string>(comparison_columns.end() - 4, comparison_columns.end()) ==
        std::vector<std::string>{"mde", "bootstrap_low", "bootstrap_high", "bootstrap_p"});

  const Analysis a = analyze(inputs);
  // Compared: what has a direction (f1, acc, acc_norm up); output_tokens and counts are not.
  CHECK(a.find_comparison(0, "full", "eval.gen.f1") != nullptr);
  CHECK(a.find_comparison(0, "full", "eval.mc.wording1.acc_norm") != nullptr);
  CHECK(a.find_comparison(0, "full", "eval.gen.output_tokens") == nullptr);
  CHECK(a.comparisons.size() == 10);

  // The bootstrap draws from the examples the runs scored: both wordings of the choice set ...
  const ComparisonRow* acc = a.find_comparison(0, "full", "eval.mc.acc");
  REQUIRE(acc != nullptr);
  const BootstrapResult expected = paired_bootstrap(value_tables(shape, 1, "mc", "acc", 2), value_tables(shape, 0, "mc", "acc", 2));
  CHECK(acc->bootstrap.seeds == 3);
  CHECK(acc->bootstrap.examples == 12);
  CHECK(acc->bootstrap.low == expected.low);
  CHECK(acc->bootstrap.high == expected.high);
  CHECK(acc->bootstrap.p_value == expected.p_value);
  // ... and a pooled ratio by its tokens.
  const ComparisonRow* nll = a.find_comparison(0, "full", "eval.completion_nll");
  REQUIRE(nll != nullptr);
  CHECK(nll->bootstrap.examples == 12);
  CHECK(nll->bootstrap.high < 0);  // full's NLL is 0.5 per token lower on every example

  // The wording table, worked from the runs' own per-wording scores.
  const auto spread = std::find_if(a.wording_spreads.begin(), a.wording_spreads.end(), [](const WordingSpread& w) {
    return w.set == "mc" && w.strategy == "full" && w.metric == "acc";
  });
  REQUIRE(spread != a.wording_spreads.end());
  double means[2] = {0, 0};
  for (int seed : shape.seeds) {
    for (int w = 0; w < 2; ++w) {
      means[w] += test::eval_scores(shape, 1, seed).metrics["mc"]["wording" + std::to_string(w)]["acc"].get<double>() / 3;
    }
  }
  CHECK(spread->means[0] == Approx(means[0]).epsilon(1e-12));
  CHECK(spread->means[1] == Approx(means[1]).epsilon(1e-12));
  CHECK(spread->spread == Approx(std::fabs(means[0] - means[1])).epsilon(1e-12));
  CHECK(spread->sd == Approx(std::fabs(means[0] - means[1]) / std::sqrt(2.0)).epsilon(1e-12));
  CHECK(a.wording_spreads.size() == 4);  // mc only (gen has one wording): 2 strategies × acc, acc_norm
  const std::string wordings = test::read_text(dir.file("report/wordings.csv"));
  CHECK(wordings.rfind("set,strategy,metric,n_wordings,spread,sd,mean_wording0,mean_wording1\n", 0) == 0);
  CHECK_THAT(wordings, Catch::Contains("mc,full,acc,2,"));

  const std::string page = test::read_text(dir.file("report/report.html"));
  CHECK_THAT(page, Catch::Contains("<section id=\"sets\">"));
  CHECK_THAT(page, Catch::Contains("Set <code>gen</code></h3>\n<p>Kind <b>generate</b>, 12 examples, 1 wording."));
  CHECK_THAT(page, Catch::Contains("Set <code>mc</code></h3>\n<p>Kind <b>choice</b>, 12 examples, 2 wordings."));
  CHECK_THAT(page, Catch::Contains("<table class=\"wordings\" data-set=\"mc\">"));
  CHECK_THAT(page, Catch::Contains("Answer: &lt;&amp;&gt;"));
  CHECK_THAT(page, !Catch::Contains("<&>"));
  CHECK_THAT(page, Catch::Contains("data-metric=\"eval.mc.acc\""));
  CHECK_THAT(page, Catch::Contains("<section id=\"brief\">"));
  CHECK_THAT(page, Catch::Contains("figures/wordings_mc_acc.svg</span></figcaption>"));
}
