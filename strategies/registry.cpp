#include "strategies/registry.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/text.hpp"

namespace masklab {
namespace {

// A weight: a finite, non-negative number written in full ("0.1", "1e-2").
std::optional<double> parse_weight(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  return v == 0 ? 0.0 : v;  // no "-0" in canonical specs
}

// "prompt|completion|zero" for usage, "prompt, completion or zero" for errors.
template <size_t N>
std::string joined(const std::array<std::string_view, N>& names, std::string_view sep, std::string_view last_sep) {
  std::string out;
  for (size_t i = 0; i < N; ++i) out += std::string(i == 0 ? "" : i + 1 == N ? last_sep : sep) + std::string(names[i]);
  return out;
}

// The spec under parse, for error messages that name it.
struct SpecText {
  std::string text;
  std::string valid;  // StrategyRegistry::valid_list()

  UserError fail(const std::string& problem) const {
    return UserError("bad strategy '" + text + "': " + problem + " (valid strategies: " + valid +
                     "; options for all: template=" + joined(kTemplateAsNames, "|", "|") +
                     ", eos=" + joined(kEosPolicyNames, "|", "|") + ")");
  }
};

// key=value of a common option (template, eos) into `field`, by its name table;
// a non-default value also goes into the canonical spec.
template <typename Enum, size_t N>
void read_option(const SpecText& spec, const std::string& key, const std::string& value,
                 const std::array<std::string_view, N>& names, Enum& field, std::vector<std::string>& option_parts) {
  const auto it = std::find(names.begin(), names.end(), value);
  if (it == names.end()) throw spec.fail(key + " must be " + joined(names, ", ", " or ") + ", got '" + value + "'");
  field = static_cast<Enum>(it - names.begin());
  if (it != names.begin()) option_parts.push_back(key + "=" + value);
}

// The arguments after the colon: common options go into `options`, the
// rest are returned as parameter name -> text. Positional arguments fill the
// entry's parameters in order.
std::map<std::string, std::string> read_arguments(const SpecText& spec, const StrategyEntry& entry,
                                                  const std::string& text, StrategyOptions& options,
                                                  std::vector<std::string>& option_parts) {
  std::map<std::string, std::string> given;
  size_t positional = 0;
  for (const auto& part : split(text, ',')) {
    if (part.empty()) throw spec.fail("empty argument");
    const size_t eq = part.find('=');
    std::string key, value;
    if (eq == std::string::npos) {
      if (positional >= entry.params.size()) {
        throw spec.fail(fmt::format("{} takes at most {} argument(s)", entry.name, entry.params.size()));
      }
      const ParamSpec& p = entry.params[positional++];
      // The usage shows a named-only optional as key=value; taking it by
      // position would let a slip such as weighted:0.1,0.2 run as another job.
      if (p.default_value && p.default_value->empty()) {
        throw spec.fail(fmt::format("'{}' is a positional value for {}, which must be named: write {}={}", part,
                                    p.name, p.name, part));
      }
      key = p.name;
      value = part;
    } else {
      key = to_lower(trim(part.substr(0, eq)));
      value = to_lower(trim(part.substr(eq + 1)));
    }
    if (key == "template") {
      read_option(spec, key, value, kTemplateAsNames, options.template_as, option_parts);
    } else if (key == "eos") {
      read_option(spec, key, value, kEosPolicyNames, options.eos, option_parts);
    } else if (std::none_of(entry.params.begin(), entry.params.end(), [&](const ParamSpec& p) { return p.name == key; })) {
      throw spec.fail("unknown parameter '" + key + "' for " + entry.name);
    } else if (!given.emplace(key, value).second) {
      throw spec.fail("parameter '" + key + "' given twice");
    }
  }
  return given;
}

// One parameter's value, checked and stored in `args`; returns its part of
// the canonical spec, or nullopt for an optional parameter not given.
std::optional<std::string> read_param(const SpecText& spec, const StrategyEntry& entry, const ParamSpec& p,
                                      const std::map<std::string, std::string>& given, StrategyArgs& args) {
  const auto it = given.find(p.name);
  if (it == given.end() && !p.default_value) throw spec.fail(fmt::format("{} needs {}", entry.name, entry.usage()));
  if (it == given.end() && p.default_value->empty()) return std::nullopt;
  std::string text = it != given.end() ? it->second : *p.default_value;
  std::string shown;
  if (p.choices.empty()) {
    const auto v = parse_weight(text);
    if (!v) throw spec.fail(p.name + " must be a non-negative number, got '" + text + "'");
    args.numbers[p.name] = *v;
    shown = fmt::format("{}", *v);
  } else {
    text = to_lower(text);
    if (std::find(p.choices.begin(), p.choices.end(), text) == p.choices.end()) {
      throw spec.fail(p.name + " must be one of " + entry.usage() + ", got '" + text + "'");
    }
    args.choices[p.name] = text;
    shown = text;
  }
  // Named optionals (system=...) keep their key so the spec reads back the same.
  const bool named = p.default_value && p.default_value->empty();
  return named ? p.name + "=" + shown : shown;
}

}  // namespace

StrategyRegistry::StrategyRegistry(std::vector<StrategyEntry> entries) : entries_(std::move(entries)) {
  std::set<std::string> seen;
  for (const auto& e : entries_) {
    std::vector<std::string> names = e.aliases;
    names.push_back(e.name);
    for (const auto& n : names) {
      if (!seen.insert(to_lower(n)).second) {
        throw std::logic_error("strategy registry: duplicate name '" + n + "'");
      }
    }
  }
}

// Each strategy file defines one entry; this list, and nothing else, makes
// them the registry (self-registering statics would be dropped by the linker
// from a static library).
StrategyEntry full_entry();
StrategyEntry completion_only_entry();
StrategyEntry last_turn_only_entry();
StrategyEntry weighted_entry();
StrategyEntry wit_entry();
StrategyEntry scheduled_entry();

const StrategyRegistry& StrategyRegistry::instance() {
  // The one list of strategies. Add a new strategy's entry here.
  static const StrategyRegistry registry({
      full_entry(),
      completion_only_entry(),
      last_turn_only_entry(),
      weighted_entry(),
      wit_entry(),
      scheduled_entry(),
  });
  return registry;
}

const StrategyEntry* StrategyRegistry::find(std::string_view lower_name) const {
  for (const auto& e : entries_) {
    if (to_lower(e.name) == lower_name) return &e;
    for (const auto& a : e.aliases) {
      if (to_lower(a) == lower_name) return &e;
    }
  }
  return nullptr;
}

std::string StrategyRegistry::valid_list() const {
  std::string out;
  for (const auto& e : entries_) out += (out.empty() ? "" : ", ") + e.usage();
  return out;
}

std::unique_ptr<Strategy> StrategyRegistry::parse(std::string_view spec_text) const {
  const SpecText spec{trim(spec_text), valid_list()};
  if (spec.text.empty()) throw spec.fail("empty spec");
  const size_t colon = spec.text.find(':');
  const std::string name = to_lower(trim(spec.text.substr(0, colon)));
  const StrategyEntry* entry = find(name);
  if (!entry) {
    // completion_only,eos=last: a known name, then options without the colon.
    const size_t comma = name.find(',');
    if (comma != std::string::npos && find(trim(name.substr(0, comma)))) {
      throw spec.fail("unknown strategy '" + name + "'; arguments follow a colon: write " +
                      trim(name.substr(0, comma)) + ":" + trim(name.substr(comma + 1)));
    }
    throw spec.fail("unknown strategy '" + name + "'");
  }

  StrategyArgs args;
  std::vector<std::string> option_parts;  // non-default options, canonical, in the order given
  const auto given = colon == std::string::npos
                         ? std::map<std::string, std::string>{}
                         : read_arguments(spec, *entry, spec.text.substr(colon + 1), args.options, option_parts);
  std::vector<std::string> parts;
  for (const auto& p : entry->params) {
    if (auto part = read_param(spec, *entry, p, given, args)) parts.push_back(std::move(*part));
  }
  parts.insert(parts.end(), option_parts.begin(), option_parts.end());
  args.canonical_spec = entry->name;
  for (size_t i = 0; i < parts.size(); ++i) args.canonical_spec += (i == 0 ? ":" : ",") + parts[i];
  return entry->make(args);
}

std::unique_ptr<Strategy> make_strategy(std::string_view spec) {
  return StrategyRegistry::instance().parse(spec);
}

}  // namespace masklab
