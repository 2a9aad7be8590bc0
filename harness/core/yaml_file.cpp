#include "harness/core/yaml_file.hpp"

#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"

namespace masklab {

YAML::Node parse_yaml(const std::string& text, const std::string& path) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw error_at(path, e.mark.line + 1, "invalid YAML: " + e.msg);
  }
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
