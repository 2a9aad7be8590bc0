// A sweep killed anywhere loses nothing and changes nothing: SIGKILL to the
// whole process group (the sweep and its runs) at random moments, a restart
// after each, and the records end equal to an uninterrupted sweep's
// (docs/design.md, invariant 29).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "harness/core/run_record.hpp"
#include "harness/sweep/sweep.hpp"
#include "tests/system_helpers.hpp"

using namespace masklab;
namespace fs = std::filesystem;

namespace {

// Six runs, two at a time, each with a checkpoint every 10 steps and a curve
// point every 20: a kill lands mid-step, mid-checkpoint, mid-evaluation,
// between runs or while a record is written.
const char* kSpec =
    "base:\n"
    "  model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 96}\n"
    "  train: {steps: 200, eval_every: 20, log_every: 20, checkpoint_every: 10, batch_size: 4}\n"
    "  data: {tasks: [count], train_size: 40, eval_size: 4, train_eval_size: 4}\n"
    "  eval: {samples: 1}\n"
    "grid:\n"
    "  strategy: [full, completion_only, \"weighted:0.1\"]\n"
    "  seed: [1, 2]\n";

// What a run's record says about training, without what differs between two
// identical runs: durations, rates, the process's provenance (times, host, memory peak).
nlohmann::json comparable(const std::string& metrics_path) {
  nlohmann::json m = test::comparable_metrics(read_json_file(metrics_path), false);
  for (const char* key : {"decode_seconds", "decode_tokens_per_second"}) m.erase(key);
  return m;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The checkpoints and records the sweep's runs hold now. One that was not
// there when a restart began proves the restart got past start-up and trains.
std::set<std::string> progress_marks(const std::string& out) {
  std::set<std::string> marks;
  std::error_code ec;
  // The sweep writes and removes while this reads: an entry that vanishes ends the walk early, which is fine.
  for (auto it = fs::recursive_directory_iterator(out + "/runs", ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("step-", 0) == 0) {
      marks.insert(it->path().string());
      it.disable_recursion_pending();
    } else if (name == "metrics.json") {
      marks.insert(it->path().string());
    }
  }
  return marks;
}

bool has_new_mark(const std::set<std::string>& now, const std::set<std::string>& before) {
  for (const auto& m : now) {
    if (before.count(m) == 0) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a sweep SIGKILLed at 20 random moments ends with the uninterrupted sweep's records, bit for bit",
          "[slow][sweep][resume][kill]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), kSpec);
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const std::string whole = dir.file("whole"), killed = dir.file("killed");

  const auto t0 = std::chrono::steady_clock::now();
  const auto uninterrupted = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + whole + " --jobs 2");
  const double duration = seconds_since(t0);
  INFO(uninterrupted.out);
  REQUIRE(uninterrupted.exit_code == 0);

  // Each restart is killed a random time after it shows progress (a new
  // checkpoint or record), so that no kill is spent on start-up alone however
  // loaded the machine is. The times come from a fixed seed and average
  // 1/40 of the uninterrupted sweep: 20 restarts cover about half its
  // training, and the last restart finishes it.
  std::mt19937 rng(20261202);
  std::uniform_real_distribution<double> after_progress(0.0, duration / 20);
  const std::string log = dir.file("killed.log");
  int landed = 0;
  for (int kill = 0; kill < 20; ++kill) {
    const auto before = progress_marks(killed);
    const pid_t pid = test::spawn_masklab_group(
        {"sweep", dir.file("s.yaml"), "--out", killed, "--jobs", "2"}, log);
    int status = 0;
    bool exited = false;
    test::wait_until(
        [&] {
          exited = ::waitpid(pid, &status, WNOHANG) == pid;
          return exited || has_new_mark(progress_marks(killed), before);
        },
        std::chrono::minutes(2));
    if (exited) break;  // finished on its own: the kills covered the whole sweep
    std::this_thread::sleep_for(std::chrono::duration<double>(after_progress(rng)));
    ::kill(-pid, SIGKILL);
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++landed;
  }
  int finished_under_kills = 0;
  for (const auto& r : spec.runs) finished_under_kills += fs::exists(killed + "/runs/" + r.id + "/metrics.json");
  const auto last = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + killed + " --jobs 2");
  INFO(test::read_text(log) << last.out);
  REQUIRE(last.exit_code == 0);
  CHECK(landed == 20);  // every kill hit a sweep still training
  WARN("uninterrupted sweep " << duration << " s; " << finished_under_kills << " of 6 runs finished under the kills; "
                              << "20 kills and the finish " << seconds_since(t0) - duration << " s");

  for (const auto& r : spec.runs) {
    INFO(r.id);
    const std::string a = whole + "/runs/" + r.id, b = killed + "/runs/" + r.id;
    CHECK(test::read_text(a + "/config.yaml") == test::read_text(b + "/config.yaml"));  // the same threads
    CHECK(comparable(a + "/metrics.json") == comparable(b + "/metrics.json"));
    CHECK(test::read_text(a + "/curve.jsonl") == test::read_text(b + "/curve.jsonl"));
    CHECK(test::read_text(a + "/samples.jsonl") == test::read_text(b + "/samples.jsonl"));
    CHECK(test::read_text(a + "/eval_examples.jsonl") == test::read_text(b + "/eval_examples.jsonl"));
  }
}
