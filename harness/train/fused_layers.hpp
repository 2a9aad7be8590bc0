#pragma once
// Pieces of a block whose backward is written out by hand, so that what they
// keep for backward is only what cannot be recomputed for a pass or two of
// elementwise work (docs/performance.md, "Where the memory goes at 135M").
// Each computes the same forward, operation for operation, as the composed
// code it replaces, and tests/train/test_fused_layers.cpp checks each
// output and gradient against LibTorch's autograd through composed code.
//
// Shape legend: N rows (tokens), C d_model, O output width, F d_ff,
// B batch rows, T positions, H query heads, K key/value heads, D head width.

namespace at {
class Tensor;
}
namespace torch {
using at::Tensor;
}

namespace masklab {

// RMSNorm, then a linear layer without bias: (x · rstd(x) · gain) weightᵀ.
// x (..., C), gain (C), weight (O, C) -> (..., O). Keeps x and one rstd per
// row; the normalized x (the weight gradient's input) is recomputed in
// backward, where autograd would keep it twice (the norm's output and the
// projection's input) besides the norm's intermediates.
torch::Tensor rms_norm_linear(const torch::Tensor& x, const torch::Tensor& gain, const torch::Tensor& weight,
                              double eps);

// SwiGLU, then the down projection: (silu(a) ⊙ u) weightᵀ where
// gate_up = [a | u]. gate_up (..., 2F), weight (C, F) -> (..., C). Keeps
// gate_up only; silu(a) ⊙ u is recomputed in backward.
torch::Tensor swiglu_linear(const torch::Tensor& gate_up, const torch::Tensor& weight);

// Causal attention within each example run of a packed batch (the CPU's
// attention on both LibTorch versions: Σ L² scores instead of T² per row, no mask, the G query
// heads of a key/value head as one batch entry of G·L rows, the scale and
// the causal bias inside the score GEMM). Without dropout it keeps q, k, v
// and the output for backward instead of every run's (H, L, L)
// probabilities, recomputing one run's at a time; with dropout it keeps
// them. q (B, H, T, D), k and v (B, K, T, D), runs attention_layout's
// (S, 4) table -> (B*T, H*D), zero at padding.
torch::Tensor attend_runs(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const torch::Tensor& runs, double dropout);

}  // namespace masklab
