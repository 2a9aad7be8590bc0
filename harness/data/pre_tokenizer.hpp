#pragma once
// The text stages of a Hugging Face tokenizer.json before its BPE model:
// the normalizer (NFC) and the pre-tokenizer (Split, Digits, ByteLevel),
// as the `tokenizers` library applies them. Every stage keeps, for each
// byte it produces, the byte offset in the original input it came from, so
// that a token's offset is the position of its first character in the text
// the template rendered (docs/design.md, invariant 13).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace masklab {

// Text with, for each byte, the byte offset in the original input it came from.
struct AlignedText {
  std::string text;
  std::vector<std::uint32_t> origin;
};

// A byte range [begin, end) of an AlignedText.
struct TextRange {
  std::uint32_t begin = 0, end = 0;
};

// A compiled PCRE2 pattern in UTF + UCP mode (\p{L}, \s as Unicode means
// them), JIT-compiled where PCRE2 supports it.
class Regex {
 public:
  // `literal`: the pattern is a plain string (tokenizer.json's {"String": ..}).
  Regex(const std::string& pattern, bool literal, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Appends the non-overlapping matches in `text`, leftmost first, as
  // ranges offset by `base`.
  void find_all(std::string_view text, std::uint32_t base, std::vector<TextRange>& out) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
};

// tokenizer.json's "normalizer": null, NFC, or a Sequence of them; anything
// else is a UserError naming it.
class Normalizer {
 public:
  Normalizer(const nlohmann::json& spec, const std::string& where);
  bool identity() const { return !nfc_; }
  // `in` normalized, each output byte aligned to the original input.
  AlignedText apply(const AlignedText& in) const;

 private:
  bool nfc_ = false;
};

// How Split treats the pattern's matches (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// tokenizer.json's "pre_tokenizer": Split / Digits steps, then ByteLevel,
// which must come last (it maps bytes to the characters the vocabulary is
// written in). Anything else is a UserError naming it.
class PreTokenizer {
 public:
  PreTokenizer(const nlohmann::json& spec, const std::string& where);
  ~PreTokenizer();
  // Splits `range` of `text` into pre-tokens (words the BPE model sees).
  // A ByteLevel prefix space is appended to `text` (aligned to the word's
  // first byte) so that every word stays a range of it.
  void split(AlignedText& text, TextRange range, std::vector<TextRange>& words) const;

 private:
  struct Step {
    std::unique_ptr<Regex> regex;  // null: a ByteLevel step with use_regex false
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;  // ByteLevel only
  };
  void add_step(const nlohmann::json& spec, const std::string& where);
  static void apply(const Step& step, AlignedText& text, const std::vector<TextRange>& in, std::vector<TextRange>& out);
  std::vector<Step> steps_;
  bool byte_level_ = false;
};

// GPT-2's byte-to-unicode table: the UTF-8 of the printable character that
// stands for each byte in a byte-level vocabulary.
const std::vector<std::string>& byte_level_chars();

}  // namespace masklab
