// last_turn_only: loss on the final assistant turn only; earlier assistant
// turns are context (LLaMA-Factory's mask_history). Equals completion_only on
// single-turn data.
#include "strategies/strategy.hpp"

namespace masklab {

StrategyEntry last_turn_only_entry() {
  return {"last_turn_only", {}, {},
          "loss on the final assistant turn and its end marker only; earlier turns weigh 0",
          constant_weights([](const StrategyArgs&) {
            return RoleWeights{/*prompt=*/0, /*completion=*/1, /*earlier_completion=*/0, /*system=*/std::nullopt};
          })};
}

}  // namespace masklab
