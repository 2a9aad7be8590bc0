#include "strategies/registry.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "harness/core/errors.hpp"

namespace masklab {
namespace {

std::string lower(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return parts;
}

// A weight: a finite, non-negative number written in full ("0.1", "1e-2").
std::optional<double> parse_weight(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  return v == 0 ? 0.0 : v;  // no "-0" in canonical specs
}

}  // namespace

StrategyRegistry::StrategyRegistry(std::vector<StrategyEntry> entries) : entries_(std::move(entries)) {
  std::set<std::string> seen;
  for (const auto& e : entries_) {
    std::vector<std::string> names = e.aliases;
    names.push_back(e.name);
    for (const auto& n : names) {
      if (!seen.insert(lower(n)).second) {
        throw std::logic_error("strategy registry: duplicate name '" + n + "'");
      }
    }
  }
}

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
    if (lower(e.name) == lower_name) return &e;
    for (const auto& a : e.aliases) {
      if (lower(a) == lower_name) return &e;
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
  const std::string spec = trim(spec_text);
  auto fail = [&](const std::string& problem) {
    return UserError("bad strategy '" + spec + "': " + problem + " (valid strategies: " +
                     valid_list() + "; options for all: template=prompt|completion|zero, "
                     "eos=all|last)");
  };
  if (spec.empty()) throw fail("empty spec");

  const size_t colon = spec.find(':');
  const std::string name = lower(trim(spec.substr(0, colon)));
  const StrategyEntry* entry = find(name);
  if (!entry) throw fail("unknown strategy '" + name + "'");

  StrategyArgs args;
  std::map<std::string, std::string> given;  // parameter -> text
  std::vector<std::string> option_parts;
  if (colon != std::string::npos) {
    size_t positional = 0;
    for (const auto& part : split(spec.substr(colon + 1), ',')) {
      if (part.empty()) throw fail("empty argument");
      const size_t eq = part.find('=');
      std::string key, value;
      if (eq == std::string::npos) {
        if (positional >= entry->params.size()) {
          throw fail(fmt::format("{} takes at most {} argument(s)", entry->name, entry->params.size()));
        }
        key = entry->params[positional++].name;
        value = part;
      } else {
        key = lower(trim(part.substr(0, eq)));
        value = lower(trim(part.substr(eq + 1)));
      }
      if (key == "template") {
        if (value == "prompt") args.options.template_as = StrategyOptions::TemplateAs::kPrompt;
        else if (value == "completion") args.options.template_as = StrategyOptions::TemplateAs::kCompletion;
        else if (value == "zero") args.options.template_as = StrategyOptions::TemplateAs::kZero;
        else throw fail("template must be prompt, completion or zero, got '" + value + "'");
        if (value != "prompt") option_parts.push_back("template=" + value);
        continue;
      }
      if (key == "eos") {
        if (value == "all") args.options.eos = StrategyOptions::EosPolicy::kAll;
        else if (value == "last") args.options.eos = StrategyOptions::EosPolicy::kLast;
        else throw fail("eos must be all or last, got '" + value + "'");
        if (value != "all") option_parts.push_back("eos=" + value);
        continue;
      }
      bool known = false;
      for (const auto& p : entry->params) known = known || p.name == key;
      if (!known) throw fail("unknown parameter '" + key + "' for " + entry->name);
      if (!given.emplace(key, value).second) throw fail("parameter '" + key + "' given twice");
    }
  }

  std::string canonical = entry->name;
  std::string sep = ":";
  for (const auto& p : entry->params) {
    auto it = given.find(p.name);
    std::string text;
    if (it != given.end()) {
      text = it->second;
    } else if (!p.default_value) {
      throw fail(fmt::format("{} needs {}", entry->name, entry->usage()));
    } else if (p.default_value->empty()) {
      continue;  // optional and absent
    } else {
      text = *p.default_value;
    }
    std::string shown;
    if (p.choices.empty()) {
      const auto v = parse_weight(text);
      if (!v) throw fail(p.name + " must be a non-negative number, got '" + text + "'");
      args.numbers[p.name] = *v;
      shown = fmt::format("{}", *v);
    } else {
      text = lower(text);
      bool ok = false;
      for (const auto& c : p.choices) ok = ok || c == text;
      if (!ok) throw fail(p.name + " must be one of " + entry->usage() + ", got '" + text + "'");
      args.choices[p.name] = text;
      shown = text;
    }
    // Named optionals (system=...) keep their key so the spec reads back the same.
    const bool positional_ok = p.default_value != std::string("");
    canonical += sep + (positional_ok ? shown : p.name + "=" + shown);
    sep = ",";
  }
  for (const auto& o : option_parts) {
    canonical += sep + o;
    sep = ",";
  }
  args.canonical_spec = canonical;
  return entry->make(args);
}

std::unique_ptr<Strategy> make_strategy(std::string_view spec) {
  return StrategyRegistry::instance().parse(spec);
}

}  // namespace masklab
