#include "harness/core/yaml_file.hpp"

#include <algorithm>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"

namespace masklab {
namespace {

// yaml-cpp accepts a quoted scalar that runs to the end of the file
// unclosed: `bos: "<bos>` swallows every later line into one string, and the
// file loads as something else than written. `text` is what was parsed; a
// scalar's mark is its first character, the quote.
void reject_unclosed_quote(const YAML::Node& node, const std::string& text, const std::string& path) {
  if (node.Mark().is_null() || node.Mark().pos < 0) return;
  const auto pos = static_cast<size_t>(node.Mark().pos);
  if (pos >= text.size() || (text[pos] != '"' && text[pos] != '\'')) return;
  const char quote = text[pos];
  for (size_t i = pos + 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;  // an escape: the next character cannot close
    } else if (text[i] == quote) {
      if (quote == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;  // '' is a quote inside a single-quoted string
      } else {
        return;
      }
    }
  }
  throw error_at(path, node.Mark().line + 1,
                 std::string("invalid YAML: a ") + (quote == '"' ? "double" : "single") + "-quoted string is never closed");
}

// yaml-cpp keeps both pairs of a repeated key: iterating a mapping sees each,
// looking one up finds the first. Either way one of the two silently loses
// (two condition levels of one name become one run, a factor given twice
// labels a run with both values but trains with one), so a repeat is an
// error wherever it is. A key that is a list or a mapping names no setting of
// any masklab file and would escape the readers as a bad conversion, so it is
// an error here too. `open` holds the collections being walked, so that an
// alias to an enclosing anchor ends the walk instead of looping.
void check_node(const YAML::Node& node, const std::string& text, const std::string& path,
                std::vector<YAML::Node>& open) {
  if (node.IsScalar()) reject_unclosed_quote(node, text, path);
  if (!node.IsMap() && !node.IsSequence()) return;
  for (const auto& enclosing : open) {
    if (enclosing.is(node)) return;
  }
  open.push_back(node);
  if (node.IsSequence()) {
    for (const auto& item : node) check_node(item, text, path, open);
  } else {
    std::vector<std::string> seen;
    for (const auto& kv : node) {
      if (kv.first.IsMap() || kv.first.IsSequence()) {
        throw error_at(path, kv.first.Mark().line + 1, "a key must be a name, not a list or a mapping");
      }
      if (kv.first.IsScalar()) {
        const std::string& key = kv.first.Scalar();
        if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
          throw error_at(path, kv.first.Mark().line + 1, "duplicate key '" + key + "'");
        }
        seen.push_back(key);
      }
      check_node(kv.first, text, path, open);
      check_node(kv.second, text, path, open);
    }
  }
  open.pop_back();
}

}  // namespace

YAML::Node parse_yaml(const std::string& text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw error_at(path, e.mark.line + 1, "invalid YAML: " + e.msg);
  }
  std::vector<YAML::Node> open;
  check_node(root, text, path, open);
  return root;
}

YAML::Node load_yaml_file(const std::string& path, const std::string& what) {
  std::string why;
  const auto text = read_file(path, &why);
  if (!text) throw UserError(path + ": cannot read " + what + ": " + why);
  return parse_yaml(*text, path);
}

std::string yaml_location(const std::string& origin, const YAML::Node& node) {
  if (node.Mark().is_null()) return origin;
  return origin + ":" + std::to_string(node.Mark().line + 1);
}

}  // namespace masklab
