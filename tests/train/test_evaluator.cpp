// harness/train/evaluator: exact match from the teacher-forced pass agrees
// with real greedy decoding (generate()).
#include <catch2/catch.hpp>

#include "harness/data/tokenizer.hpp"
#include "harness/train/evaluator.hpp"
#include "harness/train/generate.hpp"
#include "harness/train/model.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {
ModelConfig tiny_model() { return test::tiny_config().model; }
}  // namespace

TEST_CASE("exact match from the teacher-forced pass equals real greedy decoding", "[fast][model][eval]") {
  Transformer m(tiny_model(), 259);
  m->initialize(8);
  const auto byte = make_tokenizer("byte");
  DecodeOptions greedy;
  greedy.max_new_tokens = 6;
  for (int k = 0; k < 4; ++k) {
    // Whatever the model decodes greedily becomes the reference: exact match must be 1.
    auto ex = test::byte_example("count " + std::to_string(k) + " to 9", "x");
    ex.ids.resize(ex.completion_begin);
    ex.roles.resize(ex.completion_begin);
    ex.flags.resize(ex.completion_begin);
    const std::vector<std::int32_t> prompt(ex.ids.begin(), ex.ids.end());
    const auto generated = generate(m, {prompt}, {0}, greedy, *byte, torch::kCPU)[0].tokens;
    REQUIRE(generated.size() == 6);
    for (auto id : generated) {
      ex.ids.push_back(id);
      ex.roles.push_back(static_cast<uint8_t>(Role::kAssistant));
      ex.flags.push_back(kFlagLastTurn);
    }
    ex.completion_end = static_cast<int32_t>(ex.ids.size());
    ex.task = 0;
    CHECK(evaluate(m, {&ex}, 1, 256, 8, 64, torch::kCPU).overall.exact_match == 1.0);
    // Change any one reference token and it is no longer a greedy decoding.
    for (int pos = 0; pos < 6; ++pos) {
      auto wrong = ex;
      auto& id = wrong.ids[wrong.completion_begin + pos];
      id = (id + 1) % 256;
      CHECK(evaluate(m, {&wrong}, 1, 256, 8, 64, torch::kCPU).overall.exact_match == 0.0);
    }
  }
}
