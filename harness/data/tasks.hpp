#pragma once
// Built-in tasks: prompt/completion data generated from a seed, no files
// needed. They span the prompt/completion length ratio that Shi et al. and
// Huerta-Enochian & Ko found decisive for whether prompt loss helps.
#include <cstdint>
#include <string>
#include <unordered_set>
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

// The task world's text: plain statements of a task's facts in words other
// than its prompt ("kxqm backwards is mqxk.", "among ab=123 cd=456 ... the
// value of cd is 456."), one document each, for pretraining a base that
// fine-tuning then starts from. Deterministic from (name, seed) and drawn
// from a stream of its own, so it shares no draw with generate_task even
// for the same seed; no statement is about a prompt in `excluded_prompts`
// (give it every fine-tuning prompt, train and held-out, so the base never
// sees an example it is later trained or scored on) and none repeats.
struct WorldStatement {
  std::string text;    // the document
  std::string prompt;  // the instance it states, as the task would ask it
};
std::vector<WorldStatement> task_world_text(const std::string& name, int documents, std::uint64_t seed,
                                            const std::unordered_set<std::string>& excluded_prompts);

// The multiple-choice variant of a task's instance: its completion and 3
// distractors, near misses made from the task's own structure (reverse: the
// reversal with one adjacent pair swapped; sort: one letter out of place;
// lookup: another key's value; select: another word of the list; expand: one
// run one letter longer or shorter; count: the run shifted by one; add: the
// sum off by a digit), shuffled so the answer's position is drawn from
// (seed, prompt). The choices are distinct; choices[answer] == completion.
// A task without a structure of its own (a file's) gets character-level near
// misses. Deterministic from (task, prompt, completion, seed).
struct ChoiceVariant {
  std::vector<std::string> choices;
  int answer = 0;
};
ChoiceVariant task_choice_variant(const std::string& task, const std::string& prompt, const std::string& completion,
                                  std::uint64_t seed);

}  // namespace masklab
