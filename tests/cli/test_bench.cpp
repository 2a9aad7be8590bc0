// The benchmark's peers: bench/reference_train.py trains the identical job in
// PyTorch (HF-style batches), bench/trl_peer.py with TRL's SFTTrainer from the
// same Hugging Face checkpoint; both must see the same losses.
#include <catch2/catch.hpp>

#include <filesystem>

#include "harness/core/run_record.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("the PyTorch reference matches masklab's loss over the first 20 steps", "[slow][bench][python][parity]") {
  test::require_python_module("torch", "python3-torch");
  test::TempDir dir;
  const std::string tiny =
      " --set model.n_layers=2 --set model.d_model=32 --set model.n_heads=2 --set model.max_seq_len=96"
      " --set train.batch_size=8 --set train.threads=1 --set data.train_size=100 --set data.eval_size=8";
  const auto bench = test::run_masklab("bench --steps 17 --warmup 3 --strategies completion_only,full,weighted:0.1"
                                       " --set train.grad_accum=2 --export " + dir.file("export") + tiny);
  INFO(bench.out);
  REQUIRE(bench.exit_code == 0);
  CHECK_THAT(bench.out, Catch::Contains("bench cpu"));
  for (const char* strategy : {"completion_only", "full", "weighted_0.1"}) {
    INFO(strategy);
    const std::string sdir = dir.file("export/") + strategy;
    const auto ref = test::run_shell("/usr/bin/python3 " MASKLAB_SOURCE_DIR "/bench/reference_train.py " + sdir +
                                     " --out " + sdir + "/reference.json");
    INFO(ref.out);
    REQUIRE(ref.exit_code == 0);
    const auto mine = read_json_file(sdir + "/masklab.json")["losses"];
    const auto theirs = read_json_file(sdir + "/reference.json")["losses"];
    REQUIRE(mine.size() == 20);
    REQUIRE(theirs.size() == 20);
    for (size_t i = 0; i < 20; ++i) {
      INFO("step " << i << ": masklab " << mine[i].get<double>() << " reference " << theirs[i].get<double>());
      CHECK(std::abs(mine[i].get<double>() - theirs[i].get<double>()) <= 1e-4 * std::abs(theirs[i].get<double>()));
    }
  }
}

TEST_CASE("bench times greedy decoding with and without the KV cache on the same tokens", "[slow][bench][generate]") {
  test::TempDir dir;
  const auto r = test::run_masklab(
      "bench --steps 1 --warmup 0 --strategies full --decode-tokens 20 --json " + dir.file("bench.json") +
      " --set model.n_layers=1 --set model.d_model=32 --set model.n_heads=2 --set model.max_seq_len=96"
      " --set train.batch_size=4 --set train.threads=1 --set data.train_size=16 --set data.eval_size=6");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("decode tokens/s cache="));
  const auto decode = read_json_file(dir.file("bench.json"))["decode"];
  // A batch of 16 held-out prompts (6 per task), no EOS: 20 new tokens each.
  CHECK(decode["prompts"] == 16);
  CHECK(decode["generated_tokens"] == 16 * 20);
  CHECK(decode["cache_tokens_per_second"].get<double>() > 0);
  CHECK(decode["nocache_tokens_per_second"].get<double>() > 0);
  const auto skipped = test::run_masklab("bench --steps 1 --warmup 0 --strategies full --decode-tokens 0 --json " +
                                         dir.file("none.json") + " --set model.n_layers=1 --set model.d_model=32"
                                         " --set model.n_heads=2 --set train.batch_size=4 --set data.train_size=16");
  INFO(skipped.out);
  REQUIRE(skipped.exit_code == 0);
  CHECK_FALSE(read_json_file(dir.file("none.json")).contains("decode"));
}

namespace {

// The python of the benchmark peers' environment, from its one home
// (scripts/python-env.sh --path bench); the test fails naming the build step
// when it is missing.
std::string bench_python() {
  auto r = test::run_shell(MASKLAB_SOURCE_DIR "/scripts/python-env.sh --path bench");
  REQUIRE(r.exit_code == 0);
  const std::string python = r.out.substr(0, r.out.find('\n'));
  if (!std::filesystem::exists(python)) {
    FAIL("missing the PyPI bench environment " + python + ": `make test-deps` (scripts/python-env.sh bench) builds it");
  }
  return python;
}

}  // namespace

TEST_CASE("TRL's SFTTrainer matches masklab's loss over 10 steps from a tiny Llama checkpoint",
          "[slow][bench][python][parity]") {
  const std::string python = bench_python();
  test::TempDir dir;
  // An untied Llama with llama3 RoPE scaling and GQA, weights spread wide so
  // that every part of the forward moves the loss (tests/python/hf_make_checkpoints.py).
  const auto made = test::run_shell(python + " " MASKLAB_SOURCE_DIR "/tests/python/hf_make_checkpoints.py " + dir.file("hf"));
  INFO(made.out);
  REQUIRE(made.exit_code == 0);
  const auto data = test::run_shell(python + " " MASKLAB_SOURCE_DIR "/bench/make_trl_job.py " + dir.file("data") +
                                    " --train 48 --eval 4 --prompt-words 3,12 --completion-words 2,8");
  REQUIRE(data.exit_code == 0);
  const auto bench = test::run_masklab(
      "bench --steps 8 --warmup 2 --decode-tokens 0 --export " + dir.file("export") + " --set model.init_from=" +
      dir.file("hf/llama") + " --set data.tokenizer=byte --set data.train=" + dir.file("data/train.jsonl") +
      " --set data.eval=" + dir.file("data/eval.jsonl") +
      " --set train.batch_size=4 --set train.threads=1 --set train.lr=1e-3 --set train.warmup_steps=1");
  INFO(bench.out);
  REQUIRE(bench.exit_code == 0);
  for (const char* strategy : {"completion_only", "full", "weighted_0.1"}) {
    INFO(strategy);
    const std::string sdir = dir.file("export/") + strategy;
    const auto peer = test::run_shell(python + " " MASKLAB_SOURCE_DIR "/bench/trl_peer.py " + sdir + " --out " + sdir +
                                      "/trl.json --threads 1");
    INFO(peer.out);
    REQUIRE(peer.exit_code == 0);
    const auto mine = read_json_file(sdir + "/masklab.json")["losses"];
    const auto theirs = read_json_file(sdir + "/trl.json")["losses"];
    REQUIRE(mine.size() == 10);
    REQUIRE(theirs.size() == 10);
    for (size_t i = 0; i < 10; ++i) {
      INFO("step " << i << ": masklab " << mine[i].get<double>() << " TRL " << theirs[i].get<double>());
      CHECK(std::abs(mine[i].get<double>() - theirs[i].get<double>()) <= 1e-4 * std::abs(theirs[i].get<double>()));
    }
  }
}
