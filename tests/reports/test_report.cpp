// reports: load_sweep and write_report on sweep directories built by hand,
// whose metric values follow a known formula. The CSVs are read back with
// pandas and recomputed with scipy/numpy (check_report.py); the page is
// checked against runs.csv and for escaping; edge cases write a report too.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/core/errors.hpp"
#include "reports/html.hpp"
#include "reports/io.hpp"
#include "reports/report.hpp"
#include "reports/tables.hpp"
#include "strategies/registry.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
using namespace masklab::reports;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// What a synthetic sweep varies. Runs are laid out condition-major, then
// strategy, then seed, with ids "r00", "r01", ...
struct SweepShape {
  std::vector<std::string> strategies = {"completion_only", "weighted:0.01", "weighted:0.1", "full"};
  std::vector<int> seeds = {1, 2, 3};
  std::vector<std::string> conditions = {"small", "long \"prompts\", short answers"};  // empty: no condition factor
  std::vector<std::string> tasks = {"count", "lookup"};
  std::string spec_text = "name: synthetic\nstrategies: [completion_only, weighted:0.01, weighted:0.1, full]\n";
  bool curves = true;
  bool role_weights = true;  // recorded in sweep.json and metrics.json; false: a sweep from before they were
  // strategy -> the registered spec whose role weights its runs record (for the escaping test's names)
  std::map<std::string, std::string> records_as;
  std::string record_spec(const std::string& s) const { return records_as.count(s) ? records_as.at(s) : s; }
};

// One setting (no condition factor): `strategies` × `seeds`.
SweepShape flat_shape(std::vector<std::string> strategies, std::vector<int> seeds = {1, 2, 3}) {
  return {std::move(strategies), std::move(seeds), {}};
}

// What a run of the registered `spec` records of its strategy.
json recorded_weights(const std::string& spec) { return role_weights_record(*make_strategy(spec)); }

// A deterministic stand-in for run-to-run noise in [0, 1): a different value
// for every seed, strategy, condition and salt (which metric it perturbs).
double noise(int seed, size_t strategy, size_t condition, size_t salt) {
  const double v = std::sin(seed * 12.9898 + static_cast<double>(strategy) * 78.233 +
                            static_cast<double>(condition) * 37.719 + static_cast<double>(salt) * 4.581) *
                   43758.5453;
  return v - std::floor(v);
}

// The synthetic score: concave in log λ (as Huerta-Enochian & Ko found), shifted by condition and seed.
// `spec` is registered; λ is its recorded prompt weight.
double quality(const std::string& spec, size_t strategy_index, int seed, size_t condition, size_t task) {
  const double lambda = recorded_weights(spec)["start"]["prompt"].get<double>();
  const double x = std::log10(lambda + 0.001);
  return 0.6 - 0.02 * (x + 1.2) * (x + 1.2) + 0.03 * static_cast<double>(condition) + 0.01 * seed -
         0.1 * static_cast<double>(task) + 0.03 * noise(seed, strategy_index, condition, task);
}

json run_metrics(const SweepShape& shape, size_t strategy, int seed, size_t condition) {
  const std::string spec = shape.record_spec(shape.strategies[strategy]);
  const double q = quality(spec, strategy, seed, condition, 0);
  const double nll = 2.5 - 1.5 * q + 0.02 * noise(seed, strategy, condition, 100);
  json per_task = json::object();
  for (size_t t = 0; t < shape.tasks.size(); ++t) {
    const double tq = quality(spec, strategy, seed, condition, t);
    per_task[shape.tasks[t]] = {{"completion_nll", 2.5 - 1.5 * tq}, {"exact_match", tq},
                                {"completion_token_accuracy", tq + 0.2}, {"train_completion_nll", 2.4 - 1.5 * tq},
                                {"train_exact_match", tq + 0.05}, {"examples", 64}};
  }
  json metrics = {{"status", "ok"},
                  {"error", nullptr},
                  {"strategy", shape.strategies[strategy]},
                  {"seed", seed},
                  {"steps", 30},
                  {"steps_planned", 30},
                  {"tokens_trained", 30000 + 1000 * static_cast<int>(strategy)},
                  {"tokens_seen", 34174},
                  {"wall_seconds", 1.25 + 0.01 * seed},
                  {"train_seconds", 1.0},
                  {"final_train_loss", nll - 0.1},
                  {"padding_waste", 0.066},
                  {"tokens_per_second", 27000.5},
                  {"eval",
                   {{"completion_nll", nll}, {"completion_ppl", std::exp(nll)}, {"completion_token_accuracy", q + 0.2},
                    {"exact_match", q}, {"prompt_nll", 3.0 - 0.1 * static_cast<double>(strategy) + 0.05 * noise(seed, strategy, condition, 101)},
                    {"completion_tokens", 2434}, {"prompt_tokens", 5530}, {"examples", 256}}},
                  {"train", {{"completion_nll", nll - 0.05}, {"completion_token_accuracy", q + 0.22}, {"exact_match", q + 0.04}}},
                  {"per_task", per_task},
                  {"data", {{"train_examples", 400}, {"eval_examples", 256}}},
                  {"same_job", {{"init_hash", "814e166754cb5414"}}},
                  {"provenance", {{"device", "cpu"}, {"threads", 2}}}};
  if (shape.role_weights) metrics["role_weights"] = recorded_weights(spec);
  return metrics;
}

std::string run_id(size_t index) { return fmt::format("r{:02d}", index); }

// Writes DIR/sweep.json and one complete run record per (condition, strategy, seed).
void write_sweep(const std::string& dir, const SweepShape& shape) {
  json runs = json::array();
  const std::vector<std::string> conditions = shape.conditions.empty() ? std::vector<std::string>{""} : shape.conditions;
  size_t index = 0;
  for (size_t c = 0; c < conditions.size(); ++c) {
    for (size_t s = 0; s < shape.strategies.size(); ++s) {
      for (int seed : shape.seeds) {
        const std::string id = run_id(index++);
        json factors = {{"strategy", shape.strategies[s]}, {"seed", std::to_string(seed)}};
        if (!shape.conditions.empty()) factors["condition"] = conditions[c];
        json entry = {{"id", id}, {"dir", "runs/" + id}, {"factors", factors}};
        if (shape.role_weights) entry["role_weights"] = recorded_weights(shape.record_spec(shape.strategies[s]));
        runs.push_back(std::move(entry));
        const fs::path run_dir = fs::path(dir) / "runs" / id;
        fs::create_directories(run_dir);
        const json metrics = run_metrics(shape, s, seed, c);
        test::write_text((run_dir / "metrics.json").string(), metrics.dump(2));
        std::string curve;
        for (int step = 0; shape.curves && step <= 30; step += 10) {
          const double nll = metrics["eval"]["completion_nll"].get<double>() + 1.5 * std::exp(-step / 10.0);
          curve += json{{"step", step}, {"train_loss", step == 0 ? json(nullptr) : json(nll + 0.1)}, {"lr", 0.001},
                        {"eval", {{"completion_nll", nll}, {"exact_match", 0.1}}}}
                       .dump() +
                   "\n";
        }
        test::write_text((run_dir / "curve.jsonl").string(), curve);
      }
    }
  }
  json factors = {"strategy", "seed"};
  if (!shape.conditions.empty()) factors.push_back("condition");
  const json sweep = {{"name", "synthetic"},
                      {"spec_path", "experiments/synthetic.yaml"},
                      {"spec_text", shape.spec_text},
                      {"factors", factors},
                      {"provenance", {{"masklab_version", "0.1.0"}, {"git_sha", "abc123"}, {"host", "test"}}},
                      {"runs", runs}};
  test::write_text(dir + "/sweep.json", sweep.dump(2));
}

std::string metrics_path(const std::string& dir, size_t run) { return dir + "/runs/" + run_id(run) + "/metrics.json"; }

void edit_metrics(const std::string& dir, size_t run, const std::function<void(json&)>& edit) {
  json m = json::parse(test::read_text(metrics_path(dir, run)));
  edit(m);
  test::write_text(metrics_path(dir, run), m.dump(2));
}

// The default shape, with one run of every kind a real sweep has: run 11
// (full, seed 3, "small") failed, run 20 (weighted:0.1, seed 3, the second
// condition) has no record yet, run 15 (weighted:0.01, seed 1, second
// condition) has a null held-out prompt NLL, and run 21 (full, seed 1, second
// condition) has a corrupt record.
constexpr size_t kFailedRun = 11, kMissingRun = 20, kNullRun = 15, kCorruptRun = 21;

void write_messy_sweep(const std::string& dir, const SweepShape& shape) {
  write_sweep(dir, shape);
  edit_metrics(dir, kFailedRun, [](json& m) {
    m["status"] = "failed";
    m["error"] = "CUDA out of memory";
    m.erase("eval");
  });
  fs::remove(metrics_path(dir, kMissingRun));
  edit_metrics(dir, kNullRun, [](json& m) { m["eval"]["prompt_nll"] = nullptr; });
  test::write_text(metrics_path(dir, kCorruptRun), "{\"status\": \"ok\", \"eval\": {");
}

ReportInputs with_data_views(ReportInputs inputs) {
  inputs.tasks = {{"count", "", 400, 9.5, 31.25}, {"lookup", "", 400, 46.0, 3.0}};
  WeightedExample ex;
  ex.task = "count";
  ex.tokens = {"<bos>", "c", "o", "u", "n", "t", " ", "3", "\\n", "=>", " ", "a", "a", "a", "<eos>"};
  ex.roles = {"template", "user", "user", "user", "user", "user", "user", "user", "template",
              "template", "template", "assistant", "assistant", "assistant", "eos"};
  for (const auto& spec : {"completion_only", "weighted:0.1", "full"}) {
    const double prompt = recorded_weights(spec)["start"]["prompt"].get<double>();
    std::vector<double> w;
    for (size_t i = 0; i < ex.tokens.size(); ++i) {
      w.push_back(i == 0 ? 0.0 : ex.roles[i] == "assistant" || ex.roles[i] == "eos" ? 1.0 : prompt);
    }
    ex.weights.emplace_back(spec, w);
  }
  inputs.example = ex;
  return inputs;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The headline cell's data-mean for (setting, strategy, metric); NaN when absent.
double headline_mean(const std::string& page, size_t setting, const std::string& strategy, const std::string& metric) {
  const std::string key = fmt::format("data-setting=\"{}\" data-strategy=\"{}\" data-metric=\"{}\"", setting,
                                      html_escape(strategy), metric);
  const size_t at = page.find(key);
  if (at == std::string::npos) return NAN;
  const size_t cell_end = page.find('>', at);
  const size_t mean_at = page.find("data-mean=\"", at);
  if (mean_at == std::string::npos || mean_at > cell_end) return NAN;
  return std::stod(page.substr(mean_at + 11));
}

// load_sweep's UserError message; "no error" when it loads.
std::string load_error(const std::string& dir) {
  const std::string error = test::user_error_of([&] { load_sweep(dir); });
  return error.empty() ? "no error" : error;
}

size_t line_count(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

}  // namespace

TEST_CASE("load_sweep reads the sweep and every record, and gives unfinished and corrupt records a status", "[fast][reports]") {
  test::TempDir dir;
  const SweepShape shape;
  write_messy_sweep(dir.path(), shape);
  const ReportInputs inputs = load_sweep(dir.path());
  CHECK(inputs.sweep.name == "synthetic");
  CHECK(inputs.sweep.spec_text == shape.spec_text);
  CHECK(inputs.sweep.factors == std::vector<std::string>{"strategy", "seed", "condition"});
  CHECK(inputs.sweep.provenance["git_sha"] == "abc123");
  REQUIRE(inputs.runs.size() == 24);
  CHECK(inputs.runs[0].factors.at("strategy") == "completion_only");
  CHECK(inputs.runs[13].factors.at("condition") == "long \"prompts\", short answers");
  CHECK(inputs.runs[0].status == "ok");
  CHECK(inputs.runs[0].curve.size() == 4);
  CHECK(inputs.runs[0].metrics["eval"]["examples"] == 256);
  CHECK(inputs.runs[kFailedRun].status == "failed");
  CHECK(inputs.runs[kFailedRun].error == "CUDA out of memory");
  CHECK(inputs.runs[kMissingRun].status == "missing");
  CHECK(inputs.runs[kMissingRun].metrics.is_null());
  CHECK(inputs.runs[kCorruptRun].status == "failed");
  CHECK_THAT(inputs.runs[kCorruptRun].error, Catch::Contains(run_id(kCorruptRun) + "/metrics.json: invalid JSON"));
  CHECK(inputs.runs[kNullRun].status == "ok");
}

TEST_CASE("load_sweep: an unusable sweep.json or role_weights record is a UserError naming the file and key",
          "[fast][reports][errors]") {
  test::TempDir dir;
  CHECK_THAT(load_error(dir.path()), Catch::Contains(dir.file("sweep.json") + ": cannot read"));
  test::write_text(dir.file("sweep.json"), "{\"runs\": [");
  CHECK_THAT(load_error(dir.path()), Catch::Contains(dir.file("sweep.json") + ": invalid JSON"));
  test::write_text(dir.file("sweep.json"), "{\"runs\": {}}");
  CHECK_THAT(load_error(dir.path()), Catch::Contains("'runs' must be a list"));
  test::write_text(dir.file("sweep.json"), "{\"runs\": [{\"dir\": \"runs/x\"}]}");
  CHECK_THAT(load_error(dir.path()), Catch::Contains("runs[0]: expected an object with a string 'id'"));
  test::write_text(dir.file("sweep.json"), "{\"factors\": \"strategy\", \"runs\": []}");
  CHECK_THAT(load_error(dir.path()), Catch::Contains("'factors' must be a list of names"));
  // A malformed role_weights record, in sweep.json or in a metrics.json.
  write_sweep(dir.path(), flat_shape({"full"}, {1}));
  CHECK(load_error(dir.path()) == "no error");
  json sweep = json::parse(test::read_text(dir.file("sweep.json")));
  sweep["runs"][0]["role_weights"]["start"]["prompt"] = "one";
  test::write_text(dir.file("sweep.json"), sweep.dump());
  CHECK(load_error(dir.path()) == dir.file("sweep.json") + ": runs[0]: role_weights.start.prompt: expected a number");
  sweep["runs"][0].erase("role_weights");
  test::write_text(dir.file("sweep.json"), sweep.dump());
  edit_metrics(dir.path(), 0, [](json& m) { m["role_weights"].erase("schedule"); });
  CHECK(load_error(dir.path()) == dir.file("runs/r00/metrics.json") + ": role_weights.schedule: expected a string");
  edit_metrics(dir.path(), 0, [](json& m) { m["role_weights"] = 3; });
  CHECK_THAT(load_error(dir.path()), Catch::Contains("metrics.json: role_weights: expected {start, end, schedule,"));
}

TEST_CASE("the CSVs load in pandas and agree with scipy and numpy recomputations from runs.csv", "[slow][reports]") {
  test::TempDir dir;
  const SweepShape shape;
  write_messy_sweep(dir.path(), shape);
  const ReportInputs inputs = with_data_views(load_sweep(dir.path()));
  const auto written = write_report(inputs, dir.file("report"));
  const std::set<std::string> files(written.begin(), written.end());
  for (const char* name : {"runs.csv", "summary.csv", "comparisons.csv", "plw_fit.csv", "report.html",
                           "figures/loss_curves-1.svg", "figures/plw_eval_exact_match.svg",
                           "figures/tasks_exact_match-2.svg"}) {
    INFO(name);
    CHECK(files.count(dir.file("report/") + name) == 1);
  }

  // The mean held-out exact match of weighted:0.1 under "small", straight from the formula.
  double sum = 0;
  for (int seed : shape.seeds) sum += quality("weighted:0.1", 2, seed, 0, 0);
  // 4 strategies × 2 conditions; 5 quality metrics + train's 3 + 2 tasks × 5 directional per-task metrics = 18
  // per (condition, strategy), compared for 3 strategies in 2 conditions.
  const json expected = {
      {"sweep_dir", dir.path()},
      {"factors", {"strategy", "seed", "condition"}},
      {"runs", 24},
      {"statuses", {{"ok", 21}, {"failed", 2}, {"missing", 1}}},
      {"factor_values", {{"condition", "long \"prompts\", short answers"}}},
      {"prompt_nll_missing", 4},  // the null one, the failed, the missing and the corrupt run
      {"mean_check",
       {{"condition", {{"strategy", "weighted:0.1"}, {"condition", "small"}}},
        {"metric", "eval.exact_match"},
        {"mean", sum / 3}}},
      {"baseline", "completion_only"},
      {"plw", true},
      {"plw_rows", 2 * (5 + 2 * 2)},  // per condition: 5 held-out metrics, exact match and NLL of 2 tasks
      {"min_headline_cells", 2 * 4 * 5 - 1}};  // every cell but one shows a mean
  const auto r = test::run_shell("/usr/bin/python3 " MASKLAB_SOURCE_DIR "/tests/reports/check_report.py " +
                                 shell_quote(dir.file("report")) + " " + shell_quote(expected.dump()));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("OK"));

  // The comparisons cover every directional metric: 18 per strategy and condition.
  const std::string comparisons = test::read_text(dir.file("report/comparisons.csv"));
  CHECK(line_count(comparisons) == 1 + 2 * 3 * 18);
  CHECK_THAT(comparisons, Catch::StartsWith("condition,strategy,baseline,metric,n_pairs,mean_diff,"));
}

TEST_CASE("the headline table shows the means of runs.csv", "[fast][reports]") {
  test::TempDir dir;
  const SweepShape shape;
  write_messy_sweep(dir.path(), shape);
  write_report(with_data_views(load_sweep(dir.path())), dir.file("report"));
  const std::string page = test::read_text(dir.file("report/report.html"));
  for (size_t s = 0; s < shape.strategies.size(); ++s) {
    double sum = 0;
    int runs = 0;
    for (int seed : shape.seeds) {
      if (s * shape.seeds.size() + static_cast<size_t>(seed - 1) == kFailedRun) continue;
      sum += quality(shape.strategies[s], s, seed, 0, 0);
      ++runs;
    }
    INFO(shape.strategies[s]);
    CHECK(headline_mean(page, 0, shape.strategies[s], "eval.exact_match") == Approx(sum / runs).epsilon(1e-12));
  }
  // weighted:0.1 in the second condition lost seed 3 (missing): the mean of seeds 1 and 2.
  const double two_seeds = (quality("weighted:0.1", 2, 1, 1, 0) + quality("weighted:0.1", 2, 2, 1, 0)) / 2;
  CHECK(headline_mean(page, 1, "weighted:0.1", "eval.exact_match") == Approx(two_seeds).epsilon(1e-12));
  // Significance marks and the problem runs are on the page.
  CHECK_THAT(page, Catch::Contains("class=\"sig "));
  CHECK_THAT(page, Catch::Contains("CUDA out of memory"));
  CHECK_THAT(page, Catch::Contains("invalid JSON"));
  CHECK_THAT(page, Catch::Contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
}

TEST_CASE("text from data and config is escaped everywhere in the page and the figures", "[fast][reports][security]") {
  const std::string hostile = "<script>alert(1)</script>\"onmouseover=\"x'";
  const std::string escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;onmouseover=&quot;x&#39;";
  test::TempDir dir;
  SweepShape shape;
  shape.strategies = {"completion_only", "weighted:0.1", "weighted:0.5," + hostile, "full"};
  shape.records_as["weighted:0.5," + hostile] = "weighted:0.5";
  shape.conditions = {hostile};
  shape.tasks = {"count", hostile};
  shape.spec_text = "name: evil\n# " + hostile + "\n";
  write_sweep(dir.path(), shape);
  edit_metrics(dir.path(), 0, [&](json& m) {
    m["status"] = "failed";
    m["error"] = hostile;
  });
  ReportInputs inputs = with_data_views(load_sweep(dir.path()));
  inputs.sweep.name = hostile;
  inputs.sweep.provenance["host"] = hostile;
  inputs.tasks.push_back({hostile, hostile, 10, 1.0, 2.0});
  inputs.example->task = hostile;
  inputs.example->tokens[3] = hostile;
  inputs.example->roles[3] = hostile;
  inputs.example->weights.emplace_back(hostile, std::vector<double>(inputs.example->tokens.size(), 0.5));
  const auto written = write_report(inputs, dir.file("report"));

  const std::string page = test::read_text(dir.file("report/report.html"));
  std::string lowered = page;
  std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
  CHECK(lowered.find("<script") == std::string::npos);  // the page emits no script at all
  CHECK(page.find("\"onmouseover=\"") == std::string::npos);
  CHECK(page.find("x'") == std::string::npos);
  // Escaped, it appears in the title, the spec, the provenance, the factors, the error, the task tables, the tokens.
  size_t occurrences = 0;
  for (size_t at = page.find(escaped); at != std::string::npos; at = page.find(escaped, at + 1)) ++occurrences;
  CHECK(occurrences >= 10);
  for (const auto& path : written) {
    if (path.size() < 4 || path.substr(path.size() - 4) != ".svg") continue;
    const std::string svg = test::read_text(path);
    INFO(path);
    CHECK(svg.find("<script") == std::string::npos);
    CHECK(svg.find("\"onmouseover=\"") == std::string::npos);
  }
  CHECK_THAT(test::read_text(dir.file("report/figures/tasks_exact_match.svg")), Catch::Contains(escaped));
}

TEST_CASE("the examples page shows every example's weighted tokens, escaped", "[fast][reports][security]") {
  ReportInputs inputs = with_data_views(ReportInputs{});
  WeightedExample hostile = *inputs.example;
  hostile.task = "<b>task</b>";
  hostile.tokens[1] = "<script>";
  const std::string page = examples_page("inspect <data>", {*inputs.example, hostile});
  CHECK_THAT(page, Catch::Contains("<title>inspect &lt;data&gt;</title>"));
  CHECK_THAT(page, Catch::Contains("Example 2: task <code>&lt;b&gt;task&lt;/b&gt;</code>, 15 tokens"));
  CHECK(page.find("<script") == std::string::npos);
  // weighted:0.1 shades a prompt token at 0.1, full at 1 (white text on the saturated colour).
  CHECK_THAT(page, Catch::Contains("background:rgba(0,114,178,0.100)\" title=\"c \u00b7 user \u00b7 weight 0.1\""));
  CHECK_THAT(page, Catch::Contains("background:rgba(0,114,178,1.000);color:#fff\" title=\"c \u00b7 user \u00b7 weight 1\""));
  CHECK_THAT(examples_page("empty", {}), Catch::Contains("No example to show"));
}

TEST_CASE("edge cases: one seed, a single strategy, every run failed, no curve points", "[fast][reports]") {
  SECTION("one seed: means without intervals, comparisons without tests, a fit with no residual df") {
    test::TempDir dir;
    write_sweep(dir.path(), flat_shape({"completion_only", "weighted:0.1", "full"}, {1}));
    write_report(load_sweep(dir.path()), dir.file("report"));
    const std::string summary = test::read_text(dir.file("report/summary.csv"));
    CHECK_THAT(summary, Catch::Contains(fmt::format("weighted:0.1,eval.exact_match,1,{},,,\n",
                                                    csv_number(quality("weighted:0.1", 1, 1, 0, 0)))));
    const std::string comparisons = test::read_text(dir.file("report/comparisons.csv"));
    CHECK_THAT(comparisons, Catch::Contains("full,completion_only,eval.exact_match,1,"));
    CHECK(fs::exists(dir.file("report/plw_fit.csv")));
    const std::string page = test::read_text(dir.file("report/report.html"));
    CHECK(headline_mean(page, 0, "full", "eval.exact_match") == Approx(quality("full", 2, 1, 0, 0)));
  }
  SECTION("a single strategy: comparisons.csv has its header only and λ does not vary") {
    test::TempDir dir;
    write_sweep(dir.path(), flat_shape({"weighted:0.1"}));
    const auto written = write_report(load_sweep(dir.path()), dir.file("report"));
    CHECK(line_count(test::read_text(dir.file("report/comparisons.csv"))) == 1);
    CHECK_FALSE(fs::exists(dir.file("report/plw_fit.csv")));
    const std::string page = test::read_text(dir.file("report/report.html"));
    CHECK_THAT(page, Catch::Contains("does not vary in this sweep"));
    CHECK_THAT(page, Catch::Contains("is not in this sweep"));
    CHECK_THAT(page, Catch::Contains("No example was supplied"));
  }
  SECTION("every run failed: the report still stands, saying so") {
    test::TempDir dir;
    write_sweep(dir.path(), flat_shape({"completion_only", "full"}));
    for (size_t r = 0; r < 6; ++r) {
      edit_metrics(dir.path(), r, [](json& m) {
        m = {{"status", "failed"}, {"error", "LibTorch error"}, {"strategy", m["strategy"]}, {"seed", m["seed"]}};
      });
    }
    write_report(load_sweep(dir.path()), dir.file("report"));
    CHECK(line_count(test::read_text(dir.file("report/summary.csv"))) == 1);
    CHECK(line_count(test::read_text(dir.file("report/comparisons.csv"))) == 1);
    const std::string page = test::read_text(dir.file("report/report.html"));
    CHECK_THAT(page, Catch::Contains("failed 6"));
    CHECK_THAT(page, Catch::Contains("No curve points"));
    CHECK(std::isnan(headline_mean(page, 0, "full", "eval.exact_match")));
  }
  SECTION("no recorded role weights: no run has a λ, so there is no λ axis") {
    test::TempDir dir;
    SweepShape shape = flat_shape(SweepShape{}.strategies);
    shape.role_weights = false;
    write_sweep(dir.path(), shape);
    write_report(load_sweep(dir.path()), dir.file("report"));
    CHECK_FALSE(fs::exists(dir.file("report/plw_fit.csv")));
    CHECK_FALSE(fs::exists(dir.file("report/figures/plw_eval_exact_match.svg")));
    CHECK_THAT(test::read_text(dir.file("report/report.html")), Catch::Contains("does not vary in this sweep"));
  }
  SECTION("no curve points: no loss-curve figure") {
    test::TempDir dir;
    SweepShape shape;
    shape.curves = false;
    write_sweep(dir.path(), shape);
    write_report(load_sweep(dir.path()), dir.file("report"));
    CHECK_FALSE(fs::exists(dir.file("report/figures/loss_curves-1.svg")));
    CHECK(fs::exists(dir.file("report/figures/plw_eval_exact_match.svg")));
    CHECK_THAT(test::read_text(dir.file("report/report.html")), Catch::Contains("No curve points"));
  }
}

TEST_CASE("a report written over an older one leaves no stale or temporary files", "[fast][reports]") {
  test::TempDir dir;
  write_sweep(dir.path(), SweepShape{});
  write_report(load_sweep(dir.path()), dir.file("report"));
  REQUIRE(fs::exists(dir.file("report/plw_fit.csv")));
  REQUIRE(fs::exists(dir.file("report/figures/loss_curves-2.svg")));

  test::TempDir other;
  write_sweep(other.path(), flat_shape({"completion_only", "full"}));
  const auto written = write_report(load_sweep(other.path()), dir.file("report"));
  CHECK_FALSE(fs::exists(dir.file("report/plw_fit.csv")));
  CHECK_FALSE(fs::exists(dir.file("report/figures/loss_curves-2.svg")));
  CHECK(fs::exists(dir.file("report/figures/loss_curves.svg")));
  std::set<std::string> on_disk;
  for (const auto& entry : fs::recursive_directory_iterator(dir.file("report"))) {
    if (entry.is_regular_file()) on_disk.insert(entry.path().string());
  }
  CHECK(on_disk == std::set<std::string>(written.begin(), written.end()));
}

TEST_CASE("λ is the recorded prompt weight of strategies on the PLW axis, and unknown transforms are errors",
          "[fast][reports]") {
  auto lambda_of = [](const std::string& spec) {
    test::TempDir dir;  // through load_sweep, so that the report reads what a sweep records
    const json entry = {{"id", "r"}, {"role_weights", recorded_weights(spec)}};
    test::write_text(dir.file("sweep.json"), json{{"runs", json::array({entry})}}.dump());
    return plw_lambda(load_sweep(dir.path()).runs.at(0).role_weights);
  };
  const std::vector<std::pair<std::string, std::optional<double>>> cases = {
      // On the axis: constant weights, assistant turns at 1, system text as prompt.
      {"completion_only", 0.0}, {"assistant_only", 0.0}, {"FULL", 1.0}, {"weighted:0.1", 0.1},
      {"weighted:0.01,system=0.01", 0.01}, {"plw:1e-3,template=zero", 0.001}, {"wit:0.1,1", 0.1},
      // Off it: system weighed apart, other completion weights, a schedule (even a flat one).
      {"weighted:0.01,system=0.5", std::nullopt}, {"wit:0.1,2", std::nullopt}, {"last_turn_only", std::nullopt},
      {"scheduled:1,0", std::nullopt}, {"scheduled:0.5,0.5", std::nullopt}};
  for (const auto& [spec, lambda] : cases) {
    INFO(spec);
    CHECK(lambda_of(spec) == lambda);
  }
  CHECK(transform_lambda(0.0, PlwTransform::kLog) == Approx(-3.0));
  CHECK(transform_lambda(0.0625, PlwTransform::kQuarter) == Approx(0.5));
  for (const auto& [t, name] : EnumNames<PlwTransform>::kNames) {
    CHECK(untransform_lambda(transform_lambda(0.1, t), t) == Approx(0.1));
  }
  CHECK_THAT(test::user_error_of([] { parse_enum<PlwTransform>("cubic", "--plw-transform"); }),
             Catch::Contains("--plw-transform expects log | quarter | linear, got 'cubic'"));
}

TEST_CASE("role weights come from sweep.json's run entry, else from metrics.json, a run with neither has no λ",
          "[fast][reports]") {
  test::TempDir dir;
  write_sweep(dir.path(), flat_shape({"completion_only", "weighted:0.1", "full"}, {1}));
  json sweep = json::parse(test::read_text(dir.file("sweep.json")));
  // Run 0: only its record has weights. Run 1: the sweep's entry wins over a different record. Run 2: neither.
  sweep["runs"][0].erase("role_weights");
  edit_metrics(dir.path(), 0, [](json& m) { m["role_weights"] = recorded_weights("weighted:0.3"); });
  edit_metrics(dir.path(), 1, [](json& m) { m["role_weights"] = recorded_weights("weighted:0.9"); });
  sweep["runs"][2].erase("role_weights");
  edit_metrics(dir.path(), 2, [](json& m) { m.erase("role_weights"); });
  test::write_text(dir.file("sweep.json"), sweep.dump());
  const ReportInputs inputs = load_sweep(dir.path());
  REQUIRE(inputs.runs.size() == 3);
  CHECK(inputs.runs[0].role_weights.value().schedule == "constant");
  CHECK(inputs.runs[1].role_weights.value().end.prompt == 0.1);
  CHECK_FALSE(inputs.runs[2].role_weights);
  const Analysis a = analyze(inputs);
  CHECK((a.run_lambda == std::vector<std::optional<double>>{0.3, 0.1, std::nullopt}));
  CHECK(a.lambda("completion_only") == 0.3);  // what the run recorded, not what its name suggests
  CHECK_FALSE(a.lambda("full"));
  CHECK_FALSE(a.plw_varies);
}

TEST_CASE("the strategies on the λ axis are those whose records say so, whatever their names", "[fast][reports]") {
  test::TempDir dir;
  write_sweep(dir.path(), flat_shape({"completion_only", "wit:0.3,1", "weighted:0.1,system=0.5", "scheduled:1,0", "full"}));
  const Analysis a = analyze(load_sweep(dir.path()));
  CHECK(a.strategy_lambda == std::map<std::string, double>{{"completion_only", 0}, {"wit:0.3,1", 0.3}, {"full", 1}});
  CHECK(a.plw_varies);
  CHECK(a.plw_fits.at(0).fit.n == 9);  // three seeds of each of the three strategies on the axis
  write_report(load_sweep(dir.path()), dir.file("report"));
  const std::string page = test::read_text(dir.file("report/report.html"));
  CHECK_THAT(page, Catch::Contains("<code>wit:0.3,1</code></td><td class=\"num\">0.3</td>"));
  CHECK_THAT(page, Catch::Contains("<code>scheduled:1,0</code></td><td class=\"num\">\u2013</td>"));
}

TEST_CASE("better direction is read from the metric name", "[fast][reports]") {
  CHECK(better_direction("eval.exact_match") == Better::kHigher);
  CHECK(better_direction("per_task.count.completion_token_accuracy") == Better::kHigher);
  CHECK(better_direction("per_task.count.train_exact_match") == Better::kHigher);
  CHECK(better_direction("eval.completion_ppl") == Better::kLower);
  CHECK(better_direction("train.loss") == Better::kLower);
  CHECK(better_direction("final_train_loss") == Better::kNeither);  // each strategy's own objective
  CHECK(better_direction("eval.prompt_nll") == Better::kLower);
  CHECK(better_direction("tokens_trained") == Better::kNeither);
  CHECK(better_direction("eval.completion_tokens") == Better::kNeither);
}

TEST_CASE("CSV fields are quoted as RFC 4180 says and numbers round-trip", "[fast][reports]") {
  CHECK(csv_field("plain") == "plain");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_field("two\nlines") == "\"two\nlines\"");
  CHECK(csv_field(" padded") == "\" padded\"");
  CHECK(csv_row({"a", "b,c", ""}) == "a,\"b,c\",\n");
  CHECK(csv_number(NAN).empty());
  CHECK(csv_number(30000) == "30000");
  CHECK(csv_number(INFINITY) == "inf");
  for (double v : {0.1, 1.0 / 3.0, 4.27908667238795, 1e-300, 123456789.123456789}) {
    CHECK(std::stod(csv_number(v)) == v);
  }
  CHECK(html_escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST_CASE("a headless browser renders the report's charts", "[slow][reports][screenshot]") {
  test::TempDir dir;
  write_messy_sweep(dir.path(), SweepShape{});
  write_report(with_data_views(load_sweep(dir.path())), dir.file("report"));
  const auto r = test::run_shell("bash " MASKLAB_SOURCE_DIR "/tests/reports/screenshot_test.sh " +
                                 shell_quote(dir.file("report")) + " " + shell_quote(dir.file("shots")));
  INFO(r.out);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("screenshot OK"));
}
