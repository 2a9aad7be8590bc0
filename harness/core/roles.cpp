#include "harness/core/roles.hpp"

#include "harness/core/text.hpp"

#include <array>
#include <cctype>
#include <string>

namespace masklab {
namespace {
constexpr std::array<const char*, kNumRoles> kRoleNames = {
    "system", "user", "assistant", "template", "eos", "pad"};
}

const char* role_name(Role role) { return kRoleNames.at(static_cast<int>(role)); }

std::optional<Role> role_from_name(std::string_view name) {
  const std::string lower = to_lower(name);
  for (int i = 0; i < kNumRoles; ++i) {
    if (lower == kRoleNames[i]) return static_cast<Role>(i);
  }
  return std::nullopt;
}

}  // namespace masklab
