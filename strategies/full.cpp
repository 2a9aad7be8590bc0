// full: plain language-modelling loss, every token weighs 1.
#include "strategies/strategy.hpp"

namespace masklab {

StrategyEntry full_entry() {
  return {"full", {}, {},
          "every token carries loss: prompt, template and completion (plain LM loss)",
          constant_weights([](const StrategyArgs&) {
            return RoleWeights{/*prompt=*/1, /*completion=*/1, /*earlier_completion=*/1, /*system=*/std::nullopt};
          })};
}

}  // namespace masklab
