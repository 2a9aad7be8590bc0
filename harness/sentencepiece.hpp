#pragma once
// Access to SentencePiece through the masklab_spm module (see spm_shim.cpp
// for why it is loaded with dlopen rather than linked).
#include <cstdint>
#include <string>
#include <vector>

namespace masklab {

class SentencePieceModel {
 public:
  explicit SentencePieceModel(const std::string& serialized_proto);  // throws UserError
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  int piece_size() const;
  int bos_id() const;
  int eos_id() const;
  int pad_id() const;  // -1 when the model has none
  int unk_id() const;
  void encode(const std::string& text, std::vector<std::int32_t>& ids, std::vector<std::uint32_t>& offsets) const;
  std::string piece(int id) const;
  std::string decode(const std::vector<std::int32_t>& ids) const;

 private:
  void* handle_ = nullptr;
};

// SentencePieceTrainer::Train(flags); throws UserError with its message.
void train_sentencepiece(const std::string& flags);

}  // namespace masklab
