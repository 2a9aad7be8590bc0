#pragma once
// Built-in tasks: prompt/completion data generated from a seed, no files
// needed. They span the prompt/completion length ratio that Shi et al. and
// Huerta-Enochian & Ko found decisive for whether prompt loss helps.
#include <cstdint>
#include <string>
#include <vector>

#include "harness/data/example.hpp"

namespace masklab {

struct TaskInfo {
  std::string name;
  std::string shape;        // "long prompt, short answer", ...
  std::string description;  // one line with an example
};

const std::vector<TaskInfo>& builtin_tasks();

struct TaskSplit {
  std::vector<Example> train;
  std::vector<Example> eval;
};

// Deterministic from (name, seed). Held-out prompts never occur in train;
// the held-out set does not depend on train_size, so runs with different
// train sizes are scored on the same examples. Throws UserError for an
// unknown task or when the task has fewer distinct prompts than asked for.
TaskSplit generate_task(const std::string& name, int train_size, int eval_size, std::uint64_t seed);

}  // namespace masklab
