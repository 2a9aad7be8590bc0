// harness/train/choice_eval: multiple choice by summed log-likelihood, as
// lm-evaluation-harness scores it; acc and acc_norm; parity with transformers.
#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness/data/eval_sets.hpp"
#include "harness/train/choice_eval.hpp"
#include "harness/train/model.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("acc_norm divides by the choice's bytes: a hand-checked case where it differs from acc",
          "[fast][choice]") {
  // Raw: -4 > -6, so "ab" wins. Per byte: -4/2 = -2 < -6/6 = -1, so "abcdef" wins.
  const std::vector<double> loglik = {-4.0, -6.0};
  const std::vector<std::string> choices = {"ab", "abcdef"};
  CHECK(argmax_raw(loglik) == 0);
  CHECK(argmax_per_byte(loglik, choices) == 1);
  // UTF-8 bytes, not characters: "é" is 2 bytes, so -3/2 = -1.5 beats -2/1.
  CHECK(argmax_per_byte({-2.0, -3.0}, {"x", "\xC3\xA9"}) == 1);
  // Ties go to the first choice.
  CHECK(argmax_raw({-1.0, -1.0, -2.0}) == 0);
}

TEST_CASE("each choice's log-likelihood is the sum of log-softmax over its tokens", "[fast][choice]") {
  test::TempDir dir;
  test::write_text(dir.file("mc.jsonl"),
                   "{\"prompt\": \"reverse abc\", \"choices\": [\"cba\", \"cab\", \"bca\", \"cbaa\"], \"answer\": 0}\n"
                   "{\"prompt\": \"sort dcb\", \"choices\": [\"bcd\", \"bdc\"], \"answer\": 0}\n");
  Config c = test::tiny_config();
  EvalSetConfig s;
  s.name = "mc";
  s.kind = EvalSetKind::kChoice;
  s.file = dir.file("mc.jsonl");
  c.eval.sets = {s};
  const auto tok = make_tokenizer("byte");
  const auto sets = load_eval_sets(c, *tok);
  Transformer model(c.model, tok->vocab_size());
  model->initialize(3);
  const auto results = score_choices(model, sets[0].worded[0], sets[0].items, tok->pad_id(), /*batch_size=*/2,
                                     /*chunk_size=*/0, torch::kCPU);
  REQUIRE(results.size() == 2);
  model->eval();
  torch::NoGradGuard no_grad;
  for (const auto& r : results) {
    const EvalSetItem& item = sets[0].items[static_cast<size_t>(r.item)];
    REQUIRE(r.loglik.size() == item.choices.size());
    for (size_t k = 0; k < item.choices.size(); ++k) {
      // Independently: the whole sequence through forward and the LM head, log-softmax, the choice's targets.
      const auto ids = test::byte_example(item.prompt, item.choices[k]).ids;  // ends with the end marker
      const int64_t T = static_cast<int64_t>(ids.size()) - 1;                  // without it
      std::vector<int64_t> ids64(ids.begin(), ids.begin() + T);
      const auto input = torch::tensor(ids64).view({1, T});
      const auto hidden = model->forward(input, torch::arange(T).view({1, T}));              // (1, T, C)
      const auto logp = torch::log_softmax(torch::matmul(hidden[0], model->head_weight().t()), -1);  // (T, V)
      const int64_t n = static_cast<int64_t>(item.choices[k].size());  // byte tokenizer: one token a byte
      double expected = 0;
      for (int64_t t = T - n; t < T; ++t) expected += logp[t - 1][ids64[static_cast<size_t>(t)]].item<double>();
      CHECK(r.loglik[k] == Approx(expected).epsilon(1e-5));
    }
    CHECK(r.predicted == argmax_raw(r.loglik));
    CHECK(r.answer == item.answer);
  }
}

TEST_CASE("multiple-choice log-likelihoods equal transformers' on the saved model", "[slow][choice][python]") {
  test::TempDir dir;
  std::string lines;
  for (int i = 0; i < 6; ++i) {
    lines += "{\"prompt\": \"count " + std::to_string(10 * i) + " to " + std::to_string(10 * i + 2) +
             "\", \"choices\": [\"" + std::to_string(10 * i) + " " + std::to_string(10 * i + 1) + "\", \"x\", \"" +
             std::to_string(i) + "\u00e9\"], \"answer\": 0}\n";
  }
  test::write_text(dir.file("mc.jsonl"), lines);
  test::write_text(dir.file("c.yaml"),
                   "model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 96}\n"
                   "train: {steps: 6, batch_size: 8, warmup_steps: 2, threads: 1, device: cpu}\n"
                   "data: {tasks: [count], train_size: 64, eval_size: 8}\n"
                   "eval:\n  sets:\n    - {name: mc, kind: choice, file: " + dir.file("mc.jsonl") + "}\n"
                   "    - {name: rev, kind: choice, task: reverse, max_examples: 6}\n");
  const auto r = test::run_masklab("train --config " + dir.file("c.yaml") + " --out " + dir.file("run") + " --save-model");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  // The script checks the file's set; the built-in set "rev" shows a task's variant scored in the same run.
  const auto ref = test::run_venv_python("choice_loglik_reference.py",
                                         dir.file("run/model") + " " + dir.file("mc.jsonl") + " " +
                                             dir.file("run/eval_examples.jsonl") + " mc");
  INFO(ref.out);
  CHECK(ref.exit_code == 0);
  CHECK_THAT(ref.out, Catch::Contains("\"items\": 6"));
}
