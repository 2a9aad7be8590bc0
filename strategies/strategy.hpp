#pragma once
// A loss-masking strategy turns label roles into per-token weights. That is
// all it does (docs/design.md, invariant 1): the loss, the normalization and the optimizer
// never depend on which strategy produced the weights.
#include <array>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "harness/core/roles.hpp"

namespace at {
class Tensor;
}

namespace masklab {

struct LabelView;  // strategies/labels.hpp

// The weight of each kind of token at one moment of training. Template
// tokens, end markers and system text take their weight from the common
// options (StrategyOptions) unless the strategy sets them itself.
struct RoleWeights {
  double prompt = 0;              // user text
  double completion = 1;          // assistant text of the final turn, and its end marker
  double earlier_completion = 1;  // assistant turns before the final one (multi-turn data)
  std::optional<double> system;   // system text; unset means "as prompt"
};

// Options every strategy accepts as key=value arguments.
struct StrategyOptions {
  enum class TemplateAs { kPrompt, kCompletion, kZero };
  enum class EosPolicy { kAll, kLast };
  TemplateAs template_as = TemplateAs::kPrompt;  // template=prompt|completion|zero
  EosPolicy eos = EosPolicy::kAll;  // eos=all: every assistant turn's end marker is completion;
                                    // eos=last: only the final turn's, earlier ones are prompt
};

// How specs and run records spell the option values, in enum order; the first
// is the default, which canonical specs leave out. The parser and
// role_weights_record both read these, so a spec and its record agree.
inline constexpr std::array<std::string_view, 3> kTemplateAsNames = {"prompt", "completion", "zero"};
inline constexpr std::array<std::string_view, 2> kEosPolicyNames = {"all", "last"};

class Strategy {
 public:
  Strategy(std::string canonical_spec, StrategyOptions options)
      : spec_(std::move(canonical_spec)), options_(options) {}
  virtual ~Strategy() = default;

  // (B, T) float32 weights for a micro-batch of labels; 0 where the token
  // teaches nothing. Pads and tokens of messages marked "weight": 0 are always 0.
  at::Tensor weights(const LabelView& labels) const;

  // The spec with the name lower-cased and numbers normalized: what run
  // records, reports and run ids use.
  const std::string& spec() const { return spec_; }
  const StrategyOptions& options() const { return options_; }

  virtual RoleWeights role_weights(double progress) const = 0;
  // How the weights move with training progress: "constant", or the shape
  // of a schedule ("linear", "cosine"). Recorded with every run.
  virtual std::string_view schedule() const { return "constant"; }

 private:
  std::string spec_;
  StrategyOptions options_;
};

// A strategy whose weights stay the same for the whole run: the weights are
// all there is to it, so its file holds data, not a class.
class ConstantStrategy final : public Strategy {
 public:
  ConstantStrategy(std::string canonical_spec, StrategyOptions options, RoleWeights weights)
      : Strategy(std::move(canonical_spec), options), weights_(weights) {}
  RoleWeights role_weights(double /*progress*/) const override { return weights_; }

 private:
  RoleWeights weights_;
};

// What a run records of its strategy, so that reports read numbers instead
// of parsing specs: {"start": weights at the first step, "end": at the last,
// "schedule", "template", "eos"}, each weights object holding "prompt",
// "completion", "earlier_completion" and "system" (resolved: the prompt
// weight when the strategy leaves it unset).
nlohmann::json role_weights_record(const Strategy& strategy);

// Parsed arguments of one spec: parameter name -> value, every declared
// parameter present (defaults filled in).
struct StrategyArgs {
  std::map<std::string, double> numbers;
  std::map<std::string, std::string> choices;
  StrategyOptions options;
  std::string canonical_spec;

  double number(const std::string& name) const { return numbers.at(name); }
  std::optional<double> maybe_number(const std::string& name) const {
    auto it = numbers.find(name);
    return it == numbers.end() ? std::nullopt : std::optional<double>(it->second);
  }
  const std::string& choice(const std::string& name) const { return choices.at(name); }
};

// One declared parameter of a strategy.
struct ParamSpec {
  std::string name;
  std::string help;
  // nullopt: required; "": optional and absent from StrategyArgs when not given.
  std::optional<std::string> default_value;
  std::vector<std::string> choices;          // empty: a non-negative number
};

using MakeStrategy = std::function<std::unique_ptr<Strategy>(const StrategyArgs&)>;

struct StrategyEntry {
  std::string name;
  std::vector<std::string> aliases;
  std::vector<ParamSpec> params;
  std::string description;
  MakeStrategy make;

  // "weighted:<lambda>[,system=<lambda_system>]", as the help and errors show it.
  std::string usage() const;
};

// `make` of a ConstantStrategy whose weights follow from the spec's arguments.
MakeStrategy constant_weights(std::function<RoleWeights(const StrategyArgs&)> weights);

}  // namespace masklab
