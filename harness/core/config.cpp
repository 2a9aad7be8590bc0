#include "harness/core/config.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/text.hpp"
#include "harness/core/yaml_file.hpp"

namespace masklab {
namespace {

// Strict conversions: a YAML scalar to the field's type, or an error naming the key.
template <class T>
struct Convert;

template <>
struct Convert<int> {
  static constexpr const char* kType = "integer";
  static int from(const YAML::Node& n) { return n.as<int>(); }
  static YAML::Node to(int v) { return YAML::Node(v); }
};
// YAML reads .inf and .nan as numbers, and a range check in validate() is a
// comparison that NaN passes; no setting means anything infinite either, so a
// double must be finite to be read at all. The error says so whatever the
// text was (.inf, inf, 1e999, abc).
struct NotAFiniteNumber {};

template <>
struct Convert<double> {
  static constexpr const char* kType = "number";
  static double from(const YAML::Node& n) {
    double v = 0;
    if (!YAML::convert<double>::decode(n, v) || !std::isfinite(v)) throw NotAFiniteNumber{};
    return v;
  }
  // Shortest text that reads back to the same double ("0.003", not "0.0030000000000000001").
  static YAML::Node to(double v) { return YAML::Node(fmt::format("{}", v)); }
};
template <>
struct Convert<bool> {
  static constexpr const char* kType = "boolean";
  static bool from(const YAML::Node& n) { return n.as<bool>(); }
  static YAML::Node to(bool v) { return YAML::Node(v); }
};
// A path or name that is not UTF-8 would be written into config.yaml, run
// ids and reports as bytes no reader of them accepts; the error gives the
// byte's position, never the byte.
struct NotUtf8 {
  size_t byte;
};

template <>
struct Convert<std::string> {
  static constexpr const char* kType = "string";
  static std::string from(const YAML::Node& n) {
    if (n.IsNull()) return "";
    if (!n.IsScalar()) throw YAML::BadConversion(n.Mark());
    std::string s = n.as<std::string>();
    if (const auto bad = find_invalid_utf8(s)) throw NotUtf8{*bad};
    return s;
  }
  static YAML::Node to(const std::string& v) { return YAML::Node(v); }
};
template <>
struct Convert<std::vector<std::string>> {
  static constexpr const char* kType = "list of strings";
  static std::vector<std::string> from(const YAML::Node& n) {
    std::vector<std::string> out;
    if (n.IsSequence()) {
      for (const auto& item : n) out.push_back(Convert<std::string>::from(item));
      return out;
    }
    // "a,b,c" on the command line.
    std::stringstream ss(Convert<std::string>::from(n));
    for (std::string item; std::getline(ss, item, ',');) {
      if (!item.empty()) out.push_back(item);
    }
    return out;
  }
  static YAML::Node to(const std::vector<std::string>& v) {
    YAML::Node n(YAML::NodeType::Sequence);
    for (const auto& s : v) n.push_back(s);
    n.SetStyle(YAML::EmitterStyle::Flow);
    return n;
  }
};

// An enumerated setting: one of the names in its table, or an error that
// lists them (set_field names the key).
template <class E>
struct ConvertEnum {
  static inline const std::string kType = enum_choices<E>();
  static E from(const YAML::Node& n) {
    const auto value = enum_from_name<E>(Convert<std::string>::from(n));
    if (!value) throw YAML::BadConversion(n.Mark());
    return *value;
  }
  static YAML::Node to(E v) { return YAML::Node(std::string(name_of(v))); }
};
template <>
struct Convert<MlpKind> : ConvertEnum<MlpKind> {};
template <>
struct Convert<DataFormat> : ConvertEnum<DataFormat> {};
template <>
struct Convert<RopeScaling> : ConvertEnum<RopeScaling> {};
template <>
struct Convert<Truncation> : ConvertEnum<Truncation> {};
template <>
struct Convert<Normalization> : ConvertEnum<Normalization> {};
// eval.sets reads its own errors (eval_set_config.cpp): they name the set and
// its key, where a scalar field's error names only the field.
template <>
struct Convert<std::vector<EvalSetConfig>> {
  static constexpr const char* kType = "list of sets {name, kind, task | file, ...}";
};
template <>
struct Convert<DeviceSetting> {
  static inline const std::string kType = "auto | cpu | cuda | cuda:N";
  static DeviceSetting from(const YAML::Node& n) {
    const auto device = parse_device(Convert<std::string>::from(n));
    if (!device) throw YAML::BadConversion(n.Mark());
    return *device;
  }
  static YAML::Node to(const DeviceSetting& v) { return YAML::Node(device_name(v)); }
};

struct Field {
  std::string key;
  std::string type;
  std::string help;
  std::function<void(Config&, const YAML::Node&, const std::string& source)> set;  // source: the file, for eval.sets
  std::function<YAML::Node(const Config&)> get;
};

template <class T>
Field make_field(std::string key, std::string help, std::function<T&(Config&)> ref) {
  Field f;
  f.key = std::move(key);
  f.type = std::string(Convert<T>::kType);
  f.help = std::move(help);
  f.set = [ref](Config& c, const YAML::Node& n, const std::string&) { ref(c) = Convert<T>::from(n); };
  f.get = [ref](const Config& c) { return Convert<T>::to(ref(const_cast<Config&>(c))); };
  return f;
}

#define MASKLAB_FIELD(KEY, MEMBER, HELP)                                                  \
  make_field<std::decay_t<decltype(std::declval<Config&>().MEMBER)>>(                     \
      KEY, HELP, [](Config& c) -> std::decay_t<decltype(c.MEMBER)>& { return c.MEMBER; })

Field eval_sets_field() {
  Field f;
  f.key = "eval.sets";
  f.type = Convert<std::vector<EvalSetConfig>>::kType;
  f.help =
      "evaluation sets scored once after the final evaluation (not on the curve): each {name, kind: nll | "
      "generate | choice, task: <built-in task> | all, or file: JSONL, template, max_examples, wordings: "
      "[\"...{prompt}...\"], generate only: max_new_tokens, temperature, top_p, seed, stop}";
  f.set = [](Config& c, const YAML::Node& n, const std::string& source) { c.eval.sets = parse_eval_sets(n, source); };
  f.get = [](const Config& c) { return eval_sets_node(c.eval.sets); };
  return f;
}

// Every config key, in the order config.yaml lists them.
const std::vector<Field>& fields() {
  static const std::vector<Field> kFields = {
      MASKLAB_FIELD("strategy", strategy, "loss-masking strategy spec (see `masklab strategies`)"),
      MASKLAB_FIELD("seed", seed, "run seed: initial weights, batch order, dropout"),
      MASKLAB_FIELD("model.n_layers", model.n_layers, "transformer blocks"),
      MASKLAB_FIELD("model.d_model", model.d_model, "residual width"),
      MASKLAB_FIELD("model.n_heads", model.n_heads, "attention heads (must divide d_model)"),
      MASKLAB_FIELD("model.d_ff", model.d_ff, "MLP hidden width; 0 = 4*d_model (gelu) or 8/3*d_model (swiglu)"),
      MASKLAB_FIELD("model.max_seq_len", model.max_seq_len, "longest row the model accepts"),
      MASKLAB_FIELD("model.mlp", model.mlp, "MLP: swiglu or gelu"),
      MASKLAB_FIELD("model.tie_embeddings", model.tie_embeddings, "LM head shares the embedding matrix"),
      MASKLAB_FIELD("model.dropout", model.dropout, "dropout on attention and MLP outputs"),
      MASKLAB_FIELD("model.rope_theta", model.rope_theta, "RoPE base"),
      MASKLAB_FIELD("model.init_std", model.init_std, "std of the normal initialization"),
      MASKLAB_FIELD("model.init_from", model.init_from, "start from model.pt, or a Hugging Face model folder (config.json + safetensors)"),
      MASKLAB_FIELD("model.vocab_size", model.vocab_size, "embedding rows; 0 = the tokenizer's, larger pads (e.g. 32768)"),
      MASKLAB_FIELD("model.n_kv_heads", model.n_kv_heads, "key/value heads (grouped-query attention); 0 = n_heads"),
      MASKLAB_FIELD("model.head_dim", model.head_dim, "width of one head; 0 = d_model / n_heads"),
      MASKLAB_FIELD("model.attention_bias", model.attention_bias, "biases on q, k, v and output projections"),
      MASKLAB_FIELD("model.qkv_bias", model.qkv_bias, "biases on q, k and v only (Qwen2)"),
      MASKLAB_FIELD("model.qk_norm", model.qk_norm, "RMSNorm on q and k per head before RoPE (Qwen3)"),
      MASKLAB_FIELD("model.norm_eps", model.norm_eps, "RMSNorm epsilon"),
      MASKLAB_FIELD("model.rope_scaling", model.rope_scaling, "RoPE frequency scaling: none, linear or llama3"),
      MASKLAB_FIELD("model.rope_factor", model.rope_factor, "linear/llama3 RoPE scaling factor"),
      MASKLAB_FIELD("model.rope_low_freq_factor", model.rope_low_freq_factor, "llama3 RoPE low_freq_factor"),
      MASKLAB_FIELD("model.rope_high_freq_factor", model.rope_high_freq_factor, "llama3 RoPE high_freq_factor"),
      MASKLAB_FIELD("model.rope_original_max_len", model.rope_original_max_len, "llama3 RoPE original_max_position_embeddings"),
      MASKLAB_FIELD("model.max_positions", model.max_positions, "the checkpoint's max_position_embeddings; 0 = max_seq_len"),
      MASKLAB_FIELD("model.sliding_window", model.sliding_window, "the checkpoint's attention window; 0 = none"),
      MASKLAB_FIELD("model.architecture", model.architecture, "Hugging Face architecture of model.init_from; empty = masklab's own"),
      MASKLAB_FIELD("model.checkpoint_activations", model.checkpoint_activations, "recompute each block in backward (less memory, ~1/3 more compute)"),
      MASKLAB_FIELD("train.steps", train.steps, "optimizer steps"),
      MASKLAB_FIELD("train.batch_size", train.batch_size, "examples per micro-batch"),
      MASKLAB_FIELD("train.grad_accum", train.grad_accum, "micro-batches per optimizer step"),
      MASKLAB_FIELD("train.lr", train.lr, "peak learning rate"),
      MASKLAB_FIELD("train.min_lr_ratio", train.min_lr_ratio, "cosine decays to lr * min_lr_ratio"),
      MASKLAB_FIELD("train.warmup_steps", train.warmup_steps, "linear warmup steps"),
      MASKLAB_FIELD("train.weight_decay", train.weight_decay, "AdamW decay (not on norms or biases)"),
      MASKLAB_FIELD("train.beta1", train.beta1, "AdamW beta1"),
      MASKLAB_FIELD("train.beta2", train.beta2, "AdamW beta2"),
      MASKLAB_FIELD("train.eps", train.eps, "AdamW epsilon"),
      MASKLAB_FIELD("train.grad_clip", train.grad_clip, "max global gradient norm; 0 = off"),
      MASKLAB_FIELD("train.eval_every", train.eval_every, "steps between eval points; 0 = end only"),
      MASKLAB_FIELD("train.log_every", train.log_every, "steps between log lines"),
      MASKLAB_FIELD("train.device", train.device, "where to train"),
      MASKLAB_FIELD("train.threads", train.threads, "intra-op CPU threads; 0 = all cores"),
      MASKLAB_FIELD("train.checkpoint_every", train.checkpoint_every, "steps between resumable checkpoints; 0 = only on SIGTERM/SIGUSR1"),
      MASKLAB_FIELD("train.keep_checkpoints", train.keep_checkpoints, "keep every checkpoint, also after the run finishes"),
      MASKLAB_FIELD("data.tasks", data.tasks, "built-in tasks (see `masklab tasks`)"),
      MASKLAB_FIELD("data.train_size", data.train_size, "training examples per built-in task"),
      MASKLAB_FIELD("data.eval_size", data.eval_size, "held-out examples per built-in task"),
      MASKLAB_FIELD("data.train_eval_size", data.train_eval_size, "train subset per task scored for the generalization gap"),
      MASKLAB_FIELD("data.seed", data.seed, "data generation and split seed"),
      MASKLAB_FIELD("data.train", data.train, "training JSONL (replaces the built-in tasks)"),
      MASKLAB_FIELD("data.eval", data.eval, "held-out JSONL; empty = split by data.eval_fraction"),
      MASKLAB_FIELD("data.eval_fraction", data.eval_fraction, "held-out fraction when data.eval is empty"),
      MASKLAB_FIELD("data.format", data.format, "JSONL format; auto = detected from the first line"),
      MASKLAB_FIELD("data.template", data.template_name, "chat template"),
      MASKLAB_FIELD("data.tokenizer", data.tokenizer, "byte | SentencePiece .model | tokenizer.json | Hugging Face tokenizer folder"),
      MASKLAB_FIELD("data.max_len", data.max_len, "longest example in tokens; 0 = model.max_seq_len"),
      MASKLAB_FIELD("data.truncation", data.truncation, "too long: left drops prompt tokens from the left, skip drops the example"),
      MASKLAB_FIELD("data.skip_invalid", data.skip_invalid, "skip and count malformed lines"),
      MASKLAB_FIELD("data.packing", data.packing, "pack examples into rows (block-diagonal attention); false = pad"),
      MASKLAB_FIELD("data.bucketing", data.bucketing, "without packing: batch similar lengths together"),
      MASKLAB_FIELD("data.pack_len", data.pack_len, "packed row length; 0 = longest example of the micro-batch"),
      MASKLAB_FIELD("loss.normalization", loss.normalization, "how the step's loss is divided (docs/design.md, invariant 5)"),
      MASKLAB_FIELD("loss.chunk_size", loss.chunk_size, "LM-head rows per cross-entropy chunk; 0 = fit 32 MiB of logits"),
      MASKLAB_FIELD("eval.batch_size", eval.batch_size, "examples per eval forward pass"),
      MASKLAB_FIELD("eval.samples", eval.samples, "held-out examples per task decoded into samples.jsonl"),
      eval_sets_field(),
  };
  return kFields;
}
#undef MASKLAB_FIELD

const Field* find_field(const std::string& key) {
  for (const auto& f : fields()) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

std::string keys_of_section(const std::string& section) {
  std::string out;
  for (const auto& f : fields()) {
    if (f.key.rfind(section + ".", 0) == 0) {
      out += (out.empty() ? "" : ", ") + f.key.substr(section.size() + 1);
    }
  }
  return out;
}

[[noreturn]] void unknown_key(const std::string& key, const std::string& origin) {
  const size_t dot = key.find('.');
  const std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
  std::string valid = section.empty() ? "" : keys_of_section(section);
  if (valid.empty()) valid = "strategy, seed, model.*, train.*, data.*, loss.*, eval.*";
  throw UserError(fmt::format("{}: unknown config key '{}' (valid: {})", origin, key, valid));
}

void set_field(Config& config, const std::string& key, const YAML::Node& value,
               const std::string& origin, const std::string& source) {
  const Field* f = find_field(key);
  if (!f) unknown_key(key, origin);
  auto wrong = [&](const std::string& expected) {
    std::string shown;
    if (value.IsScalar()) shown = value.Scalar();
    else shown = value.IsSequence() ? "a list" : value.IsMap() ? "a mapping" : "null";
    return UserError(fmt::format("{}: config key '{}' expects {}, got '{}'", origin, key, expected, shown));
  };
  try {
    f->set(config, value, source);
    if (!config.was_set(key)) config.explicit_keys.push_back(key);
  } catch (const NotAFiniteNumber&) {
    throw wrong("a finite number");
  } catch (const NotUtf8& e) {
    throw UserError(fmt::format("{}: config key '{}': invalid UTF-8 at byte {}", origin, key, e.byte + 1));
  } catch (const YAML::Exception&) {
    throw wrong(f->type);
  }
}

}  // namespace

bool Config::was_set(const std::string& key) const {
  return std::find(explicit_keys.begin(), explicit_keys.end(), key) != explicit_keys.end();
}

std::string device_name(const DeviceSetting& device) {
  std::string name(name_of(device.kind));
  if (device.kind == DeviceKind::kCuda && device.index != 0) name += ":" + std::to_string(device.index);
  return name;
}

std::optional<DeviceSetting> parse_device(std::string_view name) {
  const size_t colon = name.find(':');
  const auto kind = enum_from_name<DeviceKind>(name.substr(0, colon));
  if (!kind) return std::nullopt;
  if (colon == std::string_view::npos) return DeviceSetting{*kind, 0};
  const std::string digits(name.substr(colon + 1));
  if (*kind != DeviceKind::kCuda || digits.empty() || digits.size() > 4 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return DeviceSetting{DeviceKind::kCuda, std::stoi(digits)};
}

void apply_yaml(Config& config, const YAML::Node& node, const std::string& origin) {
  if (node.IsNull()) return;
  if (!node.IsMap()) throw UserError(yaml_location(origin, node) + ": config must be a mapping of keys");
  // `train: {lr: ..}` and `train.lr: ..` name one key: both in one mapping is
  // a duplicate as much as `lr` twice (which parse_yaml already rejects).
  std::vector<std::string> seen;
  auto set_once = [&](const std::string& key, const YAML::Node& value, const YAML::Node& key_node) {
    const std::string where = yaml_location(origin, key_node);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      throw UserError(where + ": duplicate key '" + key + "'");
    }
    seen.push_back(key);
    set_field(config, key, value, where, origin);
  };
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& value = kv.second;
    if (value.IsMap()) {
      for (const auto& inner : value) set_once(key + "." + inner.first.as<std::string>(), inner.second, inner.first);
    } else {
      set_once(key, value, kv.first);
    }
  }
}

void load_config_file(Config& config, const std::string& path) {
  apply_yaml(config, load_yaml_file(path, "config file"), path);
}

void apply_value(Config& config, const std::string& key, const std::string& value_text,
                 const std::string& origin) {
  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::ParserException&) {
    value = YAML::Node(value_text);  // not YAML: take it as a plain string
  }
  set_field(config, key, value, origin, origin);
}

void apply_node(Config& config, const std::string& key, const YAML::Node& value, const std::string& origin) {
  set_field(config, key, value, origin, origin);
}

void apply_override(Config& config, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw UserError("--set '" + assignment + "': expected section.key=value");
  }
  const std::string key = assignment.substr(0, eq);
  apply_value(config, key, assignment.substr(eq + 1), "--set " + key);
}

namespace {

UserError bad_key(const std::string& key, const std::string& why) { return UserError("config key '" + key + "': " + why); }

void validate_model(const ModelConfig& m) {
  auto at_least = [](const std::string& key, double v, double low) {
    if (!(v >= low)) throw bad_key(key, fmt::format(low > 0 ? "must be positive, got {}" : "must be >= 0, got {}", v));
  };
  at_least("model.n_layers", m.n_layers, 1);
  at_least("model.d_model", m.d_model, 1);
  at_least("model.n_heads", m.n_heads, 1);
  at_least("model.d_ff", m.d_ff, 0);
  at_least("model.max_seq_len", m.max_seq_len, 1);
  at_least("model.n_kv_heads", m.n_kv_heads, 0);
  at_least("model.head_dim", m.head_dim, 0);
  at_least("model.max_positions", m.max_positions, 0);
  at_least("model.sliding_window", m.sliding_window, 0);
  if (m.head_dim == 0 && (m.d_model % m.n_heads != 0 || (m.d_model / m.n_heads) % 2 != 0)) {
    throw bad_key("model.n_heads", fmt::format("d_model {} must split into {} heads of even width (RoPE)",
                                               m.d_model, m.n_heads));
  }
  if (m.head_dim % 2 != 0) throw bad_key("model.head_dim", fmt::format("{} must be even (RoPE)", m.head_dim));
  if (m.n_kv_heads > 0 && m.n_heads % m.n_kv_heads != 0) {
    throw bad_key("model.n_kv_heads", fmt::format("{} must divide model.n_heads {}", m.n_kv_heads, m.n_heads));
  }
  if (m.dropout < 0 || m.dropout >= 1) throw bad_key("model.dropout", "must be in [0, 1)");
  if (!(m.init_std > 0)) throw bad_key("model.init_std", fmt::format("must be positive, got {}", m.init_std));
  if (!(m.norm_eps > 0)) throw bad_key("model.norm_eps", fmt::format("must be positive, got {}", m.norm_eps));
  if (!(m.rope_factor > 0)) throw bad_key("model.rope_factor", fmt::format("must be positive, got {}", m.rope_factor));
  if (m.rope_scaling == RopeScaling::kLlama3 && !(m.rope_high_freq_factor > m.rope_low_freq_factor)) {
    throw bad_key("model.rope_high_freq_factor", "must exceed model.rope_low_freq_factor");
  }
  at_least("model.rope_original_max_len", m.rope_original_max_len, 1);
  if (m.max_positions > 0 && m.max_seq_len > m.max_positions) {
    throw bad_key("model.max_seq_len", fmt::format("{} exceeds the checkpoint's max_position_embeddings {}",
                                                   m.max_seq_len, m.max_positions));
  }
  if (m.sliding_window > 0 && m.sliding_window < m.max_seq_len) {
    // A window shorter than the rows changes which positions attend to which;
    // masklab's attention has no window, so its results would differ.
    throw bad_key("model.max_seq_len", fmt::format("{} exceeds the checkpoint's sliding_window {}: masklab "
                                                   "attends over whole rows; set model.max_seq_len <= {}",
                                                   m.max_seq_len, m.sliding_window, m.sliding_window));
  }
}

}  // namespace

void validate(const Config& c) {
  auto bad = [](const std::string& key, const std::string& why) {
    return UserError("config key '" + key + "': " + why);
  };
  auto positive = [&](const std::string& key, double v) {
    if (!(v > 0)) throw bad(key, fmt::format("must be positive, got {}", v));
  };
  auto non_negative = [&](const std::string& key, double v) {
    if (!(v >= 0)) throw bad(key, fmt::format("must be >= 0, got {}", v));
  };
  validate_model(c.model);
  non_negative("train.steps", c.train.steps);
  positive("train.batch_size", c.train.batch_size);
  positive("train.grad_accum", c.train.grad_accum);
  positive("train.lr", c.train.lr);
  non_negative("train.min_lr_ratio", c.train.min_lr_ratio);
  non_negative("train.warmup_steps", c.train.warmup_steps);
  non_negative("train.weight_decay", c.train.weight_decay);
  non_negative("train.grad_clip", c.train.grad_clip);
  non_negative("train.eval_every", c.train.eval_every);
  positive("train.log_every", c.train.log_every);
  non_negative("train.threads", c.train.threads);
  non_negative("train.checkpoint_every", c.train.checkpoint_every);
  if (c.train.beta1 < 0 || c.train.beta1 >= 1) throw bad("train.beta1", "must be in [0, 1)");
  if (c.train.beta2 < 0 || c.train.beta2 >= 1) throw bad("train.beta2", "must be in [0, 1)");
  if (!c.data.eval.empty() && c.data.train.empty()) {
    throw bad("data.eval", "needs data.train (the built-in tasks hold out their own examples)");
  }
  if (c.data.train.empty() && c.data.tasks.empty()) {
    throw bad("data.tasks", "no data: list built-in tasks or set data.train");
  }
  positive("data.train_size", c.data.train_size);
  positive("data.eval_size", c.data.eval_size);
  non_negative("data.train_eval_size", c.data.train_eval_size);
  if (c.data.eval_fraction <= 0 || c.data.eval_fraction >= 1) {
    throw bad("data.eval_fraction", "must be in (0, 1)");
  }
  non_negative("data.max_len", c.data.max_len);
  non_negative("data.pack_len", c.data.pack_len);
  if (c.data.pack_len > c.model.max_seq_len) {
    throw bad("data.pack_len", fmt::format("{} exceeds model.max_seq_len {}", c.data.pack_len, c.model.max_seq_len));
  }
  if (c.data.max_len > c.model.max_seq_len) {
    throw bad("data.max_len", fmt::format("{} exceeds model.max_seq_len {}", c.data.max_len,
                                          c.model.max_seq_len));
  }
  non_negative("loss.chunk_size", c.loss.chunk_size);
  non_negative("model.vocab_size", c.model.vocab_size);
  positive("eval.batch_size", c.eval.batch_size);
  non_negative("eval.samples", c.eval.samples);
}

YAML::Node to_yaml_node(const Config& config) {
  YAML::Node root(YAML::NodeType::Map);
  for (const auto& f : fields()) {
    // No sets: config.yaml (and so every run id) stays as it was before eval.sets existed.
    if (f.key == "eval.sets" && config.eval.sets.empty()) continue;
    const size_t dot = f.key.find('.');
    if (dot == std::string::npos) {
      root[f.key] = f.get(config);
    } else {
      root[f.key.substr(0, dot)][f.key.substr(dot + 1)] = f.get(config);
    }
  }
  return root;
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << to_yaml_node(config);
  return std::string(out.c_str()) + "\n";
}

std::vector<ConfigKeyHelp> config_keys() {
  std::vector<ConfigKeyHelp> out;
  for (const auto& f : fields()) out.push_back({f.key, f.type, f.help});
  return out;
}

}  // namespace masklab
