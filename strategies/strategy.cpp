#include "strategies/strategy.hpp"

#include "strategies/labels.hpp"

#include <array>

#include <nlohmann/json.hpp>

namespace masklab {

at::Tensor Strategy::weights(const LabelView& labels) const {
  const RoleWeights rw = role_weights(labels.progress);
  const double system = rw.system.value_or(rw.prompt);

  // One lookup table for tokens of the final assistant turn, one for the rest.
  std::array<float, kNumRoles> last{}, earlier{};
  auto set = [&](Role role, double in_last, double in_earlier) {
    last[static_cast<int>(role)] = static_cast<float>(in_last);
    earlier[static_cast<int>(role)] = static_cast<float>(in_earlier);
  };
  set(Role::kSystem, system, system);
  set(Role::kUser, rw.prompt, rw.prompt);
  set(Role::kAssistant, rw.completion, rw.earlier_completion);
  switch (options_.template_as) {
    case StrategyOptions::TemplateAs::kPrompt: set(Role::kTemplate, rw.prompt, rw.prompt); break;
    case StrategyOptions::TemplateAs::kCompletion:
      set(Role::kTemplate, rw.completion, rw.earlier_completion);
      break;
    case StrategyOptions::TemplateAs::kZero: set(Role::kTemplate, 0, 0); break;
  }
  set(Role::kEos, rw.completion,
      options_.eos == StrategyOptions::EosPolicy::kAll ? rw.earlier_completion : rw.prompt);
  set(Role::kPad, 0, 0);

  const auto role = labels.role.to(torch::kLong).flatten();          // (B*T)
  const auto last_lut = torch::tensor(std::vector<float>(last.begin(), last.end()));
  const auto earlier_lut = torch::tensor(std::vector<float>(earlier.begin(), earlier.end()));
  const auto in_last = labels.flags.bitwise_and(kFlagLastTurn).ne(0).flatten();
  auto w = torch::where(in_last, last_lut.index_select(0, role), earlier_lut.index_select(0, role));
  const auto masked = labels.flags.bitwise_and(kFlagMessageMasked).ne(0).flatten();
  w = w.masked_fill(masked, 0.0);
  return w.view(labels.role.sizes());  // (B, T)
}

namespace {
nlohmann::json weights_json(const RoleWeights& rw) {
  return {{"prompt", rw.prompt},
          {"completion", rw.completion},
          {"earlier_completion", rw.earlier_completion},
          {"system", rw.system.value_or(rw.prompt)}};
}
}  // namespace

nlohmann::json role_weights_record(const Strategy& strategy) {
  const auto& options = strategy.options();
  return {{"start", weights_json(strategy.role_weights(0.0))},
          {"end", weights_json(strategy.role_weights(1.0))},
          {"schedule", std::string(strategy.schedule())},
          {"template", std::string(kTemplateAsNames[static_cast<size_t>(options.template_as)])},
          {"eos", std::string(kEosPolicyNames[static_cast<size_t>(options.eos)])}};
}

MakeStrategy constant_weights(std::function<RoleWeights(const StrategyArgs&)> weights) {
  return [weights = std::move(weights)](const StrategyArgs& a) -> std::unique_ptr<Strategy> {
    return std::make_unique<ConstantStrategy>(a.canonical_spec, a.options, weights(a));
  };
}

std::string StrategyEntry::usage() const {
  std::string out = name;
  std::string sep = ":";
  for (const auto& p : params) {
    const std::string shown =
        p.choices.empty() ? "<" + p.name + ">" : [&] {
          std::string alts;
          for (const auto& c : p.choices) alts += (alts.empty() ? "" : "|") + c;
          return alts;
        }();
    if (p.default_value && p.default_value->empty()) {
      out += "[" + sep + p.name + "=" + shown + "]";  // named optional: system=<system>
    } else if (p.default_value) {
      out += "[" + sep + shown + "]";
    } else {
      out += sep + shown;
    }
    sep = ",";
  }
  return out;
}

}  // namespace masklab
