#pragma once
// YAML files (configs, sweep specs, chat templates) and where their errors
// point: every error names "file:line" so an editor can jump to it.
#include <string>

namespace YAML {
class Node;
}

namespace masklab {

// Parses a YAML file. UserError "PATH: cannot read WHAT" when it cannot be
// opened, "PATH:LINE: invalid YAML: ..." when it does not parse, and
// "PATH:LINE: duplicate key 'K'" as parse_yaml.
YAML::Node load_yaml_file(const std::string& path, const std::string& what);
// Parses YAML text read from `path`: UserError "PATH:LINE: invalid YAML: ...",
// or "PATH:LINE: duplicate key 'K'" when a mapping at any depth repeats a key,
// or "PATH:LINE: a key must be a name, ..." when a key is a list or a mapping.
YAML::Node parse_yaml(const std::string& text, const std::string& path);

// "ORIGIN:LINE" for a node read from a file, ORIGIN alone for one built in code.
std::string yaml_location(const std::string& origin, const YAML::Node& node);

}  // namespace masklab
