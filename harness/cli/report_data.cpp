#include "harness/cli/report_data.hpp"

#include <filesystem>
#include <set>

#include "harness/train/batching.hpp"
#include "harness/data/data_cache.hpp"
#include "strategies/labels.hpp"
#include "strategies/registry.hpp"

namespace masklab {

reports::WeightedExample weigh_example(const TokenizedExample& ex, const Tokenizer& tokenizer, const std::string& task,
                                       const std::vector<std::string>& strategy_specs, double progress) {
  reports::WeightedExample view;
  view.task = task;
  for (size_t i = 0; i < ex.ids.size(); ++i) {
    view.tokens.push_back(escape_token_text(tokenizer.token_text(ex.ids[i])));
    view.roles.push_back(role_name(static_cast<Role>(ex.roles[i])));
  }
  const Batch batch = make_padded_batch({&ex}, tokenizer.pad_id());
  for (const auto& spec : strategy_specs) {
    const auto strategy = make_strategy(spec);
    const auto w = strategy->weights(LabelView{batch.label_role, batch.label_flags, progress})[0].contiguous();
    std::vector<double> per_token(ex.ids.size(), 0.0);
    for (int64_t t = 0; t + 1 < static_cast<int64_t>(ex.ids.size()); ++t) per_token[t + 1] = w[t].item<double>();
    view.weights.emplace_back(strategy->spec(), per_token);
  }
  return view;
}

std::vector<std::string> add_data_views(reports::ReportInputs& inputs, const std::string& sweep_dir) {
  std::vector<std::string> notes;
  // One representative run per condition: the factors other than strategy and seed.
  std::set<std::string> seen_conditions, strategies;
  for (const auto& run : inputs.runs) {
    auto it = run.factors.find("strategy");
    if (it != run.factors.end()) strategies.insert(it->second);
  }
  for (const auto& run : inputs.runs) {
    std::string condition;
    for (const auto& [name, value] : run.factors) {
      if (name != "strategy" && name != "seed") condition += (condition.empty() ? "" : " ") + name + "=" + value;
    }
    if (!seen_conditions.insert(condition).second) continue;
    const std::string config_path = sweep_dir + "/runs/" + run.id + "/config.yaml";
    if (!std::filesystem::exists(config_path)) continue;  // never started: nothing to read
    Dataset ds;
    try {
      Config config;
      load_config_file(config, config_path);
      ds = load_dataset(config, sweep_dir + "/cache");
    } catch (const std::exception& e) {
      // The views are extras: every number of the report comes from the run records.
      notes.push_back("task length profiles and the weighted example left out: cannot read the data of " +
                      config_path + ": " + e.what());
      return notes;
    }

    std::vector<reports::TaskProfile> profiles(ds.tasks.size());
    for (size_t t = 0; t < ds.tasks.size(); ++t) {
      profiles[t].task = ds.tasks[t];
      profiles[t].condition = condition;
    }
    for (const auto& ex : ds.train) {
      auto& p = profiles[ex.task];
      ++p.examples;
      p.prompt_tokens_mean += ex.completion_begin;
      p.completion_tokens_mean += ex.completion_end - ex.completion_begin;
    }
    for (auto& p : profiles) {
      if (p.examples == 0) continue;
      p.prompt_tokens_mean /= static_cast<double>(p.examples);
      p.completion_tokens_mean /= static_cast<double>(p.examples);
      inputs.tasks.push_back(p);
    }

    if (inputs.example || ds.train.empty()) continue;
    // The first training example, as every strategy of the sweep weighs it
    // (scheduled strategies at the start of training).
    const TokenizedExample& ex = ds.train.front();
    const reports::WeightedExample view =
        weigh_example(ex, *ds.tokenizer, ds.tasks[ex.task], std::vector<std::string>(strategies.begin(), strategies.end()));
    inputs.example = view;
  }
  return notes;
}

}  // namespace masklab
