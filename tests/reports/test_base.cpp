// reports/base: the base a sweep's runs started from, as load_sweep reads it
// and the report shows it, and the runs that disagree about it. Sweep
// folders are written by hand with known values.
#include <catch2/catch.hpp>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "reports/base.hpp"
#include "reports/html.hpp"
#include "reports/report.hpp"
#include "reports/tables.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
using namespace masklab::reports;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kHash = "0123456789abcdef";

json run_record(const std::string& init_hash, double nll) {
  return {{"status", "ok"},
          {"strategy", "full"},
          {"eval", {{"completion_nll", nll}, {"exact_match", 0.5}}},
          {"same_job", {{"init_hash", init_hash}}}};
}

// Three runs from one pretrained base (cache/base-<kHash>/ holds the stage's record);
// run "c" names its base only in metrics.json, as a run of another tool would.
void write_based_sweep(const std::string& dir) {
  json runs = json::array();
  for (const std::string id : {"a", "b", "c"}) {
    json entry = {{"id", id}, {"dir", "runs/" + id}, {"factors", {{"strategy", "full"}, {"seed", id}}}};
    json record = run_record("feedfacefeedface", id == "a" ? 1.0 : 2.0);
    if (id == "c") {
      record["base"] = {{"init_from", "out/cache/base-x/model.pt"}, {"hash", kHash}};
    } else {
      entry["base_hash"] = kHash;
    }
    runs.push_back(entry);
    fs::create_directories(dir + "/runs/" + id);
    test::write_text(dir + "/runs/" + id + "/metrics.json", record.dump());
  }
  const json base = {{"kind", "pretrain"},
                     {"hash", kHash},
                     {"dir", std::string("cache/base-") + kHash},
                     {"path", std::string("cache/base-") + kHash + "/model.pt"},
                     {"config", {{"strategy", "full"},
                                 {"seed", 1},
                                 {"model", {{"n_layers", 2}, {"d_model", 128}, {"init_from", ""}}},
                                 {"train", {{"steps", 600}, {"batch_size", 32}, {"lr", 0.003}}}}},
                     {"text", {{"tasks", {"lookup", "<reverse>"}}, {"documents", 3000}, {"seed", 7}}}};
  test::write_text(dir + "/sweep.json", json{{"name", "based"}, {"factors", {"strategy", "seed"}}, {"base", base},
                                             {"runs", runs}}.dump());
  fs::create_directories(dir + "/cache/base-" + kHash);
  test::write_text(dir + "/cache/base-" + kHash + "/metrics.json",
                   json{{"status", "ok"}, {"wall_seconds", 61.5}, {"eval", {{"completion_nll", 0.8125}}}}.dump());
}

}  // namespace

TEST_CASE("load_sweep reads the sweep's base, its stage's record and each run's base hash", "[fast][reports][base]") {
  test::TempDir dir;
  write_based_sweep(dir.path());
  const ReportInputs inputs = load_sweep(dir.path());
  CHECK(inputs.sweep.base["kind"] == "pretrain");
  CHECK(inputs.sweep.base["hash"] == kHash);
  CHECK(inputs.sweep.base_metrics["wall_seconds"] == 61.5);
  REQUIRE(inputs.runs.size() == 3);
  for (const auto& run : inputs.runs) CHECK(run.base_hash == kHash);  // "c" from its metrics.json
  CHECK(base_disagreements(inputs).empty());

  const std::string section = base_section_html(inputs);
  CHECK_THAT(section, Catch::Contains(kHash));
  CHECK_THAT(section, Catch::Contains("cache/base-0123456789abcdef/model.pt"));
  CHECK_THAT(section, Catch::Contains("600 steps, batch 32, lr 0.003"));
  CHECK_THAT(section, Catch::Contains("d_model 128, n_layers 2"));
  CHECK_THAT(section, Catch::Contains("3000 statements per task (lookup, &lt;reverse&gt;), text seed 7"));
  CHECK_THAT(section, Catch::Contains("61.5 s, held-out NLL 0.8125"));
  CHECK_THAT(section, !Catch::Contains("Warning"));

  const std::string page = report_html(inputs, analyze(inputs), {}, {});
  CHECK_THAT(page, Catch::Contains(section));
  const std::string csv = runs_csv(inputs, analyze(inputs));
  CHECK(csv.substr(0, csv.find('\n')) == "run_id,strategy,seed,status,error,base_hash,eval.completion_nll,eval.exact_match");
  CHECK_THAT(csv, Catch::Contains("a,full,a,ok,,0123456789abcdef,1,0.5\n"));

  // A sweep without a base keeps its runs.csv header and shows no section.
  ReportInputs plain = inputs;
  plain.sweep.base = nullptr;
  for (auto& run : plain.runs) run.base_hash.clear();
  CHECK(base_section_html(plain).empty());
  const std::string plain_csv = runs_csv(plain, analyze(plain));
  CHECK(plain_csv.substr(0, plain_csv.find('\n')) == "run_id,strategy,seed,status,error,eval.completion_nll,eval.exact_match");
}

TEST_CASE("runs that disagree on their base are warned about", "[fast][reports][base]") {
  test::TempDir dir;
  write_based_sweep(dir.path());
  const ReportInputs agreed = load_sweep(dir.path());

  ReportInputs weights = agreed;  // one run started from other weights
  weights.runs[1].metrics["same_job"]["init_hash"] = "0000000000000001";
  auto lines = base_disagreements(weights);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "runs disagree on their initial weights (same_job.init_hash): feedfacefeedface (2 runs: a, ...); "
                    "0000000000000001 (1 run: b)");
  CHECK_THAT(base_section_html(weights), Catch::Contains("<p class=\"note\">Warning: runs disagree on their initial weights"));

  ReportInputs hashes = agreed;  // one run names another base, one none
  hashes.runs[0].base_hash = "ffffffffffffffff";
  hashes.runs[2].base_hash.clear();
  lines = base_disagreements(hashes);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "runs disagree on their base (base_hash): ffffffffffffffff (1 run: a); 0123456789abcdef (1 run: b); "
                    "none (1 run: c)");

  ReportInputs all_other = agreed;  // they agree with each other, not with the sweep
  for (auto& run : all_other.runs) run.base_hash = "ffffffffffffffff";
  lines = base_disagreements(all_other);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "3 run(s) name another base than the sweep's 0123456789abcdef (first: a)");

  ReportInputs files = agreed;  // metrics.json base.init_from differ
  files.runs[0].metrics["base"] = {{"init_from", "elsewhere/model.pt"}, {"hash", kHash}};
  lines = base_disagreements(files);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "runs disagree on the file they started from (base.init_from): elsewhere/model.pt (1 run: a); "
                    "out/cache/base-x/model.pt (1 run: c)");
}
