// masklab inspect: per-token role and weight tables, a summary, an HTML page.
#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("inspect prints token|role|weight tables and a summary", "[slow][formats][inspect][cli]") {
  test::TempDir dir;
  test::write_text(dir.file("chat.jsonl"), test::kThreeTurns);
  const auto r = test::run_masklab("inspect " + dir.file("chat.jsonl") + " --template chatml --strategy last_turn_only "
                                   "--strategy completion_only --html " + dir.file("i.html"));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("token|role|last_turn_only|completion_only"));
  CHECK_THAT(r.out, Catch::Contains("A|assistant|0|1"));     // first turn: only completion_only
  CHECK_THAT(r.out, Catch::Contains("3|assistant|1|1"));     // "A3": both
  CHECK_THAT(r.out, Catch::Contains("# tokens per role:"));
  CHECK_THAT(r.out, Catch::Contains("R_g = completion/prompt"));
  CHECK(std::filesystem::exists(dir.file("i.html")));
  const auto bad = test::run_masklab("inspect " + dir.file("chat.jsonl") + " --strategy weighted:-1");
  CHECK(bad.exit_code == 2);
}
