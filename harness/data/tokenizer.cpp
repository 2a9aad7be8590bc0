#include "harness/data/tokenizer.hpp"

#include <filesystem>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/data/hf_tokenizer.hpp"

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
  void save_pretrained(const std::string& dir) const override { save_byte_tokenizer(dir); }
};

}  // namespace

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& spec) {
  if (spec.empty() || spec == "byte") return std::make_unique<ByteTokenizer>();
  const std::filesystem::path path(spec);
  if (std::filesystem::is_directory(path) || path.extension() == ".json") return make_hf_tokenizer(find_hf_files(spec));
  return make_sentencepiece_tokenizer(spec);
}

std::vector<std::string> tokenizer_files(const std::string& spec) {
  if (spec.empty() || spec == "byte") return {};
  const std::filesystem::path path(spec);
  if (!std::filesystem::is_directory(path) && path.extension() != ".json") return {spec};
  try {
    return find_hf_files(spec).all();
  } catch (const UserError&) {
    return {spec};  // the build names the problem
  }
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
