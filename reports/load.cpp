// load_sweep: DIR/sweep.json and every listed run's record -> ReportInputs.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/text.hpp"
#include "reports/report.hpp"

namespace masklab::reports {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A factor value as text: sweep.json writes strings; a number or a bool
// written by hand is taken as its JSON text.
std::string factor_text(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

std::string optional_string(const json& obj, const char* key, const std::string& file) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return "";
  if (!it->is_string()) throw UserError(file + ": '" + key + "' must be a string");
  return it->get<std::string>();
}

// Fills status, error and metrics from RUN_DIR/metrics.json. A record that
// cannot be parsed marks that run failed rather than ending the report.
void load_metrics(RunRow& run, const fs::path& run_dir) {
  const fs::path path = run_dir / "metrics.json";
  if (!fs::exists(path)) {
    run.status = "missing";
    return;
  }
  json metrics;
  try {
    metrics = json::parse(read_file(path.string()).value_or(""));
  } catch (const json::exception& e) {
    run.status = "failed";
    run.error = path.string() + ": " + invalid_json(e.what());
    return;
  }
  if (!metrics.is_object() || !metrics.contains("status") || !metrics["status"].is_string()) {
    run.status = "failed";
    run.error = path.string() + ": not a run record (no \"status\" string)";
    return;
  }
  run.status = metrics["status"].get<std::string>();
  if (metrics.contains("error") && metrics["error"].is_string()) run.error = metrics["error"].get<std::string>();
  run.metrics = std::move(metrics);
}

// curve.jsonl, one object per line. A run killed while writing can leave a
// partial last line; lines that do not parse are dropped, the rest kept.
std::vector<json> load_curve(const fs::path& run_dir) {
  std::vector<json> points;
  std::ifstream in(run_dir / "curve.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json point = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (point.is_object()) points.push_back(std::move(point));
  }
  return points;
}

// What is wrong with one line of a JSONL file; the reader adds file:line.
struct LineError {
  std::string reason;
};

// The metric names one eval_examples.jsonl line feeds (reports/report.hpp ExampleScores).
std::vector<std::string> example_metric_names(const std::string& set, long wording, const std::string& metric) {
  if (set.empty()) return {"eval." + metric};
  return {"eval." + set + "." + metric, "eval." + set + ".wording" + std::to_string(wording) + "." + metric};
}

void add_example_score(ExampleScores& scores, const std::string& set, long wording, long example,
                       const std::string& metric, std::pair<double, double> score) {
  for (const auto& name : example_metric_names(set, wording, metric)) {
    if (!scores[name][wording].emplace(example, score).second) {
      throw LineError{"example " + std::to_string(example) + " of wording " + std::to_string(wording) + " of set '" +
                      set + "' appears twice"};
    }
  }
}

long required_index(const json& line, const char* key) {
  const auto it = line.find(key);
  if (it == line.end() || !it->is_number_integer() || it->get<long>() < 0) {
    throw LineError{std::string("'") + key + "' must be an integer >= 0"};
  }
  return it->get<long>();
}

// One line: {"set", "wording", "example", "values": {metric: number}, "ratios": {metric: [num, den]}, ...}.
// A null value (a metric undefined for that example) is left out.
void parse_example_line(const std::string& text, ExampleScores& scores) {
  const json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!line.is_object()) throw LineError{"not a JSON object"};
  const auto set = line.find("set");
  if (set == line.end() || !set->is_string()) throw LineError{"'set' must be a string (\"\" for the default set)"};
  const long wording = required_index(line, "wording"), example = required_index(line, "example");
  for (const char* group : {"values", "ratios"}) {
    const auto it = line.find(group);
    if (it == line.end() || it->is_null()) continue;
    if (!it->is_object()) throw LineError{std::string("'") + group + "' must be an object"};
    for (const auto& [metric, score] : it->items()) {
      if (score.is_null()) continue;
      const bool ratio = group[0] == 'r';
      if (!ratio && !score.is_number()) throw LineError{"values." + metric + " must be a number"};
      if (ratio && !(score.is_array() && score.size() == 2 && score[0].is_number() && score[1].is_number())) {
        throw LineError{"ratios." + metric + " must be [numerator, denominator]"};
      }
      add_example_score(scores, set->get<std::string>(), wording, example, metric,
                        ratio ? std::pair{score[0].get<double>(), score[1].get<double>()}
                              : std::pair{score.get<double>(), 1.0});
    }
  }
}

// RUN_DIR/eval_examples.jsonl; none when the run wrote no such file (older runs).
ExampleScores load_example_scores(const fs::path& run_dir) {
  ExampleScores scores;
  const fs::path path = run_dir / "eval_examples.jsonl";
  if (!fs::exists(path)) return scores;
  const auto text = read_file(path.string());
  if (!text) throw UserError(path.string() + ": cannot read");
  std::istringstream in(*text);
  long number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      parse_example_line(line, scores);
    } catch (const LineError& e) {
      throw UserError(path.string() + ":" + std::to_string(number) + ": " + e.reason);
    }
  }
  return scores;
}

// One moment's weights of a role_weights record; `where` names the file and key.
RecordedWeights read_weights(const json& record, const char* key, const std::string& where) {
  const auto it = record.find(key);
  if (it == record.end() || !it->is_object()) throw UserError(where + "." + key + ": expected an object of weights");
  auto number = [&](const char* role) {
    const auto w = it->find(role);
    if (w == it->end() || !w->is_number()) {
      throw UserError(where + "." + key + "." + role + ": expected a number");
    }
    return w->get<double>();
  };
  return {number("prompt"), number("completion"), number("earlier_completion"), number("system")};
}

std::string required_string(const json& record, const char* key, const std::string& where) {
  const auto it = record.find(key);
  if (it == record.end() || !it->is_string()) throw UserError(where + "." + key + ": expected a string");
  return it->get<std::string>();
}

// The "role_weights" member of a run entry or a run record; none when absent or null.
std::optional<RoleWeightsRecord> read_role_weights(const json& parent, const std::string& where_parent) {
  const auto it = parent.find("role_weights");
  if (it == parent.end() || it->is_null()) return std::nullopt;
  const std::string where = where_parent + ": role_weights";
  if (!it->is_object()) throw UserError(where + ": expected {start, end, schedule, template, eos}");
  return RoleWeightsRecord{read_weights(*it, "start", where), read_weights(*it, "end", where),
                           required_string(*it, "schedule", where), required_string(*it, "template", where),
                           required_string(*it, "eos", where)};
}

json read_sweep_json(const std::string& dir, const std::string& sweep_path) {
  const auto text = read_file(sweep_path);
  if (!text) throw UserError(sweep_path + ": cannot read (is " + dir + " a sweep directory?)");
  json sweep;
  try {
    sweep = json::parse(*text);
  } catch (const json::exception& e) {
    throw UserError(sweep_path + ": " + invalid_json(e.what()));
  }
  if (!sweep.is_object()) throw UserError(sweep_path + ": expected a JSON object");
  if (!sweep.contains("runs") || !sweep["runs"].is_array()) {
    throw UserError(sweep_path + ": 'runs' must be a list of {id, dir, factors}");
  }
  return sweep;
}

// Everything of sweep.json but its runs.
void read_header(const json& sweep, const std::string& sweep_path, ReportInputs& inputs) {
  inputs.sweep.name = optional_string(sweep, "name", sweep_path);
  inputs.sweep.spec_path = optional_string(sweep, "spec_path", sweep_path);
  inputs.sweep.spec_text = optional_string(sweep, "spec_text", sweep_path);
  inputs.sweep.provenance = sweep.value("provenance", json::object());
  inputs.sweep.base = sweep.value("base", json());
  inputs.sweep.until_ci = sweep.value("until_ci", json());
  if (!inputs.sweep.until_ci.is_null() && !inputs.sweep.until_ci.is_object()) {
    throw UserError(sweep_path + ": 'until_ci' must be an object {metric, half_width, max_seeds, rounds, stopped_by}");
  }
  if (!inputs.sweep.base.is_null() && !inputs.sweep.base.is_object()) {
    throw UserError(sweep_path + ": 'base' must be an object {kind, hash, path}");
  }
  // The spec's baseline; `masklab report --baseline` overrides it.
  const std::string baseline = optional_string(sweep, "baseline", sweep_path);
  if (!baseline.empty()) inputs.baseline = baseline;
  if (!sweep.contains("factors")) return;
  if (!sweep["factors"].is_array()) throw UserError(sweep_path + ": 'factors' must be a list of names");
  for (const auto& f : sweep["factors"]) {
    if (!f.is_string()) throw UserError(sweep_path + ": 'factors' must be a list of names");
    inputs.sweep.factors.push_back(f.get<std::string>());
  }
}

// metrics.json's base.hash, when the run recorded its base.
json lookup_base_hash(const json& metrics) {
  const auto base = metrics.find("base");
  if (base == metrics.end() || !base->is_object()) return nullptr;
  return base->value("hash", json());
}

// The pretrain stage's own record, when the sweep has one and it finished.
json load_base_metrics(const json& base, const fs::path& root) {
  if (!base.is_object() || !base.contains("dir") || !base["dir"].is_string()) return nullptr;
  fs::path dir(base["dir"].get<std::string>());
  if (dir.is_relative()) dir = root / dir;
  const auto text = read_file((dir / "metrics.json").string());
  if (!text) return nullptr;
  json metrics = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  return metrics.is_object() ? metrics : json();
}

// One entry of sweep.json's runs and the record it points to. A factor the
// header forgot is still a factor: it joins `factors`, after the declared ones.
RunRow load_run(const json& entry, const std::string& where, const fs::path& root, std::vector<std::string>& factors) {
  if (!entry.is_object() || !entry.contains("id") || !entry["id"].is_string()) {
    throw UserError(where + ": expected an object with a string 'id'");
  }
  RunRow run;
  run.id = entry["id"].get<std::string>();
  const std::string run_dir_text = optional_string(entry, "dir", where);
  fs::path run_dir = run_dir_text.empty() ? root / "runs" / run.id : fs::path(run_dir_text);
  if (run_dir.is_relative()) run_dir = root / run_dir;
  if (entry.contains("factors")) {
    if (!entry["factors"].is_object()) throw UserError(where + ": 'factors' must be an object");
    for (const auto& [name, value] : entry["factors"].items()) {
      run.factors[name] = factor_text(value);
      if (std::find(factors.begin(), factors.end(), name) == factors.end()) factors.push_back(name);
    }
  }
  load_metrics(run, run_dir);
  run.curve = load_curve(run_dir);
  run.examples = load_example_scores(run_dir);
  run.base_hash = optional_string(entry, "base_hash", where);
  if (run.base_hash.empty() && run.metrics.is_object()) {
    const json hash = lookup_base_hash(run.metrics);
    if (hash.is_string()) run.base_hash = hash.get<std::string>();
  }
  // The sweep's entry is written when the run is planned, so it speaks for
  // runs without a record; a record from before role weights were written
  // leaves the run without one.
  run.role_weights = read_role_weights(entry, where);
  if (!run.role_weights && run.metrics.is_object()) {
    run.role_weights = read_role_weights(run.metrics, (run_dir / "metrics.json").string());
  }
  return run;
}

}  // namespace

ReportInputs load_sweep(const std::string& dir) {
  const fs::path root(dir);
  const std::string sweep_path = (root / "sweep.json").string();
  const json sweep = read_sweep_json(dir, sweep_path);
  ReportInputs inputs;
  read_header(sweep, sweep_path, inputs);
  inputs.sweep.base_metrics = load_base_metrics(inputs.sweep.base, root);
  for (size_t i = 0; i < sweep["runs"].size(); ++i) {
    const std::string where = sweep_path + ": runs[" + std::to_string(i) + "]";
    inputs.runs.push_back(load_run(sweep["runs"][i], where, root, inputs.sweep.factors));
  }
  return inputs;
}

}  // namespace masklab::reports
