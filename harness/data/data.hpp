#pragma once
// Data: JSONL loaders and built-in tasks -> Examples -> TokenizedExamples
// (ids and the role of every token) -> a Dataset shared by every run.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness/data/chat_template.hpp"
#include "harness/core/config.hpp"
#include "harness/data/example.hpp"
#include "harness/data/tokenizer.hpp"

namespace masklab {

// One example as tokens. roles[t] and flags[t] describe token t itself; the
// batcher shifts them by one so that the label decides (docs/design.md, invariant 2).
struct TokenizedExample {
  std::vector<std::int32_t> ids;
  std::vector<std::uint8_t> roles;  // Role values
  std::vector<std::uint8_t> flags;  // TokenFlag bits
  // Token range [begin, end) of the final assistant turn and its end marker:
  // greedy decoding from ids[0, begin) must reproduce it for exact match.
  std::int32_t completion_begin = 0;
  std::int32_t completion_end = 0;
  std::int32_t task = 0;            // index into Dataset::tasks
};

// JSONL formats (DataFormat, config.hpp): one per file, auto-detected from the first line.

struct LoadStats {
  long lines = 0;
  long invalid_skipped = 0;  // malformed lines dropped under data.skip_invalid
};

// Reads a JSONL file. Every malformed line is a UserError "file:line: reason"
// unless skip_invalid, in which case it is counted and dropped. The example's
// task is the line's "task" field, else `default_task`.
std::vector<Example> load_jsonl(const std::string& path, DataFormat format, bool skip_invalid,
                                const std::string& default_task, LoadStats* stats,
                                DataFormat* detected = nullptr);
// As load_jsonl, on the bytes of a file: `path` names it in errors and origins.
std::vector<Example> parse_jsonl(const std::string& text, const std::string& path, DataFormat format,
                                 bool skip_invalid, const std::string& default_task, LoadStats* stats,
                                 DataFormat* detected = nullptr);

struct TokenizeStats {
  long truncated = 0;                  // examples shortened from the left of their prompt
  long skipped_too_long = 0;           // examples dropped because their completion does not fit
  long earlier_turn_tokens_dropped = 0;  // assistant tokens of earlier turns cut by left truncation
  long straddling_tokens = 0;          // tokens whose text spans two roles (they take the first one's)
};

// Renders and tokenizes one example. Each token takes the role (and flags)
// of its first character. The final completion starts at the token that
// holds its first character, even when that token began in the template
// text before it (SentencePiece's "▁word" after a space): greedy decoding
// must produce that token too.
// Returns nullopt (and counts it) when the final completion cannot fit in
// max_len tokens, or when the example is too long and truncation is "skip".
// Prompt tokens are dropped from the left (after a leading <bos>) otherwise;
// completion tokens never are.
std::optional<TokenizedExample> tokenize_example(const Example& example, const ChatTemplate& tmpl,
                                                 const Tokenizer& tokenizer, int max_len,
                                                 bool truncate_left, TokenizeStats* stats);

struct DataStats {
  LoadStats load;
  TokenizeStats truncation;
};

struct Dataset {
  std::shared_ptr<const Tokenizer> tokenizer;
  ChatTemplate chat_template;
  std::vector<std::string> tasks;          // names; TokenizedExample::task indexes this
  std::vector<TokenizedExample> train;
  std::vector<TokenizedExample> eval;      // held-out
  std::vector<std::int32_t> train_eval;    // fixed train subset (indices) for the generalization gap
  DataStats stats;
  std::string fingerprint;                 // content hash of everything above
};

// Builds the dataset a run's config describes: built-in tasks or JSONL files,
// rendered with data.template, tokenized with data.tokenizer.
Dataset build_dataset(const Config& config);

// The run's held-out examples before tokenization: the built-in tasks'
// held-out split, or data.eval (else the seeded data.eval_fraction split of
// data.train), in the order build_dataset tokenizes them.
std::vector<Example> held_out_examples(const DataConfig& data);

// The content hash of a dataset's tokenizer, tasks and examples
// (Dataset::fingerprint); the dataset cache checks a loaded entry against it.
std::string dataset_fingerprint(const Dataset& ds);

}  // namespace masklab
