#pragma once
// Shared fixtures: a tiny config that trains in a second, temp directories,
// running the CLI, and reading files.
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/core/config.hpp"
#include "harness/data/data.hpp"

namespace masklab::test {

// 1 layer, d_model 32, a few hundred examples, 8 steps: the same code paths as a real run.
Config tiny_config();

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& content);
std::string read_text(const std::string& path);

struct CommandResult {
  int exit_code;
  std::string out;  // stdout and stderr together
};
// Runs the masklab binary with `args` (a shell-quoted string).
CommandResult run_masklab(const std::string& args);
CommandResult run_shell(const std::string& command);

// metrics.json without the fields that legitimately differ between
// identical runs (timing, start/end time) or between strategies (the name).
nlohmann::json comparable_metrics(nlohmann::json metrics, bool drop_strategy);

// The message of the UserError `f` throws, or "" when it throws none.
std::string user_error_of(const std::function<void()>& f);

// A hand-built example: prompt/completion through the given template and the byte tokenizer.
TokenizedExample byte_example(const std::string& prompt, const std::string& completion,
                              const std::string& template_name = "plain");

}  // namespace masklab::test
