// harness/data/eval_sets and the built-in tasks' choice variants
// (harness/data/tasks.cpp task_choice_variant): set files, wordings, the
// tokens a choice is scored on, and the errors of bad sets.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "harness/core/errors.hpp"
#include "harness/data/eval_sets.hpp"
#include "harness/data/tasks.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

EvalSetConfig set_of(const std::string& name, EvalSetKind kind, const std::string& task, const std::string& file) {
  EvalSetConfig s;
  s.name = name;
  s.kind = kind;
  s.task = task;
  s.file = file;
  s.origin = "exp.yaml:9";
  return s;
}

std::vector<EvalSet> load(const std::vector<EvalSetConfig>& sets) {
  Config c = test::tiny_config();
  c.eval.sets = sets;
  return load_eval_sets(c, *make_tokenizer("byte"));
}

// True when `b` is `a` with exactly one pair of adjacent, different letters swapped.
bool one_adjacent_swap(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    std::string t = a;
    std::swap(t[i], t[i + 1]);
    if (t == b && t != a) return true;
  }
  return false;
}

size_t distinct_swaps(const std::string& a) {
  std::set<std::string> out;
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    std::string t = a;
    std::swap(t[i], t[i + 1]);
    if (t != a) out.insert(t);
  }
  return out.size();
}

}  // namespace

TEST_CASE("built-in choice variants: the answer once among distinct near misses, deterministic from the seed",
          "[fast][eval-sets][tasks]") {
  for (const auto& info : builtin_tasks()) {
    INFO(info.name);
    const auto held_out = generate_task(info.name, 10, 64, 7).eval;
    std::vector<int> at(4, 0);
    int moved_by_seed = 0;
    for (const auto& ex : held_out) {
      const std::string& prompt = ex.messages[0].content;
      const std::string& answer = ex.messages[1].content;
      const ChoiceVariant v = task_choice_variant(info.name, prompt, answer, 7);
      REQUIRE(v.choices.size() == 4);
      CHECK(v.choices[static_cast<size_t>(v.answer)] == answer);
      CHECK(std::count(v.choices.begin(), v.choices.end(), answer) == 1);
      CHECK(std::set<std::string>(v.choices.begin(), v.choices.end()).size() == 4);
      const ChoiceVariant again = task_choice_variant(info.name, prompt, answer, 7);
      CHECK(again.choices == v.choices);
      CHECK(again.answer == v.answer);
      moved_by_seed += task_choice_variant(info.name, prompt, answer, 8).answer != v.answer;
      ++at[static_cast<size_t>(v.answer)];
      for (size_t c = 0; c < 4; ++c) {
        if (static_cast<int>(c) == v.answer) continue;
        const std::string& d = v.choices[c];
        // The near misses, checked against each task's definition.
        if (info.name == "reverse" && distinct_swaps(answer) >= 3) CHECK(one_adjacent_swap(answer, d));
        if (info.name == "sort") {
          std::string letters = d;
          std::sort(letters.begin(), letters.end());
          CHECK((letters == answer || d.substr(0, answer.size()) == answer));
        }
        if (info.name == "lookup") CHECK(prompt.find("=" + d + " ") != std::string::npos);
        if (info.name == "select") CHECK(prompt.find(" " + d) != std::string::npos);
      }
    }
    // The answer's position is drawn: every position occurs, and another seed moves some.
    for (int n : at) CHECK(n > 0);
    CHECK(moved_by_seed > 0);
  }
}

TEST_CASE("a wording rewrites the user prompt, and wording 1's text reaches the tokens", "[fast][eval-sets]") {
  EvalSetConfig s = set_of("rev", EvalSetKind::kNll, "reverse", "");
  s.wordings = {"{prompt}", "Question: {prompt}\nAnswer:"};
  const auto sets = load({s});
  REQUIRE(sets.size() == 1);
  const EvalSet& set = sets[0];
  REQUIRE(set.worded.size() == 2);
  // The set's items are the task's held-out examples, in order.
  const auto held_out = generate_task("reverse", 64, 8, 1234).eval;
  REQUIRE(set.items.size() == held_out.size());
  for (size_t i = 0; i < held_out.size(); ++i) {
    CHECK(set.items[i].id == static_cast<std::int64_t>(i));
    CHECK(set.items[i].prompt == held_out[i].messages[0].content);
    CHECK(set.items[i].reference == held_out[i].messages[1].content);
  }
  const std::string prompt = held_out[0].messages[0].content;
  CHECK(test::text_with_role(set.worded[0].tokens[0], Role::kUser) == prompt);
  CHECK(test::text_with_role(set.worded[1].tokens[0], Role::kUser) == "Question: " + prompt + "\nAnswer:");
  // The tokens are those of the worded example under the plain template, as training would tokenize it.
  CHECK(set.worded[1].tokens[0].ids ==
        test::byte_example("Question: " + prompt + "\nAnswer:", held_out[0].messages[1].content).ids);
  CHECK(test::text_with_role(set.worded[1].tokens[0], Role::kAssistant) == held_out[0].messages[1].content);

  Example two;
  two.messages = {{Role::kUser, "a", "", true}, {Role::kAssistant, "b", "", true}, {Role::kUser, "c", "", true}};
  const Example worded = apply_wording(two, "<{prompt}|{prompt}>");
  CHECK(worded.messages[0].content == "a");
  CHECK(worded.messages[2].content == "<c|c>");
}

TEST_CASE("a choice is scored on the completion's tokens, cut before the end marker", "[fast][eval-sets][choice]") {
  test::TempDir dir;
  test::write_text(dir.file("mc.jsonl"),
                   "{\"prompt\": \"capital of France?\", \"choices\": [\"Paris\", \"Lyon\", \"Nice\"], \"answer\": 0}\n"
                   "\n"
                   "{\"prompt\": \"2+2\", \"choices\": [\"3\", \"4\"], \"answer\": 1, \"task\": \"math\"}\n");
  const auto sets = load({set_of("mc", EvalSetKind::kChoice, "", dir.file("mc.jsonl"))});
  const EvalSet& set = sets.at(0);
  REQUIRE(set.items.size() == 2);
  CHECK(set.items[0].task == "mc");
  CHECK(set.items[1].task == "math");
  CHECK(set.items[1].reference == "4");
  const WordedSet& w = set.worded.at(0);
  REQUIRE(w.tokens.size() == 5);
  CHECK(w.item == std::vector<std::int32_t>{0, 0, 0, 1, 1});
  CHECK(w.choice == std::vector<std::int32_t>{0, 1, 2, 0, 1});
  for (size_t k = 0; k < w.tokens.size(); ++k) {
    const EvalSetItem& item = set.items[static_cast<size_t>(w.item[k])];
    const std::string& choice = item.choices[static_cast<size_t>(w.choice[k])];
    // Training's tokens of (prompt, choice) under the plain template, without the end marker.
    auto full = test::byte_example(item.prompt, choice).ids;
    REQUIRE(full.size() == w.tokens[k].ids.size() + 1);
    full.pop_back();
    CHECK(w.tokens[k].ids == full);
    CHECK(test::text_with_role(w.tokens[k], Role::kAssistant) == choice);
    CHECK(test::text_with_role(w.tokens[k], Role::kEos).empty());
    CHECK(w.tokens[k].completion_end == static_cast<std::int32_t>(w.tokens[k].ids.size()));
  }
}

TEST_CASE("bad evaluation set files fail with one line naming file:line", "[fast][eval-sets][errors]") {
  test::TempDir dir;
  auto error_of = [&](EvalSetKind kind, const std::string& lines) {
    test::write_text(dir.file("s.jsonl"), lines);
    return test::user_error_of([&] { load({set_of("s", kind, "", dir.file("s.jsonl"))}); });
  };
  const std::string ok = "{\"prompt\": \"p\", \"choices\": [\"a\", \"b\"], \"answer\": 1}\n";
  const std::string at2 = dir.file("s.jsonl") + ":2: ";
  CHECK(error_of(EvalSetKind::kChoice, ok + "{\"prompt\": \"p\", \"choices\": [\"a\", \"b\"], \"answer\": 2}\n") ==
        at2 + "answer 2 is out of range: 2 choices (0 to 1)");
  CHECK(error_of(EvalSetKind::kChoice, ok + "{\"prompt\": \"p\", \"choices\": [], \"answer\": 0}\n") ==
        at2 + "empty choices list");
  CHECK(error_of(EvalSetKind::kChoice, ok + "{\"prompt\": \"p\", \"choices\": [\"a\", 3], \"answer\": 0}\n") ==
        at2 + "choices[1] is not a string");
  CHECK(error_of(EvalSetKind::kChoice, ok + "{\"prompt\": \"p\", \"choices\": [\"a\"], \"answer\": -1}\n") ==
        at2 + "answer -1 is out of range: 1 choices (0 to 0)");
  CHECK(error_of(EvalSetKind::kChoice, ok + "{\"prompt\": \"p\", \"choices\": [\"a\"]}\n") ==
        at2 + "field 'answer' must be an integer");
  const std::string chat_ending_in_user =
      "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}, "
      "{\"role\": \"user\", \"content\": \"and?\"}]}\n";
  const std::string chat = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n";
  CHECK(error_of(EvalSetKind::kGenerate, chat + chat_ending_in_user) ==
        at2 + "generate set 's': the example does not end in an assistant reply: no reference to score against");
  CHECK_THAT(error_of(EvalSetKind::kGenerate, "{\"prompt\": \"p\", \"completion\": \"\"}\n"),
             Catch::StartsWith(dir.file("s.jsonl") + ":1: empty completion"));
  CHECK(test::user_error_of([&] { load({set_of("t", EvalSetKind::kNll, "revers", "")}); }) ==
        "exp.yaml:9: eval.sets 't'.task: unknown task 'revers' (valid: lookup, select, count, expand, reverse, sort, add, all)");
  CHECK_THAT(test::user_error_of([&] { load({set_of("t", EvalSetKind::kNll, "", dir.file("none.jsonl"))}); }),
             Catch::Contains("none.jsonl: cannot read"));
}
