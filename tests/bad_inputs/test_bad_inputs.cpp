// The bad-input suite: every tests/bad_inputs/<kind>/<name>.case is one
// input a hostile but realistic user might give masklab, the command that
// reads it, the exit status and the one stderr line it must give, and what
// it may leave behind (docs/design.md, invariant 8: nothing half-written).
// The format is described in tests/bad_inputs/README.md; adding a case is
// adding a file.
#include <catch2/catch.hpp>

#include <fnmatch.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness/core/files.hpp"
#include "harness/core/text.hpp"
#include "tests/test_helpers.hpp"

namespace fs = std::filesystem;

namespace {

using masklab::trim;

const std::string kCaseRoot = MASKLAB_SOURCE_DIR "/tests/bad_inputs";
// One folder per kind of input; a case outside them is malformed.
const std::set<std::string> kKinds = {"data",   "config", "strategy", "sweep",     "template", "tokenizer",
                                      "checkpoint", "cache", "report", "eval_sets", "cli",      "memory"};
constexpr int kMinimumCases = 100;

struct InputFile {
  std::string name;  // relative to the scratch directory, \xHH already decoded
  std::string bytes;
  bool is_directory = false;
};

struct Expectation {
  std::string file_glob;  // relative to the scratch directory
  bool contains = true;   // "contains" or "lacks"
  std::string pattern;    // ECMAScript regex, searched in each line
};

struct BadInputCase {
  std::string path;  // kind/name.case, for messages
  std::string description;
  std::string command;
  std::optional<int> exit_code;
  std::string stderr_pattern;
  std::string cwd;
  std::vector<std::string> leaves;
  std::vector<Expectation> expectations;
  int timeout_s = 120;
  std::vector<InputFile> files;
  std::vector<std::string> problems;  // why the case is malformed; empty when well formed
};

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// "bad\xff.jsonl" -> the bytes of the name, so that names can be invalid UTF-8.
std::string decode_name(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '\\' && i + 3 < name.size() && name[i + 1] == 'x' && is_hex(name[i + 2]) && is_hex(name[i + 3])) {
      out += static_cast<char>(std::stoi(name.substr(i + 2, 2), nullptr, 16));
      i += 3;
    } else {
      out += name[i];
    }
  }
  return out;
}

std::optional<std::string> decode_hex(const std::string& text) {
  std::string digits;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (!is_hex(c)) return std::nullopt;
    digits += c;
  }
  if (digits.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < digits.size(); i += 2) out += static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16));
  return out;
}

std::optional<std::string> decode_base64(const std::string& text) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  bool padding = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    const size_t value = alphabet.find(c);
    if (value == std::string::npos || padding) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

bool valid_regex(const std::string& pattern) {
  try {
    std::regex re(pattern);
    return true;
  } catch (const std::regex_error&) {
    return false;
  }
}

// A relative name that stays inside the scratch directory.
bool contained(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  for (const auto& part : fs::path(name)) {
    if (part == "..") return false;
  }
  return true;
}

void finish_section(BadInputCase& c, const std::string& kind, const std::string& name, const std::string& body) {
  InputFile file;
  file.name = decode_name(name);
  if (!contained(file.name)) c.problems.push_back("input name '" + name + "' leaves the scratch directory");
  if (kind == "text") {
    file.bytes = body;
  } else if (kind == "hex" || kind == "base64") {
    const auto bytes = kind == "hex" ? decode_hex(body) : decode_base64(body);
    if (!bytes) c.problems.push_back("section '" + name + "' is not valid " + kind);
    file.bytes = bytes.value_or("");
  } else if (kind == "dir") {
    file.is_directory = true;
    if (!trim(body).empty()) c.problems.push_back("dir section '" + name + "' has content");
  } else {
    c.problems.push_back("unknown section kind '" + kind + "' (text, hex, base64 or dir)");
  }
  c.files.push_back(file);
}

BadInputCase parse_case(const std::string& path, const std::string& text) {
  BadInputCase c;
  c.path = path;
  std::vector<std::string> lines;
  {
    std::string line;
    std::istringstream in(text);
    while (std::getline(in, line)) lines.push_back(line);
  }
  size_t i = 0;
  std::set<std::string> seen;
  for (; i < lines.size() && lines[i].rfind("=== ", 0) != 0; ++i) {
    const std::string& line = lines[i];
    if (trim(line).empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) {
      c.problems.push_back("line " + std::to_string(i + 1) + " is not 'key: value'");
      continue;
    }
    const std::string key = line.substr(0, colon);
    const std::string value = trim(line.substr(colon + 1));
    const bool repeatable = key == "leaves" || key == "expect";
    if (!repeatable && !seen.insert(key).second) c.problems.push_back("key '" + key + "' given twice");
    if (key == "description") {
      c.description = value;
    } else if (key == "command") {
      c.command = value;
    } else if (key == "exit") {
      try {
        size_t used = 0;
        c.exit_code = std::stoi(value, &used);
        if (used != value.size()) c.exit_code.reset();
      } catch (const std::exception&) {
      }
      if (!c.exit_code) c.problems.push_back("exit '" + value + "' is not a number");
    } else if (key == "stderr") {
      c.stderr_pattern = value;
      if (!valid_regex(value)) c.problems.push_back("stderr pattern is not a valid regex");
    } else if (key == "cwd") {
      c.cwd = value;
      if (!contained(value)) c.problems.push_back("cwd leaves the scratch directory");
    } else if (key == "timeout") {
      c.timeout_s = std::atoi(value.c_str());
      if (c.timeout_s <= 0) c.problems.push_back("timeout must be a number of seconds > 0");
    } else if (key == "leaves") {
      std::istringstream globs(value);
      std::string glob;
      while (globs >> glob) {
        if (!contained(glob)) c.problems.push_back("leaves '" + glob + "' is outside the scratch directory");
        c.leaves.push_back(glob);
      }
    } else if (key == "expect") {
      // FILE contains REGEX | FILE lacks REGEX
      std::istringstream words(value);
      Expectation e;
      std::string verb;
      words >> e.file_glob >> verb;
      std::getline(words, e.pattern);
      e.pattern = trim(e.pattern);
      e.contains = verb == "contains";
      if ((verb != "contains" && verb != "lacks") || e.pattern.empty() || !contained(e.file_glob)) {
        c.problems.push_back("expect '" + value + "' is not 'FILE contains|lacks REGEX'");
      } else if (!valid_regex(e.pattern)) {
        c.problems.push_back("expect pattern '" + e.pattern + "' is not a valid regex");
      }
      c.expectations.push_back(e);
    } else {
      c.problems.push_back("unknown key '" + key + "'");
    }
  }
  // Sections: "=== KIND NAME" then the content up to the next marker.
  std::string kind, name, body;
  bool open = false;
  for (; i < lines.size(); ++i) {
    if (lines[i].rfind("=== ", 0) == 0) {
      if (open) finish_section(c, kind, name, body);
      std::istringstream marker(lines[i].substr(4));
      marker >> kind >> name;
      if (name.empty()) c.problems.push_back("section marker '" + lines[i] + "' has no name");
      body.clear();
      open = true;
    } else {
      body += lines[i] + "\n";
    }
  }
  if (open) finish_section(c, kind, name, body);

  if (c.description.empty()) c.problems.push_back("no description");
  if (c.command.find("{masklab}") == std::string::npos) c.problems.push_back("the command does not run {masklab}");
  if (!c.exit_code) c.problems.push_back("no exit");
  if (c.exit_code && *c.exit_code != 0 && c.stderr_pattern.empty()) c.problems.push_back("a failing case needs a stderr pattern");
  std::set<std::string> names;
  for (const auto& f : c.files) {
    if (!names.insert(f.name).second) c.problems.push_back("input '" + f.name + "' given twice");
  }
  return c;
}

std::vector<BadInputCase> load_cases() {
  std::vector<BadInputCase> cases;
  for (const auto& entry : fs::recursive_directory_iterator(kCaseRoot)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".case") continue;
    const std::string relative = fs::relative(entry.path(), kCaseRoot).string();
    BadInputCase c = parse_case(relative, masklab::read_file(entry.path().string()).value_or(""));
    const std::string kind = fs::path(relative).parent_path().string();
    if (!kKinds.count(kind)) c.problems.push_back("folder '" + kind + "' is not one of the input kinds");
    cases.push_back(std::move(c));
  }
  std::sort(cases.begin(), cases.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return cases;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// Every path under `root` (files and folders), relative to it.
std::set<std::string> tree(const std::string& root) {
  std::set<std::string> paths;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    paths.insert(fs::relative(it->path(), root).string());
  }
  return paths;
}

bool matches_glob(const std::string& glob, const std::string& path) {
  return ::fnmatch(glob.c_str(), path.c_str(), 0) == 0;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Runs one case in a fresh scratch directory; "" when it behaved, else why not.
std::string run_case(const BadInputCase& c) {
  masklab::test::TempDir root;
  const std::string scratch = root.file("case");
  fs::create_directories(scratch);
  for (const auto& f : c.files) {
    const fs::path target = fs::path(scratch) / f.name;
    fs::create_directories(f.is_directory ? target : target.parent_path());
    if (!f.is_directory) masklab::test::write_text(target.string(), f.bytes);
  }
  const std::string cwd = c.cwd.empty() ? scratch : scratch + "/" + c.cwd;
  fs::create_directories(cwd);
  const std::set<std::string> before = tree(scratch);

  // MASKLAB_BAD_INPUTS_BINARY runs the cases against another build (an
  // older one, to see which cases a fix turned from failing to passing).
  const char* other_binary = std::getenv("MASKLAB_BAD_INPUTS_BINARY");
  std::string command = replace_all(c.command, "{masklab}", other_binary ? other_binary : MASKLAB_BINARY);
  command = replace_all(command, "{dir}", scratch);
  masklab::test::write_text(root.file("command.sh"), "export OMP_NUM_THREADS=1\n" + command + "\n");
  const std::string shell = "cd '" + cwd + "' && timeout -k 5 " + std::to_string(c.timeout_s) + " /bin/sh " +
                            root.file("command.sh") + " >" + root.file("stdout") + " 2>" + root.file("stderr");
  const int status = std::system(shell.c_str());
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const std::string err = masklab::test::read_text(root.file("stderr"));
  const std::vector<std::string> err_lines = lines_of(err);
  std::vector<std::string> why;
  if (exit_code != *c.exit_code) why.push_back("exit " + std::to_string(exit_code) + ", expected " + std::to_string(*c.exit_code));
  if (*c.exit_code == 2 && err_lines.size() != 1) why.push_back(std::to_string(err_lines.size()) + " stderr lines, expected 1");
  if (!c.stderr_pattern.empty()) {
    const std::regex re(c.stderr_pattern);
    const bool matched = *c.exit_code == 2 ? err_lines.size() == 1 && std::regex_search(err_lines[0], re)
                                           : std::any_of(err_lines.begin(), err_lines.end(),
                                                         [&](const auto& l) { return std::regex_search(l, re); });
    if (!matched) why.push_back("stderr does not match /" + c.stderr_pattern + "/");
  }

  // Nothing new but what the case declares it may leave.
  const std::set<std::string> after = tree(scratch);
  std::vector<std::string> allowed_files;
  for (const auto& p : after) {
    if (before.count(p)) continue;
    if (std::any_of(c.leaves.begin(), c.leaves.end(), [&](const auto& g) { return matches_glob(g, p); })) allowed_files.push_back(p);
  }
  for (const auto& p : after) {
    if (before.count(p)) continue;
    const bool allowed =
        std::find(allowed_files.begin(), allowed_files.end(), p) != allowed_files.end() ||
        std::any_of(allowed_files.begin(), allowed_files.end(), [&](const auto& f) { return f.rfind(p + "/", 0) == 0; }) ||
        std::any_of(c.leaves.begin(), c.leaves.end(), [&](const auto& g) { return g.rfind(p + "/", 0) == 0; });
    if (!allowed) why.push_back("left " + p);
  }

  for (const auto& e : c.expectations) {
    std::vector<std::string> files;
    for (const auto& p : after) {
      if (matches_glob(e.file_glob, p) && fs::is_regular_file(scratch + "/" + p)) files.push_back(p);
    }
    if (files.empty()) {
      why.push_back("no file matches " + e.file_glob);
      continue;
    }
    const std::regex re(e.pattern);
    for (const auto& f : files) {
      const auto lines = lines_of(masklab::test::read_text(scratch + "/" + f));
      const bool found = std::any_of(lines.begin(), lines.end(), [&](const auto& l) { return std::regex_search(l, re); });
      if (found != e.contains) why.push_back(f + (e.contains ? " lacks /" : " contains /") + e.pattern + "/");
    }
  }
  if (why.empty()) return "";
  std::string message;
  for (const auto& w : why) message += (message.empty() ? "" : "; ") + w;
  return message + "\n    stderr: " + err.substr(0, 600);
}

}  // namespace

TEST_CASE("every bad-input case file is well formed and there are at least 100", "[fast][bad-inputs]") {
  const auto cases = load_cases();
  CHECK(cases.size() >= static_cast<size_t>(kMinimumCases));
  std::map<std::string, int> per_kind;
  for (const auto& c : cases) {
    ++per_kind[fs::path(c.path).parent_path().string()];
    for (const auto& problem : c.problems) FAIL_CHECK(c.path + ": " + problem);
  }
  for (const auto& kind : kKinds) {
    INFO(kind);
    CHECK(per_kind[kind] > 0);
  }
}

TEST_CASE("every bad-input case gives its exit status and stderr line and leaves nothing half-written",
          "[slow][bad-inputs]") {
  const auto cases = load_cases();
  REQUIRE(cases.size() >= static_cast<size_t>(kMinimumCases));
  // MASKLAB_BAD_INPUTS=sweep/ runs only the cases whose path contains it.
  const char* only = std::getenv("MASKLAB_BAD_INPUTS");
  int failed = 0;
  for (const auto& c : cases) {
    if (only && c.path.find(only) == std::string::npos) continue;
    if (!c.problems.empty()) {
      FAIL_CHECK(c.path + ": malformed");
      ++failed;
      continue;
    }
    const std::string why = run_case(c);
    if (!why.empty()) {
      FAIL_CHECK(c.path + ": " + why);
      ++failed;
    }
  }
  INFO(failed << " of " << cases.size() << " cases failed");
  CHECK(failed == 0);
}
