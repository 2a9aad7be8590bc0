// completion_only: loss on assistant tokens and their end markers only (TRL's
// DataCollatorForCompletionOnlyLM / assistant_only_loss). In multi-turn data
// every assistant turn is trained.
#include "strategies/strategy.hpp"

namespace masklab {
namespace {
class CompletionOnly final : public Strategy {
 public:
  using Strategy::Strategy;
  RoleWeights role_weights(double /*progress*/) const override {
    return {/*prompt=*/0, /*completion=*/1, /*earlier_completion=*/1, /*system=*/std::nullopt};
  }
};
}  // namespace

StrategyEntry completion_only_entry() {
  return {"completion_only", {"assistant_only"}, {},
          "loss on every assistant turn and its end marker; prompt, system and template weigh 0",
          [](const StrategyArgs& a) {
            return std::make_unique<CompletionOnly>(a.canonical_spec, a.options);
          }};
}

}  // namespace masklab
