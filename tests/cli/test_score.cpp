// `masklab score` (harness/cli/score.cpp) on checkpoints that transformers
// wrote, against transformers' own per-token NLL of the same ids.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("masklab score equals transformers per token on Llama, Qwen2, Qwen3, Mistral and sharded checkpoints",
          "[slow][score][python]") {
  test::TempDir dir;
  const auto made = test::run_venv_python("hf_make_checkpoints.py", dir.file("hf"));
  INFO(made.out);
  REQUIRE(made.exit_code == 0);
  std::string lines;
  for (int i = 0; i < 6; ++i) {
    lines += nlohmann::json{{"prompt", "Which " + std::string(2 + 5 * i, 'a' + i) + " comes next?"},
                            {"completion", std::to_string(1000 + 77 * i)},
                            {"task", i % 2 ? "odd" : "even"}}
                 .dump() +
             "\n";
  }
  test::write_text(dir.file("data.jsonl"), lines);
  // llama: untied head, rope_scaling llama3, GQA; qwen2: bf16 weights, q/k/v
  // biases; qwen3: q/k norm, head_dim != hidden/heads; mistral: linear RoPE
  // scaling; sharded: eleven shards through the index.
  for (const char* model : {"llama", "qwen2", "qwen3", "mistral", "sharded"}) {
    INFO(model);
    const std::string out = dir.file(std::string(model) + ".jsonl");
    const auto r = test::run_masklab(std::string("score ") + dir.file("hf/") + model + " " + dir.file("data.jsonl") +
                                     " --out " + out + " --tokens --set data.tokenizer=byte --set train.threads=1");
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    const auto first = nlohmann::json::parse(test::read_text(out).substr(0, test::read_text(out).find('\n')));
    CHECK(first["task"] == "even");
    CHECK(first["completion_tokens"].get<int>() == 5);  // four digits and the end marker
    const auto ref = test::run_venv_python("hf_score_reference.py", dir.file("hf/") + model + " " + out);
    INFO(ref.out);
    CHECK(ref.exit_code == 0);
    const auto figures = nlohmann::json::parse(ref.out.substr(ref.out.rfind('{')));
    CHECK(figures["lines"] == 6);
    CHECK(figures["max_rel_token"].get<double>() <= 1e-4);
  }
}

TEST_CASE("masklab score: bad input is one line and exit 2, nothing written", "[slow][score]") {
  test::TempDir dir;
  test::write_text(dir.file("data.jsonl"), "{\"prompt\": \"a\", \"completion\": \"b\"}\n");
  const auto r = test::run_masklab("score " + dir.path() + " " + dir.file("data.jsonl") + " --out " + dir.file("s.jsonl"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.out, Catch::Contains("has no config.json"));
  CHECK(!std::filesystem::exists(dir.file("s.jsonl")));
}
