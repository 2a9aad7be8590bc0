#pragma once
// Tokenizers in the Hugging Face layout: a folder with tokenizer.json
// (byte-level BPE, preferred) or tokenizer.model (SentencePiece), and
// optionally tokenizer_config.json, special_tokens_map.json and
// chat_template.jinja, which name the special tokens and hold the chat
// template. Also SentencePiece .model files on their own.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness/data/tokenizer.hpp"

namespace masklab {

// The files of a tokenizer folder ("" when absent).
struct HfTokenizerFiles {
  std::string dir;
  std::string tokenizer_json;
  std::string tokenizer_model;
  std::string config;          // tokenizer_config.json
  std::string special_map;     // special_tokens_map.json
  std::string chat_template;   // chat_template.jinja
  std::vector<std::string> all() const;  // those present, in a fixed order
};

// The files for `spec`: a folder, or a tokenizer.json whose folder holds
// the others. Throws UserError when a folder has neither tokenizer file.
HfTokenizerFiles find_hf_files(const std::string& spec);

// The special tokens and chat template named by tokenizer_config.json,
// falling back to special_tokens_map.json for the tokens it leaves out.
struct HfTokenizerConfig {
  std::optional<std::string> bos, eos, pad, unk;
  std::optional<bool> add_bos_token;
  std::string chat_template;  // "" when there is none
};
HfTokenizerConfig read_hf_config(const HfTokenizerFiles& files);

// A tokenizer.json (byte-level BPE) or tokenizer.model (SentencePiece)
// folder; a folder with both whose tokenizer.json is not supported (Llama 2,
// Mistral: SentencePiece-style BPE) uses its tokenizer.model.
std::unique_ptr<Tokenizer> make_hf_tokenizer(const HfTokenizerFiles& files);

// A SentencePiece .model file on its own (the layout before folders).
std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_path);

// The tokenizer.json, tokenizer_config.json and special_tokens_map.json
// of the byte tokenizer: byte-level BPE without merges whose vocabulary
// puts byte b at id b, <pad> <bos> <eos> at 256, 257, 258.
void save_byte_tokenizer(const std::string& dir);

}  // namespace masklab
