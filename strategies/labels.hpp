#pragma once
// What a strategy is allowed to see: the role of every label token, never the
// model, the optimizer or the data loader (docs/design.md, invariant 1).
//
// Shape legend: B = examples (or packed rows) in a micro-batch, T = positions.
#include <torch/torch.h>

#include "harness/core/roles.hpp"

namespace masklab {

// The labels of one micro-batch, as a strategy sees them. Every tensor is
// (B, T) on the CPU and describes the token being *predicted* at t, i.e. the
// input token at t+1 (docs/design.md, invariant 2: the label decides).
struct LabelView {
  torch::Tensor role;   // (B, T) uint8, Role values
  torch::Tensor flags;  // (B, T) uint8, TokenFlag bits
  double progress = 0;  // fraction of training done, in [0, 1]
};

}  // namespace masklab
