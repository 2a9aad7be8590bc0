#include "harness/core/yaml_file.hpp"

#include <algorithm>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"

namespace masklab {
namespace {

// yaml-cpp keeps both pairs of a repeated key: iterating a mapping sees each,
// looking one up finds the first. Either way one of the two silently loses
// (two condition levels of one name become one run, a factor given twice
// labels a run with both values but trains with one), so a repeat is an
// error wherever it is. A key that is a list or a mapping names no setting of
// any masklab file and would escape the readers as a bad conversion, so it is
// an error here too. `open` holds the collections being walked, so that an
// alias to an enclosing anchor ends the walk instead of looping.
void reject_duplicate_keys(const YAML::Node& node, const std::string& path, std::vector<YAML::Node>& open) {
  if (!node.IsMap() && !node.IsSequence()) return;
  for (const auto& enclosing : open) {
    if (enclosing.is(node)) return;
  }
  open.push_back(node);
  if (node.IsSequence()) {
    for (const auto& item : node) reject_duplicate_keys(item, path, open);
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
      reject_duplicate_keys(kv.first, path, open);
      reject_duplicate_keys(kv.second, path, open);
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
  reject_duplicate_keys(root, path, open);
  return root;
}

YAML::Node load_yaml_file(const std::string& path, const std::string& what) {
  const auto text = read_file(path);
  if (!text) throw UserError(path + ": cannot read " + what);
  return parse_yaml(*text, path);
}

std::string yaml_location(const std::string& origin, const YAML::Node& node) {
  if (node.Mark().is_null()) return origin;
  return origin + ":" + std::to_string(node.Mark().line + 1);
}

}  // namespace masklab
