// harness/data/tasks: the built-in tasks are deterministic, disjoint from
// their held-out split, and compute correct answers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <set>
#include <unordered_set>

#include "harness/data/tasks.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

std::string prompt_of(const Example& e) { return e.messages.front().content; }

}  // namespace

TEST_CASE("built-in tasks are deterministic, disjoint and sized by train_size", "[fast][data][tasks]") {
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

TEST_CASE("built-in tasks compute correct answers", "[fast][data][tasks]") {
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

namespace {

// The statement's text between `before` and `after` ("kxqm backwards is mqxk." -> "kxqm", "mqxk").
std::pair<std::string, std::string> split_statement(const std::string& text, const std::string& middle) {
  const auto at = text.find(middle);
  REQUIRE(at != std::string::npos);
  REQUIRE(text.back() == '.');
  return {text.substr(0, at), text.substr(at + middle.size(), text.size() - at - middle.size() - 1)};
}

}  // namespace

TEST_CASE("the task world's text states true facts, deterministically, and leaves out excluded prompts",
          "[fast][data][tasks]") {
  for (const auto& info : builtin_tasks()) {
    INFO(info.name);
    const auto a = task_world_text(info.name, 120, 7, {});
    const auto b = task_world_text(info.name, 120, 7, {});
    REQUIRE(a.size() == 120);
    std::set<std::string> prompts;
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].text == b[i].text);
      prompts.insert(a[i].prompt);
    }
    CHECK(prompts.size() == a.size());  // no instance repeats
    // Its own stream: the same seed does not give the fine-tuning examples.
    const auto tasks = generate_task(info.name, 120, 0, 7);
    CHECK(a[0].prompt + a[1].prompt != prompt_of(tasks.train[0]) + prompt_of(tasks.train[1]));
    // Excluded prompts never appear, and the rest still fill the count.
    std::unordered_set<std::string> excluded;
    for (size_t i = 0; i < 60; ++i) excluded.insert(a[i].prompt);
    for (const auto& e : tasks.train) excluded.insert(prompt_of(e));
    const auto c = task_world_text(info.name, 120, 7, excluded);
    REQUIRE(c.size() == 120);
    for (const auto& s : c) CHECK(excluded.count(s.prompt) == 0);
    // Not the prompt's words: the text states the fact another way.
    for (const auto& s : a) CHECK(s.text.find(s.prompt) == std::string::npos);
  }
  CHECK_THAT(test::user_error_of([] { task_world_text("nosuch", 1, 1, {}); }), Catch::Contains("unknown task 'nosuch'"));
}

TEST_CASE("the task world's statements are worked by hand", "[fast][data][tasks]") {
  for (const auto& s : task_world_text("reverse", 40, 3, {})) {
    const auto [word, reversed] = split_statement(s.text, " backwards is ");
    CHECK(std::string(word.rbegin(), word.rend()) == reversed);
    CHECK(s.prompt == "reverse " + word);
  }
  for (const auto& s : task_world_text("sort", 40, 3, {})) {
    auto [word, sorted] = split_statement(s.text, " in order is ");
    std::sort(word.begin(), word.end());
    CHECK(word == sorted);
  }
  for (const auto& s : task_world_text("add", 40, 3, {})) {
    const auto [sum, result] = split_statement(s.text, " makes ");
    const auto plus = sum.find('+');
    CHECK(std::to_string(std::stoi(sum.substr(0, plus)) + std::stoi(sum.substr(plus + 1))) == result);
  }
  for (const auto& s : task_world_text("expand", 40, 3, {})) {
    const auto [code, spelled] = split_statement(s.text, " spelled out is ");
    std::string expected;
    for (size_t i = 0; i + 1 < code.size(); i += 2) expected += std::string(static_cast<size_t>(code[i + 1] - '0'), code[i]);
    CHECK(expected == spelled);
  }
  for (const auto& s : task_world_text("count", 40, 3, {})) {
    int from = 0, to = 0;
    REQUIRE(std::sscanf(s.text.c_str(), "from %d to %d the numbers are", &from, &to) == 2);
    std::string expected;
    for (int i = from; i <= to; ++i) expected += (i > from ? " " : "") + std::to_string(i);
    CHECK(s.text == "from " + std::to_string(from) + " to " + std::to_string(to) + " the numbers are " + expected + ".");
  }
  for (const auto& s : task_world_text("lookup", 40, 3, {})) {
    // "among ab=123 ... the value of cd is 456."
    const auto key_at = s.text.find(" the value of ");
    REQUIRE(key_at != std::string::npos);
    const std::string pairs = s.text.substr(6, key_at - 6 + 1), key = s.text.substr(key_at + 14, 2);
    const std::string value = s.text.substr(s.text.size() - 4, 3);
    CHECK(pairs.find(key + "=" + value + " ") != std::string::npos);
  }
  CHECK(task_world_text("select", 1, 3, {})[0].text.rfind("in ", 0) == 0);
}
