#pragma once
// Evaluation sets (config eval.sets): their examples, from a JSONL file or a
// built-in task's held-out split, each tokenized under every wording with the
// set's template. Loading checks everything the scoring needs, so a bad set
// fails before training with one line naming file:line.
#include <cstdint>
#include <string>
#include <vector>

#include "harness/core/config.hpp"
#include "harness/data/chat_template.hpp"
#include "harness/data/data.hpp"
#include "harness/data/example.hpp"
#include "harness/data/tokenizer.hpp"

namespace masklab {

// One example of a set, as written (before any wording).
struct EvalSetItem {
  std::int64_t id = 0;       // position in the set's fixed order: the same for every run of a sweep
  std::string task;          // the built-in task, or the line's "task" field, else the set's name
  std::string prompt;        // the final user prompt text, the one a wording rewrites
  std::string reference;     // generate: the final completion; choice: choices[answer]
  std::vector<std::string> choices;  // choice sets
  int answer = -1;                   // choice sets: index into choices
  Example example;           // the messages (choice sets: the prompt turns only)
};

// A set's examples tokenized under one wording. nll and generate: one
// TokenizedExample per item that fits (generate decodes from ids[0,
// completion_begin)); choice: one per (item, choice), the choice as the
// completion, cut after its last token so the end marker is not part of it
// (as lm-evaluation-harness scores a continuation).
struct WordedSet {
  std::string wording;
  std::vector<TokenizedExample> tokens;
  std::vector<std::int32_t> item;    // tokens[k] belongs to items[item[k]]
  std::vector<std::int32_t> choice;  // choice sets: tokens[k] holds items[item[k]].choices[choice[k]]
  long skipped_too_long = 0;         // items left out because they do not fit data.max_len
};

struct EvalSet {
  EvalSetConfig config;
  std::vector<EvalSetItem> items;
  std::vector<WordedSet> worded;     // one per config.wordings
};

// The example with its final user message rewritten: every "{prompt}" in
// `wording` replaced by that message's text. "{prompt}" alone is the identity.
// Throws UserError (naming the example's origin) when it has no user message.
Example apply_wording(const Example& example, const std::string& wording);

// Loads and tokenizes every set of config.eval.sets with `tokenizer`; a set
// without a template uses data.template. UserError "file:line: reason" for a
// bad line, "exp.yaml:14: eval.sets[i]...: reason" for a bad task name.
std::vector<EvalSet> load_eval_sets(const Config& config, const Tokenizer& tokenizer);

}  // namespace masklab
