// eval.sets: the list of evaluation sets in a config (config.hpp
// EvalSetConfig). Every error names where the set was written and which key
// of which set ("exp.yaml:14: eval.sets[2].kind: ..."), so a bad set fails
// before any data is loaded or any file written.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "harness/core/config.hpp"
#include "harness/core/errors.hpp"
#include "harness/core/yaml_file.hpp"

namespace masklab {
namespace {

const std::vector<std::string> kCommonKeys = {"name", "kind", "task", "file", "template", "max_examples", "wordings"};
const std::vector<std::string> kGenerateKeys = {"max_new_tokens", "temperature", "top_p", "seed", "stop"};

bool contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// Reads one set's keys; `fail` throws with the set's key named.
class SetReader {
 public:
  SetReader(const YAML::Node& node, std::string source, size_t index)
      : node_(node), source_(std::move(source)), index_(index) {}

  [[noreturn]] void fail(const std::string& key, const std::string& why, const YAML::Node& at) const {
    const std::string where = yaml_location(source_, at.IsDefined() ? at : node_);
    throw UserError(fmt::format("{}: eval.sets[{}]{}{}: {}", where, index_, key.empty() ? "" : ".", key, why));
  }
  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    fail(key, why, node_.IsMap() ? node_[key] : node_);
  }

  std::string text(const std::string& key, const std::string& fallback = "") const {
    const YAML::Node v = node_[key];
    if (!v.IsDefined() || v.IsNull()) return fallback;
    if (!v.IsScalar()) fail(key, "expects a string");
    return v.Scalar();
  }
  template <class T>
  T number(const std::string& key, T fallback) const {
    const YAML::Node v = node_[key];
    if (!v.IsDefined()) return fallback;
    T out{};
    if (!v.IsScalar() || !YAML::convert<T>::decode(v, out) || !std::isfinite(static_cast<double>(out))) {
      fail(key, fmt::format("expects {}, got '{}'", std::is_integral<T>::value ? "an integer" : "a finite number",
                            v.IsScalar() ? v.Scalar() : "a list or mapping"));
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& key, std::vector<std::string> fallback) const {
    const YAML::Node v = node_[key];
    if (!v.IsDefined()) return fallback;
    if (!v.IsSequence()) fail(key, "expects a list of strings");
    std::vector<std::string> out;
    for (const auto& item : v) {
      if (!item.IsScalar()) fail(key, "expects a list of strings", item);
      out.push_back(item.Scalar());
    }
    return out;
  }
  const YAML::Node& node() const { return node_; }

 private:
  YAML::Node node_;
  std::string source_;
  size_t index_;
};

bool valid_name(const std::string& name) {
  if (name.empty() || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

void check_keys(const SetReader& r, EvalSetKind kind) {
  for (const auto& kv : r.node()) {
    const std::string key = kv.first.as<std::string>();
    if (contains(kCommonKeys, key)) continue;
    if (contains(kGenerateKeys, key)) {
      if (kind == EvalSetKind::kGenerate) continue;
      r.fail(key, fmt::format("applies to generate sets only, not to a {} set", name_of(kind)), kv.first);
    }
    r.fail(key, "unknown key (valid: name, kind, task, file, template, max_examples, wordings; generate sets also "
                "max_new_tokens, temperature, top_p, seed, stop)",
           kv.first);
  }
}

void read_generate_options(const SetReader& r, EvalSetConfig& set) {
  set.max_new_tokens = r.number<int>("max_new_tokens", set.max_new_tokens);
  set.temperature = r.number<double>("temperature", set.temperature);
  set.top_p = r.number<double>("top_p", set.top_p);
  set.seed = r.number<int>("seed", set.seed);
  set.stop = r.strings("stop", set.stop);
  if (set.max_new_tokens < 1) r.fail("max_new_tokens", fmt::format("must be positive, got {}", set.max_new_tokens));
  if (set.temperature < 0) r.fail("temperature", fmt::format("must be >= 0, got {}", set.temperature));
  if (!(set.top_p > 0 && set.top_p <= 1)) r.fail("top_p", fmt::format("must be in (0, 1], got {}", set.top_p));
  for (const auto& s : set.stop) {
    if (s.empty()) r.fail("stop", "a stop string may not be empty");
  }
}

EvalSetConfig read_set(const SetReader& r) {
  if (!r.node().IsMap()) r.fail("", "expects a mapping with name, kind and task or file");
  EvalSetConfig set;
  set.name = r.text("name");
  if (!valid_name(set.name)) r.fail("name", fmt::format("'{}' must match [a-z][a-z0-9_]*", set.name));
  if (contains(held_out_metric_names(), set.name)) {
    r.fail("name", fmt::format("'{}' is a metric of the default held-out set (eval.{})", set.name, set.name));
  }
  const std::string kind = r.text("kind");
  const auto parsed = enum_from_name<EvalSetKind>(kind);
  if (!parsed) r.fail("kind", fmt::format("unknown kind '{}' (valid: {})", kind, enum_choices<EvalSetKind>()));
  set.kind = *parsed;
  check_keys(r, set.kind);
  set.task = r.text("task");
  set.file = r.text("file");
  if (set.task.empty() == set.file.empty()) r.fail(set.task.empty() ? "task" : "file", "give exactly one of task and file");
  set.template_name = r.text("template");
  set.max_examples = r.number<int>("max_examples", 0);
  if (set.max_examples < 0) r.fail("max_examples", fmt::format("must be >= 0, got {}", set.max_examples));
  set.wordings = r.strings("wordings", set.wordings);
  if (set.wordings.empty()) r.fail("wordings", "needs at least one wording (\"{prompt}\" is the original)");
  for (const auto& w : set.wordings) {
    if (w.find("{prompt}") == std::string::npos) r.fail("wordings", fmt::format("'{}' does not hold {{prompt}}", w));
  }
  if (set.kind == EvalSetKind::kGenerate) read_generate_options(r, set);
  return set;
}

}  // namespace

const std::vector<std::string>& held_out_metric_names() {
  // EvalMetrics::to_json (harness/train/evaluator.cpp) writes these under "eval".
  static const std::vector<std::string> kNames = {"completion_nll", "completion_ppl", "completion_token_accuracy",
                                                  "exact_match",    "prompt_nll",     "completion_tokens",
                                                  "prompt_tokens",  "examples"};
  return kNames;
}

std::vector<EvalSetConfig> parse_eval_sets(const YAML::Node& node, const std::string& source) {
  if (node.IsNull()) return {};
  if (!node.IsSequence()) {
    throw UserError(yaml_location(source, node) + ": eval.sets: expects a list of sets ({name, kind, task | file})");
  }
  std::vector<EvalSetConfig> sets;
  for (size_t i = 0; i < node.size(); ++i) {
    const SetReader reader(node[i], source, i);
    EvalSetConfig set = read_set(reader);
    for (const auto& earlier : sets) {
      if (earlier.name == set.name) reader.fail("name", fmt::format("duplicate set name '{}'", set.name));
    }
    set.origin = yaml_location(source, node[i]);
    sets.push_back(std::move(set));
  }
  return sets;
}

YAML::Node eval_sets_node(const std::vector<EvalSetConfig>& sets) {
  auto list = [](const std::vector<std::string>& v) {
    YAML::Node n(YAML::NodeType::Sequence);
    for (const auto& s : v) n.push_back(s);
    n.SetStyle(YAML::EmitterStyle::Flow);
    return n;
  };
  YAML::Node out(YAML::NodeType::Sequence);
  for (const auto& s : sets) {
    YAML::Node n(YAML::NodeType::Map);
    n["name"] = s.name;
    n["kind"] = std::string(name_of(s.kind));
    n[s.task.empty() ? "file" : "task"] = s.task.empty() ? s.file : s.task;
    n["template"] = s.template_name;
    n["max_examples"] = s.max_examples;
    n["wordings"] = list(s.wordings);
    if (s.kind == EvalSetKind::kGenerate) {
      n["max_new_tokens"] = s.max_new_tokens;
      n["temperature"] = fmt::format("{}", s.temperature);
      n["top_p"] = fmt::format("{}", s.top_p);
      n["seed"] = s.seed;
      n["stop"] = list(s.stop);
    }
    out.push_back(n);
  }
  return out;
}

}  // namespace masklab
