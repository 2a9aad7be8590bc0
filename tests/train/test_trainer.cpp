// Whole runs: equivalences, the same job, determinism, divergence, the CLI.
#include <catch2/catch.hpp>

#include <filesystem>

#include "harness/core/errors.hpp"
#include "harness/core/run_record.hpp"
#include "harness/train/run.hpp"
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
  out.model_bytes = test::read_text(dir.file(name + "/model.pt"));
  out.curve = test::read_text(dir.file(name + "/curve.jsonl"));
  return out;
}

}  // namespace

TEST_CASE("weighted:1 is full and weighted:0 is completion_only, bit for bit", "[trainer][equivalence]") {
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

TEST_CASE("runs that differ only in strategy are the same job", "[trainer][same-job]") {
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

TEST_CASE("the same run twice gives identical numbers", "[trainer][determinism]") {
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

TEST_CASE("the run record holds every key the reports rely on", "[trainer][record]") {
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

TEST_CASE("a diverging run is recorded as diverged, not crashed", "[trainer][divergence]") {
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

TEST_CASE("model.init_from starts every strategy from the same saved base", "[trainer][init-from]") {
  test::TempDir dir;
  Config config = test::tiny_config();
  const auto base = run(config, "full", dir, "base");
  config.model.init_from = dir.file("base/model.pt");
  config.train.steps = 0;
  const auto a = run(config, "completion_only", dir, "a");
  CHECK(a.model_bytes == base.model_bytes);  // 0 steps: the weights are the base's
  CHECK(a.metrics["same_job"]["init_hash"] != base.metrics["same_job"]["init_hash"]);
}

TEST_CASE("the CLI: bad input gives one line and exit status 2", "[cli][errors]") {
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
  one_line_error(test::run_masklab("train --strategy full"), "--out");
  one_line_error(test::run_masklab("frobnicate"), "unknown command 'frobnicate'");
  CHECK_FALSE(std::filesystem::exists(dir.file("x/metrics.json")));
}

TEST_CASE("the CLI lists strategies and answers --help everywhere", "[cli]") {
  const auto list = test::run_masklab("strategies");
  CHECK(list.exit_code == 0);
  for (const char* name : {"full", "completion_only", "weighted:<lambda>", "wit:<lambda_p>,<lambda_r>",
                           "scheduled:<start>,<end>[,linear|cosine]", "last_turn_only"}) {
    CHECK_THAT(list.out, Catch::Contains(name));
  }
  for (const char* cmd : {"train", "strategies", "tasks", "config"}) {
    INFO(cmd);
    const auto help = test::run_masklab(std::string(cmd) + " --help");
    CHECK(help.exit_code == 0);
    CHECK_THAT(help.out, Catch::Contains("usage: masklab " + std::string(cmd)));
  }
}

TEST_CASE("the equivalences hold through the CLI", "[cli][equivalence]") {
  test::TempDir dir;
  const std::string common =
      " --seed 3 --set model.n_layers=1 --set model.d_model=32 --set model.n_heads=2 --set train.steps=4"
      " --set data.train_size=32 --set data.eval_size=8 --set data.tasks=add --set train.threads=1 --save-model";
  REQUIRE(test::run_masklab("train --strategy full --out " + dir.file("full") + common).exit_code == 0);
  REQUIRE(test::run_masklab("train --strategy weighted:1 --out " + dir.file("w1") + common).exit_code == 0);
  CHECK(test::read_text(dir.file("full/model.pt")) == test::read_text(dir.file("w1/model.pt")));
  auto m1 = test::comparable_metrics(read_json_file(dir.file("full/metrics.json")), true);
  auto m2 = test::comparable_metrics(read_json_file(dir.file("w1/metrics.json")), true);
  CHECK(m1 == m2);
}
