// harness/core/hf_config: config.json of each supported architecture read
// into ModelConfig, resolve_init_from's rules, and the saved config.json.
#include <catch2/catch.hpp>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "harness/core/config.hpp"
#include "harness/core/errors.hpp"
#include "harness/core/hf_config.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

// config.json as transformers 5.24 writes it for a tiny LlamaForCausalLM.
nlohmann::json llama_json() {
  return nlohmann::json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": false, "dtype": "float32",
    "head_dim": 16, "hidden_act": "silu", "hidden_size": 64, "intermediate_size": 96,
    "max_position_embeddings": 4096, "mlp_bias": false, "num_attention_heads": 4, "num_hidden_layers": 2,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-05, "tie_word_embeddings": false, "vocab_size": 300,
    "rope_parameters": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                        "original_max_position_embeddings": 64, "rope_theta": 500000.0, "rope_type": "llama3"}})");
}

std::string model_dir(const test::TempDir& dir, const nlohmann::json& config) {
  std::filesystem::create_directories(dir.file("m"));
  test::write_text(dir.file("m/config.json"), config.dump());
  return dir.file("m");
}

}  // namespace

TEST_CASE("config.json of each architecture becomes the model's shape", "[fast][hf-config]") {
  test::TempDir dir;
  ModelConfig m = read_hf_config(model_dir(dir, llama_json()));
  CHECK(m.architecture == "LlamaForCausalLM");
  CHECK((m.d_model == 64 && m.n_layers == 2 && m.n_heads == 4 && m.n_kv_heads == 2 && m.head_dim == 16));
  CHECK((m.d_ff == 96 && m.vocab_size == 300 && m.max_positions == 4096));
  CHECK(m.max_seq_len == kDefaultMaxSeqLenCap);  // min(4096, 2048)
  CHECK((m.norm_eps == 1e-5 && m.rope_theta == 500000.0 && !m.tie_embeddings));
  CHECK((m.rope_scaling == RopeScaling::kLlama3 && m.rope_factor == 8.0 && m.rope_original_max_len == 64));
  CHECK((!m.qkv_bias && !m.qk_norm && !m.attention_bias && m.sliding_window == 0));

  // transformers 4: rope_theta and rope_scaling at the top level, "type" for the kind.
  auto v4 = llama_json();
  v4.erase("rope_parameters");
  v4["rope_theta"] = 1234.0;
  v4["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  v4.erase("head_dim");  // older configs: hidden / heads
  m = read_hf_config(model_dir(dir, v4));
  CHECK((m.rope_theta == 1234.0 && m.rope_scaling == RopeScaling::kLinear && m.rope_factor == 2.0));
  CHECK(m.head_dim == 16);

  auto qwen2 = llama_json();
  qwen2["architectures"] = {"Qwen2ForCausalLM"};
  qwen2["model_type"] = "qwen2";
  qwen2["use_sliding_window"] = false;
  qwen2["sliding_window"] = 16;  // kept by Qwen configs, off unless use_sliding_window
  m = read_hf_config(model_dir(dir, qwen2));
  CHECK((m.qkv_bias && !m.qk_norm && m.sliding_window == 0));

  auto qwen3 = llama_json();
  qwen3.erase("architectures");  // model_type alone is enough
  qwen3["model_type"] = "qwen3";
  qwen3["head_dim"] = 32;
  m = read_hf_config(model_dir(dir, qwen3));
  CHECK((m.architecture == "Qwen3ForCausalLM" && m.qk_norm && !m.qkv_bias && m.head_dim == 32));

  auto mistral = llama_json();
  mistral["architectures"] = {"MistralForCausalLM"};
  mistral["model_type"] = "mistral";
  mistral["sliding_window"] = 4096;
  m = read_hf_config(model_dir(dir, mistral));
  CHECK(m.sliding_window == 4096);
}

TEST_CASE("config.json that masklab cannot follow is one line naming the field", "[fast][hf-config]") {
  test::TempDir dir;
  auto with = [&](const char* key, const nlohmann::json& value) {
    auto j = llama_json();
    if (value.is_null()) j.erase(key);
    else j[key] = value;
    return test::user_error_of([&] { read_hf_config(model_dir(dir, j)); });
  };
  CHECK_THAT(with("model_type", "gpt2"), Catch::Contains("config.json: model_type gpt2 is not supported"));
  CHECK_THAT(with("architectures", {"GPT2LMHeadModel"}), Catch::Contains("architecture GPT2LMHeadModel is not supported"));
  CHECK_THAT(with("model_type", "qwen2"), Catch::Contains("architecture LlamaForCausalLM disagrees with model_type qwen2"));
  CHECK_THAT(with("hidden_act", "gelu_pytorch_tanh"), Catch::Contains("hidden_act gelu_pytorch_tanh is not supported"));
  CHECK_THAT(with("rope_parameters", {{"rope_type", "yarn"}, {"factor", 4.0}}),
             Catch::Contains("rope scaling type yarn is not supported"));
  CHECK_THAT(with("dtype", "int8"), Catch::Contains("dtype int8 is not supported"));
  CHECK_THAT(with("hidden_size", nullptr), Catch::Contains("hidden_size missing"));
  CHECK_THAT(with("mlp_bias", true), Catch::Contains("mlp_bias"));
}

TEST_CASE("resolve_init_from: config.json decides model.*, explicit disagreements are errors", "[fast][hf-config]") {
  test::TempDir dir;
  const std::string m = model_dir(dir, llama_json());
  Config c;
  apply_value(c, "model.init_from", m, "test");
  resolve_init_from(c);
  CHECK((c.model.d_model == 64 && c.model.n_kv_heads == 2 && c.model.max_seq_len == 2048));
  CHECK(c.model.architecture == "LlamaForCausalLM");
  CHECK(c.data.tokenizer == "byte");  // no tokenizer files in the folder
  CHECK_NOTHROW(validate(c));

  Config d;
  apply_value(d, "model.init_from", m, "test");
  apply_value(d, "model.d_model", "128", "test");
  CHECK(test::user_error_of([&] { resolve_init_from(d); }) ==
        "model.d_model is 128 but " + m + "/config.json has hidden_size 64");

  Config agree;  // an explicit key that agrees is fine, as a saved config.yaml has every key
  apply_value(agree, "model.init_from", m, "test");
  apply_value(agree, "model.n_kv_heads", "2", "test");
  apply_value(agree, "model.max_seq_len", "256", "test");
  resolve_init_from(agree);
  CHECK(agree.model.max_seq_len == 256);  // a training length, not a shape

  Config autos;  // explicit "auto" values (a pretrained stage's model section) ask for the checkpoint's
  apply_value(autos, "model.init_from", m, "test");
  apply_value(autos, "model.n_kv_heads", "0", "test");
  apply_value(autos, "model.d_ff", "0", "test");
  apply_value(autos, "model.architecture", "''", "test");
  resolve_init_from(autos);
  CHECK((autos.model.n_kv_heads == 2 && autos.model.d_ff > 0 && autos.model.architecture == "LlamaForCausalLM"));

  Config too_long;
  apply_value(too_long, "model.init_from", m, "test");
  apply_value(too_long, "model.max_seq_len", "8192", "test");
  CHECK_THAT(test::user_error_of([&] { resolve_init_from(too_long); }),
             Catch::Contains("model.max_seq_len is 8192 but " + m + "/config.json has max_position_embeddings 4096"));

  test::write_text(dir.file("m/tokenizer.json"), "{}");
  Config tok;
  apply_value(tok, "model.init_from", m, "test");
  resolve_init_from(tok);
  CHECK(tok.data.tokenizer == m);
  Config tok_set;
  apply_value(tok_set, "model.init_from", m, "test");
  apply_value(tok_set, "data.tokenizer", "byte", "test");
  resolve_init_from(tok_set);
  CHECK(tok_set.data.tokenizer == "byte");

  Config pt;  // a model.pt file keeps the config as it is
  apply_value(pt, "model.init_from", dir.file("model.pt"), "test");
  resolve_init_from(pt);
  CHECK(pt.model.d_model == Config{}.model.d_model);
}

TEST_CASE("a sliding window shorter than the training rows is an error", "[fast][hf-config]") {
  test::TempDir dir;
  auto j = llama_json();
  j["architectures"] = {"MistralForCausalLM"};
  j["model_type"] = "mistral";
  j["sliding_window"] = 512;
  Config c;
  apply_value(c, "model.init_from", model_dir(dir, j), "test");
  resolve_init_from(c);
  CHECK_THAT(test::user_error_of([&] { validate(c); }), Catch::Contains("sliding_window 512"));
  Config shorter;
  apply_value(shorter, "model.init_from", dir.file("m"), "test");
  apply_value(shorter, "model.max_seq_len", "512", "test");
  resolve_init_from(shorter);
  CHECK_NOTHROW(validate(shorter));
}

TEST_CASE("models are saved under the architecture that expresses them", "[fast][hf-config]") {
  ModelConfig m;
  m.d_ff = 352;
  CHECK(save_architecture(m) == "LlamaForCausalLM");
  m.qkv_bias = true;
  CHECK(save_architecture(m) == "Qwen2ForCausalLM");
  m.qkv_bias = false;
  m.qk_norm = true;
  CHECK(save_architecture(m) == "Qwen3ForCausalLM");
  m.qk_norm = false;
  m.mlp = MlpKind::kGelu;
  CHECK(save_architecture(m) == "MasklabForCausalLM");
  const auto j = hf_config_json(m, 259, 257, 258);
  CHECK(j["model_type"] == "masklab");
  CHECK(j["hidden_act"] == "gelu");
  m = ModelConfig{};
  m.architecture = "MistralForCausalLM";
  CHECK(save_architecture(m) == "MistralForCausalLM");
  // A saved masklab config.json reads back to the same shape.
  ModelConfig g;
  g.mlp = MlpKind::kGelu;
  g.d_ff = 512;
  g.qk_norm = true;
  test::TempDir dir;
  const auto back = read_hf_config(model_dir(dir, hf_config_json(g, 259, 257, 258)));
  CHECK((back.mlp == MlpKind::kGelu && back.qk_norm && back.d_ff == 512 && back.d_model == g.d_model));
  CHECK(back.architecture == "MasklabForCausalLM");
}
