// weighted:<lambda>: the prompt-loss weight (PLW) of Huerta-Enochian & Ko
// (2024) and OpenAI's former prompt_loss_weight: prompt tokens weigh lambda,
// completion tokens 1. An optional second lambda weighs system prompts apart.
#include "strategies/strategy.hpp"

namespace masklab {
namespace {
class Weighted final : public Strategy {
 public:
  Weighted(const StrategyArgs& a)
      : Strategy(a.canonical_spec, a.options),
        lambda_(a.number("lambda")),
        lambda_system_(a.maybe_number("system")) {}
  RoleWeights role_weights(double /*progress*/) const override {
    return {/*prompt=*/lambda_, /*completion=*/1, /*earlier_completion=*/1, /*system=*/lambda_system_};
  }

 private:
  double lambda_;
  std::optional<double> lambda_system_;
};
}  // namespace

StrategyEntry weighted_entry() {
  return {"weighted",
          {"plw"},
          {{"lambda", "weight of prompt tokens (completion weighs 1)", std::nullopt, {}},
           {"system", "weight of system tokens (default: lambda)", "", {}}},
          "prompt tokens weigh lambda, completion tokens 1 (prompt-loss weight, PLW)",
          [](const StrategyArgs& a) { return std::make_unique<Weighted>(a); }};
}

}  // namespace masklab
