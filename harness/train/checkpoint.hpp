#pragma once
// Hugging Face model folders in and out: config.json + safetensors weights,
// mapped to and from masklab's parameter layout (fused q/k/v and
// gate/up, harness/train/model.hpp). Names: embed_tokens, q_proj, k_proj,
// v_proj, o_proj, q_norm, k_norm, gate_proj, up_proj, down_proj,
// input_layernorm, post_attention_layernorm, model.norm, lm_head.
#include <string>

#include <nlohmann/json.hpp>

#include "harness/core/config.hpp"
#include "harness/train/model.hpp"

namespace masklab {

class Tokenizer;

// Loads DIR's weights (model.safetensors or its shards; F32, BF16 and F16,
// converted to fp32) into `model`, built from DIR's config.json (see
// resolve_init_from). Every tensor is accounted for: a missing one, an
// unused one, or a shape that disagrees with the config is a UserError
// naming the tensor (and both shapes).
void load_hf_weights(TransformerImpl& model, const std::string& dir);

// Writes DIR/config.json (save_architecture(), torch_dtype float32) and
// DIR/model.safetensors (fp32) so that transformers' from_pretrained, or
// masklab's model.init_from, reloads the model. DIR is created.
void save_hf_model(const TransformerImpl& model, const std::string& dir, int bos_id, int eos_id);

// metrics.json's "base": {"init_from", "architecture", "hash" (FNV-1a hex of
// the weight files' bytes)} when model.init_from is set, else null.
nlohmann::json base_record(const ModelConfig& model);

}  // namespace masklab
