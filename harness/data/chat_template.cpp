#include "harness/data/chat_template.hpp"

#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/yaml_file.hpp"

namespace masklab {
namespace {

// The built-in templates, one row each. Columns in ChatTemplate's order:
// name, bos, system, user, input, assistant (each {prefix, suffix} where
// braced), assistant_end, turn_start, system_in_user.
const std::vector<ChatTemplate>& builtin_templates() {
  static const std::vector<ChatTemplate> templates = {
      // "<bos>reverse abc\n=> cba<eos>": the separator "\n=> " has the template role.
      {"plain", "<bos>", {"", "\n"}, {"", "\n"}, {"\n", ""}, {"=> ", ""}, "<eos>", "", false},
      {"chatml", "", {"<|im_start|>system\n", "<|im_end|>\n"}, {"<|im_start|>user\n", "<|im_end|>\n"},
       {"\n\n", ""}, {"<|im_start|>assistant\n", "\n"}, "<|im_end|>", "", false},
      // <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s><s>[INST] ...
      {"llama2", "<bos>", {"<<SYS>>\n", "\n<</SYS>>\n\n"}, {"[INST] ", " [/INST]"}, {"\n\n", ""}, {" ", ""},
       " <eos>", "<bos>", true},
      // <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|><|start_header_id|>assistant...
      {"llama3", "<bos>", {"<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"},
       {"<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"}, {"\n\n", ""},
       {"<|start_header_id|>assistant<|end_header_id|>\n\n", ""}, "<|eot_id|>", "", false},
      // <s>[INST] {user} [/INST]{answer}</s>[INST] ...; a system message opens the first user turn.
      {"mistral", "<bos>", {"", "\n\n"}, {"[INST] ", " [/INST]"}, {"\n\n", ""}, {"", ""}, "<eos>", "", true},
      {"alpaca", "<bos>", {"", "\n\n"}, {"### Instruction:\n", "\n\n"}, {"\n\n### Input:\n", ""},
       {"### Response:\n", ""}, "<eos>", "", false},
  };
  return templates;
}

// A template text: a string, or nothing (an empty text). A list or a mapping
// is an error naming file:line; yaml-cpp's as<std::string>(fallback) would
// silently turn it into the fallback, and the template would lose a piece.
std::string read_text(const YAML::Node& node, const std::string& path, const std::string& key) {
  if (!node || node.IsNull()) return "";
  if (!node.IsScalar()) throw UserError(yaml_location(path, node) + ": template key '" + key + "' must be a string");
  return node.Scalar();
}

Wrap read_wrap(const YAML::Node& node, const std::string& path, const std::string& key) {
  Wrap w;
  if (!node) return w;
  if (!node.IsMap()) throw UserError(yaml_location(path, node) + ": " + key + " must be {prefix, suffix}");
  for (const auto& kv : node) {
    const auto k = kv.first.as<std::string>();
    if (k == "prefix") w.prefix = read_text(kv.second, path, key + "." + k);
    else if (k == "suffix") w.suffix = read_text(kv.second, path, key + "." + k);
    else throw UserError(yaml_location(path, kv.first) + ": unknown template key '" + key + "." + k + "'");
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

// `text` between the template's prefix and suffix for its role.
void emit_wrapped(std::vector<RenderedPiece>& out, const Wrap& wrap, const std::string& text, Role role,
                  std::uint8_t flags) {
  emit(out, wrap.prefix, Role::kTemplate, 0);
  emit(out, text, role, flags);
  emit(out, wrap.suffix, Role::kTemplate, 0);
}

std::uint8_t message_flags(const Message& m, bool is_last) {
  return static_cast<std::uint8_t>((is_last ? kFlagLastTurn : 0) | (m.trainable ? 0 : kFlagMessageMasked));
}

// Index of the last message with `role`; messages.size() when there is none.
size_t last_of(const std::vector<Message>& messages, Role role) {
  for (size_t i = messages.size(); i-- > 0;) {
    if (messages[i].role == role) return i;
  }
  return messages.size();
}

// Plain LM text: the whole text is the "completion" and carries loss under every strategy.
RenderedExample render_plain(const Example& example) {
  RenderedExample r;
  emit(r.pieces, "<bos>", Role::kTemplate, 0);
  r.completion_begin = r.pieces.size();
  for (const auto& m : example.messages) emit(r.pieces, m.content, Role::kAssistant, kFlagLastTurn);
  emit(r.pieces, "<eos>", Role::kEos, kFlagLastTurn);
  r.completion_end = r.pieces.size();
  return r;
}

// A user turn, with a system message held back for it (llama2) and its Alpaca input.
void emit_user(std::vector<RenderedPiece>& out, const ChatTemplate& tmpl, const Message& m, std::uint8_t flags,
               bool first_user, const Message* pending_system) {
  if (!first_user) emit(out, tmpl.turn_start, Role::kTemplate, 0);
  emit(out, tmpl.user.prefix, Role::kTemplate, 0);
  if (pending_system) {
    emit_wrapped(out, tmpl.system, pending_system->content, Role::kSystem, message_flags(*pending_system, false));
  }
  emit(out, m.content, Role::kUser, flags);
  if (!m.input.empty()) emit_wrapped(out, tmpl.input, m.input, Role::kUser, flags);
  emit(out, tmpl.user.suffix, Role::kTemplate, 0);
}

// An assistant turn; the final one's content and end marker are the completion.
void emit_assistant(RenderedExample& r, const ChatTemplate& tmpl, const Message& m, std::uint8_t flags, bool is_last) {
  const std::uint8_t wrap_flags = is_last ? kFlagLastTurn : 0;
  emit(r.pieces, tmpl.assistant.prefix, Role::kTemplate, wrap_flags);
  if (is_last) r.completion_begin = r.pieces.size();
  emit(r.pieces, m.content, Role::kAssistant, flags);
  emit(r.pieces, tmpl.assistant_end, Role::kEos, flags);
  if (is_last) r.completion_end = r.pieces.size();
  emit(r.pieces, tmpl.assistant.suffix, Role::kTemplate, wrap_flags);
}

}  // namespace

std::vector<std::string> builtin_template_names() {
  std::vector<std::string> names;
  for (const auto& t : builtin_templates()) names.push_back(t.name);
  return names;
}

ChatTemplate load_template(const std::string& name_or_path) {
  if (name_or_path.empty()) return builtin_templates().front();
  for (const auto& t : builtin_templates()) {
    if (t.name == name_or_path) return t;
  }
  const std::string& path = name_or_path;
  std::string why;
  const auto text = read_file(path, &why);
  if (!text) {
    std::string names;
    for (const auto& name : builtin_template_names()) names += (names.empty() ? "" : ", ") + name;
    throw UserError("data.template: '" + path + "' is neither a built-in template (" + names +
                    ") nor a readable file: " + why);
  }
  return parse_template(*text, path);
}

ChatTemplate parse_template(const std::string& text, const std::string& path) {
  const YAML::Node root = parse_yaml(text, path);
  if (!root.IsMap()) throw error_at(path, 1, "a template must be a mapping");
  ChatTemplate t;
  t.name = path;
  for (const auto& kv : root) {
    const auto key = kv.first.as<std::string>();
    const auto& v = kv.second;
    try {
      if (key == "bos") t.bos = read_text(v, path, key);
      else if (key == "system") t.system = read_wrap(v, path, key);
      else if (key == "user") t.user = read_wrap(v, path, key);
      else if (key == "input") t.input = read_wrap(v, path, key);
      else if (key == "assistant") t.assistant = read_wrap(v, path, key);
      else if (key == "assistant_end") t.assistant_end = read_text(v, path, key);
      else if (key == "turn_start") t.turn_start = read_text(v, path, key);
      else if (key == "system_in_user") t.system_in_user = v.as<bool>();
      else if (key == "name") t.name = read_text(v, path, key);
      else throw UserError(yaml_location(path, kv.first) + ": unknown template key '" + key + "'");
    } catch (const YAML::Exception&) {
      throw UserError(yaml_location(path, v) + ": template key '" + key + "' has the wrong type");
    }
  }
  return t;
}

std::string template_family(const std::string& jinja) {
  const auto has = [&](const char* marker) { return jinja.find(marker) != std::string::npos; };
  if (has("<|im_start|>")) return "chatml";
  if (has("<|start_header_id|>")) return "llama3";
  if (has("[INST]")) return has("<<SYS>>") ? "llama2" : "mistral";
  return "";
}

ChatTemplate load_template(const std::string& name_or_path, const Tokenizer& tokenizer) {
  if (name_or_path != "auto") return load_template(name_or_path);
  const std::string jinja = tokenizer.chat_template();
  const std::string how = "; set data.template to a built-in template (plain, chatml, llama2, llama3, mistral, alpaca) "
                          "or to a FILE.yaml";
  if (jinja.empty()) {
    throw UserError("data.template=auto: the tokenizer has no chat template (tokenizer_config.json chat_template)" + how);
  }
  const std::string family = template_family(jinja);
  if (family.empty()) {
    throw UserError("data.template=auto: the tokenizer's chat template is of no known family (ChatML <|im_start|>, "
                    "Llama 3 <|start_header_id|>, Llama 2 [INST] <<SYS>>, Mistral [INST])" + how);
  }
  return load_template(family);
}

RenderedExample render(const ChatTemplate& tmpl, const Example& example) {
  if (example.plain_text) return render_plain(example);
  RenderedExample r;
  const auto& messages = example.messages;
  const size_t last_assistant = last_of(messages, Role::kAssistant);
  const bool has_user = last_of(messages, Role::kUser) != messages.size();
  emit(r.pieces, tmpl.bos, Role::kTemplate, 0);
  const Message* pending_system = nullptr;  // llama2 puts it inside the first user turn
  bool first_user = true;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    const bool is_last = i == last_assistant;
    const std::uint8_t flags = message_flags(m, is_last);
    switch (m.role) {
      case Role::kSystem:
        if (tmpl.system_in_user && first_user && has_user) {
          pending_system = &m;
        } else {
          emit_wrapped(r.pieces, tmpl.system, m.content, Role::kSystem, flags);
        }
        break;
      case Role::kUser:
        emit_user(r.pieces, tmpl, m, flags, first_user, pending_system);
        pending_system = nullptr;
        first_user = false;
        break;
      case Role::kAssistant:
        emit_assistant(r, tmpl, m, flags, is_last);
        break;
      default:
        throw std::logic_error("render: message with a non-message role");
    }
  }
  return r;
}

}  // namespace masklab
