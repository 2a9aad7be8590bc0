#pragma once
// `masklab score MODEL DATA --out FILE.jsonl`: teacher-forced NLL of every
// example of DATA under the model folder MODEL (a saved or Hugging Face
// LLaMA-family model), split by the label's role, with the same tokenizer,
// template and truncation a run of the config would use. With --tokens,
// each line also holds the ids, the label roles and the per-label NLL, so
// that an independent implementation can recompute every number.
#include <string>

#include "harness/core/config.hpp"

namespace masklab {

struct ScoreOptions {
  std::string data;     // JSONL in any format masklab reads
  std::string out;      // FILE.jsonl, written atomically
  bool tokens = false;  // per-label detail
};

// `config` has model.init_from = MODEL, resolved (resolve_init_from).
// Throws UserError for a bad model, data or config; writes nothing then.
void run_score(const Config& config, const ScoreOptions& options);

}  // namespace masklab
