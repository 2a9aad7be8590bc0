// train_run: one whole run around the training step of trainer.cpp: the
// evaluation points of the curve, logging, divergence, the final evaluation,
// samples, and the run record (docs/design.md, "The data flow").
#include "harness/train/run.hpp"

#include <chrono>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "harness/core/cores.hpp"
#include "harness/core/errors.hpp"
#include "harness/core/hf_config.hpp"
#include "harness/core/run_record.hpp"
#include "harness/train/checkpoint.hpp"
#include "harness/train/evaluator.hpp"
#include "harness/train/generate.hpp"
#include "harness/train/memory_estimate.hpp"
#include "harness/train/model.hpp"
#include "harness/train/resume.hpp"
#include "harness/train/set_eval.hpp"
#include "harness/train/trainer.hpp"
#include "strategies/registry.hpp"

namespace masklab {

int resolve_threads(const Config& config) {
  if (config.train.threads > 0) return config.train.threads;
  return available_cores();
}

}  // namespace masklab

// OpenBLAS's thread control, when the BLAS behind LibTorch is OpenBLAS.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace masklab {

void apply_thread_policy(int threads) {
  if (openblas_set_num_threads != nullptr) {
    openblas_set_num_threads(threads);
    torch::set_num_threads(1);
  } else {
    torch::set_num_threads(threads);
  }
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

nlohmann::json eval_json(const EvalResult& held_out, const EvalResult& train_subset,
                         const std::vector<std::string>& tasks) {
  nlohmann::json out;
  out["eval"] = held_out.overall.to_json();
  const auto seen = train_subset.overall.to_json();
  out["train"] = {{"completion_nll", seen["completion_nll"]},
                  {"completion_token_accuracy", seen["completion_token_accuracy"]},
                  {"exact_match", seen["exact_match"]}};
  nlohmann::json per_task = nlohmann::json::object();
  for (size_t i = 0; i < tasks.size(); ++i) {
    auto m = held_out.per_task[i].to_json();
    const auto tm = train_subset.per_task[i].to_json();
    m["train_completion_nll"] = tm["completion_nll"];
    m["train_exact_match"] = tm["exact_match"];
    per_task[tasks[i]] = m;
  }
  out["per_task"] = per_task;
  return out;
}

// A few held-out examples per task, greedy-decoded, for reading by eye: each
// up to its reference's length, the EOS included when decoded, so that
// "exact" compares like with like.
void write_samples(Transformer& model, const Dataset& dataset, int per_task, int batch_size,
                   const torch::Device& device, const std::string& path) {
  std::vector<const TokenizedExample*> picked;
  std::vector<int> taken(dataset.tasks.size(), 0);
  for (const auto& ex : dataset.eval) {
    if (taken[ex.task] >= per_task) continue;
    ++taken[ex.task];
    picked.push_back(&ex);
  }
  const Tokenizer& tok = *dataset.tokenizer;
  std::vector<std::vector<std::int32_t>> prompts, references;
  std::vector<std::int64_t> index;
  DecodeOptions options;
  options.max_new_tokens = 0;
  options.eos_id = tok.eos_id();
  options.batch_size = batch_size;
  for (const TokenizedExample* ex : picked) {
    prompts.emplace_back(ex->ids.begin(), ex->ids.begin() + ex->completion_begin);
    references.emplace_back(ex->ids.begin() + ex->completion_begin, ex->ids.begin() + ex->completion_end);
    index.push_back(static_cast<std::int64_t>(index.size()));
    options.max_new_tokens = std::max(options.max_new_tokens, static_cast<int>(references.back().size()));
  }
  // Greedy decoding is deterministic: one longer decoding cut to each reference's length.
  const auto generations = generate(model, prompts, index, options, tok, device);
  std::string lines;
  for (size_t i = 0; i < picked.size(); ++i) {
    std::vector<std::int32_t> generated = generations[i].tokens;
    if (generations[i].stop_reason == "eos") generated.push_back(tok.eos_id());
    if (generated.size() > references[i].size()) generated.resize(references[i].size());
    lines += nlohmann::json{{"task", dataset.tasks[picked[i]->task]},
                            {"prompt", tok.decode(prompts[i])},
                            {"reference", tok.decode(references[i])},
                            {"generated", tok.decode(generated)},
                            {"exact", generated == references[i]}}
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
             "\n";
  }
  write_file_atomic(path, lines);
}

// The held-out set and the fixed train subset, scored the same way for every
// strategy (docs/design.md, invariant 6).
class EvalSets {
 public:
  EvalSets(const Config& config, const Dataset& dataset, const torch::Device& device)
      : config_(config), dataset_(dataset), device_(device) {
    for (const auto& ex : dataset.eval) held_out_.push_back(&ex);
    for (auto i : dataset.train_eval) train_subset_.push_back(&dataset.train[i]);
  }
  // `held_out_scores`, when given, receives each held-out example's sums (the final evaluation's lines).
  nlohmann::json run(Transformer& model, std::vector<ExampleScores>* held_out_scores = nullptr) const {
    return eval_json(score(model, held_out_, held_out_scores), score(model, train_subset_), dataset_.tasks);
  }

 private:
  EvalResult score(Transformer& model, const std::vector<const TokenizedExample*>& examples,
                   std::vector<ExampleScores>* per_example = nullptr) const {
    return evaluate(model, examples, dataset_.tasks.size(), dataset_.tokenizer->pad_id(), config_.eval.batch_size,
                    config_.loss.chunk_size, device_, per_example);
  }
  const Config& config_;
  const Dataset& dataset_;
  torch::Device device_;
  std::vector<const TokenizedExample*> held_out_, train_subset_;
};

// What the run accumulates; metrics.json reports it. The loop's part
// (LoopState) is what a checkpoint carries.
struct RunState : LoopState {
  std::string status = "ok";  // ok | diverged | failed | preempted (checkpointed, no metrics.json)
  std::string error;
  std::string phase;           // what the run is doing, for the line of an allocation failure
  int resumed_at = -1;         // the step of the checkpoint this process resumed from (-1: none)
  nlohmann::json final_eval;
  nlohmann::json base;         // the checkpoint the run started from, hashed at setup (null: random init)
  nlohmann::json saved_model;  // --save-model: where, under which architecture
  nlohmann::json eval_sets;    // eval.sets: how each set was scored (null: the run ended before)
  double decode_seconds = 0;
  long decode_tokens = 0;
};

// curve.jsonl, and its points so far in LoopState::curve: a resumed run
// rewrites the file to exactly the checkpoint's points, so that points a
// killed process wrote after its last checkpoint are not written twice.
class Curve {
 public:
  Curve(const std::string& path, std::vector<nlohmann::json>& points) : writer_(path), points_(points) {
    for (const auto& point : points_) writer_.append(point);
  }
  void append(nlohmann::json point, int step, nlohmann::json train_loss, double lr) {
    point["step"] = step;
    point["train_loss"] = std::move(train_loss);
    point["lr"] = lr;
    writer_.append(point);
    points_.push_back(std::move(point));
  }

 private:
  CurveWriter writer_;
  std::vector<nlohmann::json>& points_;
};

double number_or_nan(const nlohmann::json& v) { return v.is_number() ? v.get<double>() : std::nan(""); }

// Reads the mean loss since the last log, prints the progress line and
// returns false when the loss is no longer finite (the run diverged).
bool log_loss(RunState& s, const TrainConfig& tc, int step, Clock::time_point train_start, Progress* progress) {
  const double mean_loss = s.loss_since_log.item<double>() / std::max(1, s.steps_since_log);
  if (!std::isfinite(mean_loss)) {
    s.status = "diverged";
    s.error = fmt::format("non-finite loss at step {}", s.steps_done);
    return false;
  }
  const bool last = s.steps_done == tc.steps;
  const bool on_schedule = s.steps_done % tc.log_every == 0 || last;
  if (progress && (on_schedule || progress->interactive())) {
    const double elapsed = seconds_since(train_start);
    const int steps_here = std::max(1, s.steps_done - std::max(0, s.resumed_at));  // this process's, after a resume
    const double eta = elapsed / steps_here * (tc.steps - s.steps_done);
    const std::string text = fmt::format("step {}/{}  loss {:.4f}  lr {:.2e}  {:.0f} tok/s  ETA {}", s.steps_done,
                                         tc.steps, mean_loss, learning_rate_at(tc, step),
                                         s.tokens_seen / std::max(elapsed, 1e-9), format_duration(eta));
    if (progress->interactive()) progress->status(text);
    else progress->line(text);
  }
  s.last_logged_loss = mean_loss;
  s.loss_since_log.zero_();
  s.steps_since_log = 0;
  return true;
}

void eval_point(RunState& s, const TrainConfig& tc, Transformer& model, const EvalSets& eval, Curve& curve,
                Progress* progress) {
  auto point = eval.run(model);
  if (progress) {
    progress->line(fmt::format("eval @ {}: completion_nll {:.4f}  exact_match {:.3f}", s.steps_done,
                               number_or_nan(point["eval"]["completion_nll"]),
                               number_or_nan(point["eval"]["exact_match"])));
  }
  curve.append(std::move(point), s.steps_done, s.last_logged_loss, learning_rate_at(tc, s.steps_done - 1));
}

// Data-parallel ranks stop together: a signal that reached one rank stops
// every rank at the same step boundary (one process: the flag itself).
bool on_any_rank(const DistContext& dist, bool flag) {
  if (dist.world() == 1) return flag;
  auto votes = torch::full({1}, flag ? 1.0f : 0.0f);
  dist.allreduce_sum(votes);
  return votes.item<float>() > 0;
}

// The optimizer steps from s.steps_done on, with logging, the curve's
// intermediate points and the train.checkpoint_every checkpoints. Stops
// early, with the status set, when the loss diverges or preemption is
// requested (checked at every step boundary, the one after the last step
// included, and answered with a checkpoint). Without a curve (a
// data-parallel rank past 0) it evaluates and writes nothing.
void train_loop(TrainJob& job, const Dataset& dataset, const EvalSets& eval, Curve* curve, RunState& s,
                const TrainOptions& options) {
  const TrainConfig& tc = job.config.train;
  Progress* progress = options.progress;
  const auto train_start = Clock::now();
  const double seconds_before = s.train_seconds;
  for (int step = s.steps_done;; ++step) {
    const bool preempt = on_any_rank(job.dist, options.preempt_requested && options.preempt_requested());
    const bool checkpoint_due = tc.checkpoint_every > 0 && step > 0 && step % tc.checkpoint_every == 0 &&
                                step < tc.steps && step != s.resumed_at;
    if ((preempt || checkpoint_due) && job.dist.is_main()) {
      s.train_seconds = seconds_before + seconds_since(train_start);
      s.phase = "checkpoint";
      save_checkpoint(options.out_dir, job, s);
    }
    if (preempt) {
      s.status = "preempted";
      break;
    }
    if (step == tc.steps) break;
    s.phase = "training step";
    const StepResult result = train_step(job, dataset, step);
    s.tokens_trained += result.tokens_trained;
    s.tokens_seen += result.tokens_seen;
    s.tokens_total += result.tokens_total;
    s.loss_since_log.add_(result.loss);
    ++s.steps_done;
    ++s.steps_since_log;

    // After the step: log, check, evaluate. On CUDA these are the only host syncs.
    const bool last = step + 1 == tc.steps;
    const bool log_now = job.device.is_cpu() || last || s.steps_done % tc.log_every == 0;
    const bool eval_now = tc.eval_every > 0 && s.steps_done % tc.eval_every == 0 && !last;
    if ((log_now || eval_now) && !log_loss(s, tc, step, train_start, progress)) break;
    if (eval_now && curve) {
      s.phase = "evaluation";
      eval_point(s, tc, job.model, eval, *curve, progress);
    }
  }
  s.train_seconds = seconds_before + seconds_since(train_start);
}

nlohmann::json data_record(const Dataset& dataset) {
  const auto& st = dataset.stats;
  return {{"fingerprint", dataset.fingerprint},
          {"tasks", dataset.tasks},
          {"train_examples", dataset.train.size()},
          {"eval_examples", dataset.eval.size()},
          {"invalid_skipped", st.load.invalid_skipped},
          {"truncated", st.truncation.truncated},
          {"skipped_too_long", st.truncation.skipped_too_long},
          {"earlier_turn_tokens_dropped", st.truncation.earlier_turn_tokens_dropped},
          {"straddling_tokens", st.truncation.straddling_tokens}};
}

// metrics.json: status, what was trained, the final evaluation, the data,
// the "same job" fingerprints and provenance.
nlohmann::json run_metrics(const TrainJob& job, const Dataset& dataset, const RunState& s) {
  const Config& config = job.config;
  nlohmann::json m;
  m["status"] = s.status;
  m["error"] = s.error.empty() ? nlohmann::json() : nlohmann::json(s.error);
  m["strategy"] = job.strategy->spec();
  m["role_weights"] = role_weights_record(*job.strategy);
  m["seed"] = config.seed;
  m["steps"] = s.steps_done;
  m["steps_planned"] = config.train.steps;
  m["tokens_trained"] = s.tokens_trained;
  m["tokens_seen"] = s.tokens_seen;
  m["padding_waste"] = s.tokens_total ? 1.0 - static_cast<double>(s.tokens_seen) / s.tokens_total : 0.0;
  m["final_train_loss"] = std::isfinite(s.last_logged_loss) ? nlohmann::json(s.last_logged_loss) : nlohmann::json();
  m["train_seconds"] = s.train_seconds;
  m["tokens_per_second"] = s.train_seconds > 0 ? s.tokens_seen / s.train_seconds : 0.0;
  if (!s.final_eval.is_null()) {
    for (const auto& [k, v] : s.final_eval.items()) m[k] = v;
  }
  if (!s.eval_sets.is_null()) m["eval_sets"] = s.eval_sets;
  m["decode_seconds"] = s.decode_seconds;
  m["decode_tokens_per_second"] = s.decode_seconds > 0 ? s.decode_tokens / s.decode_seconds : 0.0;
  m["data"] = data_record(dataset);
  m["same_job"] = {{"init_hash", job.init_hash},
                   {"order_hash", job.order_hash.hex()},
                   {"data_fingerprint", dataset.fingerprint}};
  m["provenance"] = provenance(job.device.str(), job.threads);
  m["base"] = s.base;
  if (!s.saved_model.is_null()) m["saved_model"] = s.saved_model;
  return m;
}

// --save-model: DIR/model/, a Hugging Face folder with the tokenizer's
// files, which model.init_from, a sweep's base and transformers all read
// (the older DIR/model.pt is no longer written; model.init_from still reads one).
nlohmann::json save_model(const TransformerImpl& model, const Tokenizer& tokenizer, const std::string& dir) {
  save_hf_model(model, dir + "model", tokenizer.bos_id(), tokenizer.eos_id());
  tokenizer.save_pretrained(dir + "model");
  // The record holds no path, so that identical runs in two folders record the same.
  return {{"dir", "model"}, {"architecture", save_architecture(model.config)}};
}

// The sets of eval.sets, after the final evaluation (never on the curve), and
// DIR/eval_examples.jsonl with the held-out set's lines first.
void score_sets(TrainJob& job, const Dataset& dataset, const std::vector<EvalSet>& sets,
                const std::vector<ExampleScores>& held_out_scores, RunState& s, const std::string& dir) {
  SetRecords records = score_eval_sets(job.model, sets, job.config, *dataset.tokenizer, job.device);
  for (auto& [name, metrics] : records.eval.items()) s.final_eval["eval"][name] = metrics;
  if (!sets.empty()) s.eval_sets = records.eval_sets;
  s.decode_seconds = records.decode_seconds;
  s.decode_tokens = records.generated_tokens;
  write_file_atomic(dir + "eval_examples.jsonl", held_out_lines(dataset, held_out_scores) + records.lines);
}

// A pretrained checkpoint fixes the vocabulary: the tokenizer's ids must be rows of it.
void check_vocab_fits(const Config& config, const Dataset& dataset) {
  if (!is_hf_model_dir(config.model.init_from)) return;
  const int needed = dataset.tokenizer->vocab_size();
  if (needed > config.model.vocab_size) {
    throw UserError(fmt::format("data.tokenizer has {} tokens but {}/config.json has vocab_size {}", needed,
                                config.model.init_from, config.model.vocab_size));
  }
}

// Resumes `job` and `s` from the run's newest valid checkpoint: its step, or
// -1 (from scratch). Every rank of a data-parallel run reads the same
// checkpoint (rank 0's lines alone are printed) and must arrive at rank 0's step.
int resume(TrainJob& job, RunState& s, const TrainOptions& options) {
  const bool main = job.dist.is_main();
  const auto step = resume_from_checkpoint(options.out_dir, job, s, [main](const std::string& line) {
    if (main) std::fprintf(stderr, "masklab: %s\n", line.c_str());
  });
  const int resumed_at = step ? *step : -1;
  if (job.dist.world() > 1) {
    auto rank0_step = torch::full({1}, static_cast<double>(resumed_at), torch::kFloat64);
    job.dist.broadcast(rank0_step);
    if (rank0_step.item<double>() != resumed_at) {
      throw std::runtime_error(fmt::format("rank {} resumed at step {} but rank 0 at step {}", job.dist.rank(),
                                           resumed_at, rank0_step.item<double>()));
    }
  }
  if (step && main) {
    std::fprintf(stderr, "masklab: resuming from step %d (%s)\n", *step, checkpoint_dir(options.out_dir).c_str());
  }
  return resumed_at;
}

// What train_run returns for a preempted run: no metrics.json, the checkpoint stays.
nlohmann::json preempted_record(const RunState& s, const TrainOptions& options) {
  return {{"status", "preempted"}, {"steps", s.steps_done}, {"checkpoint", checkpoint_dir(options.out_dir)}};
}

// A data-parallel rank past 0: every step's collectives, in lockstep with
// rank 0 (it stops where rank 0 stops: at the end, at the same non-finite
// loss, since every rank holds the whole step's loss, or at the same
// preemption boundary); no evaluation, no files.
nlohmann::json follow_rank0(TrainJob& job, const Dataset& dataset, const TrainOptions& options) {
  const EvalSets eval(job.config, dataset, job.device);
  RunState s;
  s.loss_since_log = torch::zeros({}, torch::TensorOptions().device(job.device));
  s.resumed_at = resume(job, s, options);
  TrainOptions quiet = options;
  quiet.progress = nullptr;
  train_loop(job, dataset, eval, /*curve=*/nullptr, s, quiet);
  if (s.status == "preempted") return preempted_record(s, options);
  return {{"status", s.status}, {"rank", job.dist.rank()}};
}

// metrics.json, with when and how long, written atomically: the run is finished.
nlohmann::json write_record(nlohmann::json metrics, const std::string& dir, const std::string& start_time,
                            Clock::time_point wall_start, int world) {
  constexpr double kMB = 1024.0 * 1024.0;
  // Per process, so beside the timings: what the estimate said and what the process reached (VmHWM).
  metrics["provenance"]["memory"] = {{"estimated_peak_mb", std::round(estimated_peak_bytes() / kMB)},
                                     {"peak_resident_mb", std::round(peak_resident_bytes() / kMB)}};
  metrics["provenance"]["start_time"] = start_time;
  metrics["provenance"]["end_time"] = iso_time_now();
  metrics["provenance"]["world_size"] = world;  // data-parallel ranks (1: one process)
  metrics["wall_seconds"] = seconds_since(wall_start);
  write_file_atomic(dir + "metrics.json", metrics.dump(2) + "\n");
  return metrics;
}

// The record of a run whose model or optimizer could not be built (out of
// memory): what was asked for, nothing trained.
nlohmann::json unbuilt_run_metrics(const Config& config, const Dataset& dataset, const std::string& error) {
  const auto strategy = make_strategy(config.strategy);
  nlohmann::json m;
  m["status"] = "failed";
  m["error"] = error;
  m["strategy"] = strategy->spec();
  m["role_weights"] = role_weights_record(*strategy);
  m["seed"] = config.seed;
  m["steps"] = 0;
  m["steps_planned"] = config.train.steps;
  m["data"] = data_record(dataset);
  m["provenance"] = provenance(device_name(config.train.device), resolve_threads(config));
  return m;
}

}  // namespace

nlohmann::json train_run(const Config& config, const Dataset& dataset, const TrainOptions& options) {
  const auto wall_start = Clock::now();
  const std::string start_time = iso_time_now();
  const TrainConfig& tc = config.train;
  const std::string dir = options.out_dir + "/";

  // Setup: everything that can fail because of the config fails here, before any file is written.
  check_vocab_fits(config, dataset);
  const std::vector<EvalSet> own_sets =
      options.eval_sets ? std::vector<EvalSet>{} : load_eval_sets(config, *dataset.tokenizer);  // a bad set fails here
  const std::vector<EvalSet>& sets = options.eval_sets ? *options.eval_sets : own_sets;
  std::optional<TrainJob> built;
  try {
    built.emplace(make_train_job(config, dataset, options.dist));
  } catch (const std::exception& e) {
    // A model that cannot be allocated is a recorded failure, not an internal error.
    const auto oom = out_of_memory_message(e, "model build");
    if (!oom || options.dist.rank != 0) throw;
    std::filesystem::create_directories(options.out_dir);
    std::filesystem::remove(dir + "metrics.json");
    write_file_atomic(dir + "config.yaml", to_yaml(config));
    return write_record(unbuilt_run_metrics(config, dataset, *oom), dir, start_time, wall_start, options.dist.world);
  }
  TrainJob& job = *built;
  if (!job.dist.is_main()) return follow_rank0(job, dataset, options);  // data-parallel: rank 0 records
  nlohmann::json base = base_record(config.model);  // the weights the job just loaded, hashed once
  std::filesystem::create_directories(options.out_dir);
  std::filesystem::remove(dir + "metrics.json");  // a stale one would mark this run finished
  write_file_atomic(dir + "config.yaml", to_yaml(config));
  const EvalSets eval(config, dataset, job.device);
  RunState s;
  s.base = std::move(base);
  s.loss_since_log = torch::zeros({}, torch::TensorOptions().device(job.device));

  try {
    s.phase = "resume";
    s.resumed_at = resume(job, s, options);
    Curve curve(dir + "curve.jsonl", s.curve);
    s.phase = "evaluation";
    if (tc.eval_every > 0 && s.resumed_at < 0) curve.append(eval.run(job.model), 0, nullptr, 0.0);
    train_loop(job, dataset, eval, &curve, s, options);
    if (options.progress) options.progress->finish();
    if (s.status == "preempted") return preempted_record(s, options);
    if (s.status == "ok") {
      std::vector<ExampleScores> held_out_scores;
      s.phase = "evaluation";
      s.final_eval = eval.run(job.model, &held_out_scores);
      curve.append(s.final_eval, s.steps_done, s.last_logged_loss, learning_rate_at(tc, std::max(0, s.steps_done - 1)));
      s.phase = "saving the model";
      if (options.save_model) s.saved_model = save_model(*job.model, *dataset.tokenizer, dir);
      s.phase = "samples";
      write_samples(job.model, dataset, config.eval.samples, config.eval.batch_size, job.device, dir + "samples.jsonl");
      s.phase = "set scoring";
      score_sets(job, dataset, sets, held_out_scores, s, dir);
    }
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    // A runtime failure (out of memory, a LibTorch error): record it, keep going.
    s.status = "failed";
    if (const auto oom = out_of_memory_message(e, s.phase)) {
      s.error = *oom;
    } else {
      const std::string what = e.what();
      s.error = what.substr(0, what.find('\n'));
    }
  }

  nlohmann::json metrics = write_record(run_metrics(job, dataset, s), dir, start_time, wall_start, job.dist.world());
  // A finished run needs no checkpoint; removed after the record, so that a
  // crash in between leaves a record (and a checkpoint that reproduces it).
  if (!tc.keep_checkpoints) remove_checkpoints(options.out_dir);
  return metrics;
}

}  // namespace masklab
