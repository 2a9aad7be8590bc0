#include "harness/data/pre_tokenizer.hpp"

#include <algorithm>
#include <cstdlib>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <nlohmann/json.hpp>

#include "harness/core/errors.hpp"

namespace masklab {
namespace {

using json = nlohmann::json;

// The length of the UTF-8 sequence that starts with byte `lead` (1 for a stray byte).
size_t utf8_length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

std::string type_of(const json& spec) {
  return spec.is_object() && spec.contains("type") && spec["type"].is_string() ? spec["type"].get<std::string>() : "?";
}

}  // namespace

// ---------------------------------------------------------------- Regex

Regex::Regex(const std::string& pattern, bool literal, const std::string& where) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  // PCRE2_LITERAL admits no UCP, which a plain string does not need.
  const std::uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error,
                                   &error_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw UserError(where + ": pattern '" + pattern + "' does not compile at offset " + std::to_string(error_offset) +
                    ": " + reinterpret_cast<const char*>(message));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // interpreted matching when JIT is unavailable
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::uint32_t base, std::vector<TextRange>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  // One match block per thread and pattern use: creating it per call is the
  // dominant cost on short words.
  thread_local pcre2_match_data* match = pcre2_match_data_create(4, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), pos, 0, match, nullptr);
    if (rc < 0) break;  // PCRE2_ERROR_NOMATCH, or a resource limit: the rest is one unmatched span
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match);
    if (ov[1] == ov[0]) {  // an empty match: step over one character, as the `tokenizers` library does
      pos = ov[0] + utf8_length(static_cast<unsigned char>(text[ov[0]]));
      continue;
    }
    out.push_back({base + static_cast<std::uint32_t>(ov[0]), base + static_cast<std::uint32_t>(ov[1])});
    pos = ov[1];
  }
}

// ---------------------------------------------------------------- NFC

namespace {

// Decodes the code point at text[i] (a stray byte reads as itself).
std::int32_t code_point_at(std::string_view text, size_t i, size_t* length) {
  utf8proc_int32_t cp = -1;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                                  static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
  *length = n > 0 ? static_cast<size_t>(n) : 1;
  return n > 0 ? cp : static_cast<unsigned char>(text[i]);
}

// Whether `cp` can join an earlier character under NFC: it has a nonzero
// combining class (canonical reordering), composes as the second element
// of a pair, or is a Hangul vowel/trailing jamo.
bool joins_previous(std::int32_t cp) {
  if ((cp >= 0x1161 && cp <= 0x1175) || (cp >= 0x11A8 && cp <= 0x11C2)) return true;
  const utf8proc_property_t* p = utf8proc_get_property(cp);
  return p->combining_class != 0 || (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000);
}

// A safe point of UAX #15: NFC of the text before it does not depend on
// what follows. The character's canonical decomposition must start with a
// character that joins nothing before it.
bool nfc_safe_before(std::int32_t cp) {
  if (cp < 0x80) return true;
  if (joins_previous(cp)) return false;
  utf8proc_int32_t decomposed[8];
  int last_boundclass = 0;
  const auto n = utf8proc_decompose_char(cp, decomposed, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
  return n <= 0 || !joins_previous(decomposed[0]);
}

// The canonical decomposition of `cp` (itself when it has none).
std::vector<std::int32_t> decomposition(std::int32_t cp) {
  utf8proc_int32_t decomposed[8];
  int last_boundclass = 0;
  const auto n = utf8proc_decompose_char(cp, decomposed, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
  if (n <= 0) return {cp};
  return {decomposed, decomposed + n};
}

// One code point of the chunk's canonical decomposition, with the change
// in length `tokenizers` records for it: 0 for the first of a character's
// decomposition, +1 for each further one.
struct Decomposed {
  std::int32_t cp;
  int change;
  bool used;
};

// Aligns each character of `normalized` (NFC of in.text[begin, end)) as
// `tokenizers`' NormalizedString::transform does. The decomposed code points
// keep their changes through canonical reordering; a composed character's
// change is the sum of its parts' minus the parts it absorbed. Walking the
// output, a change c <= 0 consumes 1 - c original characters and is aligned
// to the first; c > 0 (inserted) is aligned to the last one consumed.
void align_nfc_chunk(const AlignedText& in, size_t begin, size_t end, std::string_view normalized, AlignedText& out) {
  const std::string_view chunk(in.text.data() + begin, end - begin);
  std::vector<std::uint32_t> starts;  // each original character's offset
  std::vector<Decomposed> nfd;
  for (size_t p = 0; p < chunk.size();) {
    size_t length = 1;
    const auto parts = decomposition(code_point_at(chunk, p, &length));
    for (size_t j = 0; j < parts.size(); ++j) nfd.push_back({parts[j], j == 0 ? 0 : 1, false});
    starts.push_back(in.origin[begin + p]);
    p += length;
  }
  const auto ccc = [](std::int32_t cp) { return utf8proc_get_property(cp)->combining_class; };
  for (size_t i = 1; i < nfd.size(); ++i) {  // canonical ordering: a stable sort of each run of marks
    for (size_t j = i; j > 0 && ccc(nfd[j].cp) != 0 && ccc(nfd[j - 1].cp) > ccc(nfd[j].cp); --j) std::swap(nfd[j], nfd[j - 1]);
  }
  size_t consumed = 0;
  for (size_t i = 0; i < normalized.size();) {
    size_t length = 1;
    const auto parts = decomposition(code_point_at(normalized, i, &length));
    int change = 1 - static_cast<int>(parts.size());
    for (const std::int32_t part : parts) {
      const auto it = std::find_if(nfd.begin(), nfd.end(), [&](const Decomposed& d) { return !d.used && d.cp == part; });
      if (it == nfd.end()) continue;
      it->used = true;
      change += it->change;
    }
    const size_t at = change <= 0 ? consumed : (consumed > 0 ? consumed - 1 : 0);
    out.origin.insert(out.origin.end(), length, starts[std::min(at, starts.size() - 1)]);
    if (change <= 0) consumed += static_cast<size_t>(1 - change);
    i += length;
  }
}

// NFC of one chunk between safe points.
void append_nfc_chunk(const AlignedText& in, size_t begin, size_t end, AlignedText& out) {
  const std::string_view chunk(in.text.data() + begin, end - begin);
  utf8proc_uint8_t* normalized = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(chunk.data()),
                              static_cast<utf8proc_ssize_t>(chunk.size()), &normalized,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) {  // invalid UTF-8: kept as it is
    out.text.append(chunk);
    out.origin.insert(out.origin.end(), in.origin.begin() + begin, in.origin.begin() + end);
    return;
  }
  const std::string_view text(reinterpret_cast<const char*>(normalized), static_cast<size_t>(n));
  out.text.append(text);
  if (text == chunk) out.origin.insert(out.origin.end(), in.origin.begin() + begin, in.origin.begin() + end);
  else align_nfc_chunk(in, begin, end, text, out);
  std::free(normalized);
}

}  // namespace

Normalizer::Normalizer(const json& spec, const std::string& where) {
  if (spec.is_null()) return;
  const std::string type = type_of(spec);
  if (type == "NFC") {
    nfc_ = true;
  } else if (type == "Sequence" && spec.contains("normalizers") && spec["normalizers"].is_array()) {
    for (const auto& step : spec["normalizers"]) {
      if (type_of(step) != "NFC") throw UserError(where + ": normalizer '" + type_of(step) + "' is not supported (NFC is)");
      nfc_ = true;
    }
  } else {
    throw UserError(where + ": normalizer '" + type + "' is not supported (null, NFC and a Sequence of NFC are)");
  }
}

AlignedText Normalizer::apply(const AlignedText& in) const {
  if (!nfc_) return in;
  bool ascii = true;
  for (unsigned char c : in.text) ascii = ascii && c < 0x80;
  if (ascii) return in;
  AlignedText out;
  out.text.reserve(in.text.size());
  out.origin.reserve(in.text.size());
  size_t chunk = 0;  // the current chunk's first byte
  for (size_t i = 0; i < in.text.size();) {
    size_t length = 1;
    const std::int32_t cp = code_point_at(in.text, i, &length);
    if (i > chunk && nfc_safe_before(cp)) {
      append_nfc_chunk(in, chunk, i, out);
      chunk = i;
    }
    i += length;
  }
  if (chunk < in.text.size()) append_nfc_chunk(in, chunk, in.text.size(), out);
  return out;
}

// ---------------------------------------------------------------- pre-tokenizer

namespace {

// GPT-2's pattern, which ByteLevel(use_regex=true) splits with.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

SplitBehavior behavior_of(const json& spec, const std::string& where) {
  const std::string name = spec.value("behavior", std::string("Isolated"));
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  throw UserError(where + ": Split behavior '" + name + "' is not supported");
}

// A range and whether it is a match of the pattern.
struct Span {
  TextRange range;
  bool match;
};

// The spans of `range` after the matches are merged as `behavior` says;
// a span with match set is to be removed (kRemoved only).
std::vector<Span> arrange(const std::vector<Span>& spans, SplitBehavior behavior) {
  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      return spans;
    case SplitBehavior::kIsolated:
      for (const auto& s : spans) out.push_back({s.range, false});
      return out;
    case SplitBehavior::kContiguous:
      for (const auto& s : spans) {
        if (s.match == previous_match && !out.empty()) out.back().range.end = s.range.end;
        else out.push_back({s.range, false});
        previous_match = s.match;
      }
      return out;
    case SplitBehavior::kMergedWithPrevious:
      for (const auto& s : spans) {
        if (s.match && !previous_match && !out.empty()) out.back().range.end = s.range.end;
        else out.push_back({s.range, false});
        previous_match = s.match;
      }
      return out;
    case SplitBehavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->match && !previous_match && !out.empty()) out.back().range.begin = it->range.begin;
        else out.push_back({it->range, false});
        previous_match = it->match;
      }
      return {out.rbegin(), out.rend()};
  }
  return out;
}

}  // namespace

PreTokenizer::PreTokenizer(const json& spec, const std::string& where) {
  if (spec.is_null()) throw UserError(where + ": a BPE tokenizer without a ByteLevel pre_tokenizer is not supported");
  if (type_of(spec) == "Sequence" && spec.contains("pretokenizers") && spec["pretokenizers"].is_array()) {
    for (const auto& step : spec["pretokenizers"]) add_step(step, where);
  } else {
    add_step(spec, where);
  }
  if (!byte_level_) throw UserError(where + ": a BPE tokenizer without a ByteLevel pre_tokenizer is not supported");
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::add_step(const json& spec, const std::string& where) {
  const std::string type = type_of(spec);
  if (byte_level_) throw UserError(where + ": pre_tokenizer '" + type + "' after ByteLevel is not supported");
  Step step;
  if (type == "ByteLevel") {
    byte_level_ = true;
    step.add_prefix_space = spec.value("add_prefix_space", false);
    if (spec.value("use_regex", true)) step.regex = std::make_unique<Regex>(kGpt2Pattern, false, where);
  } else if (type == "Split") {
    const json& pattern = spec.value("pattern", json::object());
    const bool literal = pattern.contains("String");
    if (!literal && !pattern.contains("Regex")) throw UserError(where + ": Split needs a pattern {Regex} or {String}");
    step.regex = std::make_unique<Regex>(pattern[literal ? "String" : "Regex"].get<std::string>(), literal, where);
    step.behavior = behavior_of(spec, where);
    step.invert = spec.value("invert", false);
  } else if (type == "Digits") {
    // Rust's char::is_numeric is \p{N}; runs of them are one piece unless individual_digits.
    const bool individual = spec.value("individual_digits", false);
    step.regex = std::make_unique<Regex>(individual ? R"(\p{N})" : R"(\p{N}+)", false, where);
  } else {
    throw UserError(where + ": pre_tokenizer '" + type + "' is not supported (ByteLevel, Split, Digits and a Sequence of them are)");
  }
  steps_.push_back(std::move(step));
}

void PreTokenizer::apply(const Step& step, AlignedText& text, const std::vector<TextRange>& in, std::vector<TextRange>& out) {
  std::vector<TextRange> matches;
  for (TextRange range : in) {
    if (step.add_prefix_space && text.text[range.begin] != ' ') {
      // The prefix space goes after the text, aligned to the word's first byte.
      const auto begin = static_cast<std::uint32_t>(text.text.size());
      const std::string word = " " + text.text.substr(range.begin, range.end - range.begin);
      text.origin.push_back(text.origin[range.begin]);
      text.origin.insert(text.origin.end(), text.origin.begin() + range.begin, text.origin.begin() + range.end);
      text.text += word;
      range = {begin, begin + static_cast<std::uint32_t>(word.size())};
    }
    if (!step.regex) {
      out.push_back(range);
      continue;
    }
    matches.clear();
    step.regex->find_all(std::string_view(text.text).substr(range.begin, range.end - range.begin), range.begin, matches);
    std::vector<Span> spans;
    std::uint32_t prev = range.begin;
    for (const auto& m : matches) {
      if (m.begin != prev) spans.push_back({{prev, m.begin}, step.invert});
      spans.push_back({m, !step.invert});
      prev = m.end;
    }
    if (prev != range.end) spans.push_back({{prev, range.end}, step.invert});
    for (const auto& s : arrange(spans, step.behavior)) {
      if (!s.match && s.range.end > s.range.begin) out.push_back(s.range);
    }
  }
}

void PreTokenizer::split(AlignedText& text, TextRange range, std::vector<TextRange>& words) const {
  if (range.end <= range.begin) return;
  std::vector<TextRange> current{range}, next;
  for (const auto& step : steps_) {
    next.clear();
    apply(step, text, current, next);
    current.swap(next);
  }
  words.insert(words.end(), current.begin(), current.end());
}

const std::vector<std::string>& byte_level_chars() {
  static const std::vector<std::string> chars = [] {
    std::vector<std::string> out(256);
    int next = 256;  // bytes that are not printable map to U+0100 upwards, in byte order
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const int cp = printable ? b : next++;
      utf8proc_uint8_t buf[4];
      const auto n = utf8proc_encode_char(cp, buf);
      out[b].assign(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
    }
    return out;
  }();
  return chars;
}

}  // namespace masklab
