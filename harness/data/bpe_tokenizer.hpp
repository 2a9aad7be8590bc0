#pragma once
// Byte-level BPE from a Hugging Face tokenizer.json (GPT-2, Llama 3,
// Qwen2/3, SmolLM), with the ids the `tokenizers` library gives:
// added tokens are cut out of the text first (leftmost longest, as its
// AddedVocabulary does), the rest is normalized, pre-tokenized, mapped to
// GPT-2's byte characters and merged by rank. Special tokens of a model
// (bos/eos/pad) and chat templates are not this file's business: they live
// in tokenizer_config.json (see hf_tokenizer.hpp).
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "harness/data/pre_tokenizer.hpp"

namespace masklab {

// One of tokenizer.json's "added_tokens".
struct AddedToken {
  std::string content;
  int id = 0;
  bool special = false;
  bool lstrip = false;      // swallows the whitespace before it
  bool rstrip = false;      // swallows the whitespace after it
  bool normalized = false;  // matched in the normalized text rather than the input
};

// A set of added tokens, matched leftmost-longest.
class AddedTokenSet {
 public:
  void add(const AddedToken* token);
  bool empty() const { return tokens_.empty(); }
  // Splits `text` into text ranges (id -1) and added tokens (their id),
  // offsets relative to `text`.
  struct Split {
    std::uint32_t begin, end;
    int id;
  };
  void split(std::string_view text, std::vector<Split>& out) const;

 private:
  const AddedToken* longest_at(std::string_view text, size_t pos) const;
  std::vector<const AddedToken*> tokens_;
  std::vector<const AddedToken*> by_first_byte_[256];  // longest first
};

class BpeEncoder {
 public:
  // `json_text`: the bytes of tokenizer.json; `path` names it in errors.
  BpeEncoder(const std::string& json_text, const std::string& path);
  ~BpeEncoder();
  BpeEncoder(const BpeEncoder&) = delete;
  BpeEncoder& operator=(const BpeEncoder&) = delete;

  // Appends the ids of `text` (no special tokens added around it) and the
  // byte offset in `text` of each token's first character.
  void encode(std::string_view text, std::vector<std::int32_t>& ids, std::vector<std::uint32_t>& offsets) const;
  int vocab_size() const { return vocab_size_; }
  // The id of an added token or vocabulary entry, written as in tokenizer.json.
  std::optional<int> token_id(const std::string& content) const;
  // The bytes a token stands for (an added token: its content).
  std::string token_bytes(int id) const;
  std::string decode(const std::vector<std::int32_t>& ids) const;

 private:
  struct Merge {
    int rank;
    int id;
  };
  struct Piece {
    int id;
    std::uint32_t start;  // byte offset in the word
  };
  void load_model(const nlohmann::json& model, const std::string& where);
  void load_added_tokens(const nlohmann::json& added, const std::string& where);
  void encode_segment(std::string_view input, std::uint32_t begin, std::uint32_t end, std::vector<std::int32_t>& ids,
                      std::vector<std::uint32_t>& offsets) const;
  std::vector<Piece> merge_word(std::string_view word) const;
  const std::vector<Piece>& cached_word(std::string_view word) const;

  std::unordered_map<std::string, int> vocab_;
  std::vector<std::string> id_to_token_;  // "" for ids only added tokens have
  std::unordered_map<std::uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank, merged id
  int byte_ids_[256];  // the id of each byte's character alone, -1 if missing
  std::optional<int> unk_;
  std::string continuing_prefix_, end_suffix_;
  bool ignore_merges_ = false;
  int vocab_size_ = 0;

  std::vector<std::unique_ptr<AddedToken>> added_;
  std::unordered_map<int, const AddedToken*> added_by_id_;
  AddedTokenSet raw_added_, normalized_added_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;

  // Words seen before, as `tokenizers` caches them; encode() is const and
  // may run on several threads.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<Piece>> cache_;
};

}  // namespace masklab
