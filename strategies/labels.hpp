#pragma once
// What a strategy is allowed to see: the role of every label token, never the
// model, the optimizer or the data loader (DESIGN.md, invariant 1).
//
// Shape legend: B = examples (or packed rows) in a micro-batch, T = positions.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <torch/torch.h>

namespace masklab {

// The role of one token. Stored as uint8 in (B, T) tensors; kPad marks a
// position whose label does not exist (padding, the last token of a row).
enum class Role : std::uint8_t {
  kSystem = 0,
  kUser = 1,
  kAssistant = 2,
  kTemplate = 3,  // text the chat template adds around messages
  kEos = 4,       // the end marker that closes an assistant turn
  kPad = 5,
};
constexpr int kNumRoles = 6;

const char* role_name(Role role);
std::optional<Role> role_from_name(std::string_view name);

// Per-token flags stored beside the role.
enum TokenFlag : std::uint8_t {
  kFlagLastTurn = 1,       // belongs to the final assistant turn of its example
  kFlagMessageMasked = 2,  // its message carries "weight": 0 in the data
};

// The labels of one micro-batch, as a strategy sees them. Every tensor is
// (B, T) on the CPU and describes the token being *predicted* at t, i.e. the
// input token at t+1 (invariant 2: the label decides).
struct LabelView {
  torch::Tensor role;   // (B, T) uint8, Role values
  torch::Tensor flags;  // (B, T) uint8, TokenFlag bits
  double progress = 0;  // fraction of training done, in [0, 1]
};

}  // namespace masklab
