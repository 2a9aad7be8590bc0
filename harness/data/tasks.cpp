#include "harness/data/tasks.hpp"

#include <algorithm>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <unordered_set>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/hashing.hpp"
#include "harness/core/random.hpp"

namespace masklab {
namespace {

// The data's draws, portable (harness/core/random.hpp).
class Draw {
 public:
  explicit Draw(std::uint64_t seed) : rng_(seed) {}
  int between(int lo, int hi) {  // inclusive
    return lo + static_cast<int>(draw_below(rng_, static_cast<std::uint64_t>(hi - lo + 1)));
  }
  char letter() { return static_cast<char>('a' + between(0, 25)); }
  std::string letters(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += letter();
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

struct PromptCompletion {
  std::string prompt;
  std::string completion;
};

using Generator = std::function<PromptCompletion(Draw&)>;

// Long prompt, short answer: find a key's value in a list of pairs.
PromptCompletion lookup(Draw& d) {
  constexpr size_t kPairs = 6;
  std::vector<std::string> keys;
  while (keys.size() < kPairs) {
    std::string k = d.letters(2);
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  }
  std::string prompt, answer;
  const int target = d.between(0, kPairs - 1);
  for (int i = 0; i < kPairs; ++i) {
    const std::string value = fmt::format("{:03d}", d.between(0, 999));
    prompt += keys[i] + "=" + value + " ";
    if (i == target) answer = value;
  }
  prompt += "? " + keys[target];
  return {prompt, answer};
}

// Long prompt, short answer: pick the n-th item of a list.
PromptCompletion select(Draw& d) {
  static const std::vector<std::string> kWords = {
      "ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "ibis", "jay", "kiwi", "lark",
      "mole", "newt", "owl", "pig", "quail", "rat", "seal", "toad", "vole", "wasp", "yak", "zebu",
      "fig", "lime", "plum", "pear", "sage", "date", "kale", "leek", "okra", "corn", "bean", "rice"};
  const int n = d.between(6, 9);
  std::vector<std::string> items;
  while (static_cast<int>(items.size()) < n) {
    const auto& w = kWords[d.between(0, static_cast<int>(kWords.size()) - 1)];
    if (std::find(items.begin(), items.end(), w) == items.end()) items.push_back(w);
  }
  const int pick = d.between(1, n);
  std::string prompt = fmt::format("item {} of:", pick);
  for (const auto& w : items) prompt += " " + w;
  return {prompt, items[pick - 1]};
}

// Short prompt, long answer: count from a to b.
PromptCompletion count(Draw& d) {
  const int start = d.between(0, 989);
  const int n = d.between(3, 8);
  std::string answer;
  for (int i = 0; i < n; ++i) answer += (i ? " " : "") + std::to_string(start + i);
  return {fmt::format("count {} to {}", start, start + n - 1), answer};
}

// Short prompt, long answer: run-length decode "a3b5" -> "aaabbbbb".
PromptCompletion expand(Draw& d) {
  const int runs = d.between(2, 5);
  std::string prompt = "expand ", answer;
  char previous = 0;
  for (int i = 0; i < runs; ++i) {
    char c;
    do c = d.letter(); while (c == previous);
    previous = c;
    const int times = d.between(1, 9);
    prompt += fmt::format("{}{}", c, times);
    answer += std::string(static_cast<size_t>(times), c);
  }
  return {prompt, answer};
}

// Similar lengths: reverse a string.
PromptCompletion reverse(Draw& d) {
  const std::string s = d.letters(d.between(4, 10));
  return {"reverse " + s, std::string(s.rbegin(), s.rend())};
}

// Similar lengths: sort the letters of a string.
PromptCompletion sort(Draw& d) {
  std::string s = d.letters(d.between(4, 10));
  std::string sorted = s;
  std::sort(sorted.begin(), sorted.end());
  return {"sort " + s, sorted};
}

// Similar lengths: add two numbers.
PromptCompletion add(Draw& d) {
  auto number = [&] {
    const int digits = d.between(1, 4);
    int lo = 1;
    for (int i = 1; i < digits; ++i) lo *= 10;
    return d.between(digits == 1 ? 0 : lo, lo * 10 - 1);
  };
  const int a = number(), b = number();
  return {fmt::format("add {}+{}", a, b), std::to_string(a + b)};
}

// The task world's text states an instance as a fact, in words other than
// the task's prompt: pretraining on it teaches the world (the strings and
// what the operations give), fine-tuning then teaches the question format.
using Statement = std::function<std::string(const PromptCompletion&)>;

// The prompt without its leading command word ("reverse kxqm" -> "kxqm").
std::string operand(const std::string& prompt) { return prompt.substr(prompt.find(' ') + 1); }

std::string lookup_statement(const PromptCompletion& pc) {
  const size_t ask = pc.prompt.rfind("? ");
  return fmt::format("among {}the value of {} is {}.", pc.prompt.substr(0, ask), pc.prompt.substr(ask + 2),
                     pc.completion);
}

std::string select_statement(const PromptCompletion& pc) {
  // "item 2 of: owl fig yak" -> "in owl fig yak, word 2 is fig."
  const size_t colon = pc.prompt.find(':');
  return fmt::format("in{}, word {} is {}.", pc.prompt.substr(colon + 1), pc.prompt.substr(5, colon - 8),
                     pc.completion);
}

struct TaskEntry {
  TaskInfo info;
  Generator generate;
  Statement state;
};

const std::vector<TaskEntry>& entries() {
  static const std::vector<TaskEntry> kEntries = {
      {{"lookup", "long prompt, short answer", "value of a key among 6 pairs: 'ab=123 cd=456 ... ? cd' -> '456'"},
       lookup, lookup_statement},
      {{"select", "long prompt, short answer", "n-th word of a list: 'item 2 of: owl fig yak ...' -> 'fig'"},
       select, select_statement},
      {{"count", "short prompt, long answer", "'count 417 to 421' -> '417 418 419 420 421'"}, count,
       [](const PromptCompletion& pc) { return fmt::format("from {} the numbers are {}.", operand(pc.prompt), pc.completion); }},
      {{"expand", "short prompt, long answer", "run-length decode: 'expand a3b2' -> 'aaabb'"}, expand,
       [](const PromptCompletion& pc) { return fmt::format("{} spelled out is {}.", operand(pc.prompt), pc.completion); }},
      {{"reverse", "similar lengths", "'reverse kxqm' -> 'mqxk'"}, reverse,
       [](const PromptCompletion& pc) { return fmt::format("{} backwards is {}.", operand(pc.prompt), pc.completion); }},
      {{"sort", "similar lengths", "'sort dbca' -> 'abcd'"}, sort,
       [](const PromptCompletion& pc) { return fmt::format("{} in order is {}.", operand(pc.prompt), pc.completion); }},
      {{"add", "similar lengths", "'add 4821+937' -> '5758'"}, add,
       [](const PromptCompletion& pc) { return fmt::format("{} makes {}.", operand(pc.prompt), pc.completion); }},
  };
  return kEntries;
}

}  // namespace

const std::vector<TaskInfo>& builtin_tasks() {
  static const std::vector<TaskInfo> kInfos = [] {
    std::vector<TaskInfo> out;
    for (const auto& e : entries()) out.push_back(e.info);
    return out;
  }();
  return kInfos;
}

namespace {

const TaskEntry& find_task(const std::string& name) {
  std::string valid;
  for (const auto& e : entries()) {
    if (e.info.name == name) return e;
    valid += (valid.empty() ? "" : ", ") + e.info.name;
  }
  throw UserError("data.tasks: unknown task '" + name + "' (valid: " + valid + ")");
}

}  // namespace

TaskSplit generate_task(const std::string& name, int train_size, int eval_size, std::uint64_t seed) {
  const TaskEntry* entry = &find_task(name);
  Draw draw(derive_seed(seed, "task:" + name));
  std::unordered_set<std::string> seen_prompts;
  TaskSplit split;
  const long wanted = static_cast<long>(train_size) + eval_size;
  long attempts = 0;
  // Held-out examples come first, so they stay the same whatever train_size is.
  while (static_cast<long>(split.eval.size() + split.train.size()) < wanted) {
    if (++attempts > 50 * wanted + 1000) {
      throw UserError(fmt::format("data.train_size: task '{}' has too few distinct prompts for {} "
                                  "train + {} held-out examples",
                                  name, train_size, eval_size));
    }
    PromptCompletion pc = entry->generate(draw);
    if (!seen_prompts.insert(pc.prompt).second) continue;
    const bool to_eval = static_cast<int>(split.eval.size()) < eval_size;
    auto& bucket = to_eval ? split.eval : split.train;
    Example ex;
    ex.task = name;
    ex.origin = fmt::format("task:{}#{}", name, bucket.size());
    ex.messages.push_back({Role::kUser, std::move(pc.prompt), "", true});
    ex.messages.push_back({Role::kAssistant, std::move(pc.completion), "", true});
    bucket.push_back(std::move(ex));
  }
  return split;
}

std::vector<WorldStatement> task_world_text(const std::string& name, int documents, std::uint64_t seed,
                                            const std::unordered_set<std::string>& excluded_prompts) {
  const TaskEntry& entry = find_task(name);
  // Its own stream ("text:", not "task:"): the same seed still gives other instances.
  Draw draw(derive_seed(seed, "text:" + name));
  std::unordered_set<std::string> seen_prompts;
  std::vector<WorldStatement> out;
  long attempts = 0;
  while (static_cast<int>(out.size()) < documents) {
    if (++attempts > 50L * documents + 1000) {
      throw UserError(fmt::format("pretrain.text: task '{}' has too few distinct instances for {} documents "
                                  "besides the fine-tuning examples",
                                  name, documents));
    }
    const PromptCompletion pc = entry.generate(draw);
    if (excluded_prompts.count(pc.prompt) || !seen_prompts.insert(pc.prompt).second) continue;
    out.push_back({entry.state(pc), pc.prompt});
  }
  return out;
}

}  // namespace masklab

namespace masklab {
namespace {

// Candidate wrong answers for each task, nearest first; duplicates and the
// answer itself are dropped by task_choice_variant.
std::vector<std::string> swapped_neighbours(const std::string& s, Draw& d) {
  std::vector<std::string> out;
  std::vector<size_t> at;
  for (size_t i = 0; i + 1 < s.size(); ++i) at.push_back(i);
  for (size_t k = at.size(); k > 1; --k) std::swap(at[k - 1], at[static_cast<size_t>(d.between(0, static_cast<int>(k) - 1))]);
  for (size_t i : at) {
    std::string t = s;
    std::swap(t[i], t[i + 1]);
    out.push_back(t);
  }
  return out;
}

std::vector<std::string> one_misplaced(const std::string& s, Draw& d) {
  std::vector<std::string> out;
  const int n = static_cast<int>(s.size());
  for (int tries = 0; n > 1 && tries < 40; ++tries) {
    const int from = d.between(0, n - 1), to = d.between(0, n - 1);
    std::string t = s;
    const char c = t[static_cast<size_t>(from)];
    t.erase(static_cast<size_t>(from), 1);
    t.insert(static_cast<size_t>(to), 1, c);
    out.push_back(t);
  }
  return out;
}

// "ab=123 cd=456 ... ? cd": every other key's value.
std::vector<std::string> other_values(const std::string& prompt) {
  std::vector<std::string> out;
  std::istringstream in(prompt.substr(0, prompt.rfind("? ")));
  for (std::string pair; in >> pair;) out.push_back(pair.substr(pair.find('=') + 1));
  return out;
}

// "item 2 of: owl fig yak": every word of the list.
std::vector<std::string> list_words(const std::string& prompt) {
  std::vector<std::string> out;
  std::istringstream in(prompt.substr(prompt.find(':') + 1));
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// "expand a3b2": the decoding with one run one letter longer or shorter.
std::vector<std::string> wrong_runs(const std::string& prompt) {
  const std::string code = operand(prompt);
  std::vector<std::string> out;
  for (size_t run = 0; run + 1 < code.size(); run += 2) {
    for (int delta : {1, -1}) {
      std::string answer;
      for (size_t i = 0; i + 1 < code.size(); i += 2) {
        const int times = (code[i + 1] - '0') + (i == run ? delta : 0);
        answer += std::string(static_cast<size_t>(std::max(0, times)), code[i]);
      }
      out.push_back(answer);
    }
  }
  return out;
}

// "count 417 to 421": the same run shifted by one or two.
std::vector<std::string> shifted_counts(const std::string& prompt) {
  int start = 0, end = 0;
  if (std::sscanf(prompt.c_str(), "count %d to %d", &start, &end) != 2) return {};
  std::vector<std::string> out;
  for (int shift : {1, -1, 2, -2}) {
    std::string answer;
    for (int v = start + shift; v <= end + shift; ++v) answer += (v == start + shift ? "" : " ") + std::to_string(v);
    out.push_back(answer);
  }
  return out;
}

std::vector<std::string> near_sums(const std::string& completion) {
  const long sum = std::atol(completion.c_str());
  std::vector<std::string> out;
  for (long delta : {1L, -1L, 10L, -10L, 100L, 2L}) {
    if (sum + delta >= 0) out.push_back(std::to_string(sum + delta));
  }
  return out;
}

std::vector<std::string> distractor_candidates(const std::string& task, const std::string& prompt,
                                               const std::string& completion, Draw& d) {
  if (task == "reverse") return swapped_neighbours(completion, d);
  if (task == "sort") return one_misplaced(completion, d);
  if (task == "lookup") return other_values(prompt);
  if (task == "select") return list_words(prompt);
  if (task == "expand") return wrong_runs(prompt);
  if (task == "count") return shifted_counts(prompt);
  if (task == "add") return near_sums(completion);
  return swapped_neighbours(completion, d);
}

}  // namespace

ChoiceVariant task_choice_variant(const std::string& task, const std::string& prompt, const std::string& completion,
                                  std::uint64_t seed) {
  constexpr size_t kChoices = 4;
  Draw draw(derive_seed(seed, "choices:" + task + ":" + prompt));
  std::vector<std::string> choices = {completion};
  auto offer = [&](const std::string& c) {
    if (!c.empty() && choices.size() < kChoices && std::find(choices.begin(), choices.end(), c) == choices.end()) choices.push_back(c);
  };
  auto candidates = distractor_candidates(task, prompt, completion, draw);
  // Which near misses are used is drawn too, so that, e.g., lookup's are not always the first keys.
  for (size_t k = candidates.size(); k > 1; --k) {
    std::swap(candidates[k - 1], candidates[static_cast<size_t>(draw.between(0, static_cast<int>(k) - 1))]);
  }
  for (const auto& c : candidates) offer(c);
  // Too few distinct near misses (a short or uniform answer): one extra letter always differs.
  for (char c = 'a'; choices.size() < kChoices; ++c) offer(completion + c);
  std::vector<size_t> order(kChoices);
  for (size_t i = 0; i < kChoices; ++i) order[i] = i;
  for (size_t k = kChoices; k > 1; --k) std::swap(order[k - 1], order[static_cast<size_t>(draw.between(0, static_cast<int>(k) - 1))]);
  ChoiceVariant out;
  for (size_t i = 0; i < kChoices; ++i) {
    out.choices.push_back(choices[order[i]]);
    if (order[i] == 0) out.answer = static_cast<int>(i);
  }
  return out;
}

}  // namespace masklab
