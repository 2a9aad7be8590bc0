#include "harness/data/hf_tokenizer.hpp"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/hashing.hpp"
#include "harness/data/bpe_tokenizer.hpp"
#include "harness/data/pre_tokenizer.hpp"
#include "harness/core/text.hpp"
#include "harness/data/sentencepiece.hpp"

namespace masklab {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string existing(const fs::path& p) { return fs::is_regular_file(p) ? p.string() : std::string(); }

std::string must_read(const std::string& path) {
  return read_file_for("data.tokenizer", path);
}

json read_json(const std::string& path) {
  try {
    return json::parse(must_read(path));
  } catch (const json::exception& e) {
    throw UserError(path + ": " + invalid_json(e.what()));
  }
}

// A special token written as "text", {"content": "text", ...} or null.
std::optional<std::string> token_name(const json& config, const char* key) {
  if (!config.is_object() || !config.contains(key)) return std::nullopt;
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

// tokenizer_config.json's chat_template: one string, or a list of named
// templates of which "default" is the one to use.
std::string chat_template_of(const json& config) {
  if (!config.is_object() || !config.contains("chat_template")) return "";
  const json& t = config["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (!t.is_array() || t.empty()) return "";
  for (const auto& entry : t) {
    if (entry.value("name", std::string()) == "default") return entry.value("template", std::string());
  }
  return t[0].value("template", std::string());
}

std::string files_fingerprint(const std::string& kind, const HfTokenizerFiles& files) {
  Fnv1a h;
  h.add(kind);
  for (const auto& path : files.all()) h.add(fs::path(path).filename().string()).add(must_read(path));
  return kind + "-" + h.hex();
}

// The id `name` stands for, by `lookup`; a UserError naming the file when it has none.
template <class Lookup>
int special_id(const std::optional<std::string>& name, const Lookup& lookup, const std::string& where,
               const char* key) {
  const std::optional<int> id = lookup(*name);
  if (!id) throw UserError(where + ": " + key + " '" + *name + "' is not a token of the tokenizer");
  return *id;
}

// Copies the tokenizer's files into `dir`, writing tokenizer_config.json
// and special_tokens_map.json from its special tokens where it had none.
void save_files(const HfTokenizerFiles& files, const std::string& dir, const json& specials) {
  for (const auto& path : files.all()) {
    std::string name = fs::path(path).filename().string();
    if (path == files.tokenizer_model) name = "tokenizer.model";
    if (path == files.tokenizer_json) name = "tokenizer.json";
    write_file_atomic(dir + "/" + name, must_read(path));
  }
  if (files.config.empty()) write_file_atomic(dir + "/tokenizer_config.json", specials.dump(2) + "\n");
  if (files.special_map.empty()) write_file_atomic(dir + "/special_tokens_map.json", specials.dump(2) + "\n");
}

json specials_json(const Tokenizer& tok, int unk) {
  json j = json::object();
  if (tok.bos_id() >= 0) j["bos_token"] = tok.token_text(tok.bos_id());
  j["eos_token"] = tok.token_text(tok.eos_id());
  j["pad_token"] = tok.token_text(tok.pad_id());
  if (unk >= 0) j["unk_token"] = tok.token_text(unk);
  return j;
}

// ---------------------------------------------------------------- BPE

class HfBpeTokenizer final : public Tokenizer {
 public:
  explicit HfBpeTokenizer(const HfTokenizerFiles& files)
      : files_(files), encoder_(must_read(files.tokenizer_json), files.tokenizer_json) {
    const HfTokenizerConfig config = read_hf_config(files);
    const std::string where = files.config.empty() ? files.dir : files.config;
    auto lookup = [&](const std::string& s) { return encoder_.token_id(s); };
    // No bos (Qwen2), or add_bos_token false: "<bos>" in a template renders as nothing.
    if (config.bos && config.add_bos_token.value_or(true)) bos_ = special_id(config.bos, lookup, where, "bos_token");
    if (!config.eos) {
      throw UserError(where + ": names no eos_token (tokenizer_config.json or special_tokens_map.json must)");
    }
    eos_ = special_id(config.eos, lookup, where, "eos_token");
    // Without a pad token, eos pads: pad labels never carry weight.
    pad_ = config.pad ? special_id(config.pad, lookup, where, "pad_token") : eos_;
    chat_template_ = config.chat_template;
    fingerprint_ = files_fingerprint("hf-bpe", files);
  }
  int vocab_size() const override { return encoder_.vocab_size(); }
  int pad_id() const override { return pad_; }
  int bos_id() const override { return bos_; }
  int eos_id() const override { return eos_; }
  void encode(std::string_view text, std::vector<std::int32_t>& ids,
              std::vector<std::uint32_t>& offsets) const override {
    encoder_.encode(text, ids, offsets);
  }
  std::string token_text(int id) const override { return encoder_.token_bytes(id); }
  std::string decode(const std::vector<std::int32_t>& ids) const override { return encoder_.decode(ids); }
  std::string fingerprint() const override { return fingerprint_; }
  std::string chat_template() const override { return chat_template_; }
  void save_pretrained(const std::string& dir) const override { save_files(files_, dir, specials_json(*this, -1)); }

 private:
  HfTokenizerFiles files_;
  BpeEncoder encoder_;
  int bos_ = -1, eos_ = -1, pad_ = -1;
  std::string chat_template_, fingerprint_;
};

// ---------------------------------------------------------------- SentencePiece

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // `files` holds the .model file and, in a folder, the json files whose
  // special tokens replace the model's own.
  explicit SentencePieceTokenizer(const HfTokenizerFiles& files) : files_(files) {
    const std::string& path = files.tokenizer_model;
    fingerprint_ = files.dir.empty() ? "spm-" + Fnv1a().add(must_read(path)).hex() : files_fingerprint("hf-spm", files);
    try {
      sp_ = std::make_unique<SentencePieceModel>(path);
    } catch (const UserError& e) {
      throw UserError("data.tokenizer: '" + path + "': " + e.what());
    }
    bos_ = sp_->bos_id();
    eos_ = sp_->eos_id();
    has_pad_ = sp_->pad_id() >= 0;
    // Models trained without a pad piece still need an id for padding; it is
    // never a target (pad labels weigh 0), so <unk> serves.
    pad_ = has_pad_ ? sp_->pad_id() : std::max(sp_->unk_id(), 0);
    if (!files.dir.empty()) apply_config(read_hf_config(files));
    if (bos_ < 0 || eos_ < 0) {
      throw UserError("data.tokenizer: '" + path + "' has no <s>/</s> pieces (train it with bos and eos ids)");
    }
  }
  int vocab_size() const override { return sp_->piece_size(); }
  int pad_id() const override { return pad_; }
  int bos_id() const override { return bos_; }
  int eos_id() const override { return eos_; }
  void encode(std::string_view text, std::vector<std::int32_t>& ids,
              std::vector<std::uint32_t>& offsets) const override {
    sp_->encode(std::string(text), ids, offsets);
  }
  std::string token_text(int id) const override {
    if (id == bos_) return "<bos>";
    if (id == eos_) return "<eos>";
    if (has_pad_ && id == pad_) return "<pad>";
    return sp_->piece(id);
  }
  std::string decode(const std::vector<std::int32_t>& ids) const override { return sp_->decode(ids); }
  std::string fingerprint() const override { return fingerprint_; }
  std::string chat_template() const override { return chat_template_; }
  void save_pretrained(const std::string& dir) const override {
    json specials = json::object();
    specials["bos_token"] = sp_->piece(bos_);
    specials["eos_token"] = sp_->piece(eos_);
    specials["pad_token"] = sp_->piece(pad_);
    if (sp_->unk_id() >= 0) specials["unk_token"] = sp_->piece(sp_->unk_id());
    save_files(files_, dir, specials);
  }

 private:
  void apply_config(const HfTokenizerConfig& config) {
    const std::string where = files_.config.empty() ? files_.dir : files_.config;
    auto lookup = [&](const std::string& s) -> std::optional<int> {
      for (int id = 0; id < sp_->piece_size(); ++id) {
        if (sp_->piece(id) == s) return id;
      }
      return std::nullopt;
    };
    if (config.bos) bos_ = special_id(config.bos, lookup, where, "bos_token");
    if (config.eos) eos_ = special_id(config.eos, lookup, where, "eos_token");
    if (config.pad) {
      pad_ = special_id(config.pad, lookup, where, "pad_token");
      has_pad_ = true;
    }
    chat_template_ = config.chat_template;
  }

  HfTokenizerFiles files_;
  std::unique_ptr<SentencePieceModel> sp_;
  std::string fingerprint_, chat_template_;
  int bos_ = -1, eos_ = -1, pad_ = 0;
  bool has_pad_ = false;
};

}  // namespace

std::vector<std::string> HfTokenizerFiles::all() const {
  std::vector<std::string> out;
  for (const auto* p : {&tokenizer_json, &tokenizer_model, &config, &special_map, &chat_template}) {
    if (!p->empty()) out.push_back(*p);
  }
  return out;
}

HfTokenizerFiles find_hf_files(const std::string& spec) {
  HfTokenizerFiles f;
  const fs::path path(spec);
  const bool is_dir = fs::is_directory(path);
  f.dir = is_dir ? spec : path.parent_path().string();
  if (f.dir.empty()) f.dir = ".";
  const fs::path dir(f.dir);
  if (is_dir) {
    f.tokenizer_json = existing(dir / "tokenizer.json");
    f.tokenizer_model = existing(dir / "tokenizer.model");
    if (f.tokenizer_json.empty() && f.tokenizer_model.empty()) {
      throw UserError("data.tokenizer: '" + spec + "' holds neither tokenizer.json nor tokenizer.model");
    }
  } else {
    if (!fs::is_regular_file(path)) throw UserError("data.tokenizer: cannot read '" + spec + "'");
    f.tokenizer_json = spec;
  }
  f.config = existing(dir / "tokenizer_config.json");
  f.special_map = existing(dir / "special_tokens_map.json");
  f.chat_template = existing(dir / "chat_template.jinja");
  return f;
}

HfTokenizerConfig read_hf_config(const HfTokenizerFiles& files) {
  HfTokenizerConfig c;
  const json config = files.config.empty() ? json::object() : read_json(files.config);
  const json map = files.special_map.empty() ? json::object() : read_json(files.special_map);
  c.bos = token_name(config, "bos_token");
  c.eos = token_name(config, "eos_token");
  c.pad = token_name(config, "pad_token");
  c.unk = token_name(config, "unk_token");
  if (!c.bos) c.bos = token_name(map, "bos_token");
  if (!c.eos) c.eos = token_name(map, "eos_token");
  if (!c.pad) c.pad = token_name(map, "pad_token");
  if (!c.unk) c.unk = token_name(map, "unk_token");
  if (config.is_object() && config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    c.add_bos_token = config["add_bos_token"].get<bool>();
  }
  // transformers writes chat_template.jinja beside the config and prefers it.
  c.chat_template = files.chat_template.empty() ? chat_template_of(config) : must_read(files.chat_template);
  return c;
}

std::unique_ptr<Tokenizer> make_hf_tokenizer(const HfTokenizerFiles& files) {
  if (files.tokenizer_json.empty()) return std::make_unique<SentencePieceTokenizer>(files);
  try {
    return std::make_unique<HfBpeTokenizer>(files);
  } catch (const UserError&) {
    // Llama 2 and Mistral folders hold both: their tokenizer.json is
    // SentencePiece-style BPE (byte_fallback, Metaspace), tokenizer.model the model itself.
    if (files.tokenizer_model.empty()) throw;
  }
  HfTokenizerFiles model_only = files;
  model_only.tokenizer_json.clear();
  return std::make_unique<SentencePieceTokenizer>(model_only);
}

std::unique_ptr<Tokenizer> make_sentencepiece_tokenizer(const std::string& model_path) {
  HfTokenizerFiles files;
  files.tokenizer_model = model_path;
  read_file_for("data.tokenizer", model_path);  // missing, a directory: one line naming the OS's reason
  return std::make_unique<SentencePieceTokenizer>(files);
}

void save_byte_tokenizer(const std::string& dir) {
  using ojson = nlohmann::ordered_json;
  ojson vocab = ojson::object();
  const auto& chars = byte_level_chars();
  for (int b = 0; b < 256; ++b) vocab[chars[static_cast<size_t>(b)]] = b;
  ojson added = ojson::array();
  const char* names[] = {"<pad>", "<bos>", "<eos>"};
  for (int i = 0; i < 3; ++i) {
    added.push_back({{"id", 256 + i}, {"content", names[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  const ojson byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                            {"use_regex", false}};
  ojson tok = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added},
               {"normalizer", nullptr}, {"pre_tokenizer", byte_level}, {"post_processor", nullptr},
               {"decoder", byte_level}};
  tok["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr}, {"fuse_unk", false},
                  {"byte_fallback", false}, {"ignore_merges", false}, {"vocab", vocab}, {"merges", ojson::array()}};
  ojson specials = {{"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"pad_token", "<pad>"}};
  ojson config = specials;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  write_file_atomic(dir + "/tokenizer.json", tok.dump(2) + "\n");
  write_file_atomic(dir + "/tokenizer_config.json", config.dump(2) + "\n");
  write_file_atomic(dir + "/special_tokens_map.json", specials.dump(2) + "\n");
}

}  // namespace masklab
