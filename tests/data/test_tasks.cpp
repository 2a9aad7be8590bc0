// harness/data/tasks: the built-in tasks are deterministic, disjoint from
// their held-out split, and compute correct answers.
#include <catch2/catch.hpp>

#include <cstdio>
#include <set>

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
