// harness/train/trainer: whole runs (equivalences, the same job,
// determinism, the run record, divergence, init_from) and gradient
// accumulation through forward_backward.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "harness/core/errors.hpp"
#include "harness/core/hf_config.hpp"
#include "harness/core/run_record.hpp"
#include "harness/train/batching.hpp"
#include "harness/train/model.hpp"
#include "harness/train/run.hpp"
#include "harness/train/trainer.hpp"
#include "strategies/registry.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

struct RunOutput {
  nlohmann::json metrics;
  std::string model_bytes;
  std::string curve;
};

RunOutput run(Config config, const std::string& strategy, const test::TempDir& dir, const std::string& name) {
  config.strategy = strategy;
  const Dataset ds = build_dataset(config);
  TrainOptions options;
  options.out_dir = dir.file(name);
  options.save_model = true;
  RunOutput out;
  out.metrics = train_run(config, ds, options);
  out.model_bytes = test::read_text(dir.file(name + "/model/model.safetensors"));
  out.curve = test::read_text(dir.file(name + "/curve.jsonl"));
  return out;
}

}  // namespace

TEST_CASE("weighted:1 is full and weighted:0 is completion_only, bit for bit", "[fast][trainer][equivalence]") {
  test::TempDir dir;
  const Config config = test::tiny_config();
  const auto full = run(config, "full", dir, "full");
  const auto w1 = run(config, "weighted:1", dir, "w1");
  const auto co = run(config, "completion_only", dir, "co");
  const auto w0 = run(config, "weighted:0", dir, "w0");
  REQUIRE(full.metrics["status"] == "ok");
  CHECK(full.model_bytes == w1.model_bytes);
  CHECK(co.model_bytes == w0.model_bytes);
  CHECK(full.model_bytes != co.model_bytes);
  CHECK(test::comparable_metrics(full.metrics, true) == test::comparable_metrics(w1.metrics, true));
  CHECK(test::comparable_metrics(co.metrics, true) == test::comparable_metrics(w0.metrics, true));
  CHECK(full.curve == w1.curve);
  CHECK(co.curve == w0.curve);
}

TEST_CASE("runs that differ only in strategy are the same job", "[fast][trainer][same-job]") {
  test::TempDir dir;
  Config config = test::tiny_config();
  config.model.dropout = 0.1;
  const auto a = run(config, "full", dir, "a");
  const auto b = run(config, "scheduled:1,0,cosine", dir, "b");
  CHECK(a.metrics["same_job"]["init_hash"] == b.metrics["same_job"]["init_hash"]);
  CHECK(a.metrics["same_job"]["order_hash"] == b.metrics["same_job"]["order_hash"]);
  CHECK(a.metrics["same_job"]["data_fingerprint"] == b.metrics["same_job"]["data_fingerprint"]);
  CHECK(a.metrics["tokens_seen"] == b.metrics["tokens_seen"]);
  CHECK(a.metrics["per_task"]["count"]["examples"] == b.metrics["per_task"]["count"]["examples"]);
  // Another seed is another job.
  config.seed = 2;
  const auto c = run(config, "full", dir, "c");
  CHECK(a.metrics["same_job"]["init_hash"] != c.metrics["same_job"]["init_hash"]);
  CHECK(a.metrics["same_job"]["order_hash"] != c.metrics["same_job"]["order_hash"]);
}

TEST_CASE("the same run twice gives identical numbers", "[fast][trainer][determinism]") {
  test::TempDir dir;
  Config config = test::tiny_config();
  config.model.dropout = 0.1;
  config.train.grad_accum = 2;
  config.loss.normalization = Normalization::kSequence;
  const auto a = run(config, "weighted:0.1", dir, "a");
  const auto b = run(config, "weighted:0.1", dir, "b");
  CHECK(test::comparable_metrics(a.metrics, false) == test::comparable_metrics(b.metrics, false));
  CHECK(a.model_bytes == b.model_bytes);
  CHECK(a.curve == b.curve);
}

TEST_CASE("the run record holds every key the reports rely on", "[fast][trainer][record]") {
  test::TempDir dir;
  const auto r = run(test::tiny_config(), "weighted:0.1", dir, "r");
  const auto& m = r.metrics;
  for (const char* key : {"status", "strategy", "seed", "steps", "tokens_trained", "wall_seconds", "eval.completion_nll",
                          "eval.completion_ppl", "eval.completion_token_accuracy", "eval.exact_match", "eval.prompt_nll",
                          "train.completion_nll", "per_task.count.exact_match", "per_task.lookup.completion_nll",
                          "provenance.git_sha", "provenance.libtorch_version", "provenance.device", "provenance.threads",
                          "provenance.start_time", "provenance.end_time", "provenance.masklab_version"}) {
    INFO(key);
    CHECK_FALSE(lookup_dotted(m, key).is_null());
  }
  CHECK(m["status"] == "ok");
  CHECK(m["strategy"] == "weighted:0.1");
  CHECK(m["steps"] == 8);
  // Curve: one point at step 0, every eval_every steps, and at the end.
  const std::string curve = r.curve;
  CHECK(std::count(curve.begin(), curve.end(), '\n') == 3);
  CHECK(std::filesystem::exists(dir.file("r/config.yaml")));
  CHECK(std::filesystem::exists(dir.file("r/samples.jsonl")));
  // tokens_trained counts weighted positions: all of them under weighted:0.1.
  CHECK(m["tokens_trained"].get<long>() == m["tokens_seen"].get<long>());
}

TEST_CASE("a diverging run is recorded as diverged, not crashed", "[fast][trainer][divergence]") {
  test::TempDir dir;
  Config config = test::tiny_config();
  config.train.lr = 1e30;
  config.train.grad_clip = 0;
  config.train.warmup_steps = 0;
  config.train.steps = 20;
  const auto r = run(config, "full", dir, "d");
  CHECK(r.metrics["status"] == "diverged");
  CHECK(r.metrics["steps"].get<int>() < 20);
  CHECK_THAT(r.metrics["error"].get<std::string>(), Catch::Contains("non-finite loss"));
}

TEST_CASE("a curve write that fails (disk full) records the run failed, naming curve.jsonl and the OS error",
          "[fast][trainer][errors]") {
  test::TempDir dir;
  Config config = test::tiny_config();
  config.train.steps = 4;
  config.train.eval_every = 2;
  // Every write to curve.jsonl fails with ENOSPC, as on a full disk.
  std::filesystem::create_directories(dir.file("full"));
  std::filesystem::create_symlink("/dev/full", dir.file("full/curve.jsonl"));
  const Dataset ds = build_dataset(config);
  TrainOptions options;
  options.out_dir = dir.file("full");
  const auto metrics = train_run(config, ds, options);
  CHECK(metrics["status"] == "failed");
  CHECK_THAT(metrics["error"].get<std::string>(),
             Catch::Contains("cannot write " + dir.file("full/curve.jsonl")) && Catch::Contains(std::strerror(ENOSPC)));
  CHECK(read_json_file(dir.file("full/metrics.json"))["status"] == "failed");
}

TEST_CASE("model.init_from starts every strategy from the same saved base", "[fast][trainer][init-from]") {
  test::TempDir dir;
  Config config = test::tiny_config();
  const auto base = run(config, "full", dir, "base");
  apply_value(config, "model.init_from", dir.file("base/model"), "test");
  resolve_init_from(config);  // as the CLI does: model.* from the folder's config.json
  config.train.steps = 0;
  const auto a = run(config, "completion_only", dir, "a");
  CHECK(a.model_bytes == base.model_bytes);  // 0 steps: the weights are the base's
  CHECK(a.metrics["same_job"]["init_hash"] != base.metrics["same_job"]["init_hash"]);
}

TEST_CASE("accumulating 4 micro-batches of B equals one batch of 4B", "[fast][loss][accumulation]") {
  Config config = test::tiny_config();
  const Dataset ds = build_dataset(config);
  std::vector<const TokenizedExample*> examples;
  for (int i = 0; i < 16; ++i) examples.push_back(&ds.train[i * 3]);
  const auto strategy = make_strategy("weighted:0.3");
  const int pad = ds.tokenizer->pad_id();

  for (auto norm : {Normalization::kWeightSum, Normalization::kTokenCount, Normalization::kSequence}) {
    for (bool packed : {false, true}) {
      INFO("normalization " << static_cast<int>(norm) << " packed " << packed);
      auto batch_of = [&](size_t from, size_t n) {
        std::vector<const TokenizedExample*> part(examples.begin() + from, examples.begin() + from + n);
        return packed ? make_packed_batch(part, pad, config.model.max_seq_len) : make_padded_batch(part, pad);
      };
      auto grads_for = [&](const std::vector<Batch>& micro) {
        Transformer model(config.model, ds.tokenizer->vocab_size());
        model->initialize(7);
        const auto out = forward_backward(model, micro, *strategy, norm, 0.0, 64, torch::kCPU);
        std::vector<torch::Tensor> grads;
        for (auto& p : model->parameters()) grads.push_back(p.grad().clone());
        return std::make_pair(out.loss.item<double>(), grads);
      };
      const auto [loss_one, grads_one] = grads_for({batch_of(0, 16)});
      const auto [loss_acc, grads_acc] = grads_for({batch_of(0, 4), batch_of(4, 4), batch_of(8, 4), batch_of(12, 4)});
      CHECK(std::abs(loss_one - loss_acc) < 1e-6);
      double max_diff = 0;
      for (size_t i = 0; i < grads_one.size(); ++i) {
        max_diff = std::max(max_diff, (grads_one[i] - grads_acc[i]).abs().max().item<double>());
      }
      CHECK(max_diff < 1e-6);
    }
  }
}
