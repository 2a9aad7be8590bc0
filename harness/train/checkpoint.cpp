#include "harness/train/checkpoint.hpp"

#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/hashing.hpp"
#include "harness/core/hf_config.hpp"
#include "harness/core/safetensors.hpp"

namespace masklab {
namespace {

// One Hugging Face tensor stored in rows [begin, begin + rows) of a masklab
// parameter (dim 0): q/k/v share one fused matrix, gate/up another.
struct HfPart {
  std::string name;
  int64_t rows;
};

// The Hugging Face tensors behind the masklab parameter `name`, in row order.
std::vector<HfPart> hf_parts(const std::string& name, const TransformerImpl& m) {
  const ModelConfig& c = m.config;
  const int64_t C = c.d_model, F = resolved_d_ff(c), D = resolved_head_dim(c);
  const int64_t q = c.n_heads * D, kv = resolved_kv_heads(c) * D;
  if (name == "embed.weight") return {{"model.embed_tokens.weight", m.vocab_size}};
  if (name == "norm_f.weight") return {{"model.norm.weight", C}};
  if (name == "lm_head") return {{"lm_head.weight", m.vocab_size}};
  const size_t dot = name.find('.', 7);  // "blocks.<i>.<rest>"
  TORCH_CHECK(name.rfind("blocks.", 0) == 0 && dot != std::string::npos, "unmapped parameter ", name);
  const std::string layer = "model.layers." + name.substr(7, dot - 7) + ".";
  const std::string rest = name.substr(dot + 1);
  const std::string attn = layer + "self_attn.";
  if (rest == "norm1.weight") return {{layer + "input_layernorm.weight", C}};
  if (rest == "norm2.weight") return {{layer + "post_attention_layernorm.weight", C}};
  if (rest == "attn.qkv") return {{attn + "q_proj.weight", q}, {attn + "k_proj.weight", kv}, {attn + "v_proj.weight", kv}};
  if (rest == "attn.qkv_bias") return {{attn + "q_proj.bias", q}, {attn + "k_proj.bias", kv}, {attn + "v_proj.bias", kv}};
  if (rest == "attn.proj") return {{attn + "o_proj.weight", C}};
  if (rest == "attn.proj_bias") return {{attn + "o_proj.bias", C}};
  if (rest == "attn.q_norm.weight") return {{attn + "q_norm.weight", D}};
  if (rest == "attn.k_norm.weight") return {{attn + "k_norm.weight", D}};
  if (rest == "mlp.up" && c.mlp == MlpKind::kSwiGLU) return {{layer + "mlp.gate_proj.weight", F}, {layer + "mlp.up_proj.weight", F}};
  if (rest == "mlp.up") return {{layer + "mlp.up_proj.weight", F}};
  if (rest == "mlp.down") return {{layer + "mlp.down_proj.weight", C}};
  TORCH_CHECK(false, "unmapped parameter ", name);
}

torch::ScalarType torch_dtype(TensorDtype d) {
  switch (d) {
    case TensorDtype::kF32: return torch::kFloat;
    case TensorDtype::kBF16: return torch::kBFloat16;
    case TensorDtype::kF16: return torch::kHalf;
  }
  return torch::kFloat;
}

// The tensor's bytes as an fp32 tensor (copied: the mapping may not be aligned).
torch::Tensor to_fp32(const TensorBytes& t) {
  auto out = torch::empty(t.shape, torch::TensorOptions().dtype(torch_dtype(t.dtype)));
  if (t.size > 0) std::memcpy(out.data_ptr(), t.data, t.size);
  return out.to(torch::kFloat);
}

// Names a checkpoint may hold that are not weights: old transformers saved RoPE tables.
bool is_known_buffer(const std::string& name) {
  const std::string suffix = "rotary_emb.inv_freq";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void load_hf_weights(TransformerImpl& model, const std::string& dir) {
  const SafetensorsCheckpoint ckpt(dir);
  const auto& tensors = ckpt.tensors();
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    auto& param = item.value();
    int64_t row = 0;
    for (const auto& part : hf_parts(item.key(), model)) {
      const auto it = tensors.find(part.name);
      if (it == tensors.end()) {
        throw UserError(fmt::format("model.init_from: {} has no tensor '{}' ({}/config.json needs it)", dir,
                                    part.name, dir));
      }
      std::vector<int64_t> expected = param.sizes().vec();
      expected[0] = part.rows;
      if (it->second->shape != expected) {
        throw UserError(fmt::format("model.init_from: tensor '{}' is [{}] in {} but {}/config.json implies [{}]",
                                    part.name, fmt::join(it->second->shape, ", "), dir, dir,
                                    fmt::join(expected, ", ")));
      }
      param.narrow(0, row, part.rows).copy_(to_fp32(*it->second));
      row += part.rows;
      used.insert(part.name);
    }
  }
  for (const auto& [name, t] : tensors) {
    if (used.count(name) || is_known_buffer(name)) continue;
    // Tied models: transformers may still store the head; it must be the embedding.
    if (name == "lm_head.weight" && model.config.tie_embeddings && to_fp32(*t).equal(model.embed->weight)) continue;
    throw UserError(fmt::format("model.init_from: {} holds tensor '{}', which this {} model does not use", dir, name,
                                save_architecture(model.config)));
  }
}

void save_hf_model(const TransformerImpl& model, const std::string& dir, int bos_id, int eos_id) {
  std::filesystem::create_directories(dir);
  std::vector<torch::Tensor> keep;  // owns the bytes the writer reads
  std::vector<TensorToWrite> out;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const auto param = item.value().detach().to(torch::kCPU, torch::kFloat);
    int64_t row = 0;
    for (const auto& part : hf_parts(item.key(), model)) {
      keep.push_back(param.narrow(0, row, part.rows).contiguous());
      out.push_back({part.name, TensorDtype::kF32, keep.back().sizes().vec(), keep.back().data_ptr()});
      row += part.rows;
    }
  }
  write_safetensors(dir + "/model.safetensors", out);
  ModelConfig resolved = model.config;
  resolved.d_ff = static_cast<int>(resolved_d_ff(model.config));
  write_file_atomic(dir + "/config.json",
                    hf_config_json(resolved, static_cast<int>(model.vocab_size), bos_id, eos_id).dump(2) + "\n");
}

nlohmann::json base_record(const ModelConfig& model) {
  if (model.init_from.empty()) return nullptr;
  if (std::filesystem::is_directory(model.init_from)) {
    return {{"init_from", model.init_from},
            {"architecture", model.architecture},
            {"hash", SafetensorsCheckpoint(model.init_from).content_hash()}};
  }
  const std::string bytes = read_file_for("model.init_from", model.init_from);
  return {{"init_from", model.init_from}, {"architecture", "masklab model.pt"}, {"hash", Fnv1a().add(bytes.data(), bytes.size()).hex()}};
}

}  // namespace masklab
