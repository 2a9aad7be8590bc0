#pragma once
// The string helpers every folder shares: ASCII case folding (strategy and
// role names are case-insensitive), trimming and splitting of specs.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace masklab {

inline std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// `s` without leading and trailing whitespace.
inline std::string trim(std::string_view s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return std::string(s.substr(begin, end - begin));
}

// Splits at every `sep` and trims each part; "a, b," gives {"a", "b", ""}.
inline std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return parts;
}

}  // namespace masklab
