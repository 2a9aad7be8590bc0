#pragma once
// Reports: a finished (or partly finished) sweep directory -> runs.csv,
// summary.csv, comparisons.csv, plw_fit.csv, report.html and figures/*.svg.
// This library knows nothing of LibTorch or the training harness: it reads
// run records (JSON) and what the caller computed from the data.
#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/core/enum_names.hpp"

namespace masklab::reports {

// Token weights by role at one moment of a run, as recorded.
struct RecordedWeights {
  double prompt = 0;              // user text
  double completion = 0;          // the final assistant turn and its end marker
  double earlier_completion = 0;  // assistant turns before the final one
  double system = 0;              // system text
};

// What a run recorded of its strategy ("role_weights" in sweep.json's run
// entry and in metrics.json; role_weights_record in strategies/strategy.hpp).
// The report reads these numbers and never parses strategy specs.
struct RoleWeightsRecord {
  RecordedWeights start;    // at the first step
  RecordedWeights end;      // at the last step
  std::string schedule;     // constant | linear | cosine
  std::string template_as;  // the template tokens weigh as: prompt | completion | zero
  std::string eos;          // end markers of earlier turns weigh as completion (all) or prompt (last)
};

// One run's per-example scores (DIR/runs/<id>/eval_examples.jsonl): metric ->
// wording -> example id -> (numerator, denominator). The metric is named as
// the run record names the figure the line feeds: "eval.<metric>" for the
// default held-out set (set ""), "eval.<set>.<metric>" for an evaluation set
// (every wording of the set under one name: its figure is the mean over
// wordings) and "eval.<set>.wording<i>.<metric>" for one wording alone. A
// "values" score is (value, 1), so Σnum/Σden over examples is their mean; a
// "ratios" score is its [numerator, denominator] pair, pooled as the run pools it.
using ExampleScores = std::map<std::string, std::map<long, std::map<long, std::pair<double, double>>>>;

// One run of the sweep, as recorded in DIR/runs/<id>/.
struct RunRow {
  std::string id;                              // the run id (hash of its resolved config)
  std::map<std::string, std::string> factors;  // factor -> value as text: "strategy", "seed", "condition",
                                               // and every config key the sweep varies ("data.train_size")
  std::string status;                          // ok | diverged | failed | missing (no metrics.json yet)
  std::string error;                           // metrics.json "error", when any
  nlohmann::json metrics;                      // the whole metrics.json; null when missing
  std::vector<nlohmann::json> curve;           // curve.jsonl, one object per eval point
  ExampleScores examples;                      // eval_examples.jsonl; empty when the run wrote none
  std::optional<RoleWeightsRecord> role_weights;  // sweep.json's, else metrics.json's; none when neither has one
  std::string base_hash;                       // the base it started from: sweep.json's "base_hash", else
                                               // metrics.json's base.hash; "" when neither names one
};

// What the sweep ran: DIR/sweep.json.
struct SweepInfo {
  std::string name;                  // the spec's name (file stem)
  std::string spec_path;
  std::string spec_text;             // the spec file's text, verbatim
  std::vector<std::string> factors;  // factor names in spec order ("strategy", "seed", "condition", "data.train_size", ...)
  nlohmann::json provenance;         // masklab version, git sha, LibTorch version, host, created
  nlohmann::json base;               // sweep.json's "base" ({kind, hash, path, dir, config, text}); null: none
  nlohmann::json base_metrics;       // the pretrain stage's metrics.json (DIR/<base.dir>/); null when absent
  nlohmann::json until_ci;           // sweep.json's "until_ci" stopping record ({metric, half_width, max_seeds,
                                     // rounds, stopped_by, widest_half_width}); null when the sweep had none
};

// The prompt/completion length profile of one task's training data
// (R_g of Huerta-Enochian & Ko is completion / prompt).
struct TaskProfile {
  std::string task;
  std::string condition;             // "" when the sweep has no named conditions
  long examples = 0;
  double prompt_tokens_mean = 0;     // user + system + template tokens before the final completion
  double completion_tokens_mean = 0; // final completion tokens including its end marker
};

// One example, token by token, with each strategy's training weight.
struct WeightedExample {
  std::string task;
  std::vector<std::string> tokens;   // readable token texts (escaped control characters), in order
  std::vector<std::string> roles;    // role name of each token: system user assistant template eos
  // strategy spec -> weight of each token *as a label* (the weight of predicting it);
  // weights[0] belongs to the first token, which no position predicts, and is 0.
  std::vector<std::pair<std::string, std::vector<double>>> weights;
};

// How λ enters the quadratic fit of the prompt-weight axis.
enum class PlwTransform { kLog, kQuarter, kLinear };

struct ReportInputs {
  SweepInfo sweep;
  std::vector<RunRow> runs;
  std::vector<TaskProfile> tasks;
  std::optional<WeightedExample> example;
  std::string baseline = "completion_only";  // strategy spec every other strategy is compared with
                                             // (sweep.json's "baseline" when it has one)
  PlwTransform plw_transform = PlwTransform::kLog;
  long bootstrap_replicates = 2000;          // B of the paired bootstrap (`masklab report --bootstrap`)
  std::string findings_path;                 // also write the findings page here (`--findings FILE`); "" = no
};

}  // namespace masklab::reports

namespace masklab {
template <>
struct EnumNames<reports::PlwTransform> {
  static constexpr std::array<std::pair<reports::PlwTransform, std::string_view>, 3> kNames{
      {{reports::PlwTransform::kLog, "log"},
       {reports::PlwTransform::kQuarter, "quarter"},
       {reports::PlwTransform::kLinear, "linear"}}};
};
}  // namespace masklab

namespace masklab::reports {

// Reads DIR/sweep.json and DIR/runs/<id>/{metrics.json,curve.jsonl,eval_examples.jsonl}
// for every run it lists. A run without metrics.json is status "missing"; one
// without eval_examples.jsonl has no per-example scores. Throws UserError
// (harness/core/errors.hpp) naming the file when sweep.json is absent or invalid,
// when a "role_weights" record (in sweep.json or a metrics.json) is malformed,
// or naming file:line when a line of eval_examples.jsonl is.
ReportInputs load_sweep(const std::string& dir);

// Writes every report file into out_dir (and out_dir/figures/), and the
// findings page when inputs.findings_path is set; returns their paths.
std::vector<std::string> write_report(const ReportInputs& inputs, const std::string& out_dir);

}  // namespace masklab::reports
