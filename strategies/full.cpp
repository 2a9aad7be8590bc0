// full: plain language-modelling loss, every token weighs 1.
#include "strategies/strategy.hpp"

namespace masklab {
namespace {
class Full final : public Strategy {
 public:
  using Strategy::Strategy;
  RoleWeights role_weights(double /*progress*/) const override {
    return {/*prompt=*/1, /*completion=*/1, /*earlier_completion=*/1, /*system=*/std::nullopt};
  }
};
}  // namespace

StrategyEntry full_entry() {
  return {"full", {}, {},
          "every token carries loss: prompt, template and completion (plain LM loss)",
          [](const StrategyArgs& a) { return std::make_unique<Full>(a.canonical_spec, a.options); }};
}

}  // namespace masklab
