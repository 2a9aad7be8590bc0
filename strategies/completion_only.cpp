// completion_only: loss on assistant tokens and their end markers only (TRL's
// DataCollatorForCompletionOnlyLM / assistant_only_loss). In multi-turn data
// every assistant turn is trained.
#include "strategies/strategy.hpp"

namespace masklab {

StrategyEntry completion_only_entry() {
  return {"completion_only", {"assistant_only"}, {},
          "loss on every assistant turn and its end marker; prompt, system and template weigh 0",
          constant_weights([](const StrategyArgs&) {
            return RoleWeights{/*prompt=*/0, /*completion=*/1, /*earlier_completion=*/1, /*system=*/std::nullopt};
          })};
}

}  // namespace masklab
