// last_turn_only: loss on the final assistant turn only; earlier assistant
// turns are context (LLaMA-Factory's mask_history). Equals completion_only on
// single-turn data.
#include "strategies/strategy.hpp"

namespace masklab {
namespace {
class LastTurnOnly final : public Strategy {
 public:
  using Strategy::Strategy;
  RoleWeights role_weights(double /*progress*/) const override {
    return {/*prompt=*/0, /*completion=*/1, /*earlier_completion=*/0, /*system=*/std::nullopt};
  }
};
}  // namespace

StrategyEntry last_turn_only_entry() {
  return {"last_turn_only", {}, {},
          "loss on the final assistant turn and its end marker only; earlier turns weigh 0",
          [](const StrategyArgs& a) {
            return std::make_unique<LastTurnOnly>(a.canonical_spec, a.options);
          }};
}

}  // namespace masklab
