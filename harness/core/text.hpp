#pragma once
// The string helpers every folder shares: ASCII case folding (strategy and
// role names are case-insensitive), trimming and splitting of specs.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
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

// Checks that `s` is valid UTF-8; returns the byte offset of the first bad
// sequence, or nullopt. Data lines and config strings (paths, names) are read
// as UTF-8 text, and a bad byte is an error that names where it is.
inline std::optional<size_t> find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int extra;
    std::uint32_t code;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xe0) == 0xc0) { extra = 1; code = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { extra = 2; code = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { extra = 3; code = c & 0x07; }
    else return i;
    if (i + extra >= s.size()) return i;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return i;
      code = (code << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid too.
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += extra + 1;
  }
  return std::nullopt;
}

// "invalid JSON: number overflow parsing '1e400'": the JSON library's
// message (`what`) without its "[json.exception.out_of_range.406] " tag, for
// every reader that reports a bad JSON file or line. A number too large for
// a double is an out_of_range error, not a parse_error, so readers catch
// the library's base exception.
inline std::string invalid_json(std::string_view what) {
  const size_t tag_end = what.find("] ");
  return "invalid JSON: " + std::string(tag_end == std::string_view::npos ? what : what.substr(tag_end + 2));
}

}  // namespace masklab
