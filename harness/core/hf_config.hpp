#pragma once
// Hugging Face config.json <-> ModelConfig, for LLaMA-family checkpoints:
// LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM,
// and MasklabForCausalLM (masklab's own models that no transformers class
// expresses, e.g. model.mlp=gelu). LibTorch-free: the train command and the
// sweep expansion both resolve model.init_from through resolve_init_from(),
// so a saved per-run config.yaml carries the resolved architecture.
#include <string>

#include <nlohmann/json.hpp>

#include "harness/core/config.hpp"

namespace masklab {

// The longest training row a checkpoint gets when model.max_seq_len is not
// set: its max_position_embeddings, capped here (a RoPE table and data
// length, not a shape: longer rows cost memory the small runs never need).
constexpr int kDefaultMaxSeqLenCap = 2048;

// True when `path` is a folder holding config.json (a Hugging Face model).
bool is_hf_model_dir(const std::string& path);

// Reads DIR/config.json into a ModelConfig: every shape key, vocab_size,
// max_positions, sliding_window and architecture; max_seq_len =
// min(max_position_embeddings, kDefaultMaxSeqLenCap). Settings config.json
// does not hold (dropout, init_std, ...) keep their defaults. An unsupported
// architecture, model_type, hidden_act, rope scaling or dtype is a UserError
// naming it.
ModelConfig read_hf_config(const std::string& dir);

// When model.init_from is a Hugging Face model folder: model.* comes from
// its config.json. A model.* key set explicitly (Config::explicit_keys) that
// disagrees is a UserError naming both values; model.max_seq_len may be set
// up to max_position_embeddings. When data.tokenizer was not set and the
// folder holds tokenizer.json or tokenizer.model, data.tokenizer becomes the
// folder. A model.pt path, or no init_from, leaves the config as it is.
void resolve_init_from(Config& config);

// The architecture a model is saved under: model.architecture when it came
// from a checkpoint, else LlamaForCausalLM, Qwen2ForCausalLM (q/k/v biases)
// or Qwen3ForCausalLM (q/k norm) when one of them expresses it, else
// MasklabForCausalLM.
std::string save_architecture(const ModelConfig& model);

// config.json for a model of `vocab_size` rows, saved as save_architecture()
// with torch_dtype float32: what transformers (or, for MasklabForCausalLM,
// read_hf_config) needs to rebuild it.
nlohmann::json hf_config_json(const ModelConfig& model, int vocab_size, int bos_id, int eos_id);

}  // namespace masklab
