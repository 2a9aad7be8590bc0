// harness/train/resume: the training checkpoint (its files, checksums and
// what it restores), and preemption end to end: SIGTERM, SIGUSR1 and SIGKILL
// at a step, then the same command again, against an uninterrupted run.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <iostream>
#include <random>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "harness/core/errors.hpp"
#include "harness/core/run_record.hpp"
#include "harness/train/resume.hpp"
#include "harness/train/run.hpp"
#include "harness/train/trainer.hpp"
#include "tests/system_helpers.hpp"

using namespace masklab;
namespace fs = std::filesystem;

namespace {

// Dropout (the generator's state matters), padded batches with bucketing
// (the order's state matters), eval points after any interruption.
Config resume_config(int steps) {
  Config c = test::tiny_config();
  c.model.dropout = 0.1;
  c.data.packing = false;
  c.data.bucketing = true;
  c.train.steps = steps;
  c.train.warmup_steps = 3;
  c.train.eval_every = std::max(1, steps / 10);
  c.train.log_every = 1;  // a log line per step: what the tests watch for
  return c;
}

// metrics.json without the fields that measure time or the process (the
// measured peak memory): the one list of what may differ between an
// interrupted run and an uninterrupted one.
nlohmann::json timeless(nlohmann::json m) {
  for (const char* key : {"train_seconds", "wall_seconds", "tokens_per_second", "decode_seconds",
                          "decode_tokens_per_second"}) {
    m.erase(key);
  }
  m["provenance"].erase("start_time");
  m["provenance"].erase("end_time");
  m["provenance"].erase("memory");
  return m;
}

// An independent FNV-1a 64 (the manifest's checksum), from its definition.
std::string fnv1a_reference(const std::string& bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// `masklab train --config DIR/c.yaml --out DIR/<out> --save-model`, as a sweep runs it.
struct Cli {
  test::TempDir dir;
  std::string config_path;
  explicit Cli(const Config& config) : config_path(dir.file("c.yaml")) { test::write_text(config_path, to_yaml(config)); }
  std::vector<std::string> args(const std::string& out) const {
    return {"train", "--config", config_path, "--out", dir.file(out), "--save-model"};
  }
  test::CommandResult train(const std::string& out, const std::string& config = "") const {
    return test::run_masklab("train --config " + (config.empty() ? config_path : config) + " --out " +
                             dir.file(out) + " --save-model");
  }
  // Another config file in the same folder.
  std::string write_config(const std::string& name, const Config& config) const {
    test::write_text(dir.file(name), to_yaml(config));
    return dir.file(name);
  }
};

// The lines of `out` that refuse a checkpoint.
std::vector<std::string> refusals(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("refused") != std::string::npos) lines.push_back(line);
  }
  return lines;
}

bool log_shows_step(const std::string& log, int step, int steps) {
  return fs::exists(log) && test::read_text(log).find(fmt::format("step {}/{} ", step, steps)) != std::string::npos;
}

// The step the run stopped at, from "preempted at step N".
int preempted_step(const std::string& out) {
  std::smatch m;
  REQUIRE(std::regex_search(out, m, std::regex("preempted at step (\\d+)")));
  return std::stoi(m[1]);
}

std::vector<std::string> checkpoints_in(const std::string& run_dir) {
  std::vector<std::string> names;
  if (!fs::exists(run_dir + "/checkpoint")) return names;
  for (const auto& e : fs::directory_iterator(run_dir + "/checkpoint")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The resumed run's record equals the uninterrupted one's: metrics but time, curve and weights byte for byte.
void check_same_as(const Cli& cli, const std::string& resumed, const std::string& reference,
                   bool kept_checkpoints = false) {
  const std::string a = cli.dir.file(resumed) + "/", b = cli.dir.file(reference) + "/";
  CHECK(timeless(read_json_file(a + "metrics.json")) == timeless(read_json_file(b + "metrics.json")));
  CHECK(test::read_text(a + "curve.jsonl") == test::read_text(b + "curve.jsonl"));
  CHECK(test::read_text(a + "model/model.safetensors") == test::read_text(b + "model/model.safetensors"));
  CHECK(test::read_text(a + "eval_examples.jsonl") == test::read_text(b + "eval_examples.jsonl"));
  // A finished run keeps none, unless train.keep_checkpoints.
  CHECK(checkpoints_in(cli.dir.file(resumed)).empty() == !kept_checkpoints);
}

// Signals a CLI run once its log shows `at`, expects exit 75 and a
// checkpoint, reruns it and compares with the uninterrupted run "ref".
void preempt_and_resume(const Cli& cli, int signal, int at, int steps) {
  const std::string log = cli.dir.file("run.log"), run_dir = cli.dir.file("run");
  const auto stopped = test::interrupt_masklab_when(cli.args("run"), log, [&] { return log_shows_step(log, at, steps); },
                                                    signal);
  INFO(stopped.out);
  REQUIRE(stopped.exit_code == kExitPreempted);
  const int step = preempted_step(stopped.out);
  CHECK(step >= at);
  REQUIRE(step < steps);  // the signal landed before the end: the resume has steps to do
  CHECK_FALSE(fs::exists(run_dir + "/metrics.json"));
  CHECK(checkpoints_in(run_dir) == std::vector<std::string>{fmt::format("step-{:08d}", step)});

  const auto resumed = cli.train("run");
  INFO(resumed.out);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.out, Catch::Contains(fmt::format("resuming from step {}", step)));
  check_same_as(cli, "run", "ref");
}

}  // namespace

TEST_CASE("a checkpoint's manifest checks every file, and it restores the job to continue bit for bit",
          "[fast][train][resume]") {
  test::TempDir dir;
  Config config = resume_config(6);
  const Dataset dataset = build_dataset(config);
  TrainJob a = make_train_job(config, dataset);
  for (int step = 0; step < 2; ++step) train_step(a, dataset, step);
  LoopState loop;
  loop.steps_done = 2;
  loop.loss_since_log = torch::full({}, 1.25);
  loop.curve = {nlohmann::json{{"step", 0}, {"x", 1}}};
  save_checkpoint(dir.path(), a, loop);

  const std::string ckpt = dir.file("checkpoint/step-00000002");
  const auto manifest = read_json_file(ckpt + "/manifest.json");
  CHECK(manifest["format"] == kCheckpointFormat);
  for (const char* file : {"tensors.pt", "optimizer.pt", "state.json"}) {
    const std::string bytes = test::read_text(ckpt + "/" + file);
    CHECK(manifest["files"][file]["bytes"] == bytes.size());
    CHECK(manifest["files"][file]["fnv1a"] == fnv1a_reference(bytes));
  }
  const auto state = read_json_file(ckpt + "/state.json");
  CHECK(state["step"] == 2);
  CHECK(state["config_hash"] == checkpoint_config_hash(config));

  // What the uninterrupted job does next. (Dropout draws from the one global
  // generator, so the two jobs take their steps one after the other.)
  std::vector<float> losses_a;
  for (int s = 2; s < 4; ++s) losses_a.push_back(train_step(a, dataset, s).loss.item<float>());

  // A fresh job (as a new process builds it) resumes and takes the same steps.
  TrainJob b = make_train_job(config, dataset);
  LoopState restored;
  std::vector<std::string> refused;
  const auto step = resume_from_checkpoint(dir.path(), b, restored, [&](const std::string& l) { refused.push_back(l); });
  REQUIRE(step == 2);
  CHECK(refused.empty());
  CHECK(restored.curve == loop.curve);
  CHECK(restored.loss_since_log.item<double>() == 1.25);
  for (int s = 2; s < 4; ++s) CHECK(train_step(b, dataset, s).loss.item<float>() == losses_a[s - 2]);
  CHECK(b.order_hash.value() == a.order_hash.value());
  const auto pa = a.model->parameters(), pb = b.model->parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(torch::equal(pa[i], pb[i]));
}

TEST_CASE("a run preempted at any step boundary resumes to the uninterrupted run's numbers", "[slow][train][resume]") {
  test::TempDir dir;
  const Config config = resume_config(8);
  const Dataset dataset = build_dataset(config);
  TrainOptions options;
  options.save_model = true;
  options.out_dir = dir.file("ref");
  const auto reference = train_run(config, dataset, options);
  const std::string ref_model = test::read_text(dir.file("ref/model/model.safetensors"));
  for (int stop_at : {0, 1, 4, 5, 8}) {  // 4: right after an eval point; 8: after the last step
    INFO("preempted at step " << stop_at);
    const std::string out = dir.file(fmt::format("at{}", stop_at));
    options.out_dir = out;
    int boundaries = 0;
    options.preempt_requested = [&] { return boundaries++ == stop_at; };
    const auto first = train_run(config, dataset, options);
    REQUIRE(first["status"] == "preempted");
    CHECK(first["steps"] == stop_at);
    CHECK_FALSE(fs::exists(out + "/metrics.json"));
    options.preempt_requested = nullptr;
    const auto resumed = train_run(config, dataset, options);
    CHECK(timeless(resumed) == timeless(reference));
    CHECK(test::read_text(out + "/curve.jsonl") == test::read_text(dir.file("ref/curve.jsonl")));
    CHECK(test::read_text(out + "/model/model.safetensors") == ref_model);
  }
}

TEST_CASE("SIGTERM at a random step resumes to a bit-identical result", "[slow][train][resume]") {
  const int steps = 200;
  std::mt19937 rng(20261202u);
  const int at = std::uniform_int_distribution<int>(3, steps / 2)(rng);
  std::cout << "SIGTERM once the log shows step " << at << " of " << steps << " (std::mt19937 seed 20261202)\n";
  const Cli cli(resume_config(steps));
  REQUIRE(cli.train("ref").exit_code == 0);
  preempt_and_resume(cli, SIGTERM, at, steps);
}

TEST_CASE("SIGUSR1 behaves as SIGTERM: checkpoint, exit 75, bit-identical resume", "[slow][train][resume]") {
  const int steps = 120;
  const Cli cli(resume_config(steps));
  REQUIRE(cli.train("ref").exit_code == 0);
  preempt_and_resume(cli, SIGUSR1, 17, steps);
}

TEST_CASE("SIGKILL between checkpoints resumes from the last one to a bit-identical result", "[slow][train][resume]") {
  const int steps = 200;
  Config config = resume_config(steps);
  const Cli reference(config);
  config.train.checkpoint_every = 3;  // changes no number, so the reference above needs none
  const Cli cli(config);
  REQUIRE(test::run_masklab("train --config " + reference.config_path + " --out " + cli.dir.file("ref") +
                            " --save-model").exit_code == 0);
  std::mt19937 rng(7u);
  int at = std::uniform_int_distribution<int>(10, steps / 2)(rng);
  if (at % 3 == 0) ++at;  // between checkpoints
  std::cout << "SIGKILL once the log shows step " << at << " of " << steps << " (std::mt19937 seed 7)\n";
  const std::string log = cli.dir.file("run.log"), run_dir = cli.dir.file("run");
  const auto killed =
      test::interrupt_masklab_when(cli.args("run"), log, [&] { return log_shows_step(log, at, steps); }, SIGKILL);
  INFO(killed.out);
  REQUIRE(killed.exit_code == -1);  // died of the signal
  // The kill may land inside a checkpoint write: a temporary folder (ignored)
  // or the previous checkpoint not yet removed may be left beside the newest.
  std::vector<std::string> left;
  for (const auto& name : checkpoints_in(run_dir)) {
    if (name.rfind("step-", 0) == 0) left.push_back(name);
  }
  REQUIRE(!left.empty());
  CHECK(left.size() <= 2);
  const int step = std::stoi(left.back().substr(5));  // the newest: in place only once whole
  CHECK(step % 3 == 0);
  CHECK(step >= at - 3);

  const auto resumed = cli.train("run");
  INFO(resumed.out);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.out, Catch::Contains(fmt::format("resuming from step {}", step)));
  check_same_as(cli, "run", "ref");  // the curve too: no point is there twice
}

TEST_CASE("a corrupt or truncated checkpoint is refused with one line and the run restarts as documented",
          "[slow][train][resume]") {
  Config config = resume_config(12);
  config.train.checkpoint_every = 4;
  config.train.keep_checkpoints = true;  // steps 4 and 8 stay after the run
  const Cli cli(config);
  REQUIRE(cli.train("ref").exit_code == 0);
  REQUIRE(cli.train("run").exit_code == 0);
  const std::string ckpt = cli.dir.file("run/checkpoint/");
  REQUIRE(checkpoints_in(cli.dir.file("run")) == std::vector<std::string>{"step-00000004", "step-00000008"});
  // Truncated newest: refused, the one before it resumes.
  const std::string tensors = test::read_text(ckpt + "step-00000008/tensors.pt");
  test::write_text(ckpt + "step-00000008/tensors.pt", tensors.substr(0, tensors.size() / 2));
  auto out = cli.train("run");
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  auto lines = refusals(out.out);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains(ckpt + "step-00000008 refused: tensors.pt has") &&
                           Catch::Contains("(truncated?); trying the one before it"));
  CHECK_THAT(out.out, Catch::Contains("resuming from step 4"));
  check_same_as(cli, "run", "ref", /*kept_checkpoints=*/true);

  // Both damaged (no manifest: an unfinished write; a flipped byte): refused one by one, then step 0.
  REQUIRE(checkpoints_in(cli.dir.file("run")) == std::vector<std::string>{"step-00000004", "step-00000008"});
  fs::remove(ckpt + "step-00000008/manifest.json");
  std::string optimizer = test::read_text(ckpt + "step-00000004/optimizer.pt");
  optimizer[optimizer.size() / 2] ^= 0x01;
  test::write_text(ckpt + "step-00000004/optimizer.pt", optimizer);
  out = cli.train("run");
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  lines = refusals(out.out);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "masklab: checkpoint " + ckpt +
                        "step-00000008 refused: no readable manifest.json (an unfinished write?); trying the one before it");
  CHECK(lines[1] == "masklab: checkpoint " + ckpt + "step-00000004 refused: optimizer.pt fails its checksum; "
                                                    "starting from step 0");
  CHECK_THAT(out.out, !Catch::Contains("resuming from step"));
  check_same_as(cli, "run", "ref", /*kept_checkpoints=*/true);
}

TEST_CASE("a checkpoint from another config is refused, one that differs only in threads resumes",
          "[slow][train][resume]") {
  Config config = resume_config(12);
  config.train.checkpoint_every = 4;
  config.train.keep_checkpoints = true;
  const Cli cli(config);
  Config other = config;
  other.train.lr *= 0.5;
  const std::string other_path = cli.write_config("other.yaml", other);
  REQUIRE(cli.train("run").exit_code == 0);
  REQUIRE(cli.train("other_ref", other_path).exit_code == 0);

  const auto out = cli.train("run", other_path);
  INFO(out.out);
  REQUIRE(out.exit_code == 0);
  const auto lines = refusals(out.out);
  REQUIRE(lines.size() == 2);
  for (const auto& line : lines) CHECK_THAT(line, Catch::Contains("refused: it belongs to another config"));
  CHECK_THAT(lines[1], Catch::EndsWith("starting from step 0"));
  check_same_as(cli, "run", "other_ref", /*kept_checkpoints=*/true);

  Config threads = other;
  threads.train.threads = 2;  // speed, not identity (docs/design.md, invariant 9)
  const auto resumed = cli.train("run", cli.write_config("threads.yaml", threads));
  INFO(resumed.out);
  CHECK(resumed.exit_code == 0);
  CHECK(refusals(resumed.out).empty());
  CHECK_THAT(resumed.out, Catch::Contains("resuming from step 8"));
}

TEST_CASE("a checkpoint's tensors load in PyTorch and hold the weights model.safetensors holds", "[slow][train][resume]") {
  test::TempDir dir;
  Config config = resume_config(4);
  config.train.keep_checkpoints = true;
  const Dataset dataset = build_dataset(config);
  TrainOptions options;
  options.save_model = true;
  options.out_dir = dir.file("run");
  int boundaries = 0;
  options.preempt_requested = [&] { return boundaries++ == 4; };  // after the last step: the final weights
  REQUIRE(train_run(config, dataset, options)["status"] == "preempted");
  options.preempt_requested = nullptr;
  REQUIRE(train_run(config, dataset, options)["status"] == "ok");  // resumes at 4, writes model/, keeps the checkpoint

  const auto r = test::run_venv_python("checkpoint_tensors.py",
                                       dir.file("run/checkpoint/step-00000004") + " " + dir.file("run/model"));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  const auto got = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  CHECK(got["elements_checkpoint"] == got["elements_saved"]);
  CHECK(got["sum_sq_checkpoint"].get<double>() == Approx(got["sum_sq_saved"].get<double>()).epsilon(1e-12));
  CHECK(got["other_keys"] == nlohmann::json{"loss_since_log", "order", "rng.cpu"});
  CHECK(got["order_dtype"] == "torch.int32");
  CHECK(got["order_len"] == dataset.train.size());
  CHECK(got["rng_cpu_bytes"].get<int>() > 0);
}

TEST_CASE("a checkpoint that does not fit on the disk leaves no partial copy and the run is recorded failed, naming it",
          "[slow][train][resume][errors]") {
  test::SmallDisk disk(96);  // room for the record, not for the weights and AdamW state of a checkpoint
  if (!disk.mounted()) {
    WARN("skipped: mounting a tmpfs needs root");
    return;
  }
  test::TempDir cache;
  const std::string out = disk.path() + "/run";
  const auto r = test::run_masklab(
      "train --strategy full --out " + out + " --cache " + cache.path() +
      " --set model.n_layers=1 --set model.d_model=64 --set model.n_heads=2 --set model.max_seq_len=96"
      " --set train.steps=4 --set train.checkpoint_every=2 --set train.eval_every=0 --set train.threads=1"
      " --set data.tasks=count --set data.train_size=16 --set data.eval_size=4 --set data.train_eval_size=4"
      " --set eval.samples=0");
  INFO(r.out);
  CHECK(r.exit_code == 1);
  const auto m = read_json_file(out + "/metrics.json");
  CHECK(m["status"] == "failed");
  CHECK_THAT(m["error"].get<std::string>(), Catch::Matches("cannot write " + out + "/checkpoint/\\..*: No space left on device"));
  // Nothing of the failed copy is left behind in checkpoint/.
  if (fs::exists(out + "/checkpoint")) CHECK(fs::is_empty(out + "/checkpoint"));
}
