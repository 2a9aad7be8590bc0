#pragma once
// SentencePiece through the masklab_spm helper process (see spm_tool_main.cpp
// for why it cannot live in the same process as LibTorch).
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace masklab {

class SentencePieceModel {
 public:
  explicit SentencePieceModel(const std::string& model_path);  // throws UserError
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  int piece_size() const { return static_cast<int>(pieces_.size()); }
  int bos_id() const { return bos_; }
  int eos_id() const { return eos_; }
  int pad_id() const { return pad_; }  // -1 when the model has none
  int unk_id() const { return unk_; }
  void encode(const std::string& text, std::vector<std::int32_t>& ids, std::vector<std::uint32_t>& offsets) const;
  const std::string& piece(int id) const;
  std::string decode(const std::vector<std::int32_t>& ids) const;

 private:
  void send(const void* data, size_t n) const;
  void receive(void* data, size_t n) const;
  void stop_helper();  // closes the pipes and reaps the helper; idempotent

  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  int bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1;
  std::vector<std::string> pieces_;
};

// SentencePieceTrainer::Train(flags) in the helper; throws UserError with its message.
void train_sentencepiece(const std::string& flags);

}  // namespace masklab
