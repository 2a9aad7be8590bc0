// masklab inspect: per-token role and weight tables, a summary, an HTML page.
#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/data/tokenizer_reference.hpp"
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

TEST_CASE("inspect shows a BPE tokenizer's tokens and roles token by token", "[slow][inspect][cli][tokenizer]") {
  const std::string folder = test::reference_tokenizers() + "/gpt2";
  test::TempDir dir;
  test::write_text(dir.file("chat.jsonl"), test::kThreeTurns);
  const auto r = test::run_masklab("inspect " + dir.file("chat.jsonl") + " --template auto --tokenizer " + folder +
                                   " --strategy completion_only");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("token|role|completion_only"));
  CHECK_THAT(r.out, Catch::Contains("<\\|im_start\\|>|template|0"));  // one added token, one row ('|' escaped)
  CHECK_THAT(r.out, Catch::Contains("<\\|im_end\\|>|eos|1"));         // the end marker closes the completion
  CHECK_THAT(r.out, Catch::Contains("\\n|template|0"));
}
