#pragma once
// The strategy registry: an explicit list built once in one constructor
// behind a function-local static. Names are case-insensitive; a duplicate is
// a hard error; an unknown name's error lists the valid ones.
#include <memory>
#include <string_view>
#include <vector>

#include "strategies/strategy.hpp"

namespace masklab {

class StrategyRegistry {
 public:
  static const StrategyRegistry& instance();

  const std::vector<StrategyEntry>& entries() const { return entries_; }

  // Parses "name[:arg,...]" where each arg is positional or key=value.
  // Throws UserError naming the problem and listing the valid strategies.
  std::unique_ptr<Strategy> parse(std::string_view spec) const;

  // "full, completion_only, weighted:<lambda>, ...", for error messages.
  std::string valid_list() const;

  // Builds a registry from any list; used by instance() and by tests of the
  // duplicate check.
  explicit StrategyRegistry(std::vector<StrategyEntry> entries);

 private:
  const StrategyEntry* find(std::string_view lower_name) const;
  std::vector<StrategyEntry> entries_;
};

// Shorthand for StrategyRegistry::instance().parse(spec).
std::unique_ptr<Strategy> make_strategy(std::string_view spec);

}  // namespace masklab
