#include "harness/sweep/sweep.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/yaml_file.hpp"
#include "harness/core/hashing.hpp"
#include "harness/core/progress.hpp"
#include "harness/core/run_record.hpp"
#include "masklab_version.hpp"
#include "strategies/registry.hpp"

namespace masklab {
namespace {

// A factor's text as the reports show it: scalars as written, lists joined by commas.
std::string value_text(const YAML::Node& v) {
  if (v.IsSequence()) {
    std::string out;
    for (const auto& item : v) out += (out.empty() ? "" : ",") + item.as<std::string>();
    return out;
  }
  return v.IsNull() ? "" : v.as<std::string>();
}

struct Level {
  std::string text;          // the factor's value for reports
  YAML::Node value;          // a grid value, or a condition's overrides
  std::string origin;        // "spec.yaml:12"
};

struct Factor {
  std::string name;
  std::string key;           // config key for grid factors; "" for named conditions
  std::vector<Level> levels;
};

void add_grid_factor(std::vector<Factor>& factors, const std::string& key, const YAML::Node& values,
                     const std::string& path) {
  Factor f{key, key, {}};
  if (values.IsSequence()) {
    if (values.size() == 0) throw UserError(yaml_location(path, values) + ": grid factor '" + key + "' has no values");
    for (const auto& v : values) f.levels.push_back({value_text(v), v, yaml_location(path, v)});
  } else {
    f.levels.push_back({value_text(values), values, yaml_location(path, values)});
  }
  factors.push_back(std::move(f));
}

volatile sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

}  // namespace

std::string run_id(const Config& config) {
  Config keyed = config;
  keyed.train.threads = 0;
  return Fnv1a().add(to_yaml(keyed)).hex();
}

SweepSpec load_sweep_spec(const std::string& path) {
  SweepSpec spec;
  spec.path = path;
  const auto text = read_file(path);
  if (!text) throw UserError(path + ": cannot read sweep spec");
  spec.text = *text;
  spec.name = std::filesystem::path(path).stem().string();
  const YAML::Node root = parse_yaml(spec.text, path);
  if (!root.IsMap()) throw error_at(path, 1, "a sweep spec is a mapping with base, grid and conditions");

  Config base;
  std::vector<Factor> factors;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "name") {
      spec.name = v.as<std::string>();
    } else if (key == "description") {
      continue;
    } else if (key == "baseline") {
      spec.baseline = make_strategy(v.as<std::string>())->spec();
    } else if (key == "base") {
      apply_yaml(base, v, path);
    } else if (key == "conditions") {
      // conditions: {factor: {level: {config overrides}}}; each factor crosses the others.
      if (!v.IsMap()) throw UserError(yaml_location(path, v) + ": conditions must map a factor name to named levels");
      for (const auto& cond : v) {
        Factor f{cond.first.as<std::string>(), "", {}};
        if (!cond.second.IsMap() || cond.second.size() == 0) {
          throw UserError(yaml_location(path, cond.second) + ": condition '" + f.name + "' must map level names to config overrides");
        }
        for (const auto& level : cond.second) {
          f.levels.push_back({level.first.as<std::string>(), level.second, yaml_location(path, level.first)});
        }
        factors.push_back(std::move(f));
      }
    } else if (key == "grid") {
      if (!v.IsMap()) throw UserError(yaml_location(path, v) + ": grid must map config keys to lists of values");
      for (const auto& g : v) {
        const std::string gkey = g.first.as<std::string>();
        if (g.second.IsMap()) {  // grid: {train: {lr: [..]}}
          for (const auto& inner : g.second) add_grid_factor(factors, gkey + "." + inner.first.as<std::string>(), inner.second, path);
        } else {
          add_grid_factor(factors, gkey, g.second, path);
        }
      }
    } else {
      throw UserError(yaml_location(path, kv.first) + ": unknown sweep key '" + key +
                      "' (valid: name, description, baseline, base, grid, conditions)");
    }
  }
  for (const auto& f : factors) spec.factors.push_back(f.name);

  // The cartesian product, last factor fastest.
  std::vector<size_t> index(factors.size(), 0);
  std::set<std::string> seen;  // run ids already expanded
  while (true) {
    SweepRun run;
    run.config = base;
    for (size_t i = 0; i < factors.size(); ++i) {
      const Factor& f = factors[i];
      const Level& level = f.levels[index[i]];
      if (f.key.empty()) {
        apply_yaml(run.config, level.value, path);
      } else {
        apply_node(run.config, f.key, level.value, level.origin);
      }
      run.factors.emplace_back(f.name, level.text);
    }
    std::string context;
    for (const auto& [name, value] : run.factors) context += (context.empty() ? "" : " ") + name + "=" + value;
    try {
      run.config.strategy = make_strategy(run.config.strategy)->spec();
      validate(run.config);
    } catch (const UserError& e) {
      throw UserError(path + ": run (" + context + "): " + e.what());
    }
    for (auto& [name, value] : run.factors) {
      if (name == "strategy") value = run.config.strategy;  // canonical spec in reports
    }
    run.id = run_id(run.config);
    if (seen.insert(run.id).second) spec.runs.push_back(std::move(run));
    size_t i = factors.size();
    while (i > 0 && ++index[i - 1] == factors[i - 1].levels.size()) index[--i] = 0;
    if (i == 0) break;
  }
  return spec;
}

std::pair<int, int> parse_shard(const std::string& text) {
  int k = 0, n = 0;
  char slash = 0, extra = 0;
  std::istringstream in(text);
  if (!(in >> k >> slash >> n) || slash != '/' || (in >> extra) || n < 1 || k < 1 || k > n) {
    throw UserError("--shard '" + text + "': expected K/N with 1 <= K <= N");
  }
  return {k, n};
}

std::vector<const SweepRun*> shard_runs(const SweepSpec& spec, int k, int n) {
  std::vector<const SweepRun*> out;
  for (size_t i = 0; i < spec.runs.size(); ++i) {
    if (static_cast<int>(i % static_cast<size_t>(n)) == k - 1) out.push_back(&spec.runs[i]);
  }
  return out;
}

nlohmann::json sweep_manifest(const SweepSpec& spec) {
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& r : spec.runs) {
    nlohmann::json factors = nlohmann::json::object();
    for (const auto& [k, v] : r.factors) factors[k] = v;
    runs.push_back({{"id", r.id},
                    {"dir", "runs/" + r.id},
                    {"factors", factors},
                    {"role_weights", role_weights_record(*make_strategy(r.config.strategy))}});
  }
  return {{"name", spec.name},
          {"spec_path", spec.path},
          {"spec_text", spec.text},
          {"baseline", spec.baseline},
          {"factors", spec.factors},
          {"provenance", {{"masklab_version", MASKLAB_VERSION}, {"git_sha", MASKLAB_GIT_SHA}, {"libtorch_version", MASKLAB_LIBTORCH_VERSION}}},
          {"runs", runs}};
}

namespace {

struct Running {
  const SweepRun* run;
  std::chrono::steady_clock::time_point start;
};

std::string last_line(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

std::string describe(const SweepRun& run) {
  std::string out;
  for (const auto& [k, v] : run.factors) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

}  // namespace

int run_sweep(const SweepSpec& spec, const SweepOptions& options) {
  namespace fs = std::filesystem;
  const auto runs = shard_runs(spec, options.shard_k, options.shard_n);
  const std::string dir = options.out_dir;

  auto run_dir = [&](const SweepRun& r) { return dir + "/runs/" + r.id; };
  auto finished_status = [&](const SweepRun& r) -> std::string {
    const std::string m = run_dir(r) + "/metrics.json";
    if (!fs::exists(m)) return "";
    try {
      return read_json_file(m).value("status", "failed");
    } catch (const UserError&) {
      return "";  // unreadable: treat as not finished
    }
  };

  std::vector<const SweepRun*> pending;
  int already_ok = 0, already_bad = 0;
  for (const auto* r : runs) {
    const std::string status = finished_status(*r);
    if (status.empty() || (options.retry_failed && status == "failed")) {
      pending.push_back(r);
    } else {
      (status == "ok" ? already_ok : already_bad)++;
    }
  }

  if (options.dry_run) {
    fmt::print("sweep {}: {} runs{} ({} pending)\n", spec.name, runs.size(),
               options.shard_n > 1 ? fmt::format(" in shard {}/{} of {}", options.shard_k, options.shard_n, spec.runs.size()) : "",
               pending.size());
    for (const auto* r : runs) {
      const std::string status = finished_status(*r);
      fmt::print("{}  {:<8} {}\n", r->id, status.empty() ? "pending" : status, describe(*r));
    }
    return 0;
  }

  fs::create_directories(dir + "/runs");
  fs::create_directories(dir + "/cache");
  write_file_atomic(dir + "/sweep.json", sweep_manifest(spec).dump(2) + "\n");

  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int jobs = std::max(1, std::min<int>(options.jobs, static_cast<int>(std::max<size_t>(1, pending.size()))));
  const int threads_each = std::max(1, hw / jobs);

  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  Progress progress(Progress::stdout_is_terminal());
  progress.line(fmt::format("sweep {}: {} runs, {} done, {} to run, {} at a time with {} thread(s) each -> {}", spec.name,
                            runs.size(), already_ok + already_bad, pending.size(), jobs, threads_each, dir));

  std::map<pid_t, Running> running;
  size_t next = 0;
  int done_ok = 0, done_bad = 0;
  double seconds_total = 0;
  const auto sweep_start = std::chrono::steady_clock::now();

  auto launch = [&](const SweepRun& r) {
    const std::string rdir = run_dir(r);
    fs::create_directories(rdir);
    fs::remove(rdir + "/metrics.json");
    Config c = r.config;
    c.train.threads = threads_each;
    write_file_atomic(rdir + "/config.yaml", to_yaml(c));
    const std::string log = rdir + "/train.log";
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
        ::close(fd);
      }
      const std::string config_path = rdir + "/config.yaml", cache = dir + "/cache";
      ::execl(options.masklab_binary.c_str(), options.masklab_binary.c_str(), "train", "--config", config_path.c_str(),
              "--out", rdir.c_str(), "--cache", cache.c_str(), static_cast<char*>(nullptr));
      std::fprintf(stderr, "masklab sweep: cannot run %s\n", options.masklab_binary.c_str());
      ::_exit(127);
    }
    running[pid] = {&r, std::chrono::steady_clock::now()};
  };

  auto show_status = [&] {
    const int done = done_ok + done_bad;
    const double per_run = done ? seconds_total / done : 0;
    const size_t left = pending.size() - done;
    const double eta = done ? per_run * static_cast<double>(left) / jobs : NAN;
    progress.status(fmt::format("runs {}/{} done ({} not ok), {} running, ETA {}", already_ok + already_bad + done,
                                runs.size(), already_bad + done_bad, running.size(), format_duration(eta)));
  };

  while ((next < pending.size() || !running.empty())) {
    while (!g_interrupted && next < pending.size() && static_cast<int>(running.size()) < jobs) launch(*pending[next++]);
    if (g_interrupted) break;
    show_status();
    int wstatus = 0;
    const pid_t pid = ::waitpid(-1, &wstatus, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const SweepRun& r = *it->second.run;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.start).count();
    running.erase(it);
    if (g_interrupted) break;  // the child died of the same interrupt: leave it unrecorded, to run again
    seconds_total += seconds;
    const std::string rdir = run_dir(r);
    std::string status = finished_status(r);
    nlohmann::json metrics;
    if (status.empty()) {
      // The run died before writing its record (bad input, crash, killed): record why.
      const std::string why = WIFSIGNALED(wstatus) ? fmt::format("killed by signal {}", WTERMSIG(wstatus))
                                                   : last_line(rdir + "/train.log");
      metrics = {{"status", "failed"}, {"error", why.empty() ? "exited without a record" : why},
                 {"strategy", r.config.strategy}, {"seed", r.config.seed}, {"wall_seconds", seconds}};
      write_file_atomic(rdir + "/metrics.json", metrics.dump(2) + "\n");
      status = "failed";
    } else {
      metrics = read_json_file(rdir + "/metrics.json");
    }
    (status == "ok" ? done_ok : done_bad)++;
    const auto em = lookup_dotted(metrics, "eval.exact_match");
    const auto nll = lookup_dotted(metrics, "eval.completion_nll");
    progress.line(fmt::format("{} {:<8} {:6.1f}s  {}{}", r.id, status, seconds, describe(r),
                              status == "ok" ? fmt::format("  exact_match {:.3f} completion_nll {:.4f}",
                                                           em.is_number() ? em.get<double>() : NAN,
                                                           nll.is_number() ? nll.get<double>() : NAN)
                                             : "  (" + metrics.value("error", std::string()) + ")"));
  }

  if (g_interrupted) {
    for (const auto& [pid, r] : running) ::kill(pid, SIGTERM);
    while (::waitpid(-1, nullptr, 0) > 0) {
    }
    progress.line("sweep interrupted: unfinished runs have no metrics.json and run again on the next start");
    return 130;
  }
  progress.finish();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - sweep_start).count();
  const int bad = already_bad + done_bad;
  progress.line(fmt::format("sweep {}: {} runs ok, {} not ok, {:.0f}s", spec.name, already_ok + done_ok, bad, wall));
  return bad == 0 ? 0 : 1;
}

}  // namespace masklab
