// Sweeps: expansion, run ids, resume, interruption, shards, failures.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <regex>
#include <set>
#include <thread>

#include "harness/core/errors.hpp"
#include "harness/core/run_record.hpp"
#include "harness/sweep/process.hpp"
#include "harness/sweep/sweep.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
namespace fs = std::filesystem;

namespace {

const char* kTinyBase =
    "base:\n"
    "  model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 96}\n"
    "  train: {steps: STEPS, eval_every: 0, threads: 1, batch_size: 4}\n"
    "  data: {tasks: [count], train_size: 20, eval_size: 4, train_eval_size: 4}\n"
    "  eval: {samples: 0}\n";

std::string tiny_spec(int steps, const std::string& rest) {
  std::string base = kTinyBase;
  base.replace(base.find("STEPS"), 5, std::to_string(steps));
  return base + rest;
}


fs::file_time_type mtime(const std::string& p) { return fs::last_write_time(p); }

}  // namespace

TEST_CASE("two differently labelled points that resolve to one config are an error naming both", "[fast][sweep]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(2,
      "conditions:\n  regime:\n    a: {data: {train_size: 10}}\n    b: {data: {train_size: 10}}\n"
      "grid:\n  strategy: [full]\n"));
  const std::string error = test::user_error_of([&] { load_sweep_spec(dir.file("s.yaml")); });
  CHECK_THAT(error, Catch::StartsWith(dir.file("s.yaml") + ": runs (regime=a strategy=full) and (regime=b strategy=full) "
                                      "resolve to the same config (run "));
  // The same point spelled twice stays one run (the test above); levels that differ stay two runs.
  test::write_text(dir.file("t.yaml"), tiny_spec(2,
      "conditions:\n  regime:\n    a: {data: {train_size: 10}}\n    b: {data: {train_size: 11}}\n"
      "grid:\n  strategy: [full]\n"));
  CHECK(load_sweep_spec(dir.file("t.yaml")).runs.size() == 2);
}

TEST_CASE("a spec expands into a stable, deduplicated list of runs", "[fast][sweep]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(2,
      "conditions:\n  regime:\n    small: {data: {train_size: 10}}\n    large: {data: {train_size: 30}}\n"
      "grid:\n  strategy: [full, completion_only, \"weighted:0.1\", \"Weighted:0.10\"]\n  seed: [1, 2]\n"));
  const SweepSpec a = load_sweep_spec(dir.file("s.yaml"));
  const SweepSpec b = load_sweep_spec(dir.file("s.yaml"));
  REQUIRE(a.runs.size() == 2 * 3 * 2);  // the two spellings of weighted:0.1 are one run
  CHECK(a.factors == std::vector<std::string>{"regime", "strategy", "seed"});
  for (size_t i = 0; i < a.runs.size(); ++i) CHECK(a.runs[i].id == b.runs[i].id);
  std::set<std::string> ids;
  for (const auto& r : a.runs) ids.insert(r.id);
  CHECK(ids.size() == a.runs.size());
  // Last factor fastest; values as the reports show them.
  CHECK(a.runs[0].factors == std::vector<std::pair<std::string, std::string>>{{"regime", "small"}, {"strategy", "full"}, {"seed", "1"}});
  CHECK(a.runs[5].factors[1].second == "weighted:0.1");
  CHECK(a.runs[6].config.data.train_size == 30);

  // Reordering the grid reorders the runs but keeps every id: ids come from configs.
  test::write_text(dir.file("t.yaml"), tiny_spec(2,
      "conditions:\n  regime:\n    large: {data: {train_size: 30}}\n    small: {data: {train_size: 10}}\n"
      "grid:\n  seed: [2, 1]\n  strategy: [\"weighted:0.1\", completion_only, full]\n"));
  std::set<std::string> reordered;
  for (const auto& r : load_sweep_spec(dir.file("t.yaml")).runs) reordered.insert(r.id);
  CHECK(reordered == ids);

  // Threads and the device change speed, not results: same id. Any other key: another id.
  Config c = a.runs[0].config;
  c.train.threads = 7;
  CHECK(run_id(c) == a.runs[0].id);
  c.train.device = *parse_device("cuda:1");
  CHECK(run_id(c) == a.runs[0].id);
  c.train.device = *parse_device("cpu");
  CHECK(run_id(c) == a.runs[0].id);
  c.train.lr *= 2;
  CHECK(run_id(c) != a.runs[0].id);
}

TEST_CASE("bad specs fail before anything runs, naming the file and line", "[fast][sweep][errors]") {
  test::TempDir dir;
  test::write_text(dir.file("a.yaml"), tiny_spec(2, "grid:\n  strategy: [full, \"weighted:abc\"]\n"));
  CHECK_THAT(test::user_error_of([&] { load_sweep_spec(dir.file("a.yaml")); }),
             Catch::Contains("a.yaml: run (strategy=weighted:abc): bad strategy"));
  test::write_text(dir.file("b.yaml"), tiny_spec(2, "grid:\n  train.stpes: [1, 2]\n"));
  CHECK_THAT(test::user_error_of([&] { load_sweep_spec(dir.file("b.yaml")); }),
             Catch::Contains("b.yaml:7: unknown config key 'train.stpes'"));
  test::write_text(dir.file("c.yaml"), tiny_spec(2, "gird:\n  seed: [1]\n"));
  CHECK_THAT(test::user_error_of([&] { load_sweep_spec(dir.file("c.yaml")); }), Catch::Contains("c.yaml:6: unknown sweep key 'gird'"));
  CHECK_THAT(test::user_error_of([&] { parse_shard("3/2"); }), Catch::Contains("--shard '3/2'"));
}

TEST_CASE("a grid value that is a mapping or a nested list is an error naming file:line", "[fast][sweep][errors]") {
  test::TempDir dir;
  const std::vector<std::string> grids = {
      "grid:\n  strategy: [full, \"weighted\" :0]\n",  // a stray colon makes a one-pair mapping
      "grid:\n  data.tasks: [[lookup, [sort]]]\n",
      "grid:\n  train: {lr: {fast: 1}}\n",
  };
  for (const auto& grid : grids) {
    INFO(grid);
    test::write_text(dir.file("g.yaml"), tiny_spec(2, grid));
    CHECK(test::user_error_of([&] { load_sweep_spec(dir.file("g.yaml")); }) ==
          dir.file("g.yaml") + ":7: a grid value must be a value or a list of values");
  }
}

TEST_CASE("a spec name or baseline that is a list or a mapping is an error naming file:line", "[fast][sweep][errors]") {
  test::TempDir dir;
  for (const std::string key : {"name", "baseline"}) {
    for (const std::string value : {"{full: 1}", "[full]"}) {
      INFO(key << ": " << value);
      test::write_text(dir.file("n.yaml"), tiny_spec(2, key + ": " + value + "\ngrid:\n  seed: [1]\n"));
      CHECK(test::user_error_of([&] { load_sweep_spec(dir.file("n.yaml")); }) ==
            dir.file("n.yaml") + ":6: sweep key '" + key + "' expects a name, not a list or a mapping");
    }
  }
}

TEST_CASE("a key given twice anywhere in a spec is an error naming file:line and the key", "[fast][sweep][errors]") {
  test::TempDir dir;
  auto error_of = [&](const std::string& name, const std::string& rest) {
    test::write_text(dir.file(name), tiny_spec(2, rest));
    return test::user_error_of([&] { load_sweep_spec(dir.file(name)); });
  };
  // Lines 1-5 are the base.
  CHECK(error_of("levels.yaml", "conditions:\n  regime:\n    small: {data: {train_size: 20}}\n"
                                "    small: {data: {train_size: 40}}\n") ==
        dir.file("levels.yaml") + ":9: duplicate key 'small'");
  CHECK(error_of("factor.yaml", "conditions:\n  regime:\n    a: {seed: 1}\n  regime:\n    b: {seed: 2}\n") ==
        dir.file("factor.yaml") + ":9: duplicate key 'regime'");
  CHECK(error_of("grid.yaml", "grid:\n  seed: [1, 2]\n  seed: [3]\n") == dir.file("grid.yaml") + ":8: duplicate key 'seed'");
  CHECK(error_of("base.yaml", "base:\n  seed: 3\n") == dir.file("base.yaml") + ":6: duplicate key 'base'");
  CHECK(error_of("inner.yaml", "conditions:\n  regime:\n    a: {train: {steps: 3, steps: 4}}\n") ==
        dir.file("inner.yaml") + ":8: duplicate key 'steps'");
  // One factor in two spellings, or as a condition and a grid key.
  CHECK(error_of("dotted.yaml", "grid:\n  train.lr: [0.1]\n  train: {lr: [0.2]}\n") ==
        dir.file("dotted.yaml") + ":8: duplicate key 'train.lr'");
  CHECK(error_of("both.yaml", "conditions:\n  seed:\n    a: {seed: 1}\ngrid:\n  seed: [2]\n") ==
        dir.file("both.yaml") + ":10: duplicate key 'seed'");

  // Through the CLI: one line, exit status 2, nothing written.
  const auto r = test::run_masklab("sweep " + dir.file("grid.yaml") + " --out " + dir.file("out") + " --dry-run");
  INFO(r.out);
  CHECK(r.exit_code == 2);
  CHECK(r.out == "masklab: error: " + dir.file("grid.yaml") + ":8: duplicate key 'seed'\n");
  CHECK_FALSE(fs::exists(dir.file("out")));
}

TEST_CASE("shards partition the runs: each run in exactly one", "[fast][sweep][shard]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(2, "grid:\n  strategy: [full, completion_only, \"weighted:0.1\"]\n  seed: [1, 2, 3, 4, 5]\n"));
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  for (int n = 1; n <= 6; ++n) {
    std::multiset<std::string> covered;
    for (int k = 1; k <= n; ++k) {
      for (const auto* r : shard_runs(spec, k, n)) covered.insert(r->id);
    }
    CHECK(covered.size() == spec.runs.size());
    for (const auto& r : spec.runs) CHECK(covered.count(r.id) == 1);
  }
}

TEST_CASE("a sweep resumes: finished runs are skipped, missing ones run", "[slow][sweep][resume]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(3, "grid:\n  strategy: [full, completion_only]\n  seed: [1, 2]\n"));
  const std::string out = dir.file("out");
  auto sweep = [&](const std::string& extra) {
    return test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " --jobs 2" + extra);
  };
  const auto first = sweep("");
  INFO(first.out);
  REQUIRE(first.exit_code == 0);
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  std::vector<fs::file_time_type> times;
  for (const auto& r : spec.runs) times.push_back(mtime(out + "/runs/" + r.id + "/metrics.json"));
  const auto manifest = read_json_file(out + "/sweep.json");
  CHECK(manifest["runs"].size() == 4);
  CHECK(manifest["factors"] == nlohmann::json({"strategy", "seed"}));

  fs::remove(out + "/runs/" + spec.runs[2].id + "/metrics.json");
  const auto second = sweep("");
  INFO(second.out);
  REQUIRE(second.exit_code == 0);
  CHECK_THAT(second.out, Catch::Contains("4 runs, 3 done, 1 to run"));
  for (size_t i = 0; i < spec.runs.size(); ++i) {
    const auto t = mtime(out + "/runs/" + spec.runs[i].id + "/metrics.json");
    if (i == 2) CHECK(t != times[i]);
    else CHECK(t == times[i]);
  }
  // Every run shares one tokenized dataset from the sweep's cache.
  CHECK(std::distance(fs::directory_iterator(out + "/cache"), fs::directory_iterator()) == 1);
  const auto dry = sweep(" --dry-run");
  CHECK_THAT(dry.out, Catch::Contains("(0 pending)"));
}

TEST_CASE("an interrupted sweep leaves no metrics.json for unfinished runs and redoes them", "[slow][sweep][resume]") {
  test::TempDir dir;
  // Long enough that the interrupt lands mid-run.
  test::write_text(dir.file("s.yaml"), tiny_spec(50000, "grid:\n  strategy: [full, completion_only]\n"));
  const std::string out = dir.file("out");
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  // Interrupt once the first run is training (its curve.jsonl exists), not after a guessed delay.
  const auto killed = test::interrupt_masklab_when(
      {"sweep", dir.file("s.yaml"), "--out", out}, out + ".log", [&] { return fs::exists(out + "/runs/" + spec.runs[0].id + "/curve.jsonl"); });
  INFO(killed.out);
  CHECK(killed.exit_code == 130);
  CHECK_THAT(killed.out, Catch::Contains("sweep interrupted"));
  for (const auto& r : spec.runs) CHECK_FALSE(fs::exists(out + "/runs/" + r.id + "/metrics.json"));
  // The next start runs both again.
  const auto dry = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " --dry-run");
  CHECK_THAT(dry.out, Catch::Contains("(2 pending)"));
}

TEST_CASE("a failing run is recorded with its error and the sweep goes on", "[slow][sweep][failures]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(2,
      "conditions:\n  base:\n    fresh: {}\n    missing_base: {model: {init_from: " + dir.file("nope.pt") + "}}\n"
      "grid:\n  strategy: [full]\n"));
  const std::string out = dir.file("out");
  const auto r = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out);
  INFO(r.out);
  CHECK(r.exit_code == 1);
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const auto ok = read_json_file(out + "/runs/" + spec.runs[0].id + "/metrics.json");
  const auto failed = read_json_file(out + "/runs/" + spec.runs[1].id + "/metrics.json");
  CHECK(ok["status"] == "ok");
  CHECK(failed["status"] == "failed");
  CHECK_THAT(failed["error"].get<std::string>(), Catch::Contains("nope.pt"));
  // Failed runs are done; --retry-failed runs them again.
  CHECK_THAT(test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " --dry-run").out,
             Catch::Contains("(0 pending)"));
  CHECK_THAT(test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " --retry-failed").out,
             Catch::Contains("1 to run"));
}

TEST_CASE("a run whose config cannot fit in memory is refused with the figures and the other runs finish",
          "[slow][sweep][failures][memory]") {
  test::TempDir dir;
  // ~51 G parameters: no machine's limit holds their AdamW state, so the run is refused before it builds anything.
  test::write_text(dir.file("s.yaml"), tiny_spec(2,
      "conditions:\n  size:\n    small: {}\n    huge: {model: {d_model: 16384, n_heads: 32, n_layers: 16}}\n"
      "grid:\n  strategy: [full]\n"));
  const std::string out = dir.file("out");
  const auto r = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out);
  INFO(r.out);
  CHECK(r.exit_code == 1);
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const auto small = read_json_file(out + "/runs/" + spec.runs[0].id + "/metrics.json");
  const auto huge = read_json_file(out + "/runs/" + spec.runs[1].id + "/metrics.json");
  CHECK(small["status"] == "ok");
  CHECK(huge["status"] == "failed");
  CHECK_THAT(huge["error"].get<std::string>(),
             Catch::Matches("masklab: error: memory: estimated peak [0-9]+ MB exceeds the limit of [0-9]+ MB \\(.*"));
  CHECK_FALSE(fs::exists(out + "/runs/" + spec.runs[1].id + "/curve.jsonl"));  // refused before anything was written
}

TEST_CASE("a sweep's child gets OPENBLAS_NUM_THREADS of its thread count, replacing the sweep's own",
          "[fast][sweep]") {
  test::TempDir dir;
  ::setenv("OPENBLAS_NUM_THREADS", "7", 1);
  const pid_t pid = spawn_logged({"/usr/bin/env"}, dir.file("env.log"), thread_environment(3));
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  ::unsetenv("OPENBLAS_NUM_THREADS");
  const std::string env = test::read_text(dir.file("env.log"));
  INFO(env);
  CHECK_THAT(env, Catch::Contains("\nOPENBLAS_NUM_THREADS=3\n") || Catch::StartsWith("OPENBLAS_NUM_THREADS=3\n"));
  CHECK_THAT(env, !Catch::Contains("OPENBLAS_NUM_THREADS=7"));
}

TEST_CASE("a resumed sweep gives its last run the threads an uninterrupted sweep gives it", "[slow][sweep][resume]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(3, "grid:\n  strategy: [full, completion_only]\n"));
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  auto sweep = [&](const std::string& out) {
    return test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " --jobs 2");
  };
  const std::string whole = dir.file("whole"), resumed = dir.file("resumed");
  REQUIRE(sweep(whole).exit_code == 0);
  REQUIRE(sweep(resumed).exit_code == 0);
  // As an interrupted sweep leaves it: the last run without a record, one run left to do.
  const std::string last = "/runs/" + spec.runs.back().id;
  fs::remove(resumed + last + "/metrics.json");
  const auto again = sweep(resumed);
  INFO(again.out);
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains("1 to run"));
  // --jobs 2 over 2 runs: half the cores each, whatever remains to run.
  const int expected = std::max(1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) / 2);
  CHECK_THAT(test::read_text(resumed + last + "/config.yaml"), Catch::Contains("threads: " + std::to_string(expected)));
  CHECK(test::read_text(resumed + last + "/config.yaml") == test::read_text(whole + last + "/config.yaml"));
  CHECK(test::comparable_metrics(read_json_file(resumed + last + "/metrics.json"), false) ==
        test::comparable_metrics(read_json_file(whole + last + "/metrics.json"), false));
}

TEST_CASE("a run past --run-timeout is killed and recorded as timeout, and the sweep goes on", "[slow][sweep][failures]") {
  test::TempDir dir;
  // The first run is far too long for 2 s; the second finishes well inside it.
  test::write_text(dir.file("s.yaml"), tiny_spec(3, "grid:\n  train.steps: [500000, 2]\n"));
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const std::string out = dir.file("out");
  const auto start = std::chrono::steady_clock::now();
  const auto r = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " --run-timeout 2");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(seconds < 60);
  const auto slow = read_json_file(out + "/runs/" + spec.runs[0].id + "/metrics.json");
  CHECK(slow["status"] == "timeout");
  CHECK(slow["error"] == "exceeded --run-timeout 2 s");
  CHECK(read_json_file(out + "/runs/" + spec.runs[1].id + "/metrics.json")["status"] == "ok");
  // A timeout is done, like a failure; --retry-failed runs it again.
  CHECK_THAT(test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " --dry-run").out,
             Catch::Contains("(0 pending)"));
}

TEST_CASE("a second sweep on the same folder never removes or rewrites a record the first one wrote",
          "[slow][sweep][resume]") {
  test::TempDir dir;
  // runs[0] is slow, runs[1] quick. Sweep A (shard 2/2) runs only runs[1];
  // sweep B, started at once, finds runs[1] pending and reaches it after
  // runs[0], long after A has recorded it.
  test::write_text(dir.file("s.yaml"), tiny_spec(3, "grid:\n  train.steps: [1500, 3]\n"));
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const std::string out = dir.file("out"), quick = out + "/runs/" + spec.runs[1].id + "/metrics.json";
  const std::string b_log = dir.file("b.log");
  const std::string b = std::string(MASKLAB_BINARY) + " sweep " + dir.file("s.yaml") + " --out " + out + " > " + b_log +
                        " 2>&1 & echo $! > " + dir.file("b.pid");
  const auto a = test::run_shell(std::string(MASKLAB_BINARY) + " sweep " + dir.file("s.yaml") + " --out " + out +
                                 " --shard 2/2 & " + b + "; wait %1");
  INFO(a.out);
  REQUIRE(a.exit_code == 0);
  REQUIRE(fs::exists(quick));
  const std::string recorded = test::read_text(quick);
  const pid_t b_pid = std::stoi(test::read_text(dir.file("b.pid")));
  // B past runs[0] (it has come to runs[1]), or B's end: either way the record A wrote stands.
  const std::string left_to_a = spec.runs[1].id + " ok       finished by another sweep";
  test::wait_until([&] { return ::kill(b_pid, 0) != 0 || test::read_text(b_log).find(left_to_a) != std::string::npos; },
                   std::chrono::seconds(400));
  test::wait_until([&] { return ::kill(b_pid, 0) != 0; }, std::chrono::seconds(30));
  INFO(test::read_text(b_log));
  CHECK(test::read_text(quick) == recorded);
  CHECK(read_json_file(out + "/runs/" + spec.runs[0].id + "/metrics.json")["status"] == "ok");
  CHECK_THAT(test::read_text(b_log), Catch::Contains(spec.runs[1].id + " ok       finished by another sweep"));
}

TEST_CASE("sweep --devices cpu,cpu runs two at a time, each child on its device, with the metrics of --jobs 2",
          "[slow][sweep][devices]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(3, "grid:\n  strategy: [full, completion_only]\n  seed: [1, 2]\n"));
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const std::string on_devices = dir.file("devices"), with_jobs = dir.file("jobs");
  const auto d = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + on_devices + " --devices cpu,cpu");
  INFO(d.out);
  REQUIRE(d.exit_code == 0);
  CHECK_THAT(d.out, Catch::Contains("4 to run, 2 at a time"));
  const auto j = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + with_jobs + " --jobs 2");
  INFO(j.out);
  REQUIRE(j.exit_code == 0);
  // --jobs 2 over 4 runs: half the cores each, as with two devices.
  const int threads = std::max(1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) / 2);
  for (const auto& r : spec.runs) {
    const std::string config = test::read_text(on_devices + "/runs/" + r.id + "/config.yaml");
    CHECK_THAT(config, Catch::Contains("device: cpu"));  // the child's own resolved config: it got --device cpu
    CHECK_THAT(config, Catch::Contains("threads: " + std::to_string(threads)));
    auto a = test::comparable_metrics(read_json_file(on_devices + "/runs/" + r.id + "/metrics.json"), false);
    auto b = test::comparable_metrics(read_json_file(with_jobs + "/runs/" + r.id + "/metrics.json"), false);
    CHECK(a["status"] == "ok");
    CHECK(a["eval"] == b["eval"]);
    CHECK(a["train"] == b["train"]);
    CHECK(a["per_task"] == b["per_task"]);
    CHECK(a["final_train_loss"] == b["final_train_loss"]);
  }
}

TEST_CASE("sweep --devices cpu,cuda:7 on a CPU build retires cuda:7 and finishes every run on cpu", "[slow][sweep][devices]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(2, "grid:\n  seed: [1, 2, 3]\n"));
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const auto r = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + dir.file("out") + " --devices cpu,cuda:7");
  INFO(r.out);
  CHECK(r.exit_code == 0);
  // Retired once, with masklab train's own reason; its run went to cpu.
  const std::regex retired("device cuda:7 retired \\([^)]*train.device 'cuda:7': [^)]*\\); run [0-9a-f]{16} goes back to the queue");
  CHECK(std::distance(std::sregex_iterator(r.out.begin(), r.out.end(), retired), std::sregex_iterator()) == 1);
  for (const auto& run : spec.runs) {
    CHECK(read_json_file(dir.file("out") + "/runs/" + run.id + "/metrics.json")["status"] == "ok");
    CHECK_THAT(test::read_text(dir.file("out") + "/runs/" + run.id + "/config.yaml"), Catch::Contains("device: cpu"));
  }

  // With every device retired, the runs left are recorded failed, with why, and the sweep ends.
  const auto none = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + dir.file("none") + " --devices cuda:7");
  INFO(none.out);
  CHECK(none.exit_code == 1);
  for (const auto& run : spec.runs) {
    const auto m = read_json_file(dir.file("none") + "/runs/" + run.id + "/metrics.json");
    CHECK(m["status"] == "failed");
    CHECK_THAT(m["error"].get<std::string>(), Catch::Contains("no usable device") && Catch::Contains("cuda:7"));
  }
}

namespace {

// The pid of the `masklab train` child whose command line names `run_dir`, 0 while there is none.
pid_t train_child_of(const std::string& run_dir) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = test::read_text(entry.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(" train ") != std::string::npos && cmdline.find(run_dir + "/config.yaml") != std::string::npos) {
      return static_cast<pid_t>(std::stol(name));
    }
  }
  return 0;
}

bool log_has(const std::string& path, const std::string& text) {
  return fs::exists(path) && test::read_text(path).find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("a sweep given SIGTERM exits 75 and the next sweep start resumes its runs and ends ok",
          "[slow][sweep][resume]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(250, "grid:\n  strategy: [full, completion_only]\n"));
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const std::string out = dir.file("out"), first = out + "/runs/" + spec.runs[0].id;
  // Preempt once the first run has logged training steps (log lines every 50 steps), not after a guessed delay.
  const auto stopped = test::interrupt_masklab_when(
      {"sweep", dir.file("s.yaml"), "--out", out}, out + ".log", [&] { return log_has(first + "/train.log", "step 50/"); },
      SIGTERM);
  INFO(stopped.out);
  CHECK(stopped.exit_code == kExitPreempted);
  CHECK_THAT(stopped.out, Catch::Contains("preempted: rerun the same command to resume"));
  CHECK_FALSE(fs::exists(first + "/metrics.json"));
  CHECK(fs::exists(first + "/checkpoint"));
  CHECK_THAT(test::read_text(first + "/train.log"), Catch::Contains("preempted at step"));

  const auto resumed = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out);
  INFO(resumed.out);
  CHECK(resumed.exit_code == 0);
  CHECK_THAT(test::read_text(first + "/train.log"), Catch::Contains("resuming from step"));
  for (const auto& r : spec.runs) CHECK(read_json_file(out + "/runs/" + r.id + "/metrics.json")["status"] == "ok");
  CHECK_FALSE(fs::exists(first + "/checkpoint"));
}

TEST_CASE("a run preempted on its own is counted as preempted, not failed, and the next start resumes it",
          "[slow][sweep][resume]") {
  test::TempDir dir;
  test::write_text(dir.file("s.yaml"), tiny_spec(250, "grid:\n  strategy: [full, completion_only]\n"));
  const SweepSpec spec = load_sweep_spec(dir.file("s.yaml"));
  const std::string out = dir.file("out"), first = out + "/runs/" + spec.runs[0].id;
  test::CommandResult sweep{};
  std::thread runner([&] { sweep = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out); });
  // The scheduler signals the run itself (Slurm signals every process of a job step).
  pid_t child = 0;
  const bool found = test::wait_until([&] {
    return log_has(first + "/train.log", "step 50/") && (child = train_child_of(first)) > 0;
  }, std::chrono::seconds(120));
  if (found) ::kill(child, SIGTERM);
  runner.join();
  REQUIRE(found);
  INFO(sweep.out);
  CHECK(sweep.exit_code == kExitPreempted);
  CHECK_THAT(sweep.out, Catch::Contains(spec.runs[0].id + " preempted"));
  CHECK_THAT(sweep.out, Catch::Contains("1 runs ok, 0 not ok, 1 preempted"));
  CHECK_FALSE(fs::exists(first + "/metrics.json"));  // no failure record
  CHECK(read_json_file(out + "/runs/" + spec.runs[1].id + "/metrics.json")["status"] == "ok");

  const auto resumed = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out);
  INFO(resumed.out);
  CHECK(resumed.exit_code == 0);
  CHECK_THAT(test::read_text(first + "/train.log"), Catch::Contains("resuming from step"));
  CHECK(read_json_file(first + "/metrics.json")["status"] == "ok");
}
