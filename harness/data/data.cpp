#include "harness/data/data.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/core/errors.hpp"
#include "harness/core/random.hpp"
#include "harness/core/hashing.hpp"
#include "harness/data/tasks.hpp"

namespace masklab {
namespace {

using nlohmann::json;

// A problem with one line of a data file; load_jsonl decides whether it is
// fatal (the default) or skipped and counted (data.skip_invalid).
struct LineError {
  std::string reason;
};

const json& field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) throw LineError{std::string("missing field '") + name + "'"};
  return *it;
}

std::string string_field(const json& obj, const char* name) {
  const json& v = field(obj, name);
  if (!v.is_string()) throw LineError{std::string("field '") + name + "' must be a string"};
  return v.get<std::string>();
}

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

Message parse_message(const json& m, size_t index) {
  if (!m.is_object()) throw LineError{fmt::format("messages[{}] must be an object", index)};
  const std::string role_text = string_field(m, "role");
  const auto role = role_from_name(role_text);
  if (!role || (*role != Role::kSystem && *role != Role::kUser && *role != Role::kAssistant)) {
    throw LineError{fmt::format("messages[{}]: unknown role '{}' (expected system, user or assistant)",
                                index, role_text)};
  }
  Message msg;
  msg.role = *role;
  msg.content = string_field(m, "content");
  if (auto w = m.find("weight"); w != m.end() && !w->is_null()) {
    if (!w->is_number() || (w->get<double>() != 0 && w->get<double>() != 1)) {
      throw LineError{fmt::format("messages[{}]: weight must be 0 or 1", index)};
    }
    msg.trainable = w->get<double>() == 1;
  }
  return msg;
}

std::vector<Message> parse_messages(const json& list, const char* name) {
  if (!list.is_array()) throw LineError{std::string("field '") + name + "' must be a list of messages"};
  std::vector<Message> out;
  for (size_t i = 0; i < list.size(); ++i) out.push_back(parse_message(list[i], i));
  return out;
}

void require_completion(const std::vector<Message>& messages) {
  bool any_assistant = false;
  for (const auto& m : messages) {
    if (m.role != Role::kAssistant) continue;
    any_assistant = true;
    if (blank(m.content)) throw LineError{"empty completion (an assistant message has no content)"};
  }
  if (!any_assistant) throw LineError{"no assistant message: nothing to complete"};
}

DataFormat detect(const json& obj) {
  if (obj.contains("messages")) return DataFormat::kChat;
  if (obj.contains("prompt") || obj.contains("completion")) return DataFormat::kPromptCompletion;
  if (obj.contains("instruction") || obj.contains("output")) return DataFormat::kAlpaca;
  if (obj.contains("text")) return DataFormat::kText;
  throw LineError{"unknown format: expected prompt/completion, messages, instruction/output or text fields"};
}

Example parse_example(const json& obj, DataFormat format) {
  Example ex;
  switch (format) {
    case DataFormat::kPromptCompletion: {
      // TRL accepts the prompt and completion as strings or as message lists.
      const json& prompt = field(obj, "prompt");
      const json& completion = field(obj, "completion");
      if (prompt.is_array()) {
        ex.messages = parse_messages(prompt, "prompt");
      } else if (prompt.is_string()) {
        ex.messages.push_back({Role::kUser, prompt.get<std::string>(), "", true});
      } else {
        throw LineError{"field 'prompt' must be a string or a list of messages"};
      }
      if (completion.is_array()) {
        for (auto& m : parse_messages(completion, "completion")) ex.messages.push_back(std::move(m));
      } else if (completion.is_string()) {
        ex.messages.push_back({Role::kAssistant, completion.get<std::string>(), "", true});
      } else {
        throw LineError{"field 'completion' must be a string or a list of messages"};
      }
      require_completion(ex.messages);
      break;
    }
    case DataFormat::kChat:
      ex.messages = parse_messages(field(obj, "messages"), "messages");
      require_completion(ex.messages);
      break;
    case DataFormat::kAlpaca: {
      Message user{Role::kUser, string_field(obj, "instruction"), "", true};
      if (auto in = obj.find("input"); in != obj.end() && !in->is_null()) {
        if (!in->is_string()) throw LineError{"field 'input' must be a string"};
        user.input = in->get<std::string>();
      }
      ex.messages.push_back(std::move(user));
      ex.messages.push_back({Role::kAssistant, string_field(obj, "output"), "", true});
      require_completion(ex.messages);
      break;
    }
    case DataFormat::kText: {
      std::string text = string_field(obj, "text");
      if (blank(text)) throw LineError{"empty text"};
      ex.plain_text = true;
      ex.messages.push_back({Role::kAssistant, std::move(text), "", true});
      break;
    }
    case DataFormat::kAuto:
      throw std::logic_error("parse_example: format not resolved");
  }
  if (auto t = obj.find("task"); t != obj.end() && t->is_string()) ex.task = t->get<std::string>();
  return ex;
}

}  // namespace

std::optional<size_t> find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int extra;
    std::uint32_t code;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xe0) == 0xc0) { extra = 1; code = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { extra = 2; code = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { extra = 3; code = c & 0x07; }
    else return i;
    if (i + extra >= s.size()) return i;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return i;
      code = (code << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are invalid too.
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (code < kMin[extra] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += extra + 1;
  }
  return std::nullopt;
}

std::vector<Example> load_jsonl(const std::string& path, DataFormat format, bool skip_invalid,
                                const std::string& default_task, LoadStats* stats,
                                DataFormat* detected) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path + ": cannot read data file");
  std::vector<Example> out;
  LoadStats local;
  std::string line;
  long line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (blank(line)) continue;
    ++local.lines;
    try {
      if (auto bad = find_invalid_utf8(line)) {
        throw LineError{fmt::format("invalid UTF-8 at byte {}", *bad + 1)};
      }
      json obj;
      try {
        obj = json::parse(line);
      } catch (const json::parse_error& e) {
        // nlohmann's message starts with "[json.exception.parse_error.101] parse error at ...".
        std::string what = e.what();
        const size_t colon = what.find("parse error");
        throw LineError{"invalid JSON: " + (colon == std::string::npos ? what : what.substr(colon))};
      }
      if (!obj.is_object()) throw LineError{"each line must be a JSON object"};
      if (format == DataFormat::kAuto) format = detect(obj);
      Example ex = parse_example(obj, format);
      if (ex.task.empty()) ex.task = default_task;
      ex.origin = fmt::format("{}:{}", path, line_no);
      out.push_back(std::move(ex));
    } catch (const LineError& e) {
      if (!skip_invalid) throw error_at(path, line_no, e.reason);
      ++local.invalid_skipped;
    }
  }
  if (local.lines == 0) throw error_at(path, 1, "empty file: no examples");
  if (out.empty()) throw error_at(path, 1, "no valid examples (all lines were invalid)");
  if (stats) {
    stats->lines += local.lines;
    stats->invalid_skipped += local.invalid_skipped;
  }
  if (detected) *detected = format;
  return out;
}

std::optional<TokenizedExample> tokenize_example(const Example& example, const ChatTemplate& tmpl,
                                                 const Tokenizer& tokenizer, int max_len,
                                                 bool truncate_left, TokenizeStats* stats) {
  const RenderedExample r = render(tmpl, example);
  const auto& pieces = r.pieces;
  TokenizedExample out;
  // Where each piece and each token starts: (text run, byte offset in it).
  // Specials are runs of their own.
  std::vector<std::pair<size_t, size_t>> piece_start(pieces.size()), token_start;
  std::vector<std::int32_t> ids;
  std::vector<std::uint32_t> offsets;
  size_t run = 0;
  long straddling = 0;
  for (size_t i = 0; i < pieces.size(); ++run) {
    if (pieces[i].special >= 0) {
      out.ids.push_back(pieces[i].special == kSpecialBos ? tokenizer.bos_id() : tokenizer.eos_id());
      out.roles.push_back(static_cast<std::uint8_t>(pieces[i].role));
      out.flags.push_back(pieces[i].flags);
      piece_start[i] = {run, 0};
      token_start.emplace_back(run, 0);
      ++i;
      continue;
    }
    // A run of text pieces is tokenized as one string, as the model's own
    // tokenizer would see it; each token takes the role of its first byte.
    std::string text;
    std::vector<size_t> starts;
    size_t j = i;
    for (; j < pieces.size() && pieces[j].special < 0; ++j) {
      starts.push_back(text.size());
      piece_start[j] = {run, text.size()};
      text += pieces[j].text;
    }
    ids.clear();
    offsets.clear();
    tokenizer.encode(text, ids, offsets);
    size_t k = 0;  // index into [i, j) of the piece holding the token's first byte
    for (size_t t = 0; t < ids.size(); ++t) {
      const size_t off = std::min<size_t>(offsets[t], text.empty() ? 0 : text.size() - 1);
      while (k + 1 < starts.size() && starts[k + 1] <= off) ++k;
      const auto& piece = pieces[i + k];
      out.ids.push_back(ids[t]);
      out.roles.push_back(static_cast<std::uint8_t>(piece.role));
      out.flags.push_back(piece.flags);
      token_start.emplace_back(run, off);
      // Does the token reach into a later piece of another role?
      const size_t end = t + 1 < ids.size() ? offsets[t + 1] : text.size();
      for (size_t q = k + 1; q < starts.size() && starts[q] < end; ++q) {
        if (pieces[i + q].role != piece.role && !pieces[i + q].text.empty()) {
          ++straddling;
          break;
        }
      }
    }
    i = j;
  }
  // The token holding a piece's first byte: the last token starting at or before it.
  const auto token_holding = [&](size_t piece) {
    if (piece >= pieces.size()) return static_cast<std::int32_t>(out.ids.size());
    std::int32_t found = static_cast<std::int32_t>(out.ids.size());
    for (size_t t = 0; t < token_start.size(); ++t) {
      if (token_start[t].first == piece_start[piece].first && token_start[t].second <= piece_start[piece].second) {
        found = static_cast<std::int32_t>(t);
      } else if (token_start[t].first > piece_start[piece].first) {
        break;
      }
    }
    return found;
  };
  out.completion_begin = token_holding(r.completion_begin);
  // The end: the first token that starts in a piece after the completion.
  out.completion_end = static_cast<std::int32_t>(out.ids.size());
  if (r.completion_end < pieces.size()) {
    const auto& [end_run, end_off] = piece_start[r.completion_end];
    for (size_t t = 0; t < token_start.size(); ++t) {
      if (token_start[t].first > end_run || (token_start[t].first == end_run && token_start[t].second >= end_off)) {
        out.completion_end = static_cast<std::int32_t>(t);
        break;
      }
    }
  }
  if (stats) stats->straddling_tokens += straddling;

  const int length = static_cast<int>(out.ids.size());
  if (length <= max_len) return out;
  // Too long: cut prompt tokens from the left, after a leading <bos>, or skip.
  const int keep_front = (!pieces.empty() && pieces[0].special == kSpecialBos) ? 1 : 0;
  // The template text right before the completion (separator, assistant
  // header) stays too, or the example would lose its shape.
  int protected_begin = out.completion_begin;
  while (protected_begin > keep_front && out.roles[protected_begin - 1] == static_cast<std::uint8_t>(Role::kTemplate)) {
    --protected_begin;
  }
  const int excess = length - max_len;
  if (!truncate_left || excess > protected_begin - keep_front) {
    if (stats) ++stats->skipped_too_long;
    return std::nullopt;
  }
  long earlier_assistant = 0;
  for (int t = keep_front; t < keep_front + excess; ++t) {
    const auto role = static_cast<Role>(out.roles[t]);
    earlier_assistant += (role == Role::kAssistant || role == Role::kEos) ? 1 : 0;
  }
  auto cut = [&](auto& v) { v.erase(v.begin() + keep_front, v.begin() + keep_front + excess); };
  cut(out.ids);
  cut(out.roles);
  cut(out.flags);
  out.completion_begin -= excess;
  out.completion_end -= excess;
  if (stats) {
    ++stats->truncated;
    stats->earlier_turn_tokens_dropped += earlier_assistant;
  }
  return out;
}

namespace {

void hash_examples(Fnv1a& h, const std::vector<TokenizedExample>& examples) {
  h.add_value(examples.size());
  for (const auto& e : examples) {
    h.add(e.ids.data(), e.ids.size() * sizeof(e.ids[0]));
    h.add(e.roles.data(), e.roles.size());
    h.add(e.flags.data(), e.flags.size());
    h.add_value(e.completion_begin).add_value(e.completion_end).add_value(e.task);
  }
}

}  // namespace

Dataset build_dataset(const Config& config) {
  const auto& dc = config.data;
  Dataset ds;
  ds.tokenizer = make_tokenizer(dc.tokenizer);
  ds.chat_template = load_template(dc.template_name);
  const int max_len = dc.max_len > 0 ? dc.max_len : config.model.max_seq_len;
  const bool truncate_left = dc.truncation == Truncation::kLeft;

  std::vector<Example> train_examples, eval_examples;
  if (dc.train.empty()) {
    for (const auto& task : dc.tasks) {
      TaskSplit split = generate_task(task, dc.train_size, dc.eval_size, static_cast<std::uint64_t>(dc.seed));
      std::move(split.train.begin(), split.train.end(), std::back_inserter(train_examples));
      std::move(split.eval.begin(), split.eval.end(), std::back_inserter(eval_examples));
    }
  } else {
    const DataFormat format = dc.format;
    const std::string stem = std::filesystem::path(dc.train).stem().string();
    train_examples = load_jsonl(dc.train, format, dc.skip_invalid, stem, &ds.stats.load);
    if (!dc.eval.empty()) {
      eval_examples = load_jsonl(dc.eval, format, dc.skip_invalid, stem, &ds.stats.load);
    } else {
      // A seeded split: the same data seed gives the same held-out set in every run.
      std::vector<size_t> order(train_examples.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::mt19937_64 rng(derive_seed(static_cast<std::uint64_t>(dc.seed), "eval_split"));
      portable_shuffle(order.begin(), order.end(), rng);
      const size_t n_eval = std::max<size_t>(1, static_cast<size_t>(dc.eval_fraction * order.size()));
      if (n_eval >= order.size()) {
        throw UserError(dc.train + ": too few examples to hold out data.eval_fraction of them");
      }
      std::vector<Example> kept;
      for (size_t i = 0; i < order.size(); ++i) {
        (i < n_eval ? eval_examples : kept).push_back(std::move(train_examples[order[i]]));
      }
      train_examples = std::move(kept);
    }
  }

  auto task_index = [&](const std::string& name) {
    auto it = std::find(ds.tasks.begin(), ds.tasks.end(), name);
    if (it != ds.tasks.end()) return static_cast<std::int32_t>(it - ds.tasks.begin());
    ds.tasks.push_back(name);
    return static_cast<std::int32_t>(ds.tasks.size() - 1);
  };
  auto tokenize_all = [&](const std::vector<Example>& in, std::vector<TokenizedExample>& out) {
    for (const auto& ex : in) {
      auto tok = tokenize_example(ex, ds.chat_template, *ds.tokenizer, max_len, truncate_left,
                                  &ds.stats.truncation);
      if (!tok) continue;
      tok->task = task_index(ex.task);
      out.push_back(std::move(*tok));
    }
  };
  tokenize_all(train_examples, ds.train);
  tokenize_all(eval_examples, ds.eval);
  if (ds.train.empty()) throw UserError("data: no training example fits in data.max_len " + std::to_string(max_len));
  if (ds.eval.empty()) throw UserError("data: no held-out example fits in data.max_len " + std::to_string(max_len));

  // The generalization-gap subset: the first train_eval_size train examples of each task.
  std::vector<int> per_task(ds.tasks.size(), 0);
  for (size_t i = 0; i < ds.train.size(); ++i) {
    if (per_task[ds.train[i].task]++ < dc.train_eval_size) {
      ds.train_eval.push_back(static_cast<std::int32_t>(i));
    }
  }

  Fnv1a h;
  h.add(ds.tokenizer->fingerprint());
  for (const auto& t : ds.tasks) h.add(t);
  hash_examples(h, ds.train);
  hash_examples(h, ds.eval);
  ds.fingerprint = h.hex();
  return ds;
}

}  // namespace masklab
