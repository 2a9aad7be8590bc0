// Built-in tasks, JSONL loaders, rendering, roles, truncation, bad data.
#include <catch2/catch.hpp>

#include <set>

#include "harness/data/data.hpp"
#include "harness/core/errors.hpp"
#include "harness/data/tasks.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {


std::string prompt_of(const Example& e) { return e.messages.front().content; }

// The text of the tokens with a given role, byte tokenizer.
std::string text_with_role(const TokenizedExample& ex, Role role) {
  std::string out;
  for (size_t i = 0; i < ex.ids.size(); ++i) {
    if (ex.roles[i] == static_cast<uint8_t>(role) && ex.ids[i] < 256) out += static_cast<char>(ex.ids[i]);
  }
  return out;
}

}  // namespace

TEST_CASE("built-in tasks are deterministic, disjoint and sized by train_size", "[data][tasks]") {
  for (const auto& info : builtin_tasks()) {
    INFO(info.name);
    const auto a = generate_task(info.name, 300, 40, 9);
    const auto b = generate_task(info.name, 300, 40, 9);
    REQUIRE(a.train.size() == 300);
    REQUIRE(a.eval.size() == 40);
    std::set<std::string> train_prompts;
    for (size_t i = 0; i < a.train.size(); ++i) {
      CHECK(prompt_of(a.train[i]) == prompt_of(b.train[i]));
      train_prompts.insert(prompt_of(a.train[i]));
      CHECK(a.train[i].task == info.name);
    }
    for (const auto& e : a.eval) CHECK(train_prompts.count(prompt_of(e)) == 0);
    // The held-out set does not depend on the train size.
    const auto small = generate_task(info.name, 20, 40, 9);
    for (size_t i = 0; i < a.eval.size(); ++i) CHECK(prompt_of(small.eval[i]) == prompt_of(a.eval[i]));
    // Another data seed gives other data.
    const auto other = generate_task(info.name, 300, 40, 10);
    CHECK(prompt_of(other.train[0]) + prompt_of(other.train[1]) != prompt_of(a.train[0]) + prompt_of(a.train[1]));
  }
  CHECK_THAT(test::user_error_of([] { generate_task("nosuch", 1, 1, 1); }), Catch::Contains("unknown task 'nosuch'"));
}

TEST_CASE("built-in tasks compute correct answers", "[data][tasks]") {
  for (const auto& e : generate_task("count", 50, 0, 2).train) {
    int from = 0, to = 0;
    REQUIRE(std::sscanf(prompt_of(e).c_str(), "count %d to %d", &from, &to) == 2);
    std::string expected;
    for (int i = from; i <= to; ++i) expected += (i > from ? " " : "") + std::to_string(i);
    CHECK(expected == e.messages[1].content);
  }
  for (const auto& e : generate_task("add", 50, 0, 2).train) {
    const std::string p = prompt_of(e).substr(4);
    const auto plus = p.find('+');
    CHECK(std::to_string(std::stoi(p.substr(0, plus)) + std::stoi(p.substr(plus + 1))) == e.messages[1].content);
  }
  for (const auto& e : generate_task("reverse", 50, 0, 2).train) {
    const std::string s = prompt_of(e).substr(8);
    CHECK(std::string(s.rbegin(), s.rend()) == e.messages[1].content);
  }
  for (const auto& e : generate_task("lookup", 50, 0, 2).train) {
    const std::string p = prompt_of(e);
    const std::string key = p.substr(p.size() - 2);
    CHECK(p.find(key + "=" + e.messages[1].content + " ") != std::string::npos);
  }
}

TEST_CASE("the plain template gives every token its role", "[data][template]") {
  const auto ex = test::byte_example("add 1+2", "3");
  CHECK(text_with_role(ex, Role::kUser) == "add 1+2");
  CHECK(text_with_role(ex, Role::kTemplate) == "\n=> ");
  CHECK(text_with_role(ex, Role::kAssistant) == "3");
  CHECK(ex.ids.front() == 257);  // <bos>
  CHECK(ex.ids.back() == 258);   // <eos>
  CHECK(ex.roles.back() == static_cast<uint8_t>(Role::kEos));
  // The final completion is "3" + <eos>.
  CHECK(ex.completion_end - ex.completion_begin == 2);
  CHECK(ex.ids[ex.completion_begin] == '3');
}

TEST_CASE("prompt/completion JSONL loads, with tasks and Unicode", "[data][jsonl]") {
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
  CHECK(text_with_role(*t, Role::kAssistant) == "cat 🐱");
  CHECK(text_with_role(*t, Role::kUser) == "translate: 猫");
}

TEST_CASE("malformed data lines name file:line and the reason", "[data][errors]") {
  test::TempDir dir;
  const std::string good = "{\"prompt\": \"a\", \"completion\": \"b\"}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"prompt\": \"a\", \"completion\": \"b\"\n", ":2: invalid JSON"},
      {"{\"prompt\": \"a\"}\n", ":2: missing field 'completion'"},
      {"{\"prompt\": \"a\", \"completion\": \"\"}\n", ":2: empty completion"},
      {"{\"prompt\": 3, \"completion\": \"b\"}\n", ":2: field 'prompt' must be"},
      {"{\"prompt\": \"a\", \"completion\": \"\xff\xfe\"}\n", ":2: invalid UTF-8"},
      {"[1, 2]\n", ":2: each line must be a JSON object"},
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

TEST_CASE("truncation drops prompt tokens from the left, never completion tokens", "[data][truncation]") {
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
  CHECK(text_with_role(*cut, Role::kAssistant) == "answer");
  CHECK(cut->ids.back() == tok->eos_id());
  CHECK(stats.truncated == 1);
  // Too short even for the completion: skipped and counted, not cut.
  CHECK_FALSE(tokenize_example(ex, tmpl, *tok, 8, true, &stats));
  CHECK(stats.skipped_too_long == 1);
  // truncation=skip skips whatever is too long.
  CHECK_FALSE(tokenize_example(ex, tmpl, *tok, 30, false, &stats));
  CHECK(stats.skipped_too_long == 2);
}

TEST_CASE("a dataset from JSONL splits held-out data by a seeded fraction", "[data][jsonl]") {
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
