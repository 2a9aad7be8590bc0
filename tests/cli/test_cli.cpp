// The masklab command line end to end: one-line errors with exit status 2,
// help everywhere, the strategy equivalences through `train`, and the
// shipped chats through train, `tokenizer train`, sweep and report.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

#include "harness/core/run_record.hpp"
#include "tests/reports/eval_sweep.hpp"
#include "tests/system_helpers.hpp"

using namespace masklab;

TEST_CASE("the CLI: bad input gives one line and exit status 2", "[slow][cli][errors]") {
  test::TempDir dir;
  auto one_line_error = [](const test::CommandResult& r, const std::string& expected) {
    INFO(r.out);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.out, Catch::Contains(expected));
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  };
  one_line_error(test::run_masklab("train --strategy weighted:abc --out " + dir.file("x")),
                 "bad strategy 'weighted:abc': lambda must be a non-negative number");
  one_line_error(test::run_masklab("train --strategy nosuch --out " + dir.file("x")), "valid strategies:");
  one_line_error(test::run_masklab("train --set train.stpes=3 --out " + dir.file("x")),
                 "unknown config key 'train.stpes'");
  test::write_text(dir.file("bad.jsonl"), "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"\n");
  one_line_error(test::run_masklab("train --set data.train=" + dir.file("bad.jsonl") + " --out " + dir.file("x")),
                 dir.file("bad.jsonl") + ":2: invalid JSON");
  const std::string masked =
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\", \"weight\": 0}]}\n";
  test::write_text(dir.file("masked.jsonl"), masked + masked + masked + masked + masked + masked + masked + masked);
  one_line_error(test::run_masklab("train --set data.train=" + dir.file("masked.jsonl") + " --out " + dir.file("x")),
                 dir.file("masked.jsonl") + ": no example has a completion token to train on");
  one_line_error(test::run_masklab("train --strategy full"), "--out");
  one_line_error(test::run_masklab("frobnicate"), "unknown command 'frobnicate'");
  CHECK_FALSE(std::filesystem::exists(dir.file("x/metrics.json")));
}

TEST_CASE("the CLI lists strategies and answers --help everywhere", "[slow][cli]") {
  const auto list = test::run_masklab("strategies");
  CHECK(list.exit_code == 0);
  for (const char* name : {"full", "completion_only", "weighted:<lambda>", "wit:<lambda_p>,<lambda_r>",
                           "scheduled:<start>,<end>[,linear|cosine]", "last_turn_only"}) {
    CHECK_THAT(list.out, Catch::Contains(name));
  }
  for (const char* cmd : {"train", "strategies", "tasks", "config", "score"}) {
    INFO(cmd);
    const auto help = test::run_masklab(std::string(cmd) + " --help");
    CHECK(help.exit_code == 0);
    CHECK_THAT(help.out, Catch::Contains("usage: masklab " + std::string(cmd)));
  }
}

TEST_CASE("masklab report --findings writes the findings page, --bootstrap must be at least 1", "[slow][cli]") {
  test::TempDir dir;
  test::write_eval_sweep(dir.file("sweep"), test::EvalSweepShape{});
  const auto report = test::run_masklab("report " + dir.file("sweep") + " --findings " + dir.file("findings.md") +
                                        " --bootstrap 50");
  INFO(report.out);
  CHECK(report.exit_code == 0);
  CHECK_THAT(report.out, Catch::Contains(dir.file("findings.md")));
  CHECK_THAT(test::read_text(dir.file("findings.md")), Catch::StartsWith("# Findings: eval_sets\n"));
  CHECK(std::filesystem::exists(dir.file("sweep/headline.md")));
  const auto bad = test::run_masklab("report " + dir.file("sweep") + " --bootstrap 0");
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.out, Catch::Contains("--bootstrap must be a number of replicates >= 1"));
}

TEST_CASE("the equivalences hold through the CLI", "[slow][cli][equivalence]") {
  test::TempDir dir;
  const std::string common =
      " --seed 3 --set model.n_layers=1 --set model.d_model=32 --set model.n_heads=2 --set train.steps=4"
      " --set data.train_size=32 --set data.eval_size=8 --set data.tasks=add --set train.threads=1 --save-model";
  REQUIRE(test::run_masklab("train --strategy full --out " + dir.file("full") + common).exit_code == 0);
  REQUIRE(test::run_masklab("train --strategy weighted:1 --out " + dir.file("w1") + common).exit_code == 0);
  CHECK(test::read_text(dir.file("full/model/model.safetensors")) ==
        test::read_text(dir.file("w1/model/model.safetensors")));
  auto m1 = test::comparable_metrics(read_json_file(dir.file("full/metrics.json")), true);
  auto m2 = test::comparable_metrics(read_json_file(dir.file("w1/metrics.json")), true);
  CHECK(m1 == m2);
}

TEST_CASE("the shipped 3-turn chats train under assistant_only and last_turn_only, with train and with a sweep "
          "on a SentencePiece model from `masklab tokenizer train`", "[slow][formats][cli][sentencepiece]") {
  test::TempDir dir;
  const std::string data = MASKLAB_SOURCE_DIR "/experiments/data/chat_3turn.jsonl";
  const std::string tiny =
      "--set model.n_layers=1 --set model.d_model=32 --set model.n_heads=2 --set model.max_seq_len=352 "
      "--set train.steps=2 --set train.batch_size=4 --set train.threads=1 --set data.template=chatml "
      "--set data.train=" + data;
  long trained[2] = {0, 0};
  int i = 0;
  for (const char* strategy : {"assistant_only", "last_turn_only"}) {
    const auto r = test::run_masklab(std::string("train --strategy ") + strategy + " --out " + dir.file(strategy) + " " + tiny);
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    trained[i++] = read_json_file(dir.file(strategy) + "/metrics.json")["tokens_trained"].get<long>();
  }
  CHECK(trained[1] < trained[0]);  // only the final turn

  const auto tok = test::run_masklab("tokenizer train " + data + " --vocab 400 --type unigram --out " + dir.file("chat.model"));
  INFO(tok.out);
  REQUIRE(tok.exit_code == 0);
  test::write_text(dir.file("spec.yaml"),
                   "base:\n"
                   "  model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 160}\n"
                   "  train: {steps: 2, batch_size: 4, threads: 1, eval_every: 0}\n"
                   "  data: {train: " + data + ", template: chatml, tokenizer: " + dir.file("chat.model") + "}\n"
                   "grid:\n  strategy: [assistant_only, last_turn_only]\n");
  const auto sweep = test::run_masklab("sweep " + dir.file("spec.yaml") + " --out " + dir.file("sweep"));
  INFO(sweep.out);
  CHECK(sweep.exit_code == 0);
  CHECK_THAT(sweep.out, Catch::Contains("2 runs ok, 0 not ok"));
  const auto report = test::run_masklab("report " + dir.file("sweep"));
  INFO(report.out);
  CHECK(report.exit_code == 0);
}

TEST_CASE("bench --strategies keeps the commas inside a spec (numbers and key=value and choices)", "[slow][cli][bench]") {
  test::TempDir dir;
  // Validation runs before any timing, so a bad last spec shows how the list was split.
  const auto bad = test::run_masklab("bench --strategies weighted:0.1,system=0,wit:0.5,1,nosuch");
  INFO(bad.out);
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.out, Catch::Contains("bad strategy 'nosuch'"));
  CHECK_THAT(bad.out, !Catch::Contains("bad strategy 'system=0'"));

  const auto r = test::run_masklab(
      "bench --steps 1 --warmup 0 --strategies weighted:0.1,system=0,scheduled:1,0,cosine,full --json " +
      dir.file("bench.json") +
      " --set model.n_layers=1 --set model.d_model=32 --set model.n_heads=2 --set model.max_seq_len=64"
      " --set train.batch_size=4 --set train.threads=1 --set data.train_size=16 --set data.eval_size=4");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> specs;
  const auto result = read_json_file(dir.file("bench.json"));
  for (const auto& [spec, entry] : result["strategies"].items()) specs.push_back(spec);
  std::sort(specs.begin(), specs.end());
  CHECK(specs == std::vector<std::string>{"full", "scheduled:1,0,cosine", "weighted:0.1,system=0"});
}

TEST_CASE("bad evaluation sets: one line naming file:line or the key, exit 2, nothing written",
          "[slow][cli][eval-sets][errors]") {
  test::TempDir dir;
  const std::string base =
      "model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 96}\n"
      "train: {steps: 2, batch_size: 4, threads: 1, device: cpu}\n"
      "data: {tasks: [count], train_size: 32, eval_size: 4}\n"
      "eval:\n  sets:\n";
  test::write_text(dir.file("mc.jsonl"), "{\"prompt\": \"p\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n"
                                         "{\"prompt\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": 2}\n");
  test::write_text(dir.file("empty.jsonl"), "{\"prompt\": \"q\", \"choices\": [], \"answer\": 0}\n");
  test::write_text(dir.file("gen.jsonl"),
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": "
                   "\"a\"}, {\"role\": \"user\", \"content\": \"and?\"}]}\n");
  struct Case {
    std::string sets, expected;
  };
  const std::string config = dir.file("c.yaml");
  const std::vector<Case> cases = {
      {"    - {name: mc, kind: choice, file: " + dir.file("mc.jsonl") + "}\n",
       dir.file("mc.jsonl") + ":2: answer 2 is out of range: 2 choices (0 to 1)"},
      {"    - {name: mc, kind: choice, file: " + dir.file("empty.jsonl") + "}\n",
       dir.file("empty.jsonl") + ":1: empty choices list"},
      {"    - {name: gen, kind: generate, file: " + dir.file("gen.jsonl") + "}\n",
       dir.file("gen.jsonl") + ":1: generate set 'gen': the example does not end in an assistant reply"},
      {"    - {name: x, kind: essay, task: count}\n", config + ":6: eval.sets[0].kind: unknown kind 'essay'"},
      {"    - {name: x, kind: nll, task: count}\n    - {name: x, kind: choice, task: count}\n",
       config + ":7: eval.sets[1].name: duplicate set name 'x'"},
  };
  for (const auto& c : cases) {
    INFO(c.sets);
    test::write_text(config, base + c.sets);
    const auto r = test::run_masklab("train --config " + config + " --out " + dir.file("run"));
    INFO(r.out);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.out, Catch::Contains("masklab: error: " + c.expected));
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
    CHECK_FALSE(std::filesystem::exists(dir.file("run")));
  }
}

TEST_CASE("tokenizer train on a full temporary disk fails naming the corpus file and the OS error", "[slow][cli][errors]") {
  test::SmallDisk disk(16);
  if (!disk.mounted()) {
    WARN("skipped: mounting a tmpfs needs root");
    return;
  }
  test::TempDir dir;
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "line " + std::to_string(i) + " of the corpus, with some words in it\n";
  test::write_text(dir.file("data.txt"), text);  // ~100 KB: more than the 16 KB disk holds
  const auto r = test::run_shell("TMPDIR=" + disk.path() + " " + MASKLAB_BINARY + " tokenizer train " +
                                 dir.file("data.txt") + " --vocab 64 --out " + dir.file("tok.model"));
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Matches("masklab: error: cannot write " + disk.path() + "/masklab-tok-[0-9]+\\.txt.*: No space left on device\n"));
  CHECK_FALSE(std::filesystem::exists(dir.file("tok.model")));
  CHECK(std::filesystem::is_empty(disk.path()));
}
