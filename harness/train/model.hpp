#pragma once
// A decoder-only transformer: token embedding, pre-norm blocks (RMSNorm,
// causal multi-head attention with RoPE, SwiGLU or GELU MLP), a final norm.
// forward() returns hidden states; the LM head is applied by the loss, only
// at the positions that carry weight (docs/design.md, "Style": no loss or
// masking in the model).
//
// Shape legend: B rows, T positions, C d_model, H heads, K key/value heads
// (K divides H; K = H unless grouped-query), D head width (C / H unless
// model.head_dim sets it), F d_ff, V vocabulary.
#include <array>
#include <cstdint>
#include <vector>

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
  explicit AttentionImpl(const ModelConfig& config);
  // q (B, H, T, D), k and v (B, K, T, D) of norm(x), x (B, T, C): after q/k
  // norm and RoPE, before grouped-query attention repeats k and v. Training's
  // forward and the cached forward share it, so a cache holds exactly
  // training's keys.
  std::array<torch::Tensor, 3> project(const torch::Tensor& x, RMSNormImpl& norm, const torch::Tensor& cos,
                                       const torch::Tensor& sin);
  // The output projection of y (N, H*D) -> (N, C).
  torch::Tensor output(const torch::Tensor& y);
  // Attention over norm(x), x (B, T, C) the block's input (the norm and the
  // projection are one step: fused_layers.hpp); cos/sin (B, 1, T, D/2); mask: undefined = plain causal, else
  // attention_layout(segment_ids): a (B, 1, T, T) bool where true means "may
  // attend", or on the CPU the (S, 4) table of example runs. Returns (B, T, C), or
  // (N, C) at `rows` ((N) flat positions into B*T) when given.
  torch::Tensor forward(const torch::Tensor& x, RMSNormImpl& norm, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, const torch::Tensor& rows = {});
  // Incremental decoding: norm(x), x (B, Tn, C), of Tn new positions whose keys and
  // values are written into slots [start, start + Tn) of keys/values
  // (B, K, capacity, D); the queries attend to slots [0, start + Tn) where
  // mask (B, 1, Tn, start + Tn) is true. Returns (B, Tn, C). No dropout.
  torch::Tensor forward_cached(const torch::Tensor& x, RMSNormImpl& norm, const torch::Tensor& cos,
                               const torch::Tensor& sin, const torch::Tensor& mask, torch::Tensor& keys,
                               torch::Tensor& values, int64_t start);
  torch::Tensor qkv;       // (H*D + 2*K*D, C): q, k and v stacked (3C x C by default)
  torch::Tensor qkv_bias;  // (H*D + 2*K*D); undefined without model.attention_bias / model.qkv_bias
  torch::Tensor proj;      // (C, H*D)
  torch::Tensor proj_bias; // (C); undefined without model.attention_bias
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // (D) each, model.qk_norm only
  int64_t n_heads, n_kv_heads, head_dim;
  double dropout;
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t d_model, int64_t d_ff, bool swiglu, double dropout);
  // The MLP of norm(x): (..., C) -> (..., C); in fp32 the norm with the up
  // projection and SwiGLU with the down projection are one step each (fused_layers.hpp).
  torch::Tensor forward(const torch::Tensor& x, RMSNormImpl& norm);
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
  // (B, Tn, C) -> (B, Tn, C) through AttentionImpl::forward_cached.
  torch::Tensor forward_cached(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                               const torch::Tensor& mask, torch::Tensor& keys, torch::Tensor& values, int64_t start);
  RMSNorm norm1;
  Attention attn;
  RMSNorm norm2;
  Mlp mlp;
};
TORCH_MODULE(Block);

// What attention reads of packed rows whose segment_ids (B, T) name each
// position's example (-1: padding): the (B, 1, T, T) bool mask, or on the
// CPU the (S, 4) table of example runs (row, start, length, is_padding),
// attended one example at a time.
torch::Tensor attention_layout(const torch::Tensor& segment_ids);

// block(x, ...) without keeping the block's activations: only its input is
// saved, and backward runs the block again (with the dropout RNG state of
// the first run) before back-propagating through it. Gradients equal the
// plain call's (model.checkpoint_activations).
torch::Tensor checkpointed_block(BlockImpl& block, const torch::Tensor& x, const torch::Tensor& cos,
                                 const torch::Tensor& sin, const torch::Tensor& mask, const torch::Tensor& rows);

// The keys and values of every position decoded so far, per layer, for
// incremental decoding (TransformerImpl::forward_cached). Slots are columns:
// a row's tokens need not start at slot 0 (left padding), and `valid` says
// which slots hold a real token. The buffers are allocated on first use.
struct KVCache {
  explicit KVCache(int64_t capacity_slots) : capacity(capacity_slots) {}
  // Keeps only `rows` ((B') int64 indices into the current rows), in that order:
  // rows that finished decoding stop costing compute.
  void keep_rows(const torch::Tensor& rows);

  std::vector<torch::Tensor> keys, values;  // per layer: (B, K, capacity, D), after RoPE and k norm
  torch::Tensor valid;                      // (B, capacity) bool: slot holds a real token of the row
  int64_t length = 0;                       // slots [0, length) are filled
  int64_t capacity;
};

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

  // Incremental forward: input_ids, position_ids (B, Tn) int64 are the next
  // Tn slots of each row, valid (B, Tn) bool marks real tokens (false: left
  // padding, attended by nothing but itself). Their keys and values are
  // appended to `cache`; each new position attends causally to the valid
  // slots before it. Returns hidden states (B, Tn, C) after the final norm,
  // equal to forward()'s at the same positions of the unpadded sequence.
  // Eval mode only (no dropout).
  torch::Tensor forward_cached(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                               const torch::Tensor& valid, KVCache& cache);

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
// n_kv_heads and head_dim after defaults (n_heads, d_model / n_heads).
int64_t resolved_kv_heads(const ModelConfig& config);
int64_t resolved_head_dim(const ModelConfig& config);

// RoPE inverse frequencies (D/2), fp64, with model.rope_scaling applied as
// transformers' rope initializers do (linear: / factor; llama3: by wavelength).
torch::Tensor rope_inv_freq(const ModelConfig& config);

// Hash of every parameter's bytes, in order: proves two runs start identical.
std::string parameters_hash(const torch::nn::Module& module);

// model.pt: a {name: tensor} dict that python's torch.load reads as well.
void save_parameters(const torch::nn::Module& module, const std::string& path);
// Loads model.init_from into `module`: a model.pt file, or a Hugging Face
// model folder (harness/train/checkpoint.hpp). A missing name or a shape
// mismatch is a UserError naming the parameter.
void load_parameters(torch::nn::Module& module, const std::string& path);

}  // namespace masklab
