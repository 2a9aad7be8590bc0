#include "harness/core/hf_config.hpp"

#include <algorithm>
#include <filesystem>
#include <functional>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"

namespace masklab {
namespace {

constexpr const char* kLlama = "LlamaForCausalLM";
constexpr const char* kMistral = "MistralForCausalLM";
constexpr const char* kQwen2 = "Qwen2ForCausalLM";
constexpr const char* kQwen3 = "Qwen3ForCausalLM";
constexpr const char* kMasklab = "MasklabForCausalLM";

struct Architecture {
  const char* name;
  const char* model_type;
};
constexpr Architecture kArchitectures[] = {
    {kLlama, "llama"}, {kMistral, "mistral"}, {kQwen2, "qwen2"}, {kQwen3, "qwen3"}, {kMasklab, "masklab"}};

// One config.json being read: typed field access with errors naming the file.
struct HfJson {
  std::string path;
  nlohmann::json j;

  UserError error(const std::string& why) const { return UserError(path + ": " + why); }
  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  long long integer(const char* key) const {
    if (!has(key) || !j[key].is_number_integer()) throw error(fmt::format("{} missing or not an integer", key));
    return j[key].get<long long>();
  }
  long long integer_or(const char* key, long long fallback) const { return has(key) ? integer(key) : fallback; }
  double number_or(const nlohmann::json& obj, const char* key, double fallback) const {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    if (!obj[key].is_number()) throw error(fmt::format("{} is not a number", key));
    return obj[key].get<double>();
  }
  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j[key].is_boolean()) throw error(fmt::format("{} is not true or false", key));
    return j[key].get<bool>();
  }
};

// architectures[0] and/or model_type, both checked against what masklab reads.
const Architecture& architecture_of(const HfJson& c) {
  const Architecture* by_name = nullptr;
  if (c.has("architectures")) {
    const auto& a = c.j["architectures"];
    if (!a.is_array() || a.empty() || !a[0].is_string()) throw c.error("architectures is not a list of names");
    const auto name = a[0].get<std::string>();
    for (const auto& arch : kArchitectures) by_name = name == arch.name ? &arch : by_name;
    if (!by_name) {
      throw c.error("architecture " + name + " is not supported (LlamaForCausalLM, MistralForCausalLM, "
                    "Qwen2ForCausalLM, Qwen3ForCausalLM, MasklabForCausalLM are)");
    }
  }
  if (c.has("model_type")) {
    const auto type = c.j["model_type"].is_string() ? c.j["model_type"].get<std::string>() : c.j["model_type"].dump();
    const Architecture* by_type = nullptr;
    for (const auto& arch : kArchitectures) by_type = type == arch.model_type ? &arch : by_type;
    if (!by_type) throw c.error("model_type " + type + " is not supported (llama, mistral, qwen2, qwen3, masklab are)");
    if (by_name && by_name != by_type) {
      throw c.error(fmt::format("architecture {} disagrees with model_type {}", by_name->name, type));
    }
    return *by_type;
  }
  if (!by_name) throw c.error("names no architecture (architectures or model_type)");
  return *by_name;
}

// rope_theta and rope_scaling: top level (transformers 4) or rope_parameters (5).
void read_rope(const HfJson& c, ModelConfig& m) {
  const nlohmann::json none = nlohmann::json::object();
  const auto& params = c.has("rope_parameters") && c.j["rope_parameters"].is_object() ? c.j["rope_parameters"] : none;
  m.rope_theta = c.number_or(params, "rope_theta", c.number_or(c.j, "rope_theta", 10000.0));
  const auto& scaling = c.has("rope_scaling") ? c.j["rope_scaling"] : params;
  if (!scaling.is_object()) throw c.error("rope_scaling is not an object");
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (scaling.contains(key) && scaling[key].is_string()) type = scaling[key].get<std::string>();
  }
  if (type == "default") return;
  m.rope_factor = c.number_or(scaling, "factor", 0);
  if (type == "linear") {
    m.rope_scaling = RopeScaling::kLinear;
  } else if (type == "llama3") {
    m.rope_scaling = RopeScaling::kLlama3;
    m.rope_low_freq_factor = c.number_or(scaling, "low_freq_factor", 1.0);
    m.rope_high_freq_factor = c.number_or(scaling, "high_freq_factor", 4.0);
    m.rope_original_max_len = static_cast<int>(c.number_or(scaling, "original_max_position_embeddings", 8192));
  } else {
    throw c.error("rope scaling type " + type + " is not supported (default, linear, llama3 are)");
  }
  if (!(m.rope_factor > 0)) throw c.error("rope scaling factor missing or not positive");
}

void check_supported(const HfJson& c, const Architecture& arch, ModelConfig& m) {
  const std::string act = c.has("hidden_act") && c.j["hidden_act"].is_string() ? c.j["hidden_act"].get<std::string>() : "silu";
  if (act == "gelu" && arch.name == std::string(kMasklab)) m.mlp = MlpKind::kGelu;
  else if (act != "silu") throw c.error("hidden_act " + act + " is not supported (silu is)");
  for (const char* key : {"torch_dtype", "dtype"}) {
    if (!c.has(key)) continue;
    const auto d = c.j[key].is_string() ? c.j[key].get<std::string>() : c.j[key].dump();
    if (d != "float32" && d != "bfloat16" && d != "float16") {
      throw c.error(fmt::format("{} {} is not supported (float32, bfloat16, float16 are)", key, d));
    }
  }
  if (c.boolean_or("mlp_bias", false)) throw c.error("mlp_bias true is not supported");
}

}  // namespace

bool is_hf_model_dir(const std::string& path) {
  return !path.empty() && std::filesystem::is_directory(path) && std::filesystem::exists(path + "/config.json");
}

ModelConfig read_hf_config(const std::string& dir) {
  HfJson c{dir + "/config.json", {}};
  std::string why;
  const auto text = read_file(c.path, &why);
  if (!text) throw c.error("cannot read the model's config.json: " + why);
  try {
    c.j = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception&) {
    throw c.error("not JSON");
  }
  if (!c.j.is_object()) throw c.error("not a JSON object");
  const Architecture& arch = architecture_of(c);
  ModelConfig m;
  m.architecture = arch.name;
  check_supported(c, arch, m);
  m.d_model = static_cast<int>(c.integer("hidden_size"));
  m.n_layers = static_cast<int>(c.integer("num_hidden_layers"));
  m.n_heads = static_cast<int>(c.integer("num_attention_heads"));
  m.n_kv_heads = static_cast<int>(c.integer_or("num_key_value_heads", m.n_heads));
  m.head_dim = static_cast<int>(c.integer_or("head_dim", m.n_heads > 0 ? m.d_model / m.n_heads : 0));
  m.d_ff = static_cast<int>(c.integer("intermediate_size"));
  m.vocab_size = static_cast<int>(c.integer("vocab_size"));
  m.max_positions = static_cast<int>(c.integer("max_position_embeddings"));
  m.max_seq_len = std::min(m.max_positions, kDefaultMaxSeqLenCap);
  m.norm_eps = c.number_or(c.j, "rms_norm_eps", 1e-6);
  m.tie_embeddings = c.boolean_or("tie_word_embeddings", false);
  read_rope(c, m);
  const std::string name = arch.name;
  m.attention_bias = (name == kLlama || name == kQwen3 || name == kMasklab) && c.boolean_or("attention_bias", false);
  m.qkv_bias = name == kQwen2 || (name == kMasklab && c.boolean_or("qkv_bias", false));
  m.qk_norm = name == kQwen3 || (name == kMasklab && c.boolean_or("qk_norm", false));
  // Qwen keeps a sliding_window value that only use_sliding_window turns on.
  const bool window_on = (name == kQwen2 || name == kQwen3) ? c.boolean_or("use_sliding_window", false) : true;
  if (window_on && c.has("sliding_window")) m.sliding_window = static_cast<int>(c.integer("sliding_window"));
  if (m.n_layers < 1 || m.d_model < 1 || m.n_heads < 1 || m.n_kv_heads < 1 || m.head_dim < 2 || m.d_ff < 1 ||
      m.vocab_size < 1 || m.max_positions < 1) {
    throw c.error("hidden_size, num_hidden_layers, heads, head_dim, intermediate_size, vocab_size and "
                  "max_position_embeddings must be positive");
  }
  return m;
}

namespace {

// The model.* keys config.json decides, with the config.json field each
// comes from (for the error when an explicit key disagrees).
struct ShapeKey {
  const char* key;
  const char* hf_field;
  std::function<std::string(const ModelConfig&)> value;
  std::function<void(ModelConfig&, const ModelConfig&)> copy;
};

#define MASKLAB_SHAPE(KEY, HF, MEMBER)                                              \
  ShapeKey {                                                                        \
    KEY, HF, [](const ModelConfig& m) { return fmt::format("{}", m.MEMBER); },      \
        [](ModelConfig& to, const ModelConfig& from) { to.MEMBER = from.MEMBER; }   \
  }

const std::vector<ShapeKey>& shape_keys() {
  static const std::vector<ShapeKey> kKeys = {
      MASKLAB_SHAPE("model.architecture", "architectures[0]", architecture),
      MASKLAB_SHAPE("model.n_layers", "num_hidden_layers", n_layers),
      MASKLAB_SHAPE("model.d_model", "hidden_size", d_model),
      MASKLAB_SHAPE("model.n_heads", "num_attention_heads", n_heads),
      MASKLAB_SHAPE("model.n_kv_heads", "num_key_value_heads", n_kv_heads),
      MASKLAB_SHAPE("model.head_dim", "head_dim", head_dim),
      MASKLAB_SHAPE("model.d_ff", "intermediate_size", d_ff),
      MASKLAB_SHAPE("model.vocab_size", "vocab_size", vocab_size),
      MASKLAB_SHAPE("model.max_positions", "max_position_embeddings", max_positions),
      MASKLAB_SHAPE("model.tie_embeddings", "tie_word_embeddings", tie_embeddings),
      MASKLAB_SHAPE("model.rope_theta", "rope_theta", rope_theta),
      MASKLAB_SHAPE("model.norm_eps", "rms_norm_eps", norm_eps),
      MASKLAB_SHAPE("model.attention_bias", "attention_bias", attention_bias),
      MASKLAB_SHAPE("model.qkv_bias", "q/k/v biases (Qwen2)", qkv_bias),
      MASKLAB_SHAPE("model.qk_norm", "q_norm/k_norm (Qwen3)", qk_norm),
      MASKLAB_SHAPE("model.rope_factor", "rope_scaling.factor", rope_factor),
      MASKLAB_SHAPE("model.rope_low_freq_factor", "rope_scaling.low_freq_factor", rope_low_freq_factor),
      MASKLAB_SHAPE("model.rope_high_freq_factor", "rope_scaling.high_freq_factor", rope_high_freq_factor),
      MASKLAB_SHAPE("model.rope_original_max_len", "rope_scaling.original_max_position_embeddings", rope_original_max_len),
      MASKLAB_SHAPE("model.sliding_window", "sliding_window", sliding_window),
      ShapeKey{"model.rope_scaling", "rope_scaling.rope_type",
               [](const ModelConfig& m) { return std::string(name_of(m.rope_scaling)); },
               [](ModelConfig& to, const ModelConfig& from) { to.rope_scaling = from.rope_scaling; }},
      ShapeKey{"model.mlp", "hidden_act", [](const ModelConfig& m) { return std::string(name_of(m.mlp)); },
               [](ModelConfig& to, const ModelConfig& from) { to.mlp = from.mlp; }},
  };
  return kKeys;
}
#undef MASKLAB_SHAPE

}  // namespace

void resolve_init_from(Config& config) {
  const std::string dir = config.model.init_from;
  if (dir.empty() || !std::filesystem::is_directory(dir)) return;
  if (!is_hf_model_dir(dir)) throw UserError("model.init_from: folder '" + dir + "' has no config.json");
  const ModelConfig from = read_hf_config(dir);
  for (const auto& k : shape_keys()) {
    // A key set to its "auto" value (0 or empty: n_kv_heads, head_dim, d_ff,
    // vocab_size, architecture, ...) asks for the checkpoint's, so it never
    // disagrees: a run fine-tuning a sweep's pretrained base carries the
    // stage's model section, autos included, in its config.yaml.
    const std::string mine = k.value(config.model);
    if (config.was_set(k.key) && mine != "0" && !mine.empty() && mine != k.value(from)) {
      throw UserError(fmt::format("{} is {} but {}/config.json has {} {}", k.key, mine, dir,
                                  k.hf_field, k.value(from)));
    }
    k.copy(config.model, from);
  }
  if (!config.was_set("model.max_seq_len")) config.model.max_seq_len = from.max_seq_len;
  if (config.model.max_seq_len > from.max_positions) {
    throw UserError(fmt::format("model.max_seq_len is {} but {}/config.json has max_position_embeddings {}",
                                config.model.max_seq_len, dir, from.max_positions));
  }
  if (!config.was_set("data.tokenizer") &&
      (std::filesystem::exists(dir + "/tokenizer.json") || std::filesystem::exists(dir + "/tokenizer.model"))) {
    config.data.tokenizer = dir;
  }
}

std::string save_architecture(const ModelConfig& m) {
  if (!m.architecture.empty()) return m.architecture;
  if (m.mlp != MlpKind::kSwiGLU) return kMasklab;
  if (m.qk_norm) return m.qkv_bias ? kMasklab : kQwen3;
  if (m.qkv_bias) return m.attention_bias ? kMasklab : kQwen2;
  return kLlama;
}

namespace {

nlohmann::json rope_parameters(const ModelConfig& m) {
  nlohmann::json p = {{"rope_theta", m.rope_theta}, {"rope_type", "default"}};
  if (m.rope_scaling == RopeScaling::kLinear) {
    p["rope_type"] = "linear";
    p["factor"] = m.rope_factor;
  } else if (m.rope_scaling == RopeScaling::kLlama3) {
    p["rope_type"] = "llama3";
    p["factor"] = m.rope_factor;
    p["low_freq_factor"] = m.rope_low_freq_factor;
    p["high_freq_factor"] = m.rope_high_freq_factor;
    p["original_max_position_embeddings"] = m.rope_original_max_len;
  }
  return p;
}

}  // namespace

nlohmann::json hf_config_json(const ModelConfig& m, int vocab_size, int bos_id, int eos_id) {
  const std::string arch = save_architecture(m);
  std::string type = "masklab";
  for (const auto& a : kArchitectures) type = arch == a.name ? a.model_type : type;
  const int head_dim = m.head_dim > 0 ? m.head_dim : m.d_model / m.n_heads;
  const int d_ff = m.d_ff;  // callers pass the resolved width
  nlohmann::json j = {
      {"architectures", {arch}},
      {"model_type", type},
      {"hidden_size", m.d_model},
      {"num_hidden_layers", m.n_layers},
      {"num_attention_heads", m.n_heads},
      {"num_key_value_heads", m.n_kv_heads > 0 ? m.n_kv_heads : m.n_heads},
      {"head_dim", head_dim},
      {"intermediate_size", d_ff},
      {"hidden_act", m.mlp == MlpKind::kSwiGLU ? "silu" : "gelu"},
      {"vocab_size", vocab_size},
      {"max_position_embeddings", m.max_positions > 0 ? m.max_positions : m.max_seq_len},
      {"rms_norm_eps", m.norm_eps},
      {"rope_theta", m.rope_theta},
      {"rope_parameters", rope_parameters(m)},
      {"tie_word_embeddings", m.tie_embeddings},
      {"attention_bias", m.attention_bias},
      {"attention_dropout", 0.0},
      {"mlp_bias", false},
      {"initializer_range", m.init_std},
      {"torch_dtype", "float32"},
      {"bos_token_id", bos_id},
      {"eos_token_id", eos_id},
      {"use_cache", true},
  };
  if (m.rope_scaling != RopeScaling::kNone) j["rope_scaling"] = rope_parameters(m);
  if (type == "qwen2" || type == "qwen3") {
    j["use_sliding_window"] = m.sliding_window > 0;
    j["sliding_window"] = m.sliding_window > 0 ? nlohmann::json(m.sliding_window) : nlohmann::json();
  } else if (type == "mistral") {
    j["sliding_window"] = m.sliding_window > 0 ? nlohmann::json(m.sliding_window) : nlohmann::json();
  } else if (type == "masklab") {
    j["qkv_bias"] = m.qkv_bias;
    j["qk_norm"] = m.qk_norm;
  }
  return j;
}

}  // namespace masklab
