#include "harness/data/data.hpp"

#include <algorithm>
#include <filesystem>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/hashing.hpp"
#include "harness/core/random.hpp"
#include "harness/core/text.hpp"
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
    if (trim(m.content).empty()) throw LineError{"empty completion (an assistant message has no content)"};
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

// TRL accepts the prompt and the completion as strings or as message lists.
void append_turns(std::vector<Message>& messages, const json& value, const char* name, Role role) {
  if (value.is_array()) {
    for (auto& m : parse_messages(value, name)) messages.push_back(std::move(m));
  } else if (value.is_string()) {
    messages.push_back({role, value.get<std::string>(), "", true});
  } else {
    throw LineError{std::string("field '") + name + "' must be a string or a list of messages"};
  }
}

std::vector<Message> prompt_completion_messages(const json& obj) {
  // Both fields are looked up first, so a missing one is named before a mistyped one.
  const json& prompt = field(obj, "prompt");
  const json& completion = field(obj, "completion");
  std::vector<Message> messages;
  append_turns(messages, prompt, "prompt", Role::kUser);
  append_turns(messages, completion, "completion", Role::kAssistant);
  return messages;
}

std::vector<Message> alpaca_messages(const json& obj) {
  Message user{Role::kUser, string_field(obj, "instruction"), "", true};
  if (auto in = obj.find("input"); in != obj.end() && !in->is_null()) {
    if (!in->is_string()) throw LineError{"field 'input' must be a string"};
    user.input = in->get<std::string>();
  }
  std::vector<Message> messages;
  messages.push_back(std::move(user));
  messages.push_back({Role::kAssistant, string_field(obj, "output"), "", true});
  return messages;
}

Message plain_text_message(const json& obj) {
  std::string text = string_field(obj, "text");
  if (trim(text).empty()) throw LineError{"empty text"};
  return {Role::kAssistant, std::move(text), "", true};
}

Example parse_example(const json& obj, DataFormat format) {
  Example ex;
  switch (format) {
    case DataFormat::kPromptCompletion:
      ex.messages = prompt_completion_messages(obj);
      break;
    case DataFormat::kChat:
      ex.messages = parse_messages(field(obj, "messages"), "messages");
      break;
    case DataFormat::kAlpaca:
      ex.messages = alpaca_messages(obj);
      break;
    case DataFormat::kText:
      ex.messages.push_back(plain_text_message(obj));
      ex.plain_text = true;
      break;
    case DataFormat::kAuto:
      throw std::logic_error("parse_example: format not resolved");
  }
  // Plain text trains every token: it has no completion to require.
  if (!ex.plain_text) require_completion(ex.messages);
  if (auto t = obj.find("task"); t != obj.end() && !t->is_null()) {
    // A number or list here would silently fall back to the file's name.
    if (!t->is_string()) throw LineError{"field 'task' must be a string"};
    ex.task = t->get<std::string>();
  }
  // Metric keys nest at dots (per_task.<task>.<metric>), so a dotted task
  // name would read as a deeper metric.
  if (ex.task.find('.') != std::string::npos) {
    throw LineError{"task name '" + ex.task + "' must not contain '.'"};
  }
  return ex;
}

json parse_json_line(const std::string& line) {
  if (auto bad = find_invalid_utf8(line)) throw LineError{fmt::format("invalid UTF-8 at byte {}", *bad + 1)};
  try {
    return json::parse(line);
  } catch (const json::exception& e) {
    throw LineError{invalid_json(e.what())};
  }
}

// One non-blank line as an Example. An auto `format` is resolved by the
// first line that parses as an object and kept for the rest of the file.
Example parse_line(const std::string& line, DataFormat& format) {
  const json obj = parse_json_line(line);
  if (!obj.is_object()) throw LineError{"each line must be a JSON object"};
  if (format == DataFormat::kAuto) format = detect(obj);
  return parse_example(obj, format);
}

}  // namespace


std::vector<Example> load_jsonl(const std::string& path, DataFormat format, bool skip_invalid,
                                const std::string& default_task, LoadStats* stats,
                                DataFormat* detected) {
  std::string why;
  const auto text = read_file(path, &why);
  if (!text) throw UserError(path + ": cannot read data file: " + why);
  return parse_jsonl(*text, path, format, skip_invalid, default_task, stats, detected);
}

std::vector<Example> parse_jsonl(const std::string& text, const std::string& path, DataFormat format,
                                 bool skip_invalid, const std::string& default_task, LoadStats* stats,
                                 DataFormat* detected) {
  std::istringstream in(text);
  std::vector<Example> out;
  LoadStats local;
  std::string line;
  long line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    ++local.lines;
    try {
      Example ex = parse_line(line, format);
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

namespace {

// Where a piece or a token starts: (text run, byte offset in the run).
// Specials are runs of their own; positions compare run first.
using TextPosition = std::pair<size_t, size_t>;

// An example's tokens before truncation, with the start of every piece and
// every token, so that piece boundaries can be found among the tokens.
struct TokenLayout {
  TokenizedExample tokens;
  std::vector<TextPosition> piece_start;
  std::vector<TextPosition> token_start;
  long straddling = 0;  // tokens whose text reaches into a piece of another role
};

void append_token(TokenLayout& layout, std::int32_t id, const RenderedPiece& piece, TextPosition start) {
  layout.tokens.ids.push_back(id);
  layout.tokens.roles.push_back(static_cast<std::uint8_t>(piece.role));
  layout.tokens.flags.push_back(piece.flags);
  layout.token_start.push_back(start);
}

// Whether a token that starts in piece `first + k` and ends at byte `end` of
// the run reaches into a later, non-empty piece of another role.
bool reaches_other_role(const std::vector<RenderedPiece>& pieces, size_t first, const std::vector<size_t>& starts,
                        size_t k, size_t end) {
  for (size_t q = k + 1; q < starts.size() && starts[q] < end; ++q) {
    if (pieces[first + q].role != pieces[first + k].role && !pieces[first + q].text.empty()) return true;
  }
  return false;
}

// The piece whose role a token takes when its first byte lies in piece
// `first + k` and it ends at byte `end` of the run: that piece, unless it is
// template text and the token reaches into a message's text. Byte-level BPE
// merges the space a template puts before the content into the content's
// first word ("Ġ42" after "Answer:"), and that token is the completion's
// first token: it must not be given the template's (prompt) role.
size_t role_piece(const std::vector<RenderedPiece>& pieces, size_t first, const std::vector<size_t>& starts, size_t k,
                  size_t end) {
  if (pieces[first + k].role != Role::kTemplate) return first + k;
  for (size_t q = k + 1; q < starts.size() && starts[q] < end; ++q) {
    if (pieces[first + q].role != Role::kTemplate && !pieces[first + q].text.empty()) return first + q;
  }
  return first + k;
}

// The text pieces [first, last) are tokenized as one string, as the model's
// own tokenizer would see it; each token takes the role of its first byte,
// or of the first message text it holds when that byte is template text
// (role_piece).
void append_text_run(const std::vector<RenderedPiece>& pieces, size_t first, size_t last, size_t run,
                     const Tokenizer& tokenizer, TokenLayout& layout) {
  std::string text;
  std::vector<size_t> starts;  // each piece's offset in `text`
  for (size_t j = first; j < last; ++j) {
    starts.push_back(text.size());
    layout.piece_start[j] = {run, text.size()};
    text += pieces[j].text;
  }
  std::vector<std::int32_t> ids;
  std::vector<std::uint32_t> offsets;
  tokenizer.encode(text, ids, offsets);
  size_t k = 0;  // index into [first, last) of the piece holding the token's first byte
  for (size_t t = 0; t < ids.size(); ++t) {
    const size_t off = std::min<size_t>(offsets[t], text.empty() ? 0 : text.size() - 1);
    while (k + 1 < starts.size() && starts[k + 1] <= off) ++k;
    const size_t end = t + 1 < ids.size() ? offsets[t + 1] : text.size();
    append_token(layout, ids[t], pieces[role_piece(pieces, first, starts, k, end)], {run, off});
    if (reaches_other_role(pieces, first, starts, k, end)) ++layout.straddling;
  }
}

TokenLayout tokenize_pieces(const std::vector<RenderedPiece>& pieces, const Tokenizer& tokenizer) {
  TokenLayout layout;
  layout.piece_start.resize(pieces.size());
  size_t run = 0;
  for (size_t i = 0; i < pieces.size(); ++run) {
    if (pieces[i].special >= 0) {
      const std::int32_t id = pieces[i].special == kSpecialBos ? tokenizer.bos_id() : tokenizer.eos_id();
      layout.piece_start[i] = {run, 0};
      if (id >= 0) append_token(layout, id, pieces[i], {run, 0});  // a tokenizer without bos renders "<bos>" as nothing
      ++i;
      continue;
    }
    size_t last = i;
    while (last < pieces.size() && pieces[last].special < 0) ++last;
    append_text_run(pieces, i, last, run, tokenizer, layout);
    i = last;
  }
  return layout;
}

// The token holding a piece's first byte: the last token of the piece's run
// starting at or before it; the token count for a piece past the end.
std::int32_t token_holding(const TokenLayout& layout, size_t piece) {
  auto found = static_cast<std::int32_t>(layout.tokens.ids.size());
  if (piece >= layout.piece_start.size()) return found;
  const auto [run, offset] = layout.piece_start[piece];
  for (size_t t = 0; t < layout.token_start.size(); ++t) {
    if (layout.token_start[t].first == run && layout.token_start[t].second <= offset) {
      found = static_cast<std::int32_t>(t);
    } else if (layout.token_start[t].first > run) {
      break;
    }
  }
  return found;
}

// The first token that starts at or after a piece's first byte; the token
// count when there is none.
std::int32_t first_token_from(const TokenLayout& layout, size_t piece) {
  if (piece < layout.piece_start.size()) {
    for (size_t t = 0; t < layout.token_start.size(); ++t) {
      if (layout.token_start[t] >= layout.piece_start[piece]) return static_cast<std::int32_t>(t);
    }
  }
  return static_cast<std::int32_t>(layout.tokens.ids.size());
}

// Cuts prompt tokens from the left, after the first `keep_front`, until the
// example fits in max_len; nullopt (counted) when that would reach into the
// completion or truncation is "skip" (docs/design.md, invariant 12).
std::optional<TokenizedExample> fit_length(TokenizedExample out, int keep_front, int max_len, bool truncate_left,
                                           TokenizeStats* stats) {
  const int length = static_cast<int>(out.ids.size());
  if (length <= max_len) return out;
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

}  // namespace

std::optional<TokenizedExample> tokenize_example(const Example& example, const ChatTemplate& tmpl,
                                                 const Tokenizer& tokenizer, int max_len,
                                                 bool truncate_left, TokenizeStats* stats) {
  const RenderedExample r = render(tmpl, example);
  TokenLayout layout = tokenize_pieces(r.pieces, tokenizer);
  layout.tokens.completion_begin = token_holding(layout, r.completion_begin);
  // The end: the first token that starts in a piece after the completion.
  layout.tokens.completion_end = first_token_from(layout, r.completion_end);
  if (stats) stats->straddling_tokens += layout.straddling;
  const bool bos_first = !r.pieces.empty() && r.pieces[0].special == kSpecialBos && tokenizer.bos_id() >= 0;
  return fit_length(std::move(layout.tokens), /*keep_front=*/bos_first ? 1 : 0, max_len, truncate_left, stats);
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


TaskSplit builtin_task_examples(const DataConfig& dc) {
  TaskSplit all;
  for (const auto& task : dc.tasks) {
    TaskSplit split = generate_task(task, dc.train_size, dc.eval_size, static_cast<std::uint64_t>(dc.seed));
    std::move(split.train.begin(), split.train.end(), std::back_inserter(all.train));
    std::move(split.eval.begin(), split.eval.end(), std::back_inserter(all.eval));
  }
  return all;
}

// A seeded split: the same data seed gives the same held-out set in every run.
TaskSplit hold_out_fraction(std::vector<Example> examples, const DataConfig& dc) {
  std::vector<size_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(derive_seed(static_cast<std::uint64_t>(dc.seed), "eval_split"));
  portable_shuffle(order.begin(), order.end(), rng);
  const size_t n_eval = std::max<size_t>(1, static_cast<size_t>(dc.eval_fraction * order.size()));
  if (n_eval >= order.size()) {
    throw UserError(dc.train + ": too few examples to hold out data.eval_fraction of them");
  }
  TaskSplit split;
  for (size_t i = 0; i < order.size(); ++i) {
    (i < n_eval ? split.eval : split.train).push_back(std::move(examples[order[i]]));
  }
  return split;
}

TaskSplit file_examples(const DataConfig& dc, LoadStats* stats) {
  // Examples without a "task" field are scored under the training file's
  // name, with dots made '_' as a "task" field may not hold them
  // (x.train.jsonl -> x_train).
  std::string stem = std::filesystem::path(dc.train).stem().string();
  std::replace(stem.begin(), stem.end(), '.', '_');
  std::vector<Example> train =
      parse_jsonl(read_file_for("data.train", dc.train), dc.train, dc.format, dc.skip_invalid, stem, stats);
  if (dc.eval.empty()) return hold_out_fraction(std::move(train), dc);
  return {std::move(train),
          parse_jsonl(read_file_for("data.eval", dc.eval), dc.eval, dc.format, dc.skip_invalid, stem, stats)};
}

std::int32_t task_index(std::vector<std::string>& tasks, const std::string& name) {
  auto it = std::find(tasks.begin(), tasks.end(), name);
  if (it != tasks.end()) return static_cast<std::int32_t>(it - tasks.begin());
  tasks.push_back(name);
  return static_cast<std::int32_t>(tasks.size() - 1);
}

// Tokenizes `examples` into `out`, registering their tasks in ds.tasks;
// examples that cannot fit are counted in ds.stats and left out.
void tokenize_into(const std::vector<Example>& examples, int max_len, bool truncate_left, Dataset& ds,
                   std::vector<TokenizedExample>& out) {
  for (const auto& ex : examples) {
    auto tok = tokenize_example(ex, ds.chat_template, *ds.tokenizer, max_len, truncate_left, &ds.stats.truncation);
    if (!tok) continue;
    tok->task = task_index(ds.tasks, ex.task);
    out.push_back(std::move(*tok));
  }
}

// The generalization-gap subset: the first train_eval_size train examples of each task.
std::vector<std::int32_t> train_eval_subset(const Dataset& ds, int train_eval_size) {
  std::vector<std::int32_t> subset;
  std::vector<int> per_task(ds.tasks.size(), 0);
  for (size_t i = 0; i < ds.train.size(); ++i) {
    if (per_task[ds.train[i].task]++ < train_eval_size) subset.push_back(static_cast<std::int32_t>(i));
  }
  return subset;
}

// True when some label of `ex` is a completion token (an assistant token or
// its end marker) whose message is not masked by "weight": 0. Token 0 is
// never a label.
bool has_trainable_completion(const TokenizedExample& ex) {
  for (size_t t = 1; t < ex.roles.size(); ++t) {
    const auto role = static_cast<Role>(ex.roles[t]);
    const bool completion = role == Role::kAssistant || role == Role::kEos;
    if (completion && (ex.flags[t] & kFlagMessageMasked) == 0) return true;
  }
  return false;
}

}  // namespace

Dataset build_dataset(const Config& config) {
  const auto& dc = config.data;
  Dataset ds;
  ds.tokenizer = make_tokenizer(dc.tokenizer);
  ds.chat_template = load_template(dc.template_name, *ds.tokenizer);
  const int max_len = dc.max_len > 0 ? dc.max_len : config.model.max_seq_len;
  const bool truncate_left = dc.truncation == Truncation::kLeft;

  const TaskSplit examples = dc.train.empty() ? builtin_task_examples(dc) : file_examples(dc, &ds.stats.load);
  tokenize_into(examples.train, max_len, truncate_left, ds, ds.train);
  tokenize_into(examples.eval, max_len, truncate_left, ds, ds.eval);
  if (ds.train.empty()) throw UserError("data: no training example fits in data.max_len " + std::to_string(max_len));
  if (ds.eval.empty()) throw UserError("data: no held-out example fits in data.max_len " + std::to_string(max_len));
  // Such a run would train on nothing (loss 0) and still be recorded ok.
  if (std::none_of(ds.train.begin(), ds.train.end(), has_trainable_completion)) {
    throw UserError((dc.train.empty() ? std::string("data.tasks") : dc.train) +
                    ": no example has a completion token to train on (every assistant message has weight 0?)");
  }
  ds.train_eval = train_eval_subset(ds, dc.train_eval_size);
  ds.fingerprint = dataset_fingerprint(ds);
  return ds;
}

std::vector<Example> held_out_examples(const DataConfig& dc) {
  return dc.train.empty() ? builtin_task_examples(dc).eval : file_examples(dc, nullptr).eval;
}

std::string dataset_fingerprint(const Dataset& ds) {
  Fnv1a h;
  h.add(ds.tokenizer->fingerprint());
  for (const auto& t : ds.tasks) h.add(t);
  hash_examples(h, ds.train);
  hash_examples(h, ds.eval);
  return h.hex();
}

}  // namespace masklab
