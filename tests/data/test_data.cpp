// harness/data/data: the JSONL formats (prompt/completion, chat, Alpaca,
// text) load with their roles and weights, bad lines name file:line,
// truncation keeps the completion, datasets split by a seeded fraction.
#include <catch2/catch.hpp>

#include "harness/core/errors.hpp"
#include "harness/data/data.hpp"
#include "harness/train/batching.hpp"
#include "strategies/labels.hpp"
#include "strategies/registry.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("prompt/completion JSONL loads, with tasks and Unicode", "[fast][data][jsonl]") {
  test::TempDir dir;
  test::write_text(dir.file("d.jsonl"),
                   "{\"prompt\": \"translate: 猫\", \"completion\": \"cat 🐱\"}\n"
                   "\n"
                   "{\"prompt\": \"hi\", \"completion\": \" there\", \"task\": \"greet\"}\n");
  LoadStats stats;
  DataFormat detected;
  const auto examples = load_jsonl(dir.file("d.jsonl"), DataFormat::kAuto, false, "d", &stats, &detected);
  REQUIRE(examples.size() == 2);
  CHECK(detected == DataFormat::kPromptCompletion);
  CHECK(examples[0].task == "d");
  CHECK(examples[1].task == "greet");
  CHECK(examples[0].messages[1].content == "cat 🐱");
  CHECK(examples[0].origin == dir.file("d.jsonl") + ":1");
  const auto tok = make_tokenizer("byte");
  TokenizeStats ts;
  const auto t = tokenize_example(examples[0], load_template("plain"), *tok, 128, true, &ts);
  REQUIRE(t);
  CHECK(test::text_with_role(*t, Role::kAssistant) == "cat 🐱");
  CHECK(test::text_with_role(*t, Role::kUser) == "translate: 猫");
}

TEST_CASE("malformed data lines name file:line and the reason", "[fast][data][errors]") {
  test::TempDir dir;
  const std::string good = "{\"prompt\": \"a\", \"completion\": \"b\"}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"prompt\": \"a\", \"completion\": \"b\"\n", ":2: invalid JSON"},
      {"{\"prompt\": \"a\"}\n", ":2: missing field 'completion'"},
      {"{\"prompt\": \"a\", \"completion\": \"\"}\n", ":2: empty completion"},
      {"{\"prompt\": 3, \"completion\": \"b\"}\n", ":2: field 'prompt' must be"},
      {"{\"prompt\": \"a\", \"completion\": \"\xff\xfe\"}\n", ":2: invalid UTF-8"},
      {"[1, 2]\n", ":2: each line must be a JSON object"},
      {"{\"prompt\": \"a\", \"completion\": \"b\", \"task\": \"a.b\"}\n", ":2: task name 'a.b' must not contain '.'"},
  };
  for (const auto& [line, expected] : cases) {
    INFO(line);
    test::write_text(dir.file("bad.jsonl"), good + line);
    const std::string msg = test::user_error_of([&] { load_jsonl(dir.file("bad.jsonl"), DataFormat::kAuto, false, "x", nullptr); });
    CHECK_THAT(msg, Catch::Contains(dir.file("bad.jsonl") + expected));
    // --skip-invalid drops and counts the line instead.
    LoadStats stats;
    const auto kept = load_jsonl(dir.file("bad.jsonl"), DataFormat::kAuto, true, "x", &stats);
    CHECK(kept.size() == 1);
    CHECK(stats.invalid_skipped == 1);
  }
  test::write_text(dir.file("empty.jsonl"), "\n\n");
  CHECK_THAT(test::user_error_of([&] { load_jsonl(dir.file("empty.jsonl"), DataFormat::kAuto, false, "x", nullptr); }),
             Catch::Contains("empty.jsonl:1: empty file"));
  CHECK_THAT(test::user_error_of([&] { load_jsonl(dir.file("missing.jsonl"), DataFormat::kAuto, false, "x", nullptr); }),
             Catch::Contains("missing.jsonl: cannot read"));
}

TEST_CASE("truncation drops prompt tokens from the left, never completion tokens", "[fast][data][truncation]") {
  Example ex;
  ex.messages = {{Role::kUser, std::string(50, 'p'), "", true}, {Role::kAssistant, "answer", "", true}};
  const auto tok = make_tokenizer("byte");
  const auto tmpl = load_template("plain");
  TokenizeStats stats;
  const auto full = tokenize_example(ex, tmpl, *tok, 1000, true, &stats);
  REQUIRE(full);
  const auto cut = tokenize_example(ex, tmpl, *tok, 30, true, &stats);
  REQUIRE(cut);
  CHECK(cut->ids.size() == 30);
  CHECK(cut->ids.front() == tok->bos_id());  // <bos> kept
  CHECK(test::text_with_role(*cut, Role::kAssistant) == "answer");
  CHECK(cut->ids.back() == tok->eos_id());
  CHECK(stats.truncated == 1);
  // Too short even for the completion: skipped and counted, not cut.
  CHECK_FALSE(tokenize_example(ex, tmpl, *tok, 8, true, &stats));
  CHECK(stats.skipped_too_long == 1);
  // truncation=skip skips whatever is too long.
  CHECK_FALSE(tokenize_example(ex, tmpl, *tok, 30, false, &stats));
  CHECK(stats.skipped_too_long == 2);
}

TEST_CASE("a dataset from JSONL splits held-out data by a seeded fraction", "[fast][data][jsonl]") {
  test::TempDir dir;
  std::string lines;
  for (int i = 0; i < 40; ++i) lines += "{\"prompt\": \"q" + std::to_string(i) + "\", \"completion\": \"a\"}\n";
  test::write_text(dir.file("train.jsonl"), lines);
  Config c = test::tiny_config();
  c.data.train = dir.file("train.jsonl");
  c.data.eval_fraction = 0.25;
  const Dataset a = build_dataset(c);
  const Dataset b = build_dataset(c);
  CHECK(a.train.size() == 30);
  CHECK(a.eval.size() == 10);
  CHECK(a.fingerprint == b.fingerprint);
  CHECK(a.tasks == std::vector<std::string>{"train"});
  c.data.seed += 1;
  CHECK(build_dataset(c).fingerprint != a.fingerprint);
}

TEST_CASE("chat JSONL: multi-turn, system, Unicode, chatml roles", "[fast][formats][chat]") {
  test::TempDir dir;
  test::write_text(dir.file("chat.jsonl"), test::kThreeTurns);
  DataFormat detected;
  const auto examples = load_jsonl(dir.file("chat.jsonl"), DataFormat::kAuto, false, "chat", nullptr, &detected);
  CHECK(detected == DataFormat::kChat);
  REQUIRE(examples[0].messages.size() == 7);
  const auto ex = test::tokenize(examples[0], "chatml");
  // completion_only trains every assistant turn and its end marker; nothing else.
  CHECK(test::trained_text(ex, "completion_only") == "A1<|im_end|>A2 🙂<|im_end|>A3<|im_end|>");
  CHECK(test::trained_text(ex, "last_turn_only") == "A3<|im_end|>");
  CHECK(test::trained_text(ex, "completion_only:eos=last") == "A1A2 🙂A3<|im_end|>");
  // The final completion for exact match is the last turn and its end marker.
  std::string completion(ex.ids.begin() + ex.completion_begin, ex.ids.begin() + ex.completion_end);
  CHECK(completion == "A3<|im_end|>");
  // weighted with its own system weight: system text weighs 0, user text 0.5.
  const Batch b = make_padded_batch({&ex}, 256);
  const auto w = make_strategy("weighted:0.5,system=0")->weights(LabelView{b.label_role, b.label_flags, 0})[0];
  for (int64_t t = 0; t < w.size(0); ++t) {
    const auto role = static_cast<Role>(ex.roles[t + 1]);
    if (role == Role::kSystem) CHECK(w[t].item<float>() == 0.0f);
    if (role == Role::kUser) CHECK(w[t].item<float>() == 0.5f);
  }
}

TEST_CASE("a per-message weight of 0 is honoured", "[fast][formats][chat]") {
  test::TempDir dir;
  test::write_text(dir.file("w.jsonl"),
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"q1\"}, {\"role\": \"assistant\", \"content\": \"bad\", \"weight\": 0},"
                   " {\"role\": \"user\", \"content\": \"q2\"}, {\"role\": \"assistant\", \"content\": \"good\", \"weight\": 1}]}\n");
  const auto ex = test::tokenize(load_jsonl(dir.file("w.jsonl"), DataFormat::kAuto, false, "w", nullptr)[0], "chatml");
  CHECK(test::trained_text(ex, "completion_only") == "good<|im_end|>");
  CHECK(test::trained_text(ex, "full").find("bad") == std::string::npos);
}

TEST_CASE("prompt/completion as message lists, and plain text", "[fast][formats]") {
  test::TempDir dir;
  test::write_text(dir.file("pc.jsonl"),
                   "{\"prompt\": [{\"role\": \"user\", \"content\": \"2+2?\"}], \"completion\": [{\"role\": \"assistant\", \"content\": \"4\"}]}\n");
  const auto pc = test::tokenize(load_jsonl(dir.file("pc.jsonl"), DataFormat::kAuto, false, "pc", nullptr)[0], "plain");
  CHECK(test::trained_text(pc, "completion_only") == "4<eos>");
  test::write_text(dir.file("t.jsonl"), "{\"text\": \"every token 字\"}\n");
  DataFormat detected;
  const auto text = test::tokenize(load_jsonl(dir.file("t.jsonl"), DataFormat::kAuto, false, "t", nullptr, &detected)[0], "chatml");
  CHECK(detected == DataFormat::kText);
  CHECK(test::trained_text(text, "completion_only") == "every token 字<eos>");
  CHECK(test::trained_text(text, "full") == "every token 字<eos>");
}

TEST_CASE("bad chat data gives file:line and the reason", "[fast][formats][errors]") {
  test::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"y\"}]}", ":1: messages[0]: unknown role 'robot'"},
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"  \"}]}", ":1: empty completion"},
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", ":1: no assistant message"},
      {"{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\", \"content\": \"y\"}]}", ":1: missing field 'content'"},
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"y\", \"weight\": 2}]}", "weight must be 0 or 1"},
      {"{\"instruction\": \"x\", \"output\": \"\"}", ":1: empty completion"},
      {"{\"text\": \"\"}", ":1: empty text"},
      {"{\"foo\": 1}", ":1: unknown format"},
  };
  for (const auto& [line, expected] : cases) {
    INFO(line);
    test::write_text(dir.file("bad.jsonl"), line + "\n");
    const std::string msg = test::user_error_of([&] { load_jsonl(dir.file("bad.jsonl"), DataFormat::kAuto, false, "x", nullptr); });
    CHECK_THAT(msg, Catch::StartsWith(dir.file("bad.jsonl") + ":1: ") && Catch::Contains(expected));
  }
}

TEST_CASE("a data file's stem names its task with dots made '_'", "[fast][data][jsonl]") {
  test::TempDir dir;
  std::string lines;
  for (int i = 0; i < 8; ++i) lines += "{\"prompt\": \"q" + std::to_string(i) + "\", \"completion\": \"a\"}\n";
  test::write_text(dir.file("x.train.jsonl"), lines);
  Config c = test::tiny_config();
  c.data.train = dir.file("x.train.jsonl");
  c.data.eval_fraction = 0.25;
  CHECK(build_dataset(c).tasks == std::vector<std::string>{"x_train"});
}

TEST_CASE("a dataset with no trainable completion token is an error naming the file", "[fast][data][errors]") {
  test::TempDir dir;
  const std::string masked =
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\", \"weight\": 0}]}\n";
  const std::string trained =
      "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n";
  std::string all_masked;
  for (int i = 0; i < 8; ++i) all_masked += masked;
  test::write_text(dir.file("masked.jsonl"), all_masked);
  test::write_text(dir.file("eval.jsonl"), trained + trained);
  Config c = test::tiny_config();
  c.data.train = dir.file("masked.jsonl");
  c.data.eval = dir.file("eval.jsonl");  // trainable held-out data does not count
  c.data.template_name = "chatml";
  const std::string msg = test::user_error_of([&] { build_dataset(c); });
  CHECK(msg == dir.file("masked.jsonl") +
                   ": no example has a completion token to train on (every assistant message has weight 0?)");
  // One trainable example among them is enough.
  test::write_text(dir.file("masked.jsonl"), all_masked + trained);
  CHECK_NOTHROW(build_dataset(c));
}

TEST_CASE("a number too large for a double is a malformed line, not a crash", "[fast][data][errors]") {
  test::TempDir dir;
  test::write_text(dir.file("big.jsonl"), "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \"completion\": \"b\", \"n\": 1e400}\n");
  CHECK(test::user_error_of([&] { load_jsonl(dir.file("big.jsonl"), DataFormat::kAuto, false, "x", nullptr); }) ==
        dir.file("big.jsonl") + ":2: invalid JSON: number overflow parsing '1e400'");
  LoadStats stats;
  CHECK(load_jsonl(dir.file("big.jsonl"), DataFormat::kAuto, true, "x", &stats).size() == 1);
  CHECK(stats.invalid_skipped == 1);
}
