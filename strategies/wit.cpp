// wit:<lambda_p>,<lambda_r>: separate prompt and response weights (WIT,
// Chatterjee et al. 2025). wit:0,1 is completion_only, wit:1,1 is full.
#include "strategies/strategy.hpp"

namespace masklab {

StrategyEntry wit_entry() {
  return {"wit",
          {},
          {{"lambda_p", "weight of prompt tokens", std::nullopt, {}},
           {"lambda_r", "weight of response tokens", std::nullopt, {}}},
          "prompt tokens weigh lambda_p, response tokens lambda_r (WIT)",
          constant_weights([](const StrategyArgs& a) {
            const double response = a.number("lambda_r");
            return RoleWeights{/*prompt=*/a.number("lambda_p"), /*completion=*/response,
                               /*earlier_completion=*/response, /*system=*/std::nullopt};
          })};
}

}  // namespace masklab
