// Sweep specs: parsing (base, grid, conditions, pretrain, slurm), expansion
// into runs with their ids, shards and the manifest the report reads. The
// runner that launches the runs is sweep.cpp.
#include "harness/sweep/sweep.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/hf_config.hpp"
#include "harness/core/files.hpp"
#include "harness/core/yaml_file.hpp"
#include "harness/core/hashing.hpp"
#include "harness/core/run_record.hpp"
#include "strategies/registry.hpp"

namespace masklab {
namespace {

// A scalar's text; a list or a mapping where a scalar belongs is a UserError
// "FILE:LINE: <problem>", not a bad conversion escaping the reader.
std::string scalar_text(const YAML::Node& node, const std::string& path, const std::string& problem) {
  if (node.IsMap() || node.IsSequence()) throw UserError(yaml_location(path, node) + ": " + problem);
  return node.as<std::string>();
}

// A factor's text as the reports show it: scalars as written, lists joined by commas.
std::string value_text(const YAML::Node& v, const std::string& path) {
  const auto item_text = [&](const YAML::Node& item) {
    return scalar_text(item, path, "a grid value must be a value or a list of values");
  };
  if (v.IsSequence()) {
    std::string out;
    for (const auto& item : v) out += (out.empty() ? "" : ",") + item_text(item);
    return out;
  }
  return v.IsNull() ? "" : item_text(v);
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

// A factor named twice (`seed` and `seed`, `train: {lr}` and `train.lr`, a
// condition and a grid key of one name) would label each run with both
// values and train with one of them.
void reject_repeated_factor(const std::vector<Factor>& factors, const std::string& name, const std::string& where) {
  for (const auto& f : factors) {
    if (f.name == name) throw UserError(where + ": duplicate key '" + name + "'");
  }
}

void add_grid_factor(std::vector<Factor>& factors, const std::string& key, const YAML::Node& values,
                     const std::string& path, const YAML::Node& key_node) {
  reject_repeated_factor(factors, key, yaml_location(path, key_node));
  Factor f{key, key, {}};
  if (values.IsSequence()) {
    if (values.size() == 0) throw UserError(yaml_location(path, values) + ": grid factor '" + key + "' has no values");
    for (const auto& v : values) f.levels.push_back({value_text(v, path), v, yaml_location(path, v)});
  } else {
    f.levels.push_back({value_text(values, path), values, yaml_location(path, values)});
  }
  factors.push_back(std::move(f));
}

void add_grid(std::vector<Factor>& factors, const YAML::Node& grid, const std::string& path) {
  if (!grid.IsMap()) throw UserError(yaml_location(path, grid) + ": grid must map config keys to lists of values");
  for (const auto& g : grid) {
    const std::string key = g.first.as<std::string>();
    if (g.second.IsMap()) {  // grid: {train: {lr: [..]}}
      for (const auto& inner : g.second) {
        add_grid_factor(factors, key + "." + inner.first.as<std::string>(), inner.second, path, inner.first);
      }
    } else {
      add_grid_factor(factors, key, g.second, path, g.first);
    }
  }
}

// conditions: {factor: {level: {config overrides}}}; each factor crosses the others.
void add_conditions(std::vector<Factor>& factors, const YAML::Node& conditions, const std::string& path) {
  if (!conditions.IsMap()) {
    throw UserError(yaml_location(path, conditions) + ": conditions must map a factor name to named levels");
  }
  for (const auto& cond : conditions) {
    Factor f{cond.first.as<std::string>(), "", {}};
    reject_repeated_factor(factors, f.name, yaml_location(path, cond.first));
    if (!cond.second.IsMap() || cond.second.size() == 0) {
      throw UserError(yaml_location(path, cond.second) + ": condition '" + f.name +
                      "' must map level names to config overrides");
    }
    for (const auto& level : cond.second) {
      f.levels.push_back({level.first.as<std::string>(), level.second, yaml_location(path, level.first)});
    }
    factors.push_back(std::move(f));
  }
}

// A spec before expansion: the base config and the factors that vary it.
struct SpecBody {
  Config base;
  std::vector<Factor> factors;  // in spec order
};

void read_spec_key(const YAML::Node& key_node, const YAML::Node& value, const std::string& path, SweepSpec& spec,
                   SpecBody& body) {
  const std::string key = key_node.as<std::string>();
  const auto name_value = [&] {
    return scalar_text(value, path, "sweep key '" + key + "' expects a name, not a list or a mapping");
  };
  if (key == "name") {
    spec.name = name_value();
  } else if (key == "description") {
    return;  // for whoever reads the spec
  } else if (key == "baseline") {
    spec.baseline = make_strategy(name_value())->spec();
  } else if (key == "pretrain") {
    return;  // read first, by load_sweep_spec: the runs start from its model
  } else if (key == "base") {
    apply_yaml(body.base, value, path);
  } else if (key == "conditions") {
    add_conditions(body.factors, value, path);
  } else if (key == "grid") {
    add_grid(body.factors, value, path);
  } else if (key == "slurm") {
    spec.slurm = parse_slurm_block(value, path);
  } else {
    throw UserError(yaml_location(path, key_node) + ": unknown sweep key '" + key +
                    "' (valid: name, description, baseline, pretrain, base, grid, conditions, slurm)");
  }
}


// The run at one point of the product: the base with each factor's level
// applied, validated and with its strategy in canonical form.
SweepRun resolve_run(const SpecBody& body, const std::vector<size_t>& index, const std::string& path) {
  SweepRun run;
  run.config = body.base;
  for (size_t i = 0; i < body.factors.size(); ++i) {
    const Factor& f = body.factors[i];
    const Level& level = f.levels[index[i]];
    if (f.key.empty()) {
      apply_yaml(run.config, level.value, path);
    } else {
      apply_node(run.config, f.key, level.value, level.origin);
    }
    run.factors.emplace_back(f.name, level.text);
  }
  try {
    run.config.strategy = make_strategy(run.config.strategy)->spec();
    // A Hugging Face init_from gives the run its architecture here, so that
    // config.yaml (and the run id) carry the model the run trains.
    resolve_init_from(run.config);
    validate(run.config);
  } catch (const UserError& e) {
    throw UserError(path + ": run (" + describe(run) + "): " + e.what());
  }
  for (auto& [name, value] : run.factors) {
    if (name == "strategy") value = run.config.strategy;  // canonical spec in reports
  }
  run.id = run_id(run.config);
  return run;
}

// Steps `index` to the next point of the product, last factor fastest; false past the last point.
bool next_point(std::vector<size_t>& index, const std::vector<Factor>& factors) {
  size_t i = factors.size();
  while (i > 0 && ++index[i - 1] == factors[i - 1].levels.size()) index[--i] = 0;
  return i > 0;
}

// Every run starts from the base: its model section is the stage's (a run
// that sets another value is an error naming the key) and its init_from
// names the base by hash, so the id covers the base.
void attach_base(SweepBase& base, std::vector<SweepRun>& runs, const std::string& path) {
  std::vector<const Config*> configs;
  for (const auto& r : runs) configs.push_back(&r.config);
  finish_base(base, configs);
  for (auto& r : runs) {
    try {
      if (!r.config.model.init_from.empty()) {
        throw UserError("model.init_from is set, but the spec's pretrain: block gives every run its base");
      }
      check_run_matches_base(base, r.config);
      if (base.kind == BaseKind::kCheckpoint) {
        r.config.model.init_from = base.checkpoint;
        resolve_init_from(r.config);  // a model folder's config.json gives every run its model.*
        validate(r.config);
      }
    } catch (const UserError& e) {
      throw UserError(path + ": run (" + describe(r) + "): " + e.what());
    }
    r.config.model.init_from = base_init_token(base);
    r.id = run_id(r.config);
  }
}

std::vector<SweepRun> expand_runs(const SpecBody& body, const std::string& path) {
  std::vector<SweepRun> runs;
  std::vector<size_t> index(body.factors.size(), 0);
  // Two spellings of one point (weighted:0.1, Weighted:0.10) are one run.
  // Two points with different labels that resolve to one config would be one
  // run under the first label, the second silently missing: an error.
  std::map<std::string, std::string> seen;  // run id -> the point that made it
  do {
    SweepRun run = resolve_run(body, index, path);
    const auto [it, fresh] = seen.emplace(run.id, describe(run));
    if (!fresh && it->second == describe(run)) continue;
    if (!fresh) {
      throw UserError(path + ": runs (" + it->second + ") and (" + describe(run) + ") resolve to the same config (run " +
                      run.id + "); give the levels settings that differ (train.threads is not part of a run)");
    }
    runs.push_back(std::move(run));
  } while (next_point(index, body.factors));
  return runs;
}

}  // namespace

std::string describe(const SweepRun& run) {
  std::string out;
  for (const auto& [k, v] : run.factors) out += (out.empty() ? "" : " ") + k + "=" + v;
  return out;
}

std::string run_id(const Config& config) {
  Config keyed = config;
  keyed.train.threads = 0;
  keyed.train.device = DeviceSetting{};
  return Fnv1a().add(to_yaml(keyed)).hex();
}

namespace {

// The grid's seed factor: its values as integers, replaced by `seeds` when given.
std::vector<int> seed_values(std::vector<Factor>& factors, const std::vector<int>& seeds, const std::string& path) {
  const auto it = std::find_if(factors.begin(), factors.end(), [](const Factor& f) { return f.key == "seed"; });
  if (it == factors.end()) {
    if (!seeds.empty()) throw UserError(path + ": --until-ci adds seeds, but the spec's grid has no `seed` factor");
    return {};
  }
  std::vector<int> values;
  for (const auto& level : it->levels) {
    try {
      values.push_back(level.value.as<int>());
    } catch (const YAML::Exception&) {
      throw UserError(level.origin + ": seed '" + level.text + "' is not an integer");
    }
  }
  if (seeds.empty()) return values;
  it->levels.clear();
  for (int seed : seeds) it->levels.push_back({std::to_string(seed), YAML::Node(seed), "--until-ci"});
  return seeds;
}

}  // namespace

SweepSpec load_sweep_spec(const std::string& path, const std::vector<int>& seeds) {
  std::string why;
  const auto text = read_file(path, &why);
  if (!text) throw UserError(path + ": cannot read sweep spec: " + why);
  return parse_sweep_spec(*text, path, seeds);
}

SweepSpec parse_sweep_spec(const std::string& text, const std::string& path, const std::vector<int>& seeds) {
  SweepSpec spec;
  spec.path = path;
  spec.text = text;
  spec.name = std::filesystem::path(path).stem().string();
  const YAML::Node root = parse_yaml(spec.text, path);
  if (!root.IsMap()) throw error_at(path, 1, "a sweep spec is a mapping with base, grid and conditions");
  SpecBody body;
  if (const YAML::Node pretrain = root["pretrain"]) {
    spec.base = parse_pretrain(pretrain, path);
    if (spec.base->kind == BaseKind::kPretrain) {
      body.base.model = spec.base->stage.model;
      body.base.model.init_from = "";  // what the stage started from; the runs start from the stage
      body.base.data.tokenizer = spec.base->stage.data.tokenizer;
    }
  }
  for (const auto& kv : root) read_spec_key(kv.first, kv.second, path, spec, body);
  for (const auto& f : body.factors) spec.factors.push_back(f.name);
  spec.seeds = seed_values(body.factors, seeds, path);
  spec.runs = expand_runs(body, path);
  if (spec.base) attach_base(*spec.base, spec.runs, path);
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
    if (spec.base) runs.back()["base_hash"] = spec.base->hash;
  }
  nlohmann::json manifest = {{"name", spec.name},
          {"spec_path", spec.path},
          {"spec_text", spec.text},
          {"baseline", spec.baseline},
          {"factors", spec.factors},
          {"provenance", build_provenance()},
          {"base", spec.base ? base_record(*spec.base) : nlohmann::json()},
          {"runs", runs}};
  if (!spec.until_ci.is_null()) manifest["until_ci"] = spec.until_ci;
  return manifest;
}

}  // namespace masklab
