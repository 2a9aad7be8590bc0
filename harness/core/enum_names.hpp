#pragma once
// Enumerated settings by name. Each enum has one name table,
// EnumNames<E>::kNames (canonical name first, then any alias), next to its
// definition; parsing, printing, help and error messages all read it.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/core/errors.hpp"

namespace masklab {

template <class E>
struct EnumNames;

// The canonical name of a value.
template <class E>
std::string_view name_of(E value) {
  for (const auto& [v, name] : EnumNames<E>::kNames) {
    if (v == value) return name;
  }
  return "?";
}

// The value a name (or alias) stands for; nullopt when it names none.
template <class E>
std::optional<E> enum_from_name(std::string_view name) {
  for (const auto& [v, n] : EnumNames<E>::kNames) {
    if (n == name) return v;
  }
  return std::nullopt;
}

// "a | b | c": the canonical names, as help and errors show them.
template <class E>
std::string enum_choices() {
  std::string out;
  std::vector<E> seen;
  for (const auto& [v, name] : EnumNames<E>::kNames) {
    bool alias = false;
    for (E s : seen) alias = alias || s == v;
    if (alias) continue;
    seen.push_back(v);
    out += (out.empty() ? "" : " | ") + std::string(name);
  }
  return out;
}

// The value `name` stands for, or a UserError "<what> expects a | b, got 'name'".
template <class E>
E parse_enum(std::string_view name, const std::string& what) {
  if (const auto value = enum_from_name<E>(name)) return *value;
  throw UserError(what + " expects " + enum_choices<E>() + ", got '" + std::string(name) + "'");
}

}  // namespace masklab
