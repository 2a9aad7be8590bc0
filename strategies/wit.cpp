// wit:<lambda_p>,<lambda_r>: separate prompt and response weights (WIT,
// Chatterjee et al. 2025). wit:0,1 is completion_only, wit:1,1 is full.
#include "strategies/strategy.hpp"

namespace masklab {
namespace {
class Wit final : public Strategy {
 public:
  Wit(const StrategyArgs& a)
      : Strategy(a.canonical_spec, a.options),
        prompt_(a.number("lambda_p")),
        response_(a.number("lambda_r")) {}
  RoleWeights role_weights(double /*progress*/) const override {
    return {/*prompt=*/prompt_, /*completion=*/response_, /*earlier_completion=*/response_,
            /*system=*/std::nullopt};
  }

 private:
  double prompt_;
  double response_;
};
}  // namespace

StrategyEntry wit_entry() {
  return {"wit",
          {},
          {{"lambda_p", "weight of prompt tokens", std::nullopt, {}},
           {"lambda_r", "weight of response tokens", std::nullopt, {}}},
          "prompt tokens weigh lambda_p, response tokens lambda_r (WIT)",
          [](const StrategyArgs& a) { return std::make_unique<Wit>(a); }};
}

}  // namespace masklab
