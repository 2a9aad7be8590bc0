// YAML files: parse errors and repeated keys name file:line.
#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/yaml_file.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("a repeated key at any depth is an error naming file:line and the key", "[fast][yaml][errors]") {
  auto error_of = [](const std::string& text) { return test::user_error_of([&] { parse_yaml(text, "f.yaml"); }); };
  CHECK(error_of("a: 1\nb: 2\na: 3\n") == "f.yaml:3: duplicate key 'a'");
  CHECK(error_of("top:\n  x: 1\n  y:\n    z: 1\n    z: 2\n") == "f.yaml:5: duplicate key 'z'");
  CHECK(error_of("train: {steps: 3, steps: 4}\n") == "f.yaml:1: duplicate key 'steps'");
  CHECK(error_of("list:\n  - {a: 1}\n  - a: 1\n    b: 2\n    a: 3\n") == "f.yaml:5: duplicate key 'a'");
  // Quoting does not make another key.
  CHECK(error_of("a: 1\n\"a\": 2\n") == "f.yaml:2: duplicate key 'a'");
  // One key in two mappings, and one mapping reached twice through an alias, are not repeats.
  CHECK(error_of("a: {x: 1}\nb: {x: 2}\nc: &m {k: 1}\nd: *m\n").empty());
  const YAML::Node shared = parse_yaml("c: &m {k: 1}\nd: *m\n", "f.yaml");
  CHECK(shared["d"]["k"].as<int>() == 1);

  test::TempDir dir;
  test::write_text(dir.file("t.yaml"), "name: x\nname: y\n");
  CHECK(test::user_error_of([&] { load_yaml_file(dir.file("t.yaml"), "template"); }) ==
        dir.file("t.yaml") + ":2: duplicate key 'name'");
}

TEST_CASE("a list or a mapping as a key is an error naming file:line", "[fast][yaml][errors]") {
  auto error_of = [](const std::string& text) { return test::user_error_of([&] { parse_yaml(text, "f.yaml"); }); };
  const std::string why = ": a key must be a name, not a list or a mapping";
  CHECK(error_of("[a, b]: 1\n") == "f.yaml:1" + why);
  CHECK(error_of("top:\n  ? {x: 1}\n  : 2\n") == "f.yaml:2" + why);
  // A stray comma turns the list after it into a key of the flow mapping.
  CHECK(error_of("model: {n_layers: 2}\ndata: {tasks: ,[lookup, reverse], train_size: 300}\n") == "f.yaml:2" + why);
  CHECK(error_of("- a\n- {[x]: 1}\n") == "f.yaml:2" + why);
}

TEST_CASE("a quoted string left open to the end of the file is an error naming its line", "[fast][yaml][errors]") {
  auto error_of = [](const std::string& text) { return test::user_error_of([&] { parse_yaml(text, "f.yaml"); }); };
  // yaml-cpp itself loads these, the string swallowing every later line.
  CHECK(error_of("bos: \"<bos>\nuser: {prefix: a}\n") == "f.yaml:1: invalid YAML: a double-quoted string is never closed");
  CHECK(error_of("a: 1\nb: 'x\nc: 2\n") == "f.yaml:2: invalid YAML: a single-quoted string is never closed");
  CHECK(error_of("k: [\"a\", \"b\nc: 1\n").find("f.yaml:") == 0);
  // Closed strings, with escapes and doubled quotes inside, and keys that are quoted.
  const auto ok = parse_yaml("a: \"x \\\" y\"\nb: 'it''s'\n\"c\": \"multi\n  line\"\n'd': [\"e\", 'f']\n", "f.yaml");
  CHECK(ok["a"].as<std::string>() == "x \" y");
  CHECK(ok["b"].as<std::string>() == "it's");
  CHECK(ok["c"].as<std::string>() == "multi line");
  CHECK(ok["d"][1].as<std::string>() == "f");
}
