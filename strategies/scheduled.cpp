// scheduled:<start>,<end>[,linear|cosine]: the prompt weight moves from start
// to end as training progresses (progress = step / total steps); completion
// tokens weigh 1 throughout.
#include <cmath>

#include "strategies/strategy.hpp"

namespace masklab {
namespace {
class Scheduled final : public Strategy {
 public:
  Scheduled(const StrategyArgs& a)
      : Strategy(a.canonical_spec, a.options),
        start_(a.number("start")),
        end_(a.number("end")),
        cosine_(a.choice("shape") == "cosine") {}
  RoleWeights role_weights(double progress) const override {
    const double p = std::clamp(progress, 0.0, 1.0);
    const double f = cosine_ ? 0.5 * (1.0 - std::cos(M_PI * p)) : p;
    return {/*prompt=*/start_ + (end_ - start_) * f, /*completion=*/1, /*earlier_completion=*/1,
            /*system=*/std::nullopt};
  }
  std::string_view schedule() const override { return cosine_ ? "cosine" : "linear"; }

 private:
  double start_;
  double end_;
  bool cosine_;
};
}  // namespace

StrategyEntry scheduled_entry() {
  return {"scheduled",
          {},
          {{"start", "prompt weight at the first step", std::nullopt, {}},
           {"end", "prompt weight at the last step", std::nullopt, {}},
           {"shape", "how the weight moves between them", "linear", {"linear", "cosine"}}},
          "prompt weight follows training progress from start to end; completion weighs 1",
          [](const StrategyArgs& a) { return std::make_unique<Scheduled>(a); }};
}

}  // namespace masklab
