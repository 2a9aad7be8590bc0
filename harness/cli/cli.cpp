#include "harness/cli/cli.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <tuple>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <c10/util/Exception.h>


#include "harness/cli/bench.hpp"
#include "harness/cli/score.hpp"
#include "harness/cli/sweep_cluster.hpp"
#include "harness/cli/until_ci.hpp"
#include "harness/core/config.hpp"
#include "harness/core/hf_config.hpp"
#include "harness/data/chat_template.hpp"
#include "harness/data/data.hpp"
#include "harness/data/data_cache.hpp"
#include "harness/cli/report_data.hpp"
#include "harness/core/run_record.hpp"
#include "harness/sweep/process.hpp"
#include "harness/sweep/sweep.hpp"
#include "reports/report.hpp"
#include "harness/core/errors.hpp"
#include "harness/cli/inspect.hpp"
#include "harness/cli/launch.hpp"
#include "harness/data/tokenizer_training.hpp"
#include "harness/core/progress.hpp"
#include "harness/core/text.hpp"
#include "harness/data/tasks.hpp"
#include "harness/train/memory_estimate.hpp"
#include "harness/train/run.hpp"
#include "harness/train/trainer.hpp"
#include "masklab_version.hpp"
#include "strategies/registry.hpp"

namespace po = boost::program_options;

namespace masklab {
namespace {

constexpr const char* kUsage =
    "usage: masklab <command> [options]\n"
    "\n"
    "commands:\n"
    "  train        one training run under one strategy, with its run record\n"
    "  sweep        every run of a sweep spec (resumable, parallel, shardable)\n"
    "  report       statistics, CSVs and report.html for a sweep directory\n"
    "  inspect      show which tokens each strategy trains on, token by token\n"
    "  tokenizer    train a SentencePiece tokenizer on data (`tokenizer train`)\n"
    "  bench        tokens/s, step time, peak memory and MFU of the training step\n"
    "  strategies   list the loss-masking strategies and their parameters\n"
    "  tasks        list the built-in tasks\n"
    "  config       print the resolved config (defaults, --config, --set)\n"
    "  score        per-example prompt and completion NLL of a saved or Hugging Face model\n"
    "\n"
    "`masklab <command> --help` describes each command.\n";

// Parses a subcommand's options; --help prints the description and returns false.
bool parse_options(const std::vector<std::string>& args, const po::options_description& options,
                   const po::positional_options_description& positional, po::variables_map& vm,
                   const std::string& usage) {
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
  } catch (const po::error& e) {
    throw UserError(std::string(e.what()) + " (see --help)");
  }
  if (vm.count("help")) {
    std::cout << usage << "\n" << options << "\n";
    return false;
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    throw UserError(std::string(e.what()) + " (see --help)");
  }
  return true;
}

// The options every command that builds a config shares.
void add_config_options(po::options_description& options) {
  options.add_options()
      ("config", po::value<std::string>(), "YAML config file (keys as in `masklab config`)")
      ("set", po::value<std::vector<std::string>>()->composing(), "override one key: --set section.key=value (repeatable)");
}

// Defaults, then --config, then each --set in order, then (when
// `init_from` is given) model.init_from; then model.* from a Hugging Face
// model folder (resolve_init_from).
Config resolve_config(const po::variables_map& vm, const std::string& init_from = "") {
  Config config;
  if (vm.count("config")) load_config_file(config, vm["config"].as<std::string>());
  if (vm.count("set")) {
    for (const auto& assignment : vm["set"].as<std::vector<std::string>>()) apply_override(config, assignment);
  }
  if (!init_from.empty()) apply_value(config, "model.init_from", init_from, "MODEL");
  resolve_init_from(config);
  return config;
}

std::string config_keys_help() {
  std::string out = "config keys (--set key=value):\n";
  for (const auto& k : config_keys()) out += fmt::format("  {:<24} {:<16} {}\n", k.key, k.type, k.help);
  return out;
}

// A data-parallel rank past 0: trains its share, prints nothing, and exits
// as the run does (rank 0 writes the record and reports).
int train_follower(const Config& config, const Dataset& dataset, const std::vector<EvalSet>& eval_sets,
                   const DistEnv& dist, const std::string& out_dir) {
  TrainOptions options;
  options.out_dir = out_dir;  // where rank 0's checkpoint is, to resume from the same step
  options.dist = dist;
  options.eval_sets = &eval_sets;
  options.preempt_requested = [] { return preempted(); };
  const auto result = train_run(config, dataset, options);
  const std::string status = result["status"];
  return status == "ok" ? 0 : status == "preempted" ? kExitPreempted : status == "diverged" ? 3 : 1;
}

// The run's last lines and exit status: the held-out summary, or why it failed.
int report_run(const nlohmann::json& metrics, const std::string& out_dir, Progress& progress) {
  const std::string status = metrics["status"];
  if (status == "preempted") {
    std::fprintf(stderr, "masklab: preempted at step %d: checkpoint in %s; rerun the same command to resume\n",
                 metrics["steps"].get<int>(), metrics["checkpoint"].get<std::string>().c_str());
    return kExitPreempted;
  }
  if (status == "ok") {
    std::string per_task;
    for (const auto& [task, m] : metrics["per_task"].items()) {
      per_task += fmt::format("  {}={:.2f}", task, m["exact_match"].is_number() ? m["exact_match"].get<double>() : 0.0);
    }
    progress.line(fmt::format("done in {:.1f}s: held-out completion_nll {:.4f}  exact_match {:.3f} ({})",
                              metrics["wall_seconds"].get<double>(), metrics["eval"]["completion_nll"].get<double>(),
                              metrics["eval"]["exact_match"].get<double>(), per_task.substr(per_task.empty() ? 0 : 2)));
    progress.line("record: " + out_dir + "/metrics.json");
    return 0;
  }
  std::fprintf(stderr, "masklab: run %s: %s (recorded in %s/metrics.json)\n", status.c_str(),
               metrics["error"].is_string() ? metrics["error"].get<std::string>().c_str() : "",
               out_dir.c_str());
  return status == "diverged" ? 3 : 1;
}

int cmd_train(const std::vector<std::string>& args) {
  po::options_description options("train options");
  options.add_options()("help,h", "show this help");
  add_config_options(options);
  options.add_options()
      ("strategy", po::value<std::string>(), "strategy spec, e.g. completion_only, weighted:0.1 (see `masklab strategies`)")
      ("seed", po::value<int>(), "run seed (initial weights, batch order, dropout)")
      ("device", po::value<std::string>(), "auto | cpu | cuda | cuda:N (same as --set train.device=...)")
      ("out", po::value<std::string>()->required(), "run directory for the record")
      ("save-model", "also write the final model to DIR/model/ (Hugging Face layout, with the tokenizer)")
      ("skip-invalid", "skip and count malformed data lines (same as --set data.skip_invalid=true)")
      ("cache", po::value<std::string>(), "dataset cache directory (tokenized data keyed by content)")
      ("nproc", po::value<int>(), "N: train data-parallel over N processes on this machine (Gloo; NCCL on CUDA)");
  po::variables_map vm;
  const std::string usage =
      "usage: masklab train [--config FILE.yaml] [--set key=value]... --strategy SPEC --seed N --out DIR [--nproc N]\n"
      "\n"
      "Trains one model under one loss-masking strategy and writes DIR/config.yaml,\n"
      "DIR/curve.jsonl, DIR/samples.jsonl and, last, DIR/metrics.json.\n"
      "Data-parallel: --nproc N here, or one process per rank under srun (SLURM_NTASKS)\n"
      "or torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); the global batch stays\n"
      "train.batch_size * train.grad_accum, example i of each micro-batch on rank i % N.\n"
      "SIGTERM or SIGUSR1: checkpoint to DIR/checkpoint/ at the next step boundary and exit 75;\n"
      "the same command then resumes from it (so does train.checkpoint_every after a crash).\n"
      "Exit status: 0 ok, 1 failed, 2 bad input, 3 diverged, 75 preempted.\n\n" +
      config_keys_help();
  if (!parse_options(args, options, {}, vm, usage)) return 0;

  Config config = resolve_config(vm);
  if (vm.count("strategy")) config.strategy = vm["strategy"].as<std::string>();
  if (vm.count("seed")) config.seed = vm["seed"].as<int>();
  if (vm.count("device")) apply_value(config, "train.device", vm["device"].as<std::string>(), "--device");
  if (vm.count("skip-invalid")) config.data.skip_invalid = true;
  validate(config);
  make_strategy(config.strategy);  // a bad spec fails before any data work

  const DistEnv dist = dist_env_from_environment();
  const int nproc = vm.count("nproc") ? vm["nproc"].as<int>() : 1;
  check_nproc(nproc, dist);
  check_world_fits(config.train, std::max(nproc, dist.world));

  // From here a preemption signal is answered with a checkpoint, not death.
  install_preemption_handler();
  Progress progress(Progress::stdout_is_terminal() && dist.rank == 0);
  const Dataset dataset = load_dataset(config, vm.count("cache") ? vm["cache"].as<std::string>() : "");
  const std::vector<EvalSet> eval_sets = load_eval_sets(config, *dataset.tokenizer);  // a bad set: one line, exit 2
  require_trained_tokens(*make_strategy(config.strategy), config, dataset);  // before any rank is spawned
  // The launcher has checked the config, the data (and filled the cache) once; the ranks do the training.
  if (nproc > 1) return launch_ranks(without_option(args, "--nproc"), nproc, std::max(1, resolve_threads(config) / nproc));
  // Before the model exists: a config that cannot fit is refused, with the figures, instead of running out mid-run.
  check_memory_fits(config, dataset, resolve_threads(config), [&](const std::string& line) {
    if (dist.rank == 0) progress.line(line);
  });
  if (dist.rank > 0) return train_follower(config, dataset, eval_sets, dist, vm["out"].as<std::string>());
  progress.line(fmt::format("masklab train: strategy {}  seed {}  {} train / {} held-out examples  tasks {}",
                            make_strategy(config.strategy)->spec(), config.seed, dataset.train.size(),
                            dataset.eval.size(), fmt::join(dataset.tasks, ",")));
  TrainOptions train_options;
  train_options.out_dir = vm["out"].as<std::string>();
  train_options.save_model = vm.count("save-model") > 0;
  train_options.progress = &progress;
  train_options.eval_sets = &eval_sets;
  train_options.dist = dist;
  train_options.preempt_requested = [] { return preempted(); };
  return report_run(train_run(config, dataset, train_options), train_options.out_dir, progress);
}

int cmd_sweep(const std::vector<std::string>& args) {
  po::options_description options("sweep options");
  options.add_options()("help,h", "show this help")
      ("spec", po::value<std::string>()->required(), "sweep spec (YAML), e.g. experiments/quickstart.yaml")
      ("out", po::value<std::string>()->required(), "sweep directory: DIR/runs/<id>/, DIR/sweep.json")
      ("jobs", po::value<int>()->default_value(1), "runs at once; the CPU threads are divided between them")
      ("shard", po::value<std::string>(), "K/N: run only the K-th of N deterministic parts (separate machines, array jobs)")
      ("dry-run", "print the expanded runs and their state, run nothing")
      ("retry-failed", "run again the runs recorded as failed or timeout")
      ("run-timeout", po::value<double>()->default_value(0), "SECONDS a run may take: then SIGTERM, SIGKILL 5 s later, status timeout (0: no limit)")
      ("until-ci", po::value<std::string>(), "METRIC:HALF_WIDTH: add seeds in rounds until every pairwise difference's 95% interval on METRIC is at most HALF_WIDTH each side")
      ("max-seeds", po::value<int>()->default_value(20), "with --until-ci: at most this many seeds per strategy")
      ("round-seeds", po::value<int>()->default_value(1), "with --until-ci: seeds added per round");
  add_sweep_cluster_options(options);
  po::positional_options_description positional;
  positional.add("spec", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: masklab sweep SPEC.yaml --out DIR [--jobs N | --devices D1,D2,...] [--shard K/N] [--run-timeout S] [--dry-run]\n"
      "                     [--until-ci METRIC:HALF_WIDTH [--max-seeds N] [--round-seeds K]]\n"
      "       masklab sweep SPEC.yaml --out DIR --slurm [--submit] [--partition P] [--time T] [--gpus-per-task N]\n"
      "                     [--cpus-per-task N] [--max-parallel N] [--array-tasks N] [--signal-grace S]\n"
      "\n"
      "Expands the spec into runs (id = hash of the resolved config) and runs every\n"
      "run without a DIR/runs/<id>/metrics.json: rerunning resumes. Exit status 0\n"
      "when every run of the shard is ok, 1 otherwise, 2 for a bad spec, 75 preempted\n"
      "(SIGTERM/SIGUSR1: running runs checkpoint; rerunning resumes them), 130 on SIGINT.\n"
      "\n"
      "--until-ci runs the spec, then adds seeds (after the largest, --round-seeds at\n"
      "a time) to every strategy until the seed-level paired-t 95% interval of every\n"
      "pairwise difference on METRIC, in every setting, has a half-width of at most\n"
      "HALF_WIDTH, or --max-seeds is reached; sweep.json records the rule and what\n"
      "stopped it. Rerunning the same command resumes without rerunning any run.\n"
      "\n" + std::string(kSweepClusterHelp);
  if (!parse_options(args, options, positional, vm, usage)) return 0;
  if (vm.count("until-ci") == 0 && (!vm["max-seeds"].defaulted() || !vm["round-seeds"].defaulted())) {
    throw UserError("--max-seeds and --round-seeds go with --until-ci");
  }
  const SweepSpec spec = load_sweep_spec(vm["spec"].as<std::string>());
  SweepOptions o;
  o.out_dir = vm["out"].as<std::string>();
  o.jobs = vm["jobs"].as<int>();
  if (o.jobs < 1) throw UserError("--jobs must be at least 1");
  if (vm.count("shard")) std::tie(o.shard_k, o.shard_n) = parse_shard(vm["shard"].as<std::string>());
  o.dry_run = vm.count("dry-run") > 0;
  o.retry_failed = vm.count("retry-failed") > 0;
  o.run_timeout = vm["run-timeout"].as<double>();
  if (!(o.run_timeout >= 0)) throw UserError("--run-timeout must be a number of seconds >= 0 (0: no limit)");
  o.masklab_binary = std::filesystem::read_symlink("/proc/self/exe").string();
  apply_devices(vm, o);
  if (vm.count("slurm")) return sweep_on_slurm(vm, spec, o);
  reject_slurm_flags(vm);
  if (vm.count("until-ci")) {
    UntilCiRule rule = parse_until_ci(vm["until-ci"].as<std::string>());
    rule.max_seeds = vm["max-seeds"].as<int>();
    rule.round_seeds = vm["round-seeds"].as<int>();
    return sweep_until_ci(spec.path, o, rule);
  }
  return run_sweep(spec, o);
}

int cmd_report(const std::vector<std::string>& args) {
  po::options_description options("report options");
  options.add_options()("help,h", "show this help")
      ("dir", po::value<std::string>()->required(), "sweep directory written by `masklab sweep`")
      ("baseline", po::value<std::string>(), "strategy the others are compared with (default: the spec's, else completion_only)")
      ("plw-transform", po::value<std::string>()->default_value("log"), "x in the prompt-weight fit: log (log10(λ+0.001)) | quarter (λ^0.25) | linear")
      ("out", po::value<std::string>(), "where to write the report (default: the sweep directory)")
      ("findings", po::value<std::string>(), "also write the findings page (Markdown) to this file")
      ("bootstrap", po::value<long>()->default_value(2000), "replicates of the paired bootstrap over (seed, example)");
  po::positional_options_description positional;
  positional.add("dir", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: masklab report DIR [--baseline completion_only] [--out REPORT_DIR] [--findings FILE] [--bootstrap 2000]\n"
      "\n"
      "Writes runs.csv, summary.csv, comparisons.csv, plw_fit.csv (when the prompt\n"
      "weight varies), wordings.csv (when a set has several wordings), headline.md,\n"
      "report.html and figures/*.svg; with --findings, the findings page too.";
  if (!parse_options(args, options, positional, vm, usage)) return 0;
  const std::string dir = vm["dir"].as<std::string>();
  reports::ReportInputs inputs = reports::load_sweep(dir);
  if (vm.count("baseline")) inputs.baseline = make_strategy(vm["baseline"].as<std::string>())->spec();
  inputs.plw_transform = parse_enum<reports::PlwTransform>(vm["plw-transform"].as<std::string>(), "--plw-transform");
  inputs.bootstrap_replicates = vm["bootstrap"].as<long>();
  if (inputs.bootstrap_replicates < 1) throw UserError("--bootstrap must be a number of replicates >= 1");
  if (vm.count("findings")) inputs.findings_path = vm["findings"].as<std::string>();
  const std::vector<std::string> notes = add_data_views(inputs, dir);
  for (const auto& note : notes) std::fprintf(stderr, "masklab report: note: %s\n", note.c_str());
  const std::string out = vm.count("out") ? vm["out"].as<std::string>() : dir;
  for (const auto& path : reports::write_report(inputs, out)) std::cout << path << "\n";
  return 0;
}

int cmd_inspect(const std::vector<std::string>& args) {
  std::string templates;
  for (const auto& name : builtin_template_names()) templates += name + " | ";
  templates += "template.yaml";
  po::options_description options("inspect options");
  options.add_options()("help,h", "show this help")
      ("data", po::value<std::string>()->required(), "JSONL file, or builtin:TASK[,TASK...]")
      ("template", po::value<std::string>()->default_value("plain"), templates.c_str())
      ("tokenizer", po::value<std::string>()->default_value("byte"), "byte | SentencePiece .model | tokenizer.json | tokenizer folder")
      ("format", po::value<std::string>()->default_value("auto"), enum_choices<DataFormat>().c_str())
      ("strategy", po::value<std::vector<std::string>>()->composing(), "strategy to show (repeatable; default full and completion_only)")
      ("n", po::value<int>()->default_value(3), "examples to show")
      ("max-len", po::value<int>()->default_value(0), "truncate to this many tokens (0: no limit)")
      ("truncation", po::value<std::string>()->default_value("left"), enum_choices<Truncation>().c_str())
      ("skip-invalid", "skip and count malformed lines")
      ("html", po::value<std::string>(), "also write the examples as an HTML page")
      ("plain", "a token|role|weight table even on a terminal");
  po::positional_options_description positional;
  positional.add("data", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: masklab inspect DATA [--template T] [--tokenizer M] [--strategy S]... [--n 3] [--html FILE]\n"
      "\n"
      "Prints examples token by token with each strategy's weight (the weight of\n"
      "predicting that token), in colour on a terminal, as token|role|weight\n"
      "otherwise, then a summary: tokens per role, the prompt/completion length\n"
      "ratio R_g, truncated and skipped examples.";
  if (!parse_options(args, options, positional, vm, usage)) return 0;
  InspectOptions o;
  o.data = vm["data"].as<std::string>();
  o.template_name = vm["template"].as<std::string>();
  o.tokenizer = vm["tokenizer"].as<std::string>();
  o.format = parse_enum<DataFormat>(vm["format"].as<std::string>(), "--format");
  if (vm.count("strategy")) o.strategies = vm["strategy"].as<std::vector<std::string>>();
  for (const auto& s : o.strategies) make_strategy(s);  // a bad spec fails before any output
  o.n = vm["n"].as<int>();
  o.max_len = vm["max-len"].as<int>();
  if (o.n < 0) throw UserError("--n must be a number of examples >= 0, got " + std::to_string(o.n));
  if (o.max_len < 0) throw UserError("--max-len must be a number of tokens >= 0 (0: no limit), got " + std::to_string(o.max_len));
  o.truncation = parse_enum<Truncation>(vm["truncation"].as<std::string>(), "--truncation");
  o.skip_invalid = vm.count("skip-invalid") > 0;
  if (vm.count("html")) o.html_path = vm["html"].as<std::string>();
  o.colour = Progress::stdout_is_terminal() && !vm.count("plain");
  run_inspect(o, std::cout);
  return 0;
}

int cmd_tokenizer(const std::vector<std::string>& args) {
  po::options_description options("tokenizer train options");
  options.add_options()("help,h", "show this help")
      ("action", po::value<std::string>()->required(), "train")
      ("data", po::value<std::string>()->required(), "JSONL (any supported format) or a plain text file")
      ("vocab", po::value<int>()->default_value(8000), "vocabulary size")
      ("type", po::value<std::string>()->default_value("bpe"), "bpe | unigram")
      ("out", po::value<std::string>()->required(), "the model file to write, e.g. tok.model")
      ("user-symbols", po::value<std::string>(), "comma-separated strings kept as single tokens (e.g. <|im_start|>,<|im_end|>)");
  po::positional_options_description positional;
  positional.add("action", 1).add("data", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: masklab tokenizer train DATA --vocab N --type bpe|unigram --out tok.model\n"
      "\n"
      "Trains a SentencePiece model on the text of DATA (every message of a JSONL\n"
      "file, or the lines of a text file), with <unk>=0 <s>=1 </s>=2 <pad>=3 and\n"
      "byte fallback, so any UTF-8 text encodes. Use it with --set data.tokenizer=tok.model.";
  if (!parse_options(args, options, positional, vm, usage)) return 0;
  if (vm["action"].as<std::string>() != "train") throw UserError("tokenizer: unknown action '" + vm["action"].as<std::string>() + "' (expected train)");
  const std::string type = vm["type"].as<std::string>();
  if (type != "bpe" && type != "unigram") throw UserError("--type must be bpe or unigram, got '" + type + "'");
  TokenizerTrainOptions o;
  o.data = vm["data"].as<std::string>();
  o.vocab_size = vm["vocab"].as<int>();
  o.type = type;
  o.out = vm["out"].as<std::string>();
  if (vm.count("user-symbols")) o.user_symbols = vm["user-symbols"].as<std::string>();
  const auto summary = train_tokenizer(o);
  std::cout << summary << "\n";
  return 0;
}

// True for a part of a --strategies list that can only be an argument of
// the spec before it: a number, key=value, or a parameter choice (cosine).
bool continues_spec(const std::string& part) {
  if (part.find(':') != std::string::npos) return false;  // name:args begins a spec
  if (part.find('=') != std::string::npos) return true;
  if (std::string("0123456789.+-").find(part[0]) != std::string::npos) return true;
  const std::string lower = to_lower(part);
  for (const auto& e : StrategyRegistry::instance().entries()) {
    for (const auto& p : e.params) {
      if (std::find(p.choices.begin(), p.choices.end(), lower) != p.choices.end()) return true;
    }
  }
  return false;
}

// "weighted:0.1,system=0,wit:0.5,1,full" -> {"weighted:0.1,system=0", "wit:0.5,1", "full"}.
// Specs have commas of their own, so a comma begins a new spec only where
// something other than an argument follows it.
std::vector<std::string> split_strategy_list(const std::string& list) {
  std::vector<std::string> specs;
  for (const auto& part : split(list, ',')) {
    if (part.empty()) continue;
    if (!specs.empty() && continues_spec(part)) {
      specs.back() += "," + part;
    } else {
      specs.push_back(part);
    }
  }
  return specs;
}

int cmd_bench(const std::vector<std::string>& args) {
  po::options_description options("bench options");
  options.add_options()("help,h", "show this help");
  add_config_options(options);
  options.add_options()
      ("strategies", po::value<std::string>()->default_value("completion_only,full,weighted:0.1"),
       "comma-separated specs to measure; a comma followed by a number, key=value or a choice "
       "(cosine) continues the spec before it, so weighted:0.1,system=0,wit:0.5,1,full is three specs")
      ("steps", po::value<int>()->default_value(20), "timed optimizer steps per strategy")
      ("warmup", po::value<int>()->default_value(3), "untimed steps first")
      ("device", po::value<std::string>(), "auto | cpu | cuda | cuda:N")
      ("export", po::value<std::string>(), "write initial weights, every step's examples and losses for bench/reference_train.py")
      ("json", po::value<std::string>(), "also write the JSON result to this file")
      ("profile", po::value<std::string>(), "write a Chrome trace of the timed steps to PREFIX.<strategy>.json")
      ("decode-tokens", po::value<int>()->default_value(64),
       "new tokens per prompt when timing greedy decoding of 16 held-out prompts with and without the KV cache "
       "(the last strategy's model; the tokens must agree); 0 = skip");
  po::variables_map vm;
  const std::string usage =
      "usage: masklab bench [--config FILE] [--set key=value]... [--strategies a,b] [--steps N] [--export DIR]\n"
      "\n"
      "Measures the real training step per strategy: tokens/s (all and loss-bearing),\n"
      "step time, peak memory (RSS on CPU, the allocator's peak on CUDA) and MFU\n"
      "(model FLOP/s over a square-matmul peak measured in the same process),\n"
      "then greedy decoding tokens/s with and without the KV cache.\n"
      "Prints JSON, then a one-line summary.";
  if (!parse_options(args, options, {}, vm, usage)) return 0;
  Config config = resolve_config(vm);
  if (vm.count("device")) apply_value(config, "train.device", vm["device"].as<std::string>(), "--device");
  BenchOptions o;
  o.strategies = split_strategy_list(vm["strategies"].as<std::string>());
  o.steps = vm["steps"].as<int>();
  o.warmup_steps = vm["warmup"].as<int>();
  if (vm.count("export")) o.export_dir = vm["export"].as<std::string>();
  if (vm.count("profile")) o.profile = vm["profile"].as<std::string>();
  o.decode_tokens = vm["decode-tokens"].as<int>();
  const auto result = run_bench(config, o);
  std::cout << result.dump(2) << "\n";
  if (vm.count("json")) write_file_atomic(vm["json"].as<std::string>(), result.dump(2) + "\n");
  std::string summary = fmt::format("bench {} ({} threads, matmul peak {:.1f} GFLOP/s):", result["device"].get<std::string>(),
                                    result["threads"].get<int>(), result["matmul_peak_flops"].get<double>() / 1e9);
  for (const auto& [spec, r] : result["strategies"].items()) {
    summary += fmt::format("  {} {:.0f} tok/s ({:.0f} loss tok/s) {:.1f} ms/step mfu {:.1f}% step-mem {:.0f} MB", spec,
                           r["tokens_per_second"].get<double>(), r["loss_tokens_per_second"].get<double>(),
                           1e3 * r["step_seconds"].get<double>(), 100 * r["mfu"].get<double>(),
                           r["step_memory_mb"].get<double>());
  }
  if (result.contains("decode")) {
    const auto& d = result["decode"];
    std::cout << fmt::format("decode tokens/s cache={:.0f} nocache={:.0f} ({} prompts x {} new tokens, greedy)\n",
                             d["cache_tokens_per_second"].get<double>(), d["nocache_tokens_per_second"].get<double>(),
                             d["prompts"].get<int>(), d["new_tokens"].get<int>());
  }
  std::cout << summary << "\n";
  return 0;
}

int cmd_strategies(const std::vector<std::string>& args) {
  po::options_description options("strategies options");
  options.add_options()("help,h", "show this help");
  po::variables_map vm;
  if (!parse_options(args, options, {}, vm, "usage: masklab strategies\n\nLists every registered strategy."))
    return 0;
  const auto& registry = StrategyRegistry::instance();
  for (const auto& e : registry.entries()) {
    std::string aliases;
    for (const auto& a : e.aliases) aliases += (aliases.empty() ? " (alias: " : ", ") + a;
    if (!aliases.empty()) aliases += ")";
    std::cout << e.usage() << aliases << "\n    " << e.description << "\n";
    for (const auto& p : e.params) {
      std::string def;
      if (p.default_value && !p.default_value->empty()) def = " [default " + *p.default_value + "]";
      std::cout << fmt::format("    {:<10} {}{}\n", p.name, p.help, def);
    }
  }
  std::cout << "\noptions for every strategy (key=value after the parameters):\n"
               "    template=prompt|completion|zero   how template tokens weigh (default prompt)\n"
               "    eos=all|last                      train every assistant turn's end marker, or only the last\n"
               "\nexamples: weighted:0.1   wit:0.05,1   scheduled:1,0,cosine   completion_only:eos=last\n";
  return 0;
}

int cmd_tasks(const std::vector<std::string>& args) {
  po::options_description options("tasks options");
  options.add_options()("help,h", "show this help");
  po::variables_map vm;
  if (!parse_options(args, options, {}, vm, "usage: masklab tasks\n\nLists the built-in tasks.")) return 0;
  for (const auto& t : builtin_tasks()) {
    std::cout << fmt::format("{:<8} {:<26} {}\n", t.name, t.shape, t.description);
  }
  return 0;
}

int cmd_score(const std::vector<std::string>& args) {
  po::options_description options("score options");
  options.add_options()("help,h", "show this help");
  add_config_options(options);
  options.add_options()
      ("model", po::value<std::string>()->required(), "model folder: config.json + safetensors (saved by --save-model, or Hugging Face)")
      ("data", po::value<std::string>()->required(), "JSONL file in any format masklab reads")
      ("out", po::value<std::string>()->required(), "FILE.jsonl: one line per example")
      ("tokens", "also write each example's ids, label roles and per-label NLL");
  po::positional_options_description positional;
  positional.add("model", 1).add("data", 1);
  po::variables_map vm;
  const std::string usage =
      "usage: masklab score MODEL DATA --out FILE.jsonl [--config F] [--set key=value]... [--tokens]\n"
      "\n"
      "Teacher-forced NLL of every example under MODEL, with the tokenizer (MODEL's\n"
      "unless data.tokenizer is set), template and truncation a run would use. Per\n"
      "example: index, task, prompt_tokens, completion_tokens, prompt_nll and\n"
      "completion_nll (sums over the labels of user/system and assistant/end-marker\n"
      "roles, as the evaluator counts them).";
  if (!parse_options(args, options, positional, vm, usage)) return 0;
  const Config config = resolve_config(vm, vm["model"].as<std::string>());
  ScoreOptions o;
  o.data = vm["data"].as<std::string>();
  o.out = vm["out"].as<std::string>();
  o.tokens = vm.count("tokens") > 0;
  run_score(config, o);
  return 0;
}

int cmd_config(const std::vector<std::string>& args) {
  po::options_description options("config options");
  options.add_options()("help,h", "show this help");
  add_config_options(options);
  po::variables_map vm;
  const std::string usage = "usage: masklab config [--config FILE.yaml] [--set key=value]...\n\n"
                            "Prints the resolved config as YAML.\n\n" + config_keys_help();
  if (!parse_options(args, options, {}, vm, usage)) return 0;
  const Config config = resolve_config(vm);
  validate(config);
  std::cout << to_yaml(config);
  return 0;
}

}  // namespace

int cli_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "masklab " << MASKLAB_VERSION << " (" << MASKLAB_GIT_SHA << "), LibTorch " << MASKLAB_LIBTORCH_VERSION << "\n";
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  using Command = int (*)(const std::vector<std::string>&);
  const std::map<std::string, Command> commands = {
      {"train", cmd_train}, {"sweep", cmd_sweep}, {"report", cmd_report}, {"inspect", cmd_inspect},
      {"tokenizer", cmd_tokenizer}, {"bench", cmd_bench}, {"strategies", cmd_strategies}, {"tasks", cmd_tasks}, {"config", cmd_config}, {"score", cmd_score}};
  try {
    auto it = commands.find(command);
    if (it == commands.end()) {
      throw UserError("unknown command '" + command + "' (commands: train, sweep, report, inspect, tokenizer, bench, strategies, tasks, config, score)");
    }
    return it->second(args);
  } catch (const UserError& e) {
    std::fprintf(stderr, "masklab: error: %s\n", e.what());
    return e.exit_code();
  } catch (const c10::Error& e) {
    if (const auto oom = out_of_memory_message(e, command)) {
      std::fprintf(stderr, "masklab: error: %s\n", oom->c_str());
      return 1;
    }
    const std::string what = e.what_without_backtrace();
    std::fprintf(stderr, "masklab: internal error: %s\n", what.substr(0, what.find('\n')).c_str());
    return 1;
  } catch (const std::exception& e) {
    const auto oom = out_of_memory_message(e, command);
    std::fprintf(stderr, "masklab: error: %s\n", oom ? oom->c_str() : e.what());
    return 1;
  }
}

}  // namespace masklab
