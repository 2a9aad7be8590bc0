#include "harness/data/chat_template.hpp"

#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"

namespace masklab {
namespace {

ChatTemplate plain_template() {
  // "<bos>reverse abc\n=> cba<eos>": the separator "\n=> " has the template role.
  ChatTemplate t;
  t.name = "plain";
  t.bos = "<bos>";
  t.system = {"", "\n"};
  t.user = {"", "\n"};
  t.input = {"\n", ""};
  t.assistant = {"=> ", ""};
  t.assistant_end = "<eos>";
  return t;
}

ChatTemplate chatml_template() {
  ChatTemplate t;
  t.name = "chatml";
  t.system = {"<|im_start|>system\n", "<|im_end|>\n"};
  t.user = {"<|im_start|>user\n", "<|im_end|>\n"};
  t.input = {"\n\n", ""};
  t.assistant = {"<|im_start|>assistant\n", "\n"};
  t.assistant_end = "<|im_end|>";
  return t;
}

ChatTemplate llama2_template() {
  // <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s><s>[INST] ...
  ChatTemplate t;
  t.name = "llama2";
  t.bos = "<bos>";
  t.system = {"<<SYS>>\n", "\n<</SYS>>\n\n"};
  t.system_in_user = true;
  t.user = {"[INST] ", " [/INST]"};
  t.input = {"\n\n", ""};
  t.assistant = {" ", ""};
  t.assistant_end = " <eos>";
  t.turn_start = "<bos>";
  return t;
}

ChatTemplate alpaca_template() {
  ChatTemplate t;
  t.name = "alpaca";
  t.bos = "<bos>";
  t.system = {"", "\n\n"};
  t.user = {"### Instruction:\n", "\n\n"};
  t.input = {"\n\n### Input:\n", ""};
  t.assistant = {"### Response:\n", ""};
  t.assistant_end = "<eos>";
  return t;
}

Wrap read_wrap(const YAML::Node& node, const std::string& path, const std::string& key) {
  Wrap w;
  if (!node) return w;
  if (!node.IsMap()) throw error_at(path, node.Mark().line + 1, key + " must be {prefix, suffix}");
  for (const auto& kv : node) {
    const auto k = kv.first.as<std::string>();
    if (k == "prefix") w.prefix = kv.second.as<std::string>("");
    else if (k == "suffix") w.suffix = kv.second.as<std::string>("");
    else throw error_at(path, kv.first.Mark().line + 1, "unknown template key '" + key + "." + k + "'");
  }
  return w;
}

// Appends `text`, splitting out "<bos>" / "<eos>" as special-token pieces.
void emit(std::vector<RenderedPiece>& out, const std::string& text, Role role, std::uint8_t flags) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t bos = text.find("<bos>", pos);
    const size_t eos = text.find("<eos>", pos);
    const size_t next = std::min(bos, eos);
    if (next > pos) {
      out.push_back({text.substr(pos, next - pos), -1, role, flags});
    }
    if (next == std::string::npos) break;
    out.push_back({"", next == bos ? kSpecialBos : kSpecialEos, role, flags});
    pos = next + 5;
  }
}

}  // namespace

std::vector<std::string> builtin_template_names() { return {"plain", "chatml", "llama2", "alpaca"}; }

ChatTemplate load_template(const std::string& name_or_path) {
  if (name_or_path == "plain" || name_or_path.empty()) return plain_template();
  if (name_or_path == "chatml") return chatml_template();
  if (name_or_path == "llama2") return llama2_template();
  if (name_or_path == "alpaca") return alpaca_template();
  const std::string& path = name_or_path;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw UserError("data.template: '" + path +
                    "' is neither a built-in template (plain, chatml, llama2, alpaca) nor a readable file");
  } catch (const YAML::ParserException& e) {
    throw error_at(path, e.mark.line + 1, "invalid YAML: " + e.msg);
  }
  if (!root.IsMap()) throw error_at(path, 1, "a template must be a mapping");
  ChatTemplate t;
  t.name = path;
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    const auto& v = kv.second;
    try {
      if (key == "bos") t.bos = v.as<std::string>("");
      else if (key == "system") t.system = read_wrap(v, path, key);
      else if (key == "user") t.user = read_wrap(v, path, key);
      else if (key == "input") t.input = read_wrap(v, path, key);
      else if (key == "assistant") t.assistant = read_wrap(v, path, key);
      else if (key == "assistant_end") t.assistant_end = v.as<std::string>("");
      else if (key == "turn_start") t.turn_start = v.as<std::string>("");
      else if (key == "system_in_user") t.system_in_user = v.as<bool>();
      else if (key == "name") t.name = v.as<std::string>();
      else throw error_at(path, kv.first.Mark().line + 1, "unknown template key '" + key + "'");
    } catch (const YAML::Exception&) {
      throw error_at(path, v.Mark().line + 1, "template key '" + key + "' has the wrong type");
    }
  }
  return t;
}

RenderedExample render(const ChatTemplate& tmpl, const Example& example) {
  RenderedExample r;
  auto& out = r.pieces;
  if (example.plain_text) {
    // Plain LM text: the whole text is the "completion" and carries loss under every strategy.
    emit(out, "<bos>", Role::kTemplate, 0);
    r.completion_begin = out.size();
    for (const auto& m : example.messages) emit(out, m.content, Role::kAssistant, kFlagLastTurn);
    emit(out, "<eos>", Role::kEos, kFlagLastTurn);
    r.completion_end = out.size();
    return r;
  }

  int last_assistant = -1;
  for (size_t i = 0; i < example.messages.size(); ++i) {
    if (example.messages[i].role == Role::kAssistant) last_assistant = static_cast<int>(i);
  }
  bool has_user = false;
  for (const auto& m : example.messages) has_user = has_user || m.role == Role::kUser;

  emit(out, tmpl.bos, Role::kTemplate, 0);
  const Message* pending_system = nullptr;  // llama2 puts it inside the first user turn
  bool first_user = true;
  for (size_t i = 0; i < example.messages.size(); ++i) {
    const Message& m = example.messages[i];
    const bool is_last = static_cast<int>(i) == last_assistant;
    const std::uint8_t flags = static_cast<std::uint8_t>((is_last ? kFlagLastTurn : 0) |
                                                         (m.trainable ? 0 : kFlagMessageMasked));
    switch (m.role) {
      case Role::kSystem:
        if (tmpl.system_in_user && first_user && has_user) {
          pending_system = &m;
        } else {
          emit(out, tmpl.system.prefix, Role::kTemplate, 0);
          emit(out, m.content, Role::kSystem, flags);
          emit(out, tmpl.system.suffix, Role::kTemplate, 0);
        }
        break;
      case Role::kUser:
        if (!first_user) emit(out, tmpl.turn_start, Role::kTemplate, 0);
        emit(out, tmpl.user.prefix, Role::kTemplate, 0);
        if (pending_system) {
          emit(out, tmpl.system.prefix, Role::kTemplate, 0);
          emit(out, pending_system->content, Role::kSystem,
               pending_system->trainable ? 0 : kFlagMessageMasked);
          emit(out, tmpl.system.suffix, Role::kTemplate, 0);
          pending_system = nullptr;
        }
        emit(out, m.content, Role::kUser, flags);
        if (!m.input.empty()) {
          emit(out, tmpl.input.prefix, Role::kTemplate, 0);
          emit(out, m.input, Role::kUser, flags);
          emit(out, tmpl.input.suffix, Role::kTemplate, 0);
        }
        emit(out, tmpl.user.suffix, Role::kTemplate, 0);
        first_user = false;
        break;
      case Role::kAssistant:
        emit(out, tmpl.assistant.prefix, Role::kTemplate, is_last ? kFlagLastTurn : 0);
        if (is_last) r.completion_begin = out.size();
        emit(out, m.content, Role::kAssistant, flags);
        emit(out, tmpl.assistant_end, Role::kEos, flags);
        if (is_last) r.completion_end = out.size();
        emit(out, tmpl.assistant.suffix, Role::kTemplate, is_last ? kFlagLastTurn : 0);
        break;
      default:
        throw std::logic_error("render: message with a non-message role");
    }
  }
  return r;
}

}  // namespace masklab
