// harness/train/checkpoint: Hugging Face folders in and out. The parity of
// loaded models with transformers is in tests/cli/test_score.cpp; here: the
// round trip of every layout, every bad checkpoint's one-line error, the
// first step's loss against transformers, and --save-model's folder.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "harness/core/errors.hpp"
#include "harness/core/hashing.hpp"
#include "harness/core/hf_config.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/train/checkpoint.hpp"
#include "harness/train/model.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

ModelConfig small_model() {
  ModelConfig m = test::tiny_config().model;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  return m;
}

// A folder saved by masklab from a random model of `m`'s shape.
void save_random(const ModelConfig& m, const std::string& dir, std::uint64_t seed = 1, int vocab = 300) {
  Transformer t(m, vocab);
  t->initialize(seed);
  save_hf_model(*t, dir, 257, 258);
}

// Loads `dir` the way a run does: resolve config.json, build, load.
Transformer load_dir(const std::string& dir, const std::vector<std::string>& sets = {}) {
  Config c;
  apply_value(c, "model.init_from", dir, "test");
  for (const auto& s : sets) apply_override(c, s);
  resolve_init_from(c);
  validate(c);
  Transformer t(c.model, c.model.vocab_size);
  t->initialize(99);
  load_parameters(*t, dir);
  return t;
}

// Rewrites DIR/model.safetensors through `edit` (name -> tensor bytes).
struct Stored {
  TensorDtype dtype;
  std::vector<std::int64_t> shape;
  std::string bytes;
};
void rewrite(const std::string& dir, const std::function<void(std::map<std::string, Stored>&)>& edit) {
  std::map<std::string, Stored> tensors;
  {
    SafetensorsFile f(dir + "/model.safetensors");
    for (const auto& [name, t] : f.tensors()) {
      tensors[name] = {t.dtype, t.shape, std::string(reinterpret_cast<const char*>(t.data), t.size)};
    }
  }
  edit(tensors);
  std::vector<TensorToWrite> out;
  for (const auto& [name, t] : tensors) out.push_back({name, t.dtype, t.shape, t.bytes.data()});
  write_safetensors(dir + "/model.safetensors", out);
}

}  // namespace

TEST_CASE("every layout saved in the Hugging Face format loads back bit for bit", "[fast][checkpoint]") {
  test::TempDir dir;
  std::vector<ModelConfig> layouts(5, small_model());
  layouts[1].head_dim = 16;  // != d_model / n_heads
  layouts[1].qkv_bias = true;
  layouts[1].tie_embeddings = false;
  layouts[2].qk_norm = true;
  layouts[2].attention_bias = true;
  layouts[3].mlp = MlpKind::kGelu;  // MasklabForCausalLM
  layouts[4].rope_scaling = RopeScaling::kLlama3;
  layouts[4].rope_original_max_len = 32;
  const char* expected[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MasklabForCausalLM",
                            "LlamaForCausalLM"};
  for (size_t i = 0; i < layouts.size(); ++i) {
    INFO("layout " << i);
    const std::string d = dir.file("m" + std::to_string(i));
    Transformer original(layouts[i], 300);
    original->initialize(7 + i);
    save_hf_model(*original, d, 257, 258);
    const auto config = nlohmann::json::parse(test::read_text(d + "/config.json"));
    CHECK(config["architectures"][0] == expected[i]);
    CHECK(config["torch_dtype"] == "float32");
    const auto loaded = load_dir(d);
    CHECK(parameters_hash(*loaded) == parameters_hash(*original));
    CHECK(loaded->config.architecture == expected[i]);
  }
}

TEST_CASE("bad checkpoints are one line naming the tensor or key", "[fast][checkpoint]") {
  test::TempDir dir;
  const std::string d = dir.file("m");
  auto fresh = [&] {
    std::filesystem::remove_all(d);
    save_random(small_model(), d);
  };
  auto error = [&](const std::vector<std::string>& sets = {}) {
    const auto e = test::user_error_of([&] { load_dir(d, sets); });
    CHECK(e.find('\n') == std::string::npos);
    return e;
  };
  fresh();
  CHECK(error().empty());
  rewrite(d, [](auto& t) { t.erase("model.layers.0.self_attn.k_proj.weight"); });
  CHECK_THAT(error(), Catch::Contains("has no tensor 'model.layers.0.self_attn.k_proj.weight'"));
  fresh();
  rewrite(d, [](auto& t) { t["model.layers.0.mlp.extra.weight"] = t["model.norm.weight"]; });
  CHECK_THAT(error(), Catch::Contains("holds tensor 'model.layers.0.mlp.extra.weight', which this LlamaForCausalLM"));
  fresh();
  rewrite(d, [](auto& t) {
    auto& q = t["model.layers.0.self_attn.q_proj.weight"];
    q.shape = {q.shape[0] / 2, q.shape[1]};
    q.bytes.resize(q.bytes.size() / 2);
  });
  CHECK_THAT(error(), Catch::Contains("tensor 'model.layers.0.self_attn.q_proj.weight' is [16, 32]") &&
                          Catch::Contains("config.json implies [32, 32]"));
  fresh();
  CHECK_THAT(error({"model.d_model=64"}), Catch::Contains("model.d_model is 64 but " + d + "/config.json has hidden_size 32"));
  CHECK_THAT(error({"model.tie_embeddings=false"}), Catch::Contains("model.tie_embeddings is false"));

  auto config = nlohmann::json::parse(test::read_text(d + "/config.json"));
  config["model_type"] = "falcon";
  config.erase("architectures");
  test::write_text(d + "/config.json", config.dump());
  CHECK_THAT(error(), Catch::Contains("model_type falcon is not supported"));
  fresh();
  const auto bytes = test::read_text(d + "/model.safetensors");
  test::write_text(d + "/model.safetensors", bytes.substr(0, bytes.size() / 2));
  CHECK_THAT(error(), Catch::Contains("model.safetensors: tensor '") && Catch::Contains("lie outside the data region"));
  fresh();
  rewrite(d, [](auto& t) {
    auto& e = t["model.norm.weight"];
    e.bytes = std::string(e.bytes.size() * 2, '\0');
    e.dtype = TensorDtype::kF32;
    e.shape = {e.shape[0] * 2};
  });
  CHECK_THAT(error(), Catch::Contains("tensor 'model.norm.weight' is [64]"));
}

TEST_CASE("bad checkpoints through the CLI: exit status 2, one line, nothing written", "[slow][checkpoint][cli]") {
  test::TempDir dir;
  const std::string d = dir.file("m");
  save_random(small_model(), d);
  // An I8 tensor (a quantized checkpoint) and a missing shard.
  rewrite(d, [](auto& t) { t["model.norm.weight"].dtype = TensorDtype::kBF16; });
  std::string text = test::read_text(d + "/model.safetensors");
  const size_t at = text.find("\"BF16\"");
  REQUIRE(at != std::string::npos);
  text.replace(at, 6, "\"I8\"  ");  // same header length
  test::write_text(d + "/model.safetensors", text);
  const std::string common = " --set data.tasks=add --set data.train_size=16 --set data.eval_size=4 --set train.steps=1 "
                             "--set train.threads=1 --set model.init_from=" + d;
  auto r = test::run_masklab("train --out " + dir.file("out") + common);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.out, Catch::Contains("tensor 'model.norm.weight': dtype I8 cannot be read"));
  // One error line (stdout may hold the run's first progress line before it).
  const std::string error_line = r.out.substr(r.out.find("masklab: error:"));
  CHECK(std::count(error_line.begin(), error_line.end(), '\n') == 1);
  CHECK(!std::filesystem::exists(dir.file("out")));

  // A vocabulary smaller than the tokenizer's (the byte tokenizer has 259 ids).
  save_random(small_model(), dir.file("small_vocab"), 1, 100);
  r = test::run_masklab("train --out " + dir.file("out") + common + " --set model.init_from=" + dir.file("small_vocab"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.out, Catch::Contains("data.tokenizer has 259 tokens but " + dir.file("small_vocab") +
                                    "/config.json has vocab_size 100"));
  CHECK(!std::filesystem::exists(dir.file("out")));

  std::filesystem::remove(d + "/model.safetensors");
  test::write_text(d + "/model.safetensors.index.json", R"({"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}})");
  r = test::run_masklab("train --out " + dir.file("out") + common);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.out, Catch::Contains("names shard 'model-00001-of-00002.safetensors', which is missing"));
  CHECK(!std::filesystem::exists(dir.file("out")));
}

namespace {

// prompt/completion JSONL of `n` lines, deterministic.
void write_pairs(const std::string& path, int n) {
  std::string lines;
  for (int i = 0; i < n; ++i) {
    std::string prompt = "q" + std::to_string(i * 37 % 101) + ": " + std::string(3 + i % 5, 'a' + i % 7) + " ?";
    std::string completion = std::to_string(i * i + 3) + std::string(1 + i % 3, 'z');
    lines += nlohmann::json{{"prompt", prompt}, {"completion", completion}}.dump() + "\n";
  }
  test::write_text(path, lines);
}

std::string checkpoints(const test::TempDir& dir) {
  const auto made = test::run_venv_python("hf_make_checkpoints.py", dir.file("hf"));
  INFO(made.out);
  REQUIRE(made.exit_code == 0);
  return dir.file("hf");
}

}  // namespace

TEST_CASE("one step from a checkpoint: the loss equals transformers' under completion_only and weighted:0.1",
          "[slow][checkpoint][python]") {
  test::TempDir dir;
  const std::string hf = checkpoints(dir);
  write_pairs(dir.file("train.jsonl"), 8);
  const std::string data = " --set data.tokenizer=byte --set data.train=" + dir.file("train.jsonl") +
                           " --set data.eval=" + dir.file("train.jsonl");
  for (const char* model : {"llama", "qwen3"}) {
    const std::string m = hf + "/" + model;
    const auto score = test::run_masklab("score " + m + " " + dir.file("train.jsonl") + " --tokens --out " +
                                         dir.file("score.jsonl") + data);
    REQUIRE(score.exit_code == 0);
    for (const char* strategy : {"completion_only", "weighted:0.1"}) {
      INFO(model << " " << strategy);
      const std::string out = dir.file(std::string(model) + strategy);
      const auto r = test::run_masklab(std::string("train --strategy ") + strategy + " --out " + out + data +
                                       " --set model.init_from=" + m +
                                       " --set train.steps=1 --set train.batch_size=8 --set train.eval_every=0"
                                       " --set train.threads=1 --set eval.samples=0");
      INFO(r.out);
      REQUIRE(r.exit_code == 0);
      const auto metrics = nlohmann::json::parse(test::read_text(out + "/metrics.json"));
      const auto ref = test::run_venv_python("hf_train_loss.py", m + " " + dir.file("score.jsonl") + " " + strategy);
      INFO(ref.out);
      REQUIRE(ref.exit_code == 0);
      const double expected = nlohmann::json::parse(ref.out.substr(ref.out.rfind('{')))["loss"];
      CHECK(metrics["final_train_loss"].get<double>() == Approx(expected).epsilon(1e-5));
      // The base the run started from: its path, architecture and the weight file's FNV-1a.
      const auto bytes = test::read_text(m + "/model.safetensors");
      CHECK(metrics["base"]["init_from"] == m);
      CHECK(metrics["base"]["architecture"] == (std::string(model) == "llama" ? "LlamaForCausalLM" : "Qwen3ForCausalLM"));
      CHECK(metrics["base"]["hash"] == Fnv1a().add(bytes.data(), bytes.size()).hex());
    }
  }
}

TEST_CASE("the folder --save-model writes loads in transformers, with masklab's per-token NLL",
          "[slow][checkpoint][python]") {
  test::TempDir dir;
  const std::string hf = checkpoints(dir);
  write_pairs(dir.file("data.jsonl"), 6);
  const std::string common = " --set data.tokenizer=byte --set data.train=" + dir.file("data.jsonl") +
                             " --set train.steps=2 --set train.batch_size=4 --set train.threads=1 --save-model";
  struct Case {
    std::string name, init_sets, architecture;
  };
  const std::vector<Case> cases = {
      {"fresh", " --set model.n_layers=2 --set model.d_model=32 --set model.n_heads=4 --set model.n_kv_heads=2",
       "LlamaForCausalLM"},
      {"qwen2", " --set model.init_from=" + hf + "/qwen2", "Qwen2ForCausalLM"},
      {"qwen3", " --set model.init_from=" + hf + "/qwen3", "Qwen3ForCausalLM"},
      {"mistral", " --set model.init_from=" + hf + "/mistral", "MistralForCausalLM"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string out = dir.file(c.name);
    const auto r = test::run_masklab("train --strategy full --out " + out + common + c.init_sets);
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    const auto config = nlohmann::json::parse(test::read_text(out + "/model/config.json"));
    CHECK(config["architectures"][0] == c.architecture);
    const auto score = test::run_masklab("score " + out + "/model " + dir.file("data.jsonl") + " --tokens --out " +
                                         out + "/score.jsonl --set data.tokenizer=byte");
    REQUIRE(score.exit_code == 0);
    const auto ref = test::run_venv_python("hf_score_reference.py", out + "/model " + out + "/score.jsonl");
    INFO(ref.out);
    CHECK(ref.exit_code == 0);
    CHECK_THAT(ref.out, Catch::Contains("\"architecture\": \"" + c.architecture + "\""));
  }
}
