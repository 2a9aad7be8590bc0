#include "harness/data/eval_sets.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/text.hpp"
#include "harness/data/tasks.hpp"

namespace masklab {
namespace {

using json = nlohmann::json;

// "exp.yaml:14: eval.sets 'gen'.task: reason": the set as the config wrote it.
UserError set_error(const EvalSetConfig& set, const std::string& key, const std::string& why) {
  return UserError(fmt::format("{}: eval.sets '{}'.{}: {}", set.origin.empty() ? "eval.sets" : set.origin, set.name,
                               key, why));
}

const Message* last_user_message(const Example& ex) {
  for (auto it = ex.messages.rbegin(); it != ex.messages.rend(); ++it) {
    if (it->role == Role::kUser) return &*it;
  }
  return nullptr;
}

// A choice line: {"prompt": "...", "choices": ["...", ...], "answer": i}, optional "task".
EvalSetItem parse_choice_line(const std::string& line, const std::string& default_task) {
  if (auto bad = find_invalid_utf8(line)) throw std::runtime_error(fmt::format("invalid UTF-8 at byte {}", *bad + 1));
  json obj;
  try {
    obj = json::parse(line);
  } catch (const json::exception& e) {
    throw std::runtime_error(invalid_json(e.what()));
  }
  if (!obj.is_object()) throw std::runtime_error("not a JSON object");
  auto prompt = obj.find("prompt");
  if (prompt == obj.end() || !prompt->is_string()) throw std::runtime_error("field 'prompt' must be a string");
  auto choices = obj.find("choices");
  if (choices == obj.end() || !choices->is_array()) throw std::runtime_error("field 'choices' must be a list of strings");
  if (choices->empty()) throw std::runtime_error("empty choices list");
  EvalSetItem item;
  for (size_t i = 0; i < choices->size(); ++i) {
    const json& c = (*choices)[i];
    if (!c.is_string()) throw std::runtime_error(fmt::format("choices[{}] is not a string", i));
    if (c.get<std::string>().empty()) throw std::runtime_error(fmt::format("choices[{}] is empty", i));
    item.choices.push_back(c.get<std::string>());
  }
  auto answer = obj.find("answer");
  if (answer == obj.end() || !answer->is_number_integer()) throw std::runtime_error("field 'answer' must be an integer");
  const long long a = answer->get<long long>();
  if (a < 0 || a >= static_cast<long long>(item.choices.size())) {
    throw std::runtime_error(fmt::format("answer {} is out of range: {} choices (0 to {})", a, item.choices.size(),
                                         item.choices.size() - 1));
  }
  item.answer = static_cast<int>(a);
  item.reference = item.choices[static_cast<size_t>(a)];
  item.prompt = prompt->get<std::string>();
  auto task = obj.find("task");
  item.task = task != obj.end() && task->is_string() ? task->get<std::string>() : default_task;
  item.example.task = item.task;
  item.example.messages.push_back({Role::kUser, item.prompt, "", true});
  return item;
}

std::vector<EvalSetItem> load_choice_file(const EvalSetConfig& set) {
  std::string why;
  const auto text = read_file(set.file, &why);
  if (!text) throw set_error(set, "file", "cannot read '" + set.file + "': " + why);
  std::istringstream in(*text);
  std::vector<EvalSetItem> items;
  long line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (trim(line).empty()) continue;
    try {
      items.push_back(parse_choice_line(line, set.name));
    } catch (const std::runtime_error& e) {
      throw error_at(set.file, line_no, e.what());
    }
    items.back().example.origin = fmt::format("{}:{}", set.file, line_no);
  }
  if (items.empty()) throw error_at(set.file, 1, "empty file: no examples");
  return items;
}

// An nll or generate example: its final user prompt and, as the reference, its final completion.
EvalSetItem item_of(Example ex, const EvalSetConfig& set) {
  EvalSetItem item;
  if (const Message* user = last_user_message(ex)) item.prompt = user->content;
  const bool ends_in_reply = !ex.messages.empty() && ex.messages.back().role == Role::kAssistant && !ex.plain_text;
  if (ends_in_reply) item.reference = ex.messages.back().content;
  if (set.kind == EvalSetKind::kGenerate && (!ends_in_reply || trim(item.reference).empty())) {
    throw UserError(ex.origin + ": generate set '" + set.name +
                    "': the example does not end in an assistant reply: no reference to score against");
  }
  item.task = ex.task;
  item.example = std::move(ex);
  return item;
}

std::vector<Example> task_examples(const EvalSetConfig& set, const DataConfig& data) {
  if (set.task == "all") return held_out_examples(data);
  std::string valid;
  for (const auto& t : builtin_tasks()) {
    if (t.name == set.task) return generate_task(set.task, data.train_size, data.eval_size, static_cast<std::uint64_t>(data.seed)).eval;
    valid += t.name + ", ";
  }
  throw set_error(set, "task", fmt::format("unknown task '{}' (valid: {}all)", set.task, valid));
}

std::vector<EvalSetItem> load_items(const EvalSetConfig& set, const DataConfig& data) {
  if (set.kind == EvalSetKind::kChoice && !set.file.empty()) return load_choice_file(set);
  std::vector<Example> examples = set.file.empty()
                                      ? task_examples(set, data)
                                      : load_jsonl(set.file, DataFormat::kAuto, /*skip_invalid=*/false, set.name, nullptr);
  std::vector<EvalSetItem> items;
  for (auto& ex : examples) {
    if (set.kind != EvalSetKind::kChoice) {
      items.push_back(item_of(std::move(ex), set));
      continue;
    }
    // A built-in task's multiple-choice variant: its completion among near misses.
    EvalSetItem item = item_of(std::move(ex), set);
    if (item.reference.empty() || item.prompt.empty()) {
      throw UserError(item.example.origin + ": choice set '" + set.name +
                      "': a built-in choice variant needs a user prompt and a final completion");
    }
    const ChoiceVariant variant = task_choice_variant(item.task, item.prompt, item.reference, static_cast<std::uint64_t>(data.seed));
    item.choices = variant.choices;
    item.answer = variant.answer;
    item.example.messages.pop_back();  // the choices stand in for the completion
    items.push_back(std::move(item));
  }
  return items;
}

// The choice's tokens end before the end marker: only the continuation is scored.
TokenizedExample cut_to_choice(TokenizedExample t) {
  std::int32_t end = t.completion_begin;
  for (std::int32_t k = t.completion_begin; k < t.completion_end; ++k) {
    if (static_cast<Role>(t.roles[static_cast<size_t>(k)]) != Role::kEos) end = k + 1;
  }
  for (std::int32_t k = 0; k < t.completion_begin; ++k) {
    const auto r = static_cast<Role>(t.roles[static_cast<size_t>(k)]);
    if (r == Role::kAssistant || r == Role::kEos) t.roles[static_cast<size_t>(k)] = static_cast<std::uint8_t>(Role::kTemplate);
  }
  for (std::int32_t k = t.completion_begin; k < end; ++k) t.roles[static_cast<size_t>(k)] = static_cast<std::uint8_t>(Role::kAssistant);
  t.ids.resize(static_cast<size_t>(end));
  t.roles.resize(static_cast<size_t>(end));
  t.flags.resize(static_cast<size_t>(end));
  t.completion_end = end;
  t.task = 0;
  return t;
}

struct Tokenization {
  const ChatTemplate& tmpl;
  const Tokenizer& tokenizer;
  int max_len;
  bool truncate_left;
};

void tokenize_item(const EvalSet& set, size_t index, const Tokenization& how, WordedSet& out) {
  const EvalSetItem& item = set.items[index];
  const Example worded = apply_wording(item.example, out.wording);
  std::vector<TokenizedExample> tokens;
  if (set.config.kind != EvalSetKind::kChoice) {
    auto t = tokenize_example(worded, how.tmpl, how.tokenizer, how.max_len, how.truncate_left, nullptr);
    if (t) tokens.push_back(std::move(*t));
  } else {
    for (const auto& choice : item.choices) {
      Example ex = worded;
      ex.messages.push_back({Role::kAssistant, choice, "", true});
      auto t = tokenize_example(ex, how.tmpl, how.tokenizer, how.max_len, how.truncate_left, nullptr);
      if (!t) break;
      tokens.push_back(cut_to_choice(std::move(*t)));
    }
  }
  const size_t wanted = set.config.kind == EvalSetKind::kChoice ? item.choices.size() : 1;
  if (tokens.size() < wanted) {
    ++out.skipped_too_long;  // an item is scored whole or not at all
    return;
  }
  for (size_t c = 0; c < tokens.size(); ++c) {
    tokens[c].task = 0;
    out.tokens.push_back(std::move(tokens[c]));
    out.item.push_back(static_cast<std::int32_t>(index));
    out.choice.push_back(static_cast<std::int32_t>(c));
  }
}

}  // namespace

Example apply_wording(const Example& example, const std::string& wording) {
  if (wording == "{prompt}") return example;
  Example out = example;
  Message* user = nullptr;
  for (auto it = out.messages.rbegin(); it != out.messages.rend() && !user; ++it) {
    if (it->role == Role::kUser) user = &*it;
  }
  if (!user) throw UserError(example.origin + ": no user prompt for the wording '" + wording + "' to rewrite");
  std::string text;
  for (size_t at = 0;;) {
    const size_t hit = wording.find("{prompt}", at);
    text += wording.substr(at, hit == std::string::npos ? std::string::npos : hit - at);
    if (hit == std::string::npos) break;
    text += user->content;
    at = hit + std::string("{prompt}").size();
  }
  user->content = std::move(text);
  return out;
}

std::vector<EvalSet> load_eval_sets(const Config& config, const Tokenizer& tokenizer) {
  std::vector<EvalSet> sets;
  const int max_len = config.data.max_len > 0 ? config.data.max_len : config.model.max_seq_len;
  for (const auto& set_config : config.eval.sets) {
    EvalSet set;
    set.config = set_config;
    set.items = load_items(set_config, config.data);
    if (set_config.max_examples > 0 && static_cast<int>(set.items.size()) > set_config.max_examples) {
      set.items.resize(static_cast<size_t>(set_config.max_examples));
    }
    for (size_t i = 0; i < set.items.size(); ++i) set.items[i].id = static_cast<std::int64_t>(i);
    const std::string template_name = set_config.template_name.empty() ? config.data.template_name : set_config.template_name;
    const ChatTemplate tmpl = load_template(template_name, tokenizer);
    const Tokenization how{tmpl, tokenizer, max_len, config.data.truncation == Truncation::kLeft};
    for (const auto& wording : set_config.wordings) {
      WordedSet worded;
      worded.wording = wording;
      for (size_t i = 0; i < set.items.size(); ++i) tokenize_item(set, i, how, worded);
      if (worded.tokens.empty()) {
        throw set_error(set_config, "wordings", fmt::format("no example fits in data.max_len {} under '{}'", max_len, wording));
      }
      set.worded.push_back(std::move(worded));
    }
    sets.push_back(std::move(set));
  }
  return sets;
}

}  // namespace masklab
