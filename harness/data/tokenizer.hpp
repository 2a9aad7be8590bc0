#pragma once
// Tokenizers turn UTF-8 text into ids and say where each token starts, so
// that token roles can be read off the rendered text's role spans.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace masklab {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual int vocab_size() const = 0;
  virtual int pad_id() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  // Appends the ids of `text` and, for each, the byte offset in `text` where
  // the token's first character lies.
  virtual void encode(std::string_view text, std::vector<std::int32_t>& ids,
                      std::vector<std::uint32_t>& offsets) const = 0;
  // A readable form of one token for inspection ("\n" shown as "\\n", specials as <eos>).
  virtual std::string token_text(int id) const = 0;
  virtual std::string decode(const std::vector<std::int32_t>& ids) const = 0;
  // Identifies the tokenizer's exact behaviour, for dataset cache keys.
  virtual std::string fingerprint() const = 0;
  // Writes the tokenizer's files into the existing folder `dir` in the
  // Hugging Face layout (tokenizer.json or tokenizer.model,
  // tokenizer_config.json, special_tokens_map.json), so that a saved model
  // carries the tokenizer it was trained with.
  virtual void save_pretrained(const std::string& dir) const = 0;
  // The Jinja chat template of a Hugging Face tokenizer folder
  // (tokenizer_config.json or chat_template.jinja); "" when it has none.
  virtual std::string chat_template() const { return ""; }
};

// What data.tokenizer names: "byte" (the default: 256 bytes + <pad>,
// <bos>, <eos>), a SentencePiece .model file, a tokenizer.json file (its
// folder may hold tokenizer_config.json and special_tokens_map.json), or a
// folder in the Hugging Face layout holding tokenizer.json (preferred) or
// tokenizer.model. bos_id() is -1 when the tokenizer has no bos token (Qwen2):
// "<bos>" in a template then renders as nothing.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec);

// The files make_tokenizer(spec) reads (none for "byte"), for cache keys.
std::vector<std::string> tokenizer_files(const std::string& spec);

// Makes control characters and invisible bytes readable in tables.
std::string escape_token_text(std::string_view text);

}  // namespace masklab
