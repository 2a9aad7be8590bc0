#pragma once
// What every fuzz target shares: the input split into parts, and the rule
// for exceptions. A parser answers bad input with a UserError (one line
// naming the file:line or key, exit 2); any other exception reaching the
// caller would print an unlocated message and exit 1, so it is a finding, as
// are crashes, sanitizer reports, hangs and leaks.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "harness/core/errors.hpp"

namespace masklab::fuzz {

// The input's bytes cut at NUL bytes, which none of the text formats holds:
// "template\0message\0message" gives three parts.
inline std::vector<std::string> split_at_nul(const std::uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      parts.emplace_back();
    } else {
      parts.back() += static_cast<char>(data[i]);
    }
  }
  return parts;
}

template <class Parse>
void expect_user_errors(Parse&& parse) {
  try {
    parse();
  } catch (const UserError&) {
    // the expected answer to bad input
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: %s escaped the parser: %s\n", typeid(e).name(), e.what());
    std::abort();
  }
}

}  // namespace masklab::fuzz
