#pragma once
// A sweep's shared base: the spec's `pretrain:` names an existing checkpoint
// or a pretraining stage. The stage runs once (a child `masklab train
// --save-model`) into DIR/cache/base-<hash>/, keyed by the hash of its
// resolved config and the content of its data, before any run; every run of
// the sweep then starts from it (model.init_from) with its model section.
#include <array>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/core/config.hpp"
#include "harness/core/enum_names.hpp"

namespace YAML {
class Node;
}

namespace masklab {

enum class BaseKind { kPretrain, kCheckpoint };

template <>
struct EnumNames<BaseKind> {
  static constexpr std::array<std::pair<BaseKind, std::string_view>, 2> kNames{
      {{BaseKind::kPretrain, "pretrain"}, {BaseKind::kCheckpoint, "checkpoint"}}};
};

// `pretrain: {text: {...}}`: the stage trains on the task world's text
// (task_world_text in harness/data/tasks.hpp), written by the sweep as
// data.format=text JSONL into DIR/cache/text-<hash>.jsonl.
struct WorldText {
  std::vector<std::string> tasks;  // empty: the tasks of the sweep's runs, in order of first use
  int documents = 2000;            // statements per task
  int seed = 7;                    // its own seed; the statements' draws never coincide with the tasks' anyway
};

struct SweepBase {
  BaseKind kind = BaseKind::kPretrain;
  std::string hash;        // 16 hex digits: the stage's config and data, or the checkpoint's bytes
  std::string origin;      // "spec.yaml:LINE" of `pretrain:`, for errors
  std::string checkpoint;  // kCheckpoint: the model.pt or model folder, as the spec names it
  Config stage;            // kPretrain: the resolved stage config (data.train is set at run time for `text`)
  bool world_text = false; // kPretrain: the stage trains on WorldText `text`
  WorldText text;
  std::string corpus;      // the generated JSONL when world_text
};

// Parses the value of `pretrain:` in `path`: {checkpoint: PATH} or a stage
// {model, train, data, loss, eval, strategy, seed, text} merged over the
// defaults (the stage's strategy defaults to full). UserError naming
// file:line for a bad key, both forms at once, or an unreadable checkpoint.
SweepBase parse_pretrain(const YAML::Node& value, const std::string& path);

// Completes a stage once the runs are known: generates the world text
// (leaving out every prompt of the runs' built-in data) and computes the hash.
void finish_base(SweepBase& base, const std::vector<const Config*>& runs);

// A run must be the pretrained model: UserError "model.KEY: ..." naming the
// first model key (or data.tokenizer) where the run differs from the stage.
void check_run_matches_base(const SweepBase& base, const Config& run);

// What a run's model.init_from reads while the run's id is computed: the
// base by its hash, never by a path, so ids do not depend on --out.
std::string base_init_token(const SweepBase& base);

// Where `masklab train --save-model` puts the weights of the run in run_dir
// (the one place that knows it).
std::string saved_model_path(const std::string& run_dir);
// DIR/cache/base-<hash>: the finished stage (its run record and saved model).
std::string base_dir(const SweepBase& base, const std::string& out_dir);
// The path every run's model.init_from gets in its config.yaml.
std::string base_model_path(const SweepBase& base, const std::string& out_dir);

// sweep.json's "base": {kind, hash, path, and for a stage dir, config, text}.
// `path` and `dir` are relative to the sweep directory for a stage.
nlohmann::json base_record(const SweepBase& base);

// A content hash of a file, or of a folder's files (their relative names and bytes, in name order).
std::string content_hash(const std::string& path);

struct BaseRunOptions {
  std::string out_dir;
  std::string masklab_binary;
  int threads = 0;   // the stage's train.threads (it runs alone)
  bool quiet = false;
};

// Makes sure the stage's base exists in DIR/cache, training it if missing,
// under an exclusive lock on DIR/cache/base-<hash>.lock so that shards
// sharing the folder train it once and never see half of it (it is trained
// in base-<hash>.partial/ and renamed into place). Returns 0 when the base
// is ready, 1 when the stage failed (one line on stderr names why and its
// log), 130 when interrupted. A checkpoint base needs nothing: 0.
int prepare_base(const SweepBase& base, const BaseRunOptions& options);

// True when DIR/cache/base-<hash>/ holds a finished, ok stage and its weights.
bool base_ready(const SweepBase& base, const std::string& out_dir);

}  // namespace masklab
