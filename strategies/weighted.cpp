// weighted:<lambda>: the prompt-loss weight (PLW) of Huerta-Enochian & Ko
// (2024) and OpenAI's former prompt_loss_weight: prompt tokens weigh lambda,
// completion tokens 1. An optional second lambda weighs system prompts apart.
#include "strategies/strategy.hpp"

namespace masklab {

StrategyEntry weighted_entry() {
  return {"weighted",
          {"plw"},
          {{"lambda", "weight of prompt tokens (completion weighs 1)", std::nullopt, {}},
           {"system", "weight of system tokens (default: lambda)", "", {}}},
          "prompt tokens weigh lambda, completion tokens 1 (prompt-loss weight, PLW)",
          constant_weights([](const StrategyArgs& a) {
            return RoleWeights{/*prompt=*/a.number("lambda"), /*completion=*/1, /*earlier_completion=*/1,
                               /*system=*/a.maybe_number("system")};
          })};
}

}  // namespace masklab
