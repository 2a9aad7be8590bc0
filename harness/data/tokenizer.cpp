#include "harness/data/tokenizer.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/hashing.hpp"
#include "harness/data/sentencepiece.hpp"

namespace masklab {
namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int kPad = 256, kBos = 257, kEos = 258;
  int vocab_size() const override { return 259; }
  int pad_id() const override { return kPad; }
  int bos_id() const override { return kBos; }
  int eos_id() const override { return kEos; }
  void encode(std::string_view text, std::vector<std::int32_t>& ids,
              std::vector<std::uint32_t>& offsets) const override {
    for (size_t i = 0; i < text.size(); ++i) {
      ids.push_back(static_cast<unsigned char>(text[i]));
      offsets.push_back(static_cast<std::uint32_t>(i));
    }
  }
  std::string token_text(int id) const override {
    if (id == kPad) return "<pad>";
    if (id == kBos) return "<bos>";
    if (id == kEos) return "<eos>";
    if (id < 0 || id > kEos) return "<unused " + std::to_string(id) + ">";  // padded vocabulary rows
    return std::string(1, static_cast<char>(id));
  }
  std::string decode(const std::vector<std::int32_t>& ids) const override {
    std::string out;
    for (int id : ids) {
      if (id >= 0 && id < 256) out += static_cast<char>(id);
    }
    return out;
  }
  std::string fingerprint() const override { return "byte-v1"; }
};

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) {
    const auto bytes = read_file(path);
    if (!bytes) throw UserError("data.tokenizer: cannot read SentencePiece model '" + path + "'");
    fingerprint_ = "spm-" + Fnv1a().add(*bytes).hex();
    try {
      sp_ = std::make_unique<SentencePieceModel>(path);
    } catch (const UserError& e) {
      throw UserError("data.tokenizer: '" + path + "': " + e.what());
    }
    if (sp_->bos_id() < 0 || sp_->eos_id() < 0) {
      throw UserError("data.tokenizer: '" + path + "' has no <s>/</s> pieces (train it with bos and eos ids)");
    }
    // Models trained without a pad piece still need an id for padding; it is
    // never a target (pad labels weigh 0), so <unk> serves.
    has_pad_ = sp_->pad_id() >= 0;
    pad_ = has_pad_ ? sp_->pad_id() : std::max(sp_->unk_id(), 0);
  }
  int vocab_size() const override { return sp_->piece_size(); }
  int pad_id() const override { return pad_; }
  int bos_id() const override { return sp_->bos_id(); }
  int eos_id() const override { return sp_->eos_id(); }
  void encode(std::string_view text, std::vector<std::int32_t>& ids,
              std::vector<std::uint32_t>& offsets) const override {
    sp_->encode(std::string(text), ids, offsets);
  }
  std::string token_text(int id) const override {
    if (id == sp_->bos_id()) return "<bos>";
    if (id == sp_->eos_id()) return "<eos>";
    if (has_pad_ && id == pad_) return "<pad>";
    return sp_->piece(id);
  }
  std::string decode(const std::vector<std::int32_t>& ids) const override { return sp_->decode(ids); }
  std::string fingerprint() const override { return fingerprint_; }

 private:
  std::unique_ptr<SentencePieceModel> sp_;
  std::string fingerprint_;
  bool has_pad_ = false;
  int pad_ = 0;
};

}  // namespace

void Tokenizer::save_pretrained(const std::string& dir) const {
  throw UserError("--save-model: this tokenizer cannot yet be written to '" + dir + "'");
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec) {
  if (spec.empty() || spec == "byte") return std::make_unique<ByteTokenizer>();
  return std::make_unique<SentencePieceTokenizer>(spec);
}

std::string escape_token_text(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace masklab
