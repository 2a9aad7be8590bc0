#pragma once
// A decoder-only transformer: token embedding, pre-norm blocks (RMSNorm,
// causal multi-head attention with RoPE, SwiGLU or GELU MLP), a final norm.
// forward() returns hidden states; the LM head is applied by the loss, only
// at the positions that carry weight (docs/design.md, "Style": no loss or
// masking in the model).
//
// Shape legend: B rows, T positions, C d_model, H heads, D = C / H head width,
// F d_ff, V vocabulary.
#include <cstdint>

#include <torch/torch.h>

#include "harness/core/config.hpp"

namespace masklab {

// y = x W^T with W cast to x's dtype: parameters stay fp32 (the master copy)
// while activations run in the compute dtype (bf16 on CUDA).
torch::Tensor cast_linear(const torch::Tensor& x, const torch::Tensor& weight);

struct RMSNormImpl : torch::nn::Module {
  explicit RMSNormImpl(int64_t dim, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);  // (..., C) -> (..., C), computed in fp32
  torch::Tensor weight;                           // (C)
  double eps;
};
TORCH_MODULE(RMSNorm);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t d_model, int64_t n_heads, double dropout);
  // x (B, T, C); cos/sin (B, 1, T, D/2); mask: undefined = plain causal, else
  // (B, 1, T, T) bool where true means "may attend". Returns (B, T, C), or
  // (N, C) at `rows` ((N) flat positions into B*T) when given.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, const torch::Tensor& rows = {});
  torch::Tensor qkv;   // (3C, C)
  torch::Tensor proj;  // (C, C)
  int64_t n_heads;
  double dropout;
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t d_model, int64_t d_ff, bool swiglu, double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, C) -> (B, T, C)
  torch::Tensor up;    // (2F, C) for SwiGLU (gate and value stacked), (F, C) for GELU
  torch::Tensor down;  // (C, F)
  bool swiglu;
  double dropout;
};
TORCH_MODULE(Mlp);

struct BlockImpl : torch::nn::Module {
  BlockImpl(const ModelConfig& config, int64_t d_ff);
  // (B, T, C) -> (B, T, C), or -> (N, C) at `rows` only (output projection and MLP there alone).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, const torch::Tensor& rows = {});
  RMSNorm norm1;
  Attention attn;
  RMSNorm norm2;
  Mlp mlp;
};
TORCH_MODULE(Block);

struct TransformerImpl : torch::nn::Module {
  TransformerImpl(const ModelConfig& config, int64_t vocab_size);

  // input_ids, position_ids (B, T) int64; segment_ids (B, T) int64 when rows
  // are packed (block-diagonal attention), undefined otherwise.
  // Returns hidden states (B, T, C) in the compute dtype, after the final norm.
  // With `rows` ((N) flat positions into B*T), returns only those (N, C), and
  // the last block computes its output projection and MLP only there: what
  // completion-only training needs, without the prompt's share.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                        const torch::Tensor& segment_ids = {}, const torch::Tensor& rows = {});

  // (V, C): the embedding matrix when tied.
  torch::Tensor head_weight() const;

  // Deterministic init from `seed` on a private CPU generator; call before
  // moving to a device so that CPU and CUDA runs start identical.
  void initialize(std::uint64_t seed);

  // Activations' dtype: fp32 on CPU, bf16 on CUDA. Parameters stay fp32.
  void set_compute_dtype(torch::ScalarType dtype) { compute_dtype = dtype; }

  ModelConfig config;
  int64_t vocab_size;
  torch::nn::Embedding embed{nullptr};
  torch::nn::ModuleList blocks;
  RMSNorm norm_f{nullptr};
  torch::Tensor lm_head;  // (V, C); undefined when tied
  torch::Tensor rope_cos, rope_sin;  // (max_seq_len, D/2) buffers
  torch::ScalarType compute_dtype = torch::kFloat;
};
TORCH_MODULE(Transformer);

// d_ff after defaults: 4C for GELU, 8C/3 rounded up to a multiple of 16 for SwiGLU.
int64_t resolved_d_ff(const ModelConfig& config);

// Hash of every parameter's bytes, in order: proves two runs start identical.
std::string parameters_hash(const torch::nn::Module& module);

// model.pt: a {name: tensor} dict that python's torch.load reads as well.
void save_parameters(const torch::nn::Module& module, const std::string& path);
// Loads model.pt into `module`; a missing name or a shape mismatch is a
// UserError naming the parameter.
void load_parameters(torch::nn::Module& module, const std::string& path);

}  // namespace masklab
