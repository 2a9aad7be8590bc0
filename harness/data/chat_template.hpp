#pragma once
// Chat templates render an Example into text pieces that know their role.
// Roles are tracked per character span while rendering, never recovered by
// searching the token stream for a response template: a token takes the role
// of its first character (see tokenize_example in data.hpp).
#include <string>
#include <vector>

#include "harness/data/example.hpp"
#include "harness/data/tokenizer.hpp"

namespace masklab {

// The strings around one role's messages.
struct Wrap {
  std::string prefix;
  std::string suffix;
};

// Strings may contain "<bos>" and "<eos>", which stand for the tokenizer's
// special tokens rather than their letters.
struct ChatTemplate {
  std::string name;
  std::string bos;            // once, at the start of every example (role template)
  Wrap system;
  Wrap user;
  Wrap input;                 // around a user message's Alpaca "input", after its content
  Wrap assistant;             // suffix comes after assistant_end and is not part of the completion
  std::string assistant_end;  // closes every assistant turn (role eos): part of the completion
  std::string turn_start;     // before every user turn but the first (llama2's "<bos>")
  bool system_in_user = false;  // the system text goes inside the first user turn (llama2)
};

// One rendered piece: literal text, or a special token when special >= 0.
struct RenderedPiece {
  std::string text;
  int special = -1;           // kSpecialBos / kSpecialEos
  Role role = Role::kTemplate;
  std::uint8_t flags = 0;     // TokenFlag bits
};
constexpr int kSpecialBos = 0;
constexpr int kSpecialEos = 1;

struct RenderedExample {
  std::vector<RenderedPiece> pieces;
  // Piece range [begin, end) of the final assistant turn's content and end
  // marker: what greedy decoding must reproduce for exact match.
  size_t completion_begin = 0;
  size_t completion_end = 0;
};

// Names of the built-in templates: plain, chatml, llama2, llama3, mistral, alpaca.
std::vector<std::string> builtin_template_names();
// A built-in name, or a path to a YAML file with keys bos, system, user,
// input, assistant (each {prefix, suffix}), assistant_end, turn_start,
// system_in_user.
ChatTemplate load_template(const std::string& name_or_path);
// A template file's YAML text; `path` names it in errors and is the template's default name.
ChatTemplate parse_template(const std::string& text, const std::string& path);

// The built-in template of the family a Jinja chat template belongs to,
// recognised by its markers: "chatml" (<|im_start|>), "llama3"
// (<|start_header_id|>), "llama2" ([INST] and <<SYS>>), "mistral" ([INST]
// without <<SYS>>); "" for none of them.
std::string template_family(const std::string& jinja);

// As load_template(name_or_path), and "auto": the built-in template of the
// family of the tokenizer's own chat template (a UserError saying how to
// name one when it has none or it is of no known family).
ChatTemplate load_template(const std::string& name_or_path, const Tokenizer& tokenizer);

RenderedExample render(const ChatTemplate& tmpl, const Example& example);

}  // namespace masklab
