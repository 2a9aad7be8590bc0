#pragma once
// The loss: a pure function of (hidden states, LM head, targets, weights,
// normalization) -> scalar (docs/design.md, invariant 1). Strategies make the weights; this
// file turns them into step-wide coefficients and computes Σ coeff·NLL with
// the LM head applied only at rows that carry weight.
//
// Shape legend: B rows, T positions, N selected positions, C d_model, V vocab.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "harness/core/config.hpp"

namespace masklab {

// Turns the raw (B, T) weights of every micro-batch of one optimizer step
// into loss coefficients such that Σ coeff·ℓ over the whole step is the
// step's loss. Denominators are summed over all micro-batches (docs/design.md, invariant 5),
// so accumulating 4 micro-batches of B equals one batch of 4B.
// segment_ids (B, T) say which example each position belongs to (-1: none).
// A step whose weights are all zero gets all-zero coefficients.
// `global_denominator`, when given, replaces step_denominator() of these
// micro-batches: a data-parallel rank holds only its share of the step and
// passes the denominator summed over every rank, so that its coefficients are
// those of the whole step.
std::vector<torch::Tensor> normalize_step(const std::vector<torch::Tensor>& weights,
                                          const std::vector<torch::Tensor>& segment_ids,
                                          Normalization normalization,
                                          std::optional<double> global_denominator = std::nullopt);

// The denominator normalize_step divides by, over these micro-batches: Σw
// (weight_sum), #{w>0} (token_count) or the number of examples with positive
// weight (sequence). Additive over disjoint parts of a step.
double step_denominator(const std::vector<torch::Tensor>& weights, const std::vector<torch::Tensor>& segment_ids,
                        Normalization normalization);

// The positions that carry loss, gathered on the CPU so that the device
// never has to find them (no host sync).
struct LossRows {
  torch::Tensor index;    // (N) int64 flat positions into B*T
  torch::Tensor targets;  // (N) int64
  torch::Tensor coeff;    // (N) float32
};
LossRows select_loss_rows(const torch::Tensor& coeff, const torch::Tensor& targets);

// Σ_i coeff_i · (logsumexp(h_i Wᵀ) − (h_i Wᵀ)[y_i]) for hidden (N, C), head W
// (V, C). The logits exist one chunk of rows at a time, forward and backward
// (gradients are formed chunk by chunk during the forward pass), so memory is
// bounded by chunk_size × V rather than N × V.
torch::Tensor weighted_nll(const torch::Tensor& hidden, const torch::Tensor& head,
                           const torch::Tensor& targets, const torch::Tensor& coeff, int64_t chunk_size);

// Rows per chunk: `requested` when positive, else as many as keep one
// chunk's fp32 logits within 32 MiB (8192 rows at a 1k vocabulary, 256 at 32k).
int64_t resolve_chunk_size(int64_t requested, int64_t vocab_size);

// Per-row NLL (nats) and whether the argmax is the target, without gradients.
struct TokenScores {
  torch::Tensor nll;      // (N) float32
  torch::Tensor correct;  // (N) bool
};
TokenScores score_tokens(const torch::Tensor& hidden, const torch::Tensor& head, const torch::Tensor& targets,
                         int64_t chunk_size);

}  // namespace masklab
