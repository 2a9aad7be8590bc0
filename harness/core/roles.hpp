#pragma once
// Token roles and flags: what every token of an example is, independent of
// any tensor library so that data code compiles without LibTorch.
#include <cstdint>
#include <optional>
#include <string_view>

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

}  // namespace masklab
