// Report data views: optional extras; a report needs only the run records.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "harness/core/run_record.hpp"
#include "harness/sweep/sweep.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
namespace fs = std::filesystem;

TEST_CASE("a report whose data cannot be read is still written, with a note saying what was left out",
          "[slow][report_data]") {
  test::TempDir dir;
  std::string jsonl;
  for (int i = 0; i < 24; ++i) jsonl += "{\"prompt\": \"q" + std::to_string(i) + "\", \"completion\": \"a\"}\n";
  test::write_text(dir.file("data.jsonl"), jsonl);
  test::write_text(dir.file("s.yaml"),
                   "base:\n"
                   "  model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 64}\n"
                   "  train: {steps: 2, eval_every: 0, batch_size: 4}\n"
                   "  data: {train: " + dir.file("data.jsonl") + ", eval_fraction: 0.25}\n"
                   "  eval: {samples: 0}\n"
                   "grid:\n  strategy: [full, completion_only]\n");
  const std::string out = dir.file("out");
  const auto sweep = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out);
  INFO(sweep.out);
  REQUIRE(sweep.exit_code == 0);
  const auto with_data = test::run_masklab("report " + out + " --out " + dir.file("r1"));
  INFO(with_data.out);
  REQUIRE(with_data.exit_code == 0);
  CHECK_THAT(with_data.out, !Catch::Contains("note:"));

  fs::remove(dir.file("data.jsonl"));  // the data moved
  const auto without = test::run_masklab("report " + out + " --out " + dir.file("r2"));
  INFO(without.out);
  CHECK(without.exit_code == 0);
  CHECK_THAT(without.out, Catch::Contains("note: task length profiles and the weighted example left out") &&
                              Catch::Contains("data.jsonl"));
  REQUIRE(fs::exists(dir.file("r2/report.html")));
  // Every number from the records is there: runs.csv is the same as with the data.
  CHECK(test::read_text(dir.file("r2/runs.csv")) == test::read_text(dir.file("r1/runs.csv")));
  CHECK_THAT(test::read_text(dir.file("r2/report.html")), Catch::Contains("No task length profile was supplied"));
}
