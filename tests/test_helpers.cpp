#include "tests/test_helpers.hpp"

#include <catch2/catch.hpp>

#include "harness/core/errors.hpp"
#include "harness/train/batching.hpp"
#include "strategies/labels.hpp"
#include "strategies/registry.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace masklab::test {

Config tiny_config() {
  Config c;
  c.model.n_layers = 1;
  c.model.d_model = 32;
  c.model.n_heads = 2;
  c.model.max_seq_len = 96;
  c.train.steps = 8;
  c.train.batch_size = 8;
  c.train.warmup_steps = 2;
  c.train.eval_every = 4;
  c.train.log_every = 4;
  c.train.threads = 1;
  c.train.device = {DeviceKind::kCpu, 0};
  c.data.tasks = {"count", "lookup"};
  c.data.train_size = 64;
  c.data.eval_size = 8;
  c.data.train_eval_size = 8;
  c.eval.samples = 1;
  return c;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "masklab-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult run_shell(const std::string& command) {
  CommandResult r{0, ""};
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

CommandResult run_masklab(const std::string& args) { return run_shell(std::string(MASKLAB_BINARY) + " " + args); }

nlohmann::json comparable_metrics(nlohmann::json m, bool drop_strategy) {
  for (const char* key : {"wall_seconds", "train_seconds", "tokens_per_second", "provenance"}) m.erase(key);
  if (drop_strategy) m.erase("strategy");
  return m;
}

std::string user_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    // A short poll interval: the condition is a file or a process state, which has no change notification here.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

void require_python_module(const std::string& module, const std::string& debian_package) {
  if (!std::filesystem::exists("/usr/bin/python3")) FAIL("missing Debian package python3: scripts/install-deps.sh installs it");
  if (run_shell("/usr/bin/python3 -c 'import " + module + "'").exit_code != 0) {
    FAIL("missing Debian package " + debian_package + " (python3 cannot import " + module +
         "): scripts/install-deps.sh installs it");
  }
}

std::string venv_python() {
  // The path is computed at configure time by `scripts/python-env.sh --path`
  // (tests/CMakeLists.txt), the same hash of scripts/requirements.txt.
  const std::string python = MASKLAB_VENV_PYTHON;
  if (!std::filesystem::exists(python)) {
    FAIL("missing the PyPI test environment " + python + ": `make test-deps` (scripts/python-env.sh) builds it");
  }
  return python;
}

CommandResult run_venv_python(const std::string& script, const std::string& args) {
  return run_shell(venv_python() + " " + std::string(MASKLAB_SOURCE_DIR) + "/tests/python/" + script + " " + args);
}

TokenizedExample byte_example(const std::string& prompt, const std::string& completion,
                              const std::string& template_name) {
  Example ex;
  ex.task = "hand";
  ex.messages = {{Role::kUser, prompt, "", true}, {Role::kAssistant, completion, "", true}};
  const auto tok = make_tokenizer("byte");
  auto out = tokenize_example(ex, load_template(template_name), *tok, 1024, true, nullptr);
  if (!out) throw std::runtime_error("byte_example did not fit");
  return *out;
}

TokenizedExample tokenize(const Example& ex, const std::string& tmpl) {
  const auto tok = make_tokenizer("byte");
  auto out = tokenize_example(ex, load_template(tmpl), *tok, 4096, true, nullptr);
  REQUIRE(out);
  return *out;
}

std::string text_with_role(const TokenizedExample& ex, Role role) {
  std::string out;
  for (size_t i = 0; i < ex.ids.size(); ++i) {
    if (ex.roles[i] == static_cast<uint8_t>(role) && ex.ids[i] < 256) out += static_cast<char>(ex.ids[i]);
  }
  return out;
}

std::string trained_text(const TokenizedExample& ex, const std::string& spec) {
  const Batch b = make_padded_batch({&ex}, 256);
  const auto w = make_strategy(spec)->weights(LabelView{b.label_role, b.label_flags, 0})[0];
  std::string out;
  for (int64_t t = 0; t < w.size(0); ++t) {
    if (w[t].item<float>() <= 0) continue;
    const int id = ex.ids[t + 1];
    out += id < 256 ? std::string(1, static_cast<char>(id)) : id == 258 ? "<eos>" : "<special>";
  }
  return out;
}

const char* const kThreeTurns =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"},"
    " {\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"A1\"},"
    " {\"role\": \"user\", \"content\": \"你好\"}, {\"role\": \"assistant\", \"content\": \"A2 🙂\"},"
    " {\"role\": \"user\", \"content\": \"bye\"}, {\"role\": \"assistant\", \"content\": \"A3\"}]}\n";

std::vector<char*> masklab_argv(const std::vector<std::string>& masklab_args, std::vector<std::string>& storage) {
  storage = {MASKLAB_BINARY};
  storage.insert(storage.end(), masklab_args.begin(), masklab_args.end());
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

CommandResult interrupt_masklab_when(const std::vector<std::string>& masklab_args, const std::string& log,
                                    const std::function<bool()>& ready, int signal) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> storage;
  std::vector<char*> argv = masklab_argv(masklab_args, storage);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, MASKLAB_BINARY, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(spawned == 0);

  int status = 0;
  bool exited = false;
  auto reap = [&] {
    if (!exited && ::waitpid(pid, &status, WNOHANG) == pid) exited = true;
    return exited;
  };
  const bool got_ready = wait_until([&] { return ready() || reap(); }, std::chrono::seconds(120));
  if (!got_ready || exited) {
    if (!exited) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    FAIL((exited ? "the sweep exited before it was ready to interrupt: " : "the sweep was not ready within 120 s: ") +
         read_text(log));
  }
  ::kill(pid, signal);
  if (!wait_until(reap, std::chrono::seconds(60))) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL("the process did not stop within 60 s of signal " + std::to_string(signal) + ": " + read_text(log));
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_text(log)};
}


}  // namespace masklab::test
