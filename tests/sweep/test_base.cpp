// harness/sweep/base: the `pretrain:` block of a sweep spec (a stage or a
// checkpoint), the stage's hash, running it once and sharing it.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>
#include <sstream>
#include <unordered_set>

#include "harness/core/errors.hpp"
#include "harness/core/run_record.hpp"
#include "harness/data/tasks.hpp"
#include "harness/sweep/sweep.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
namespace fs = std::filesystem;

namespace {

// Lines 1-4: the stage; then the runs' base from line 5 on.
std::string stage_spec(int steps, int text_seed, const std::string& rest) {
  return "pretrain:\n"
         "  model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 96}\n"
         "  train: {steps: " + std::to_string(steps) + ", eval_every: 0, threads: 1, batch_size: 8}\n"
         "  text: {tasks: [count, reverse], documents: 60, seed: " + std::to_string(text_seed) + "}\n"
         "base:\n"
         "  train: {steps: 3, eval_every: 0, threads: 1, batch_size: 4}\n"
         "  data: {tasks: [count, reverse], train_size: 20, eval_size: 4, train_eval_size: 4}\n"
         "  eval: {samples: 0}\n" + rest;
}

const char* kGrid = "grid:\n  strategy: [full, completion_only]\n  seed: [1, 2]\n";

SweepSpec load(const test::TempDir& dir, const std::string& name, const std::string& text) {
  test::write_text(dir.file(name), text);
  return load_sweep_spec(dir.file(name));
}

std::string error_of(const test::TempDir& dir, const std::string& name, const std::string& text) {
  return test::user_error_of([&] { load(dir, name, text); });
}

// FNV-1a 64 as its definition gives it, for the checkpoint hash.
std::string fnv1a_by_definition(const std::string& bytes) {
  unsigned long long h = 14695981039346656037ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx", h);
  return out;
}

}  // namespace

TEST_CASE("pretrain: a stage gives every run its model and base, with the world text", "[fast][sweep][pretrain]") {
  test::TempDir dir;
  const SweepSpec spec = load(dir, "s.yaml", stage_spec(5, 7, kGrid));
  REQUIRE(spec.base);
  const SweepBase& base = *spec.base;
  CHECK(base.kind == BaseKind::kPretrain);
  CHECK(base.hash.size() == 16);
  CHECK(base.stage.strategy == "full");  // the stage's default
  CHECK(base.stage.train.steps == 5);
  CHECK(base.stage.data.format == DataFormat::kText);
  REQUIRE(spec.runs.size() == 4);
  std::set<std::string> ids;
  for (const auto& r : spec.runs) {
    CHECK(r.config.model.d_model == 32);  // the stage's model, not the default 128
    CHECK(r.config.model.n_layers == 1);
    CHECK(r.config.model.init_from == "base:" + base.hash);
    ids.insert(r.id);
  }
  CHECK(ids.size() == 4);
  // The corpus: 60 documents per task, none about a prompt the runs train or are scored on.
  std::unordered_set<std::string> fine_tuning;
  for (const auto& task : {"count", "reverse"}) {
    const TaskSplit split = generate_task(task, 20, 4, 1234);
    for (const auto* part : {&split.train, &split.eval}) {
      for (const auto& ex : *part) fine_tuning.insert(ex.messages.front().content);
    }
  }
  std::istringstream lines(base.corpus);
  int documents = 0;
  for (std::string line; std::getline(lines, line); ++documents) {
    const auto doc = nlohmann::json::parse(line);
    const std::string text = doc["text"];
    CHECK((doc["task"] == "count" || doc["task"] == "reverse"));
    if (doc["task"] == "reverse") CHECK(fine_tuning.count("reverse " + text.substr(0, text.find(' '))) == 0);
  }
  CHECK(documents == 120);
  // sweep.json names the base in its header and in every run.
  const auto manifest = sweep_manifest(spec);
  CHECK(manifest["base"]["kind"] == "pretrain");
  CHECK(manifest["base"]["hash"] == base.hash);
  CHECK(manifest["base"]["path"] == "cache/base-" + base.hash + "/model");
  CHECK(manifest["base"]["config"]["train"]["steps"] == 5);
  CHECK(manifest["base"]["config"]["model"]["d_model"] == 32);
  CHECK(manifest["base"]["text"]["documents"] == 60);
  for (const auto& r : manifest["runs"]) CHECK(r["base_hash"] == base.hash);
}

TEST_CASE("pretrain: a checkpoint's hash is the FNV-1a of its bytes", "[fast][sweep][pretrain]") {
  test::TempDir dir;
  test::write_text(dir.file("model.pt"), "a");
  const std::string rest = "base:\n  train: {steps: 3}\n  data: {tasks: [count], train_size: 20, eval_size: 4}\n" +
                           std::string(kGrid);
  const SweepSpec spec = load(dir, "c.yaml", "pretrain: {checkpoint: " + dir.file("model.pt") + "}\n" + rest);
  REQUIRE(spec.base);
  CHECK(spec.base->kind == BaseKind::kCheckpoint);
  CHECK(spec.base->hash == "af63dc4c8601ec8c");  // FNV-1a 64 of "a", the published test vector
  CHECK(spec.base->hash == fnv1a_by_definition("a"));
  CHECK(base_model_path(*spec.base, "out") == dir.file("model.pt"));
  // Another checkpoint, other runs.
  test::write_text(dir.file("other.pt"), "ab");
  const SweepSpec other = load(dir, "d.yaml", "pretrain: {checkpoint: " + dir.file("other.pt") + "}\n" + rest);
  CHECK(other.base->hash == fnv1a_by_definition("ab"));
  CHECK(other.runs[0].id != spec.runs[0].id);
  // A folder (a Hugging Face model directory): its files' names and bytes.
  fs::create_directories(dir.file("hf"));
  test::write_text(dir.file("hf/config.json"), "{}");
  const std::string folder_hash = content_hash(dir.file("hf"));
  test::write_text(dir.file("hf/model.safetensors"), "x");
  CHECK(content_hash(dir.file("hf")) != folder_hash);
}

TEST_CASE("pretrain: bad blocks and runs that are not the base's model name file:line and the key",
          "[fast][sweep][pretrain][errors]") {
  test::TempDir dir;
  CHECK_THAT(error_of(dir, "a.yaml", stage_spec(5, 7, kGrid).replace(10, 0, "  trian: {steps: 3}\n")),
             Catch::Contains("a.yaml:2: unknown config key 'trian.steps'"));
  CHECK_THAT(error_of(dir, "b.yaml", "pretrain: {checkpoint: " + dir.file("nope.pt") + "}\n" + kGrid),
             Catch::Contains("b.yaml:1: pretrain.checkpoint: no such file or folder"));
  test::write_text(dir.file("m.pt"), "a");
  CHECK_THAT(error_of(dir, "c.yaml", "pretrain: {checkpoint: " + dir.file("m.pt") + ", train: {steps: 3}}\n" + kGrid),
             Catch::Contains("c.yaml:1: pretrain: checkpoint names an existing base"));
  CHECK_THAT(error_of(dir, "d.yaml", "pretrain:\n  text: {documents: 10, sed: 3}\n" + std::string(kGrid)),
             Catch::Contains("d.yaml:2: unknown key 'pretrain.text.sed'"));
  CHECK_THAT(error_of(dir, "e.yaml", "pretrain:\n  text: {documents: 10}\n  data: {train: x.jsonl}\n" + std::string(kGrid)),
             Catch::Contains("pretrain has both text and data.train"));
  CHECK_THAT(error_of(dir, "f.yaml", "pretrain: [1]\n" + std::string(kGrid)), Catch::Contains("f.yaml:1: pretrain must be"));
  // A run whose model differs from the stage's is an error naming the key.
  CHECK_THAT(error_of(dir, "g.yaml", stage_spec(5, 7, "grid:\n  model.d_model: [32, 64]\n")),
             Catch::Contains("g.yaml: run (model.d_model=64): model.d_model is 64 but the pretrained base has 32"));
  CHECK_THAT(error_of(dir, "h.yaml", stage_spec(5, 7, "conditions:\n  c:\n    a: {model: {init_from: x.pt}}\n")),
             Catch::Contains("model.init_from is set, but the spec's pretrain: block gives every run its base"));
  CHECK_THAT(error_of(dir, "i.yaml", stage_spec(5, 7, "grid:\n  data.tokenizer: [byte, x.model]\n")),
             Catch::Contains("data.tokenizer is 'x.model' but the pretrained base uses 'byte'"));
}

TEST_CASE("pretrain: the stage's hash follows its config and data, not paths or threads", "[fast][sweep][pretrain]") {
  test::TempDir dir;
  auto hash_of = [&](const std::string& name, const std::string& text) { return load(dir, name, text).base->hash; };
  const std::string h = hash_of("a.yaml", stage_spec(5, 7, kGrid));
  CHECK(hash_of("b.yaml", stage_spec(5, 7, kGrid)) == h);
  CHECK(hash_of("c.yaml", stage_spec(6, 7, kGrid)) != h);     // steps
  CHECK(hash_of("d.yaml", stage_spec(5, 8, kGrid)) != h);     // the text's seed: other data
  std::string threads = stage_spec(5, 7, kGrid);
  threads.replace(threads.find("threads: 1"), 10, "threads: 2");
  CHECK(hash_of("e.yaml", threads) == h);
  std::string more = stage_spec(5, 7, kGrid);
  more.replace(more.find("documents: 60"), 13, "documents: 61");
  CHECK(hash_of("f.yaml", more) != h);
  // The text is what is hashed: the runs' data changes it only through the
  // prompts it must leave out, so the hash is the same when none collided.
  std::string runs_data = stage_spec(5, 7, kGrid);
  runs_data.replace(runs_data.find("train_size: 20"), 14, "train_size: 25");
  CHECK((hash_of("g0.yaml", runs_data) == h) == (load(dir, "g1.yaml", runs_data).base->corpus ==
                                                   load(dir, "g2.yaml", stage_spec(5, 7, kGrid)).base->corpus));

  // A stage on its own text file: the file's content is in the hash, its path is not.
  auto file_stage = [&](const std::string& file) {
    return "pretrain:\n  data: {train: " + file + ", format: text}\n" + std::string(kGrid);
  };
  test::write_text(dir.file("one.jsonl"), "{\"text\": \"abc\"}\n{\"text\": \"def\"}\n");
  test::write_text(dir.file("two.jsonl"), "{\"text\": \"abc\"}\n{\"text\": \"def\"}\n");
  const std::string one = hash_of("g.yaml", file_stage(dir.file("one.jsonl")));
  CHECK(hash_of("h.yaml", file_stage(dir.file("two.jsonl"))) == one);
  test::write_text(dir.file("two.jsonl"), "{\"text\": \"abc\"}\n{\"text\": \"deg\"}\n");
  CHECK(hash_of("i.yaml", file_stage(dir.file("two.jsonl"))) != one);
}

namespace {

// Every run's same_job.init_hash (the hash of its weights before the first step).
std::set<std::string> init_hashes(const SweepSpec& spec, const std::string& out) {
  std::set<std::string> hashes;
  for (const auto& r : spec.runs) {
    const auto m = read_json_file(out + "/runs/" + r.id + "/metrics.json");
    CHECK(m["status"] == "ok");
    hashes.insert(m["same_job"]["init_hash"].get<std::string>());
  }
  return hashes;
}

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("a pretrain stage runs once, every run starts from it, a second sweep reuses it and a changed one reruns",
          "[slow][sweep][pretrain]") {
  test::TempDir dir;
  const std::string out = dir.file("out");
  const SweepSpec spec = load(dir, "s.yaml", stage_spec(4, 7, kGrid));
  const std::string bdir = out + "/cache/base-" + spec.base->hash;
  const std::string dry = "sweep " + dir.file("s.yaml") + " --out " + out + " --dry-run";
  CHECK_THAT(test::run_masklab(dry).out, Catch::Contains("base " + spec.base->hash + " (pretrain): to pretrain"));
  const auto first = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out + " --jobs 2");
  INFO(first.out);
  REQUIRE(first.exit_code == 0);
  CHECK(count_of(first.out, "pretrained in") == 1);
  REQUIRE(read_json_file(bdir + "/metrics.json")["status"] == "ok");
  CHECK(read_json_file(bdir + "/metrics.json")["steps"] == 4);
  CHECK(fs::exists(saved_model_path(bdir)));
  CHECK_FALSE(fs::exists(bdir + ".partial"));
  CHECK_THAT(test::run_masklab(dry).out, Catch::Contains("base " + spec.base->hash + " (pretrain): ready"));
  // Every run loaded the base: one initial-weights hash, and not the one a
  // random init of the same run gives.
  const auto hashes = init_hashes(spec, out);
  CHECK(hashes.size() == 1);
  for (const auto& r : spec.runs) {
    CHECK(test::read_text(out + "/runs/" + r.id + "/config.yaml").find(saved_model_path(bdir)) != std::string::npos);
  }
  const std::string runs_part = stage_spec(4, 7, kGrid).substr(stage_spec(4, 7, kGrid).find("base:\n") + 6);
  const SweepSpec fresh = load(dir, "fresh.yaml", "base:\n  model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 96}\n" +
                                                      runs_part);
  const auto random_init = test::run_masklab("sweep " + dir.file("fresh.yaml") + " --out " + dir.file("fresh"));
  REQUIRE(random_init.exit_code == 0);
  const auto fresh_hashes = init_hashes(fresh, dir.file("fresh"));
  CHECK(fresh_hashes.size() == 2);  // seeds 1 and 2: two random inits
  CHECK(fresh_hashes.count(*hashes.begin()) == 0);

  // Another sweep with the same stage into the folder: the base is reused, untouched.
  const auto stamp = fs::last_write_time(bdir + "/metrics.json");
  const SweepSpec more = load(dir, "more.yaml", stage_spec(4, 7, "grid:\n  strategy: [\"weighted:0.1\"]\n  seed: [1]\n"));
  CHECK(more.base->hash == spec.base->hash);
  const auto second = test::run_masklab("sweep " + dir.file("more.yaml") + " --out " + out);
  INFO(second.out);
  REQUIRE(second.exit_code == 0);
  CHECK_THAT(second.out, Catch::Contains("already pretrained, reused"));
  CHECK(count_of(second.out, "pretrained in") == 0);
  CHECK(fs::last_write_time(bdir + "/metrics.json") == stamp);
  CHECK(init_hashes(more, out) == hashes);

  // A changed stage is another base, trained anew.
  const SweepSpec changed = load(dir, "changed.yaml", stage_spec(5, 7, kGrid));
  REQUIRE(changed.base->hash != spec.base->hash);
  const auto third = test::run_masklab("sweep " + dir.file("changed.yaml") + " --out " + out);
  INFO(third.out);
  REQUIRE(third.exit_code == 0);
  CHECK(count_of(third.out, "pretrained in") == 1);
  CHECK(read_json_file(out + "/cache/base-" + changed.base->hash + "/metrics.json")["steps"] == 5);
  CHECK(init_hashes(changed, out) != hashes);

  // The report names the base and its hash, and runs.csv carries it.
  const auto report = test::run_masklab("report " + out);
  INFO(report.out);
  REQUIRE(report.exit_code == 0);
  const std::string html = test::read_text(out + "/report.html");
  CHECK_THAT(html, Catch::Contains(changed.base->hash));
  CHECK_THAT(html, Catch::Contains("pretrain"));
  CHECK_THAT(html, Catch::Contains("5 steps"));
  const std::string runs_csv = test::read_text(out + "/runs.csv");
  CHECK_THAT(runs_csv.substr(0, runs_csv.find('\n')), Catch::Contains("base_hash"));
  CHECK(count_of(runs_csv, changed.base->hash) == 4);
}

TEST_CASE("two shards on one folder share one base, trained once", "[slow][sweep][pretrain][shard]") {
  test::TempDir dir;
  const std::string out = dir.file("out");
  const SweepSpec spec = load(dir, "s.yaml", stage_spec(40, 7, kGrid));
  const std::string sweep = std::string(MASKLAB_BINARY) + " sweep " + dir.file("s.yaml") + " --out " + out;
  const auto both = test::run_shell("(" + sweep + " --shard 1/2 > " + dir.file("one.log") + " 2>&1 & " + sweep +
                                    " --shard 2/2 > " + dir.file("two.log") + " 2>&1 & wait)");
  const std::string logs = test::read_text(dir.file("one.log")) + test::read_text(dir.file("two.log"));
  INFO(logs);
  REQUIRE(both.exit_code == 0);
  CHECK(count_of(logs, "pretrained in") == 1);
  CHECK(count_of(logs, "already pretrained, reused") == 1);
  int bases = 0;
  for (const auto& e : fs::directory_iterator(out + "/cache")) {
    const std::string name = e.path().filename().string();
    if (name.rfind("base-", 0) == 0 && e.is_directory()) ++bases;
    CHECK(name.find(".partial") == std::string::npos);
  }
  CHECK(bases == 1);
  CHECK(init_hashes(spec, out).size() == 1);
}

TEST_CASE("a failed pretrain stage fails the sweep in one line and starts no run", "[slow][sweep][pretrain][failures]") {
  test::TempDir dir;
  const std::string out = dir.file("out");
  // Valid as a config; the file fails to load only when the stage trains.
  test::write_text(dir.file("bad.jsonl"), "{\"text\": \"fine\"}\nnot json\n");
  const SweepSpec spec = load(dir, "s.yaml",
                              "pretrain:\n  data: {train: " + dir.file("bad.jsonl") + ", format: text}\n"
                              "  model: {n_layers: 1, d_model: 32, n_heads: 2}\n" + std::string(kGrid));
  const auto r = test::run_masklab("sweep " + dir.file("s.yaml") + " --out " + out);
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(count_of(r.out, "the pretrain stage failed") == 1);
  CHECK_THAT(r.out, Catch::Contains("bad.jsonl:2"));
  for (const auto& run : spec.runs) CHECK_FALSE(fs::exists(out + "/runs/" + run.id + "/metrics.json"));
  CHECK_FALSE(fs::exists(out + "/cache/base-" + spec.base->hash));
}
