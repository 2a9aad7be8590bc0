#include "harness/data/bpe_tokenizer.hpp"

#include <algorithm>
#include <queue>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "harness/core/errors.hpp"
#include "harness/core/text.hpp"

namespace masklab {
namespace {

using json = nlohmann::json;

// Words kept in the cache at most; `tokenizers` keeps 10,000, a dataset of
// 100k examples has far more distinct words, and each costs ~100 bytes.
constexpr size_t kCacheCapacity = 1 << 20;

// Token ids index tables sized by the largest one: a negative id would index
// before them, and one far past any real vocabulary (the largest hold a few
// hundred thousand tokens) would size them from a damaged file.
constexpr std::int64_t kMaxTokenId = 1 << 22;

int checked_token_id(const json& id, const std::string& where, const std::string& token) {
  if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= kMaxTokenId) {
    throw UserError(fmt::format("{}: token {} has id {}, not an integer from 0 to {}", where, json(token).dump(),
                                id.dump(), kMaxTokenId - 1));
  }
  return static_cast<int>(id.get<std::int64_t>());
}

// Rust's char::is_whitespace (the White_Space property), which lstrip/rstrip use.
bool is_white_space(std::int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// The number of bytes of whitespace that end `text`.
size_t trailing_white_space(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    utf8proc_int32_t cp = -1;
    utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + start),
                     static_cast<utf8proc_ssize_t>(end - start), &cp);
    if (!is_white_space(cp)) break;
    end = start;
  }
  return text.size() - end;
}

// The number of bytes of whitespace that begin `text`.
size_t leading_white_space(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    utf8proc_int32_t cp = -1;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + pos),
                                    static_cast<utf8proc_ssize_t>(text.size() - pos), &cp);
    if (n <= 0 || !is_white_space(cp)) break;
    pos += static_cast<size_t>(n);
  }
  return pos;
}

std::uint64_t pair_key(int left, int right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

// A merge candidate in merge_word's queue: lowest rank first, then leftmost,
// as `tokenizers`' Word::merge_all orders them.
struct Candidate {
  int rank;
  int pos;
  int id;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

// ---------------------------------------------------------------- added tokens

void AddedTokenSet::add(const AddedToken* token) {
  if (token->content.empty()) return;
  tokens_.push_back(token);
  auto& bucket = by_first_byte_[static_cast<unsigned char>(token->content[0])];
  bucket.push_back(token);
  std::stable_sort(bucket.begin(), bucket.end(),
                   [](const AddedToken* a, const AddedToken* b) { return a->content.size() > b->content.size(); });
}

const AddedToken* AddedTokenSet::longest_at(std::string_view text, size_t pos) const {
  for (const AddedToken* t : by_first_byte_[static_cast<unsigned char>(text[pos])]) {
    if (text.compare(pos, t->content.size(), t->content) == 0) return t;
  }
  return nullptr;
}

// As AddedVocabulary::find_matches: matches leftmost-longest without overlap;
// lstrip takes the whitespace before a token (not past the previous match),
// rstrip the whitespace after it.
void AddedTokenSet::split(std::string_view text, std::vector<Split>& out) const {
  size_t done = 0;  // end of the last match
  for (size_t pos = 0; pos < text.size();) {
    const AddedToken* t = tokens_.empty() ? nullptr : longest_at(text, pos);
    if (!t) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + t->content.size();
    if (t->lstrip) start = std::max(done, start - trailing_white_space(text.substr(0, start)));
    if (t->rstrip) stop += leading_white_space(text.substr(stop));
    if (done < start) out.push_back({static_cast<std::uint32_t>(done), static_cast<std::uint32_t>(start), -1});
    out.push_back({static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(stop), t->id});
    done = stop;
    pos = stop;
  }
  if (done < text.size()) out.push_back({static_cast<std::uint32_t>(done), static_cast<std::uint32_t>(text.size()), -1});
}

// ---------------------------------------------------------------- loading

BpeEncoder::BpeEncoder(const std::string& json_text, const std::string& path) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    throw UserError(path + ": " + invalid_json(e.what()));
  }
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    throw UserError(path + ": not a tokenizer.json (no \"model\" object)");
  }
  try {
    load_model(root["model"], path);
    load_added_tokens(root.value("added_tokens", json::array()), path);
    normalizer_ = std::make_unique<Normalizer>(root.value("normalizer", json()), path);
    pre_tokenizer_ = std::make_unique<PreTokenizer>(root.value("pre_tokenizer", json()), path);
  } catch (const json::exception& e) {
    throw UserError(path + ": unexpected tokenizer.json content (" + std::string(e.what()) + ")");
  }
}

BpeEncoder::~BpeEncoder() = default;

void BpeEncoder::load_model(const json& model, const std::string& where) {
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") throw UserError(where + ": model type '" + type + "' is not supported (byte-level BPE is)");
  if (model.value("byte_fallback", false)) throw UserError(where + ": BPE with byte_fallback is not supported (byte-level BPE is)");
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() > 0) {
    throw UserError(where + ": BPE dropout is not supported (encoding must be deterministic)");
  }
  if (model.value("fuse_unk", false)) throw UserError(where + ": BPE fuse_unk is not supported");
  ignore_merges_ = model.value("ignore_merges", false);
  if (model.contains("continuing_subword_prefix") && model["continuing_subword_prefix"].is_string()) {
    continuing_prefix_ = model["continuing_subword_prefix"].get<std::string>();
  }
  if (model.contains("end_of_word_suffix") && model["end_of_word_suffix"].is_string()) {
    end_suffix_ = model["end_of_word_suffix"].get<std::string>();
  }
  for (const auto& [token, id] : model.at("vocab").items()) {
    const int i = checked_token_id(id, where, token);
    vocab_.emplace(token, i);
    if (i >= static_cast<int>(id_to_token_.size())) id_to_token_.resize(static_cast<size_t>(i) + 1);
    id_to_token_[static_cast<size_t>(i)] = token;
  }
  vocab_size_ = static_cast<int>(id_to_token_.size());
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const auto it = vocab_.find(model["unk_token"].get<std::string>());
    if (it != vocab_.end()) unk_ = it->second;
  }
  const auto& chars = byte_level_chars();
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(chars[static_cast<size_t>(b)]);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  int rank = 0;
  for (const auto& m : model.value("merges", json::array())) {
    std::string left, right;
    if (m.is_string()) {  // "a b", the form before tokenizers 0.20
      const auto s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) throw UserError(where + ": merge '" + s + "' is not \"a b\"");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else {
      left = m.at(0).get<std::string>();
      right = m.at(1).get<std::string>();
    }
    const auto l = vocab_.find(left), r = vocab_.find(right);
    const auto merged = vocab_.find(left + right.substr(std::min(continuing_prefix_.size(), right.size())));
    if (l == vocab_.end() || r == vocab_.end() || merged == vocab_.end()) {
      throw UserError(where + ": merge '" + left + " " + right + "' names a token that is not in the vocabulary");
    }
    merges_.emplace(pair_key(l->second, r->second), Merge{rank++, merged->second});
  }
}

void BpeEncoder::load_added_tokens(const json& added, const std::string& where) {
  for (const auto& a : added) {
    auto t = std::make_unique<AddedToken>();
    t->content = a.at("content").get<std::string>();
    t->id = checked_token_id(a.at("id"), where, t->content);
    t->special = a.value("special", false);
    t->lstrip = a.value("lstrip", false);
    t->rstrip = a.value("rstrip", false);
    t->normalized = a.value("normalized", !t->special);
    if (a.value("single_word", false)) {
      throw UserError(where + ": added token '" + t->content + "' has single_word, which is not supported");
    }
    vocab_size_ = std::max(vocab_size_, t->id + 1);
    added_by_id_[t->id] = t.get();
    added_.push_back(std::move(t));
  }
  for (const auto& t : added_) (t->normalized ? normalized_added_ : raw_added_).add(t.get());
}

// ---------------------------------------------------------------- encoding

std::vector<BpeEncoder::Piece> BpeEncoder::merge_word(std::string_view word) const {
  const auto& chars = byte_level_chars();
  struct Symbol {
    int id, prev, next;
    std::uint32_t length;  // bytes of the word it covers
    bool removed;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    const auto b = static_cast<unsigned char>(word[i]);
    int id = byte_ids_[b];
    if (!continuing_prefix_.empty() || !end_suffix_.empty()) {
      std::string s = (i > 0 ? continuing_prefix_ : "") + chars[b] + (i + 1 == word.size() ? end_suffix_ : "");
      const auto it = vocab_.find(s);
      id = it == vocab_.end() ? -1 : it->second;
    }
    if (id < 0 && unk_) id = *unk_;
    if (id < 0) continue;  // `tokenizers` drops a character it has no id for
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, 1, false});
  }
  if (symbols.empty()) return {};
  symbols.back().next = -1;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int pos) {
    if (pos < 0 || symbols[static_cast<size_t>(pos)].next < 0) return;
    const auto it = merges_.find(pair_key(symbols[static_cast<size_t>(pos)].id,
                                          symbols[static_cast<size_t>(symbols[static_cast<size_t>(pos)].next)].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.id});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) consider(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.removed || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.id != top.id) continue;  // stale: a neighbour merged first
    left.id = top.id;
    left.length += right.length;
    left.next = right.next;
    right.removed = true;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    consider(left.prev);
    consider(top.pos);
  }
  // Offsets add up the lengths of the symbols kept, as `tokenizers` counts
  // them: a character without an id takes no room.
  std::vector<Piece> pieces;
  std::uint32_t start = 0;
  for (const auto& s : symbols) {
    if (s.removed) continue;
    pieces.push_back({s.id, start});
    start += s.length;
  }
  return pieces;
}

const std::vector<BpeEncoder::Piece>& BpeEncoder::cached_word(std::string_view word) const {
  const std::string key(word);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;  // nodes never move or go away: the reference stays valid
  }
  std::vector<Piece> pieces;
  std::string mapped;
  if (ignore_merges_) {
    for (unsigned char b : word) mapped += byte_level_chars()[b];
  }
  const auto whole = ignore_merges_ ? vocab_.find(mapped) : vocab_.end();
  if (whole != vocab_.end()) pieces.push_back({whole->second, 0});
  else pieces = merge_word(word);
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheCapacity) {
    thread_local std::vector<Piece> uncached;
    uncached = std::move(pieces);
    return uncached;
  }
  return cache_.emplace(key, std::move(pieces)).first->second;
}

// Normalizes, then pre-tokenizes and merges, input[begin, end): text
// between added tokens.
void BpeEncoder::encode_segment(std::string_view input, std::uint32_t begin, std::uint32_t end,
                                std::vector<std::int32_t>& ids, std::vector<std::uint32_t>& offsets) const {
  AlignedText segment;
  segment.text.assign(input.substr(begin, end - begin));
  segment.origin.resize(segment.text.size());
  for (std::uint32_t i = 0; i < segment.origin.size(); ++i) segment.origin[i] = begin + i;
  AlignedText text = normalizer_->apply(segment);
  std::vector<AddedTokenSet::Split> splits;
  if (normalized_added_.empty()) splits.push_back({0, static_cast<std::uint32_t>(text.text.size()), -1});
  else normalized_added_.split(text.text, splits);
  std::vector<TextRange> words;
  for (const auto& s : splits) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      offsets.push_back(text.origin[s.begin]);
      continue;
    }
    words.clear();
    pre_tokenizer_->split(text, {s.begin, s.end}, words);
    for (const auto& w : words) {
      for (const auto& p : cached_word(std::string_view(text.text).substr(w.begin, w.end - w.begin))) {
        ids.push_back(p.id);
        offsets.push_back(text.origin[w.begin + p.start]);
      }
    }
  }
}

void BpeEncoder::encode(std::string_view text, std::vector<std::int32_t>& ids,
                        std::vector<std::uint32_t>& offsets) const {
  const size_t first = offsets.size();
  std::vector<AddedTokenSet::Split> splits;
  raw_added_.split(text, splits);
  for (const auto& s : splits) {
    if (s.id >= 0) {
      ids.push_back(s.id);
      offsets.push_back(s.begin);
    } else {
      encode_segment(text, s.begin, s.end, ids, offsets);
    }
  }
  // A token that starts inside a character (byte-level BPE splits emoji and
  // CJK bytes) is placed at the character's first byte, as `tokenizers` does.
  for (size_t t = first; t < offsets.size(); ++t) {
    while (offsets[t] > 0 && offsets[t] < text.size() && (static_cast<unsigned char>(text[offsets[t]]) & 0xC0) == 0x80) {
      --offsets[t];
    }
  }
}

// ---------------------------------------------------------------- lookups

std::optional<int> BpeEncoder::token_id(const std::string& content) const {
  for (const auto& t : added_) {
    if (t->content == content) return t->id;
  }
  const auto it = vocab_.find(content);
  if (it != vocab_.end()) return it->second;
  return std::nullopt;
}

std::string BpeEncoder::token_bytes(int id) const {
  const auto added = added_by_id_.find(id);
  if (added != added_by_id_.end()) return added->second->content;
  if (id < 0 || id >= static_cast<int>(id_to_token_.size())) return "";
  static const std::unordered_map<std::string, char> byte_of = [] {
    std::unordered_map<std::string, char> m;
    for (int b = 0; b < 256; ++b) m.emplace(byte_level_chars()[static_cast<size_t>(b)], static_cast<char>(b));
    return m;
  }();
  const std::string& token = id_to_token_[static_cast<size_t>(id)];
  std::string out;
  for (size_t i = 0; i < token.size();) {
    size_t n = 1;
    const auto lead = static_cast<unsigned char>(token[i]);
    n = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    const auto it = byte_of.find(token.substr(i, n));
    if (it != byte_of.end()) out += it->second;
    else out.append(token, i, n);  // a character outside the byte alphabet (a subword prefix)
    i += n;
  }
  return out;
}

std::string BpeEncoder::decode(const std::vector<std::int32_t>& ids) const {
  std::string out;
  for (int id : ids) out += token_bytes(id);
  return out;
}

}  // namespace masklab
