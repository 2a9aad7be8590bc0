#pragma once
// The run's configuration: one typed struct, filled once, in one place
// (config.cpp), from YAML files and `--set section.key=value` overrides.
// Unknown keys and wrong types are errors that name the key. The resolved
// config is saved with every run (config.yaml) and hashed into sweep run ids.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "harness/core/enum_names.hpp"

namespace YAML {
class Node;
}

namespace masklab {

// ---- Enumerated settings ----
// Each has one name table (harness/core/enum_names.hpp); config.cpp parses
// the key through it once, and errors list the canonical names.

enum class MlpKind { kSwiGLU, kGelu };
enum class RopeScaling { kNone, kLinear, kLlama3 };  // RoPE frequency scaling, as transformers computes it
enum class DeviceKind { kAuto, kCpu, kCuda };
enum class DataFormat { kAuto, kPromptCompletion, kChat, kAlpaca, kText };  // JSONL formats
enum class Truncation { kLeft, kSkip };
enum class EvalSetKind { kNll, kGenerate, kChoice };  // eval.sets[i].kind
enum class Normalization {
  kWeightSum,   // Σ w·ℓ / Σ w
  kTokenCount,  // Σ w·ℓ / #{w > 0}
  kSequence,    // mean over examples of (Σ_t w·ℓ / Σ_t w), examples with Σ w > 0
};

template <>
struct EnumNames<MlpKind> {
  static constexpr std::array<std::pair<MlpKind, std::string_view>, 2> kNames{
      {{MlpKind::kSwiGLU, "swiglu"}, {MlpKind::kGelu, "gelu"}}};
};
template <>
struct EnumNames<RopeScaling> {
  static constexpr std::array<std::pair<RopeScaling, std::string_view>, 3> kNames{
      {{RopeScaling::kNone, "none"}, {RopeScaling::kLinear, "linear"}, {RopeScaling::kLlama3, "llama3"}}};
};
template <>
struct EnumNames<DeviceKind> {
  static constexpr std::array<std::pair<DeviceKind, std::string_view>, 3> kNames{
      {{DeviceKind::kAuto, "auto"}, {DeviceKind::kCpu, "cpu"}, {DeviceKind::kCuda, "cuda"}}};
};
template <>
struct EnumNames<DataFormat> {
  static constexpr std::array<std::pair<DataFormat, std::string_view>, 6> kNames{
      {{DataFormat::kAuto, "auto"},
       {DataFormat::kPromptCompletion, "prompt_completion"},
       {DataFormat::kChat, "chat"},
       {DataFormat::kAlpaca, "alpaca"},
       {DataFormat::kText, "text"},
       {DataFormat::kChat, "messages"}}};
};
template <>
struct EnumNames<Truncation> {
  static constexpr std::array<std::pair<Truncation, std::string_view>, 2> kNames{
      {{Truncation::kLeft, "left"}, {Truncation::kSkip, "skip"}}};
};
template <>
struct EnumNames<EvalSetKind> {
  static constexpr std::array<std::pair<EvalSetKind, std::string_view>, 3> kNames{
      {{EvalSetKind::kNll, "nll"}, {EvalSetKind::kGenerate, "generate"}, {EvalSetKind::kChoice, "choice"}}};
};
template <>
struct EnumNames<Normalization> {
  static constexpr std::array<std::pair<Normalization, std::string_view>, 3> kNames{
      {{Normalization::kWeightSum, "weight_sum"},
       {Normalization::kTokenCount, "token_count"},
       {Normalization::kSequence, "sequence"}}};
};

// train.device: auto | cpu | cuda | cuda:N.
struct DeviceSetting {
  DeviceKind kind = DeviceKind::kAuto;
  int index = 0;  // cuda:N; 0 for plain "cuda"
  bool operator==(const DeviceSetting& o) const { return kind == o.kind && index == o.index; }
};
std::string device_name(const DeviceSetting& device);                    // "cuda:1"
std::optional<DeviceSetting> parse_device(std::string_view name);        // nullopt if invalid

struct ModelConfig {
  int n_layers = 2;              // transformer blocks
  int d_model = 128;             // residual width
  int n_heads = 4;               // attention heads (d_model must divide evenly)
  int d_ff = 0;                  // MLP hidden width; 0 = 4*d_model (gelu) or 8/3*d_model (swiglu)
  int max_seq_len = 128;         // longest row the model accepts (RoPE table size)
  MlpKind mlp = MlpKind::kSwiGLU;
  bool tie_embeddings = true;    // LM head shares the token embedding matrix
  double dropout = 0.0;          // on attention output and MLP output
  double rope_theta = 10000.0;   // RoPE base
  double init_std = 0.02;        // std of normal init; output projections are scaled by 1/sqrt(2*n_layers)
  std::string init_from;         // model.pt, or a Hugging Face model folder (config.json + safetensors); "" = random init
  int vocab_size = 0;            // embedding rows; 0 = the tokenizer's; larger pads the vocabulary
  // Shapes of pretrained LLaMA-family models (harness/core/hf_config.hpp
  // fills them from config.json); the defaults keep masklab's own model.
  int n_kv_heads = 0;            // key/value heads (grouped-query attention); 0 = n_heads
  int head_dim = 0;              // width of one head; 0 = d_model / n_heads
  bool attention_bias = false;   // biases on the q, k, v and output projections (Llama's attention_bias)
  bool qkv_bias = false;         // biases on q, k and v only (Qwen2)
  bool qk_norm = false;          // RMSNorm over head_dim on q and k before RoPE (Qwen3)
  double norm_eps = 1e-6;        // RMSNorm epsilon
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 8.0;      // linear and llama3: frequencies divided by this
  double rope_low_freq_factor = 1.0;   // llama3
  double rope_high_freq_factor = 4.0;  // llama3
  int rope_original_max_len = 8192;    // llama3: original_max_position_embeddings
  int max_positions = 0;         // the checkpoint's max_position_embeddings; 0 = max_seq_len
  int sliding_window = 0;        // the checkpoint's attention window; 0 = none (must cover max_seq_len)
  std::string architecture;      // Hugging Face architecture the weights come from; "" = masklab's own
  bool checkpoint_activations = false;  // recompute each block in backward instead of keeping its activations
};

struct TrainConfig {
  int steps = 1500;              // optimizer steps
  int batch_size = 32;           // examples per micro-batch
  int grad_accum = 1;            // micro-batches per optimizer step
  double lr = 3e-3;              // peak learning rate
  double min_lr_ratio = 0.1;     // cosine decays to lr * min_lr_ratio
  int warmup_steps = 50;         // linear warmup from 0
  double weight_decay = 0.1;     // AdamW; never on norms, biases or embeddings' norms
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double grad_clip = 1.0;        // max global grad norm; 0 = off
  int eval_every = 250;          // steps between eval points on the curve; 0 = only at the end
  int log_every = 50;            // steps between log lines (non-terminal output)
  DeviceSetting device;          // auto | cpu | cuda | cuda:N
  int threads = 0;               // intra-op threads; 0 = all cores
  int checkpoint_every = 0;      // steps between checkpoints in RUN_DIR/checkpoint/; 0 = only on SIGTERM/SIGUSR1
  bool keep_checkpoints = false; // keep every checkpoint, and keep them after the run finishes
};

struct DataConfig {
  std::vector<std::string> tasks = {"lookup", "expand", "reverse", "sort"};  // built-in tasks
  int train_size = 2000;         // training examples per built-in task
  int eval_size = 64;            // held-out examples per built-in task
  int train_eval_size = 64;      // fixed train subset per task for the generalization gap
  int seed = 1234;               // data generation seed; independent of the run seed
  std::string train;             // prompt/completion JSONL instead of built-in tasks
  std::string eval;              // held-out JSONL; "" = split from train by eval_fraction
  double eval_fraction = 0.1;    // seeded split when data.eval is empty
  DataFormat format = DataFormat::kAuto;  // auto-detected from the first line
  std::string template_name = "plain";  // chat template (key: data.template)
  std::string tokenizer = "byte";       // byte | SentencePiece .model | tokenizer.json | tokenizer folder
  int max_len = 0;               // longest example in tokens; 0 = model.max_seq_len
  Truncation truncation = Truncation::kLeft;  // left: drop prompt tokens from the left | skip
  bool skip_invalid = false;     // skip (and count) malformed lines instead of failing
  bool packing = true;           // pack examples into rows (block-diagonal attention); false = pad per batch
  bool bucketing = false;        // without packing: batches of similar lengths (order still seed-only)
  int pack_len = 0;              // packed row length; 0 = the longest example of the micro-batch, rounded up to 8
};

struct LossConfig {
  Normalization normalization = Normalization::kWeightSum;
  int chunk_size = 0;            // LM-head rows per cross-entropy chunk; 0 = as many as fit 32 MiB of logits
};

// One evaluation set (eval.sets[i]), scored once after the final evaluation
// (harness/train/set_eval.cpp). Keys and errors: harness/core/eval_set_config.cpp.
struct EvalSetConfig {
  std::string name;              // [a-z][a-z0-9_]*: metrics.json eval.<name>
  EvalSetKind kind = EvalSetKind::kNll;
  std::string task;              // a built-in task's held-out examples; "all" = the run's held-out set
  std::string file;              // or a JSONL file (exactly one of task / file)
  std::string template_name;     // chat template (key: template); "" = data.template
  int max_examples = 0;          // the first N examples; 0 = all
  std::vector<std::string> wordings = {"{prompt}"};  // user-prompt paraphrases; "{prompt}" = the original
  // generate only (harness/train/generate.hpp DecodeOptions):
  int max_new_tokens = 32;
  double temperature = 0;        // 0 = greedy
  double top_p = 1.0;
  int seed = 1;                  // sampled decoding's seed
  std::vector<std::string> stop;
  std::string origin;            // "exp.yaml:14" where the set was written, for data errors; not saved
};

struct EvalConfig {
  int batch_size = 64;           // examples per eval forward pass
  int samples = 2;               // held-out examples per task greedy-decoded into samples.jsonl
  std::vector<EvalSetConfig> sets;  // extra sets, scored at the end only; none = the held-out set alone
};

struct Config {
  // Keys a config file or --set gave explicitly (not a setting; never saved):
  // resolve_init_from() checks them against the checkpoint's config.json.
  std::vector<std::string> explicit_keys;
  bool was_set(const std::string& key) const;

  std::string strategy = "completion_only";  // strategy spec, see `masklab strategies`
  int seed = 1;                  // run seed: init, batch order, dropout
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
  LossConfig loss;
  EvalConfig eval;
};

// Applies a YAML mapping ({section: {key: value}} or {"section.key": value})
// on top of `config`. `origin` names the source in errors ("exp.yaml").
void apply_yaml(Config& config, const YAML::Node& node, const std::string& origin);
void load_config_file(Config& config, const std::string& path);
// Applies one "section.key=value" override; the value is parsed as YAML.
void apply_override(Config& config, const std::string& assignment);
void apply_value(Config& config, const std::string& key, const std::string& value_text,
                 const std::string& origin);
// Sets one key from a YAML node (scalar or list); `origin` names the source in errors.
void apply_node(Config& config, const std::string& key, const YAML::Node& value, const std::string& origin);

// eval.sets from YAML (a list of mappings) and back (eval_set_config.cpp).
// `source` names the file (or "--set eval.sets"); each error names
// "source:line: eval.sets[i].key: reason".
std::vector<EvalSetConfig> parse_eval_sets(const YAML::Node& node, const std::string& source);
YAML::Node eval_sets_node(const std::vector<EvalSetConfig>& sets);
// The names metrics.json's "eval" object already holds for the default held-out set.
const std::vector<std::string>& held_out_metric_names();

// Checks ranges and cross-field rules (d_model % n_heads, pack_len <= max_seq_len, ...).
void validate(const Config& config);

// The resolved config as YAML, every key present, in a fixed order.
std::string to_yaml(const Config& config);
YAML::Node to_yaml_node(const Config& config);

// Every key with its one-line description, for `masklab train --help`.
struct ConfigKeyHelp {
  std::string key;
  std::string type;
  std::string help;
};
std::vector<ConfigKeyHelp> config_keys();

}  // namespace masklab
