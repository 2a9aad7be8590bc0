#pragma once
// Shared fixtures: a tiny config that trains in a second, temp directories,
// running the CLI, reading files, waiting on a condition, hand-built and
// tokenized examples.
#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/core/config.hpp"
#include "harness/core/roles.hpp"
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

// posix_spawn's argv for MASKLAB_BINARY with `masklab_args`; `storage`
// holds the strings the pointers point into and must outlive them.
std::vector<char*> masklab_argv(const std::vector<std::string>& masklab_args, std::vector<std::string>& storage);

struct CommandResult {
  int exit_code;
  std::string out;  // stdout and stderr together
};
// Runs the masklab binary with `args` (a shell-quoted string).
CommandResult run_masklab(const std::string& args);
CommandResult run_shell(const std::string& command);
// Runs the masklab binary with `args` in the background (output to `log`),
// sends it `signal` (SIGINT unless told) as soon as `ready` holds, and
// returns its exit status (-1 when a signal ended it) and output. Each wait
// has a deadline; a process that never gets ready or never stops fails the test.
CommandResult interrupt_masklab_when(const std::vector<std::string>& args, const std::string& log,
                                     const std::function<bool()>& ready, int signal = SIGINT);

// metrics.json without the fields that legitimately differ between
// identical runs (timing, start/end time) or between strategies (the name).
nlohmann::json comparable_metrics(nlohmann::json metrics, bool drop_strategy);

// The message of the UserError `f` throws, or "" when it throws none.
std::string user_error_of(const std::function<void()>& f);

// Polls `condition` until it holds or `deadline` passes; true when it held.
// Tests wait on what they need to see, never for a fixed time.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline);

// Fails the current test with one line naming the Debian package when
// /usr/bin/python3 cannot import `module` (scripts/install-deps.sh installs it).
void require_python_module(const std::string& module, const std::string& debian_package);

// The python of the pinned PyPI environment (scripts/python-env.sh: PyTorch,
// transformers, tokenizers, safetensors, sentencepiece). Fails the current
// test with one line when it has not been built (`make test-deps` builds it).
std::string venv_python();

// Runs `script` (a path under tests/python/) with venv_python() and `args`.
CommandResult run_venv_python(const std::string& script, const std::string& args);

// A hand-built example: prompt/completion through the given template and the byte tokenizer.
TokenizedExample byte_example(const std::string& prompt, const std::string& completion,
                              const std::string& template_name = "plain");

// Tokenizes with the byte tokenizer under the template `tmpl` (a name or a YAML path).
TokenizedExample tokenize(const Example& ex, const std::string& tmpl);

// The text of the tokens with a given role (byte tokenizer).
std::string text_with_role(const TokenizedExample& ex, Role role);

// Concatenated text of the tokens (byte tokenizer) whose label weight under `spec` is > 0.
std::string trained_text(const TokenizedExample& ex, const std::string& spec);

// One chat JSONL line: a system prompt and three user/assistant turns, with Unicode.
extern const char* const kThreeTurns;

}  // namespace masklab::test
