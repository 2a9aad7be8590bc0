#include "harness/sweep/base.hpp"

#include <sys/file.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include <yaml-cpp/yaml.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/hashing.hpp"
#include "harness/core/run_record.hpp"
#include "harness/core/yaml_file.hpp"
#include "harness/data/tasks.hpp"
#include "harness/sweep/process.hpp"
#include "strategies/registry.hpp"

namespace masklab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

WorldText parse_world_text(const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) throw UserError(yaml_location(path, node) + ": pretrain.text must map tasks, documents, seed");
  WorldText text;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const std::string where = yaml_location(path, kv.second);
    try {
      if (key == "tasks") {
        text.tasks = kv.second.IsSequence() ? kv.second.as<std::vector<std::string>>()
                                            : std::vector<std::string>{kv.second.as<std::string>()};
      } else if (key == "documents") {
        text.documents = kv.second.as<int>();
      } else if (key == "seed") {
        text.seed = kv.second.as<int>();
      } else {
        throw UserError(yaml_location(path, kv.first) + ": unknown key 'pretrain.text." + key +
                        "' (valid: tasks, documents, seed)");
      }
    } catch (const YAML::Exception&) {
      throw UserError(where + ": pretrain.text." + key + " expects " + (key == "tasks" ? "a list of tasks" : "an integer"));
    }
  }
  if (text.documents < 1) throw UserError(yaml_location(path, node) + ": pretrain.text.documents must be at least 1");
  return text;
}

// The stage's keys but `text`, merged over the defaults with full loss.
void parse_stage(SweepBase& base, const YAML::Node& value, const std::string& path) {
  base.stage.strategy = "full";  // pretraining trains every token unless the spec says otherwise
  YAML::Node config_keys(YAML::NodeType::Map);
  for (const auto& kv : value) {
    if (kv.first.as<std::string>() == "text") {
      base.world_text = true;
      base.text = parse_world_text(kv.second, path);
    } else {
      config_keys.force_insert(kv.first, kv.second);
    }
  }
  apply_yaml(base.stage, config_keys, path);
  if (base.world_text && !base.stage.data.train.empty()) {
    throw UserError(base.origin + ": pretrain has both text and data.train; the stage trains on one of them");
  }
  if (base.world_text) base.stage.data.format = DataFormat::kText;
  try {
    base.stage.strategy = make_strategy(base.stage.strategy)->spec();
    validate(base.stage);
  } catch (const UserError& e) {
    throw UserError(base.origin + ": pretrain stage: " + e.what());
  }
}

// Bytes of a file the stage reads, for its hash; "" for no file.
std::string file_bytes(const std::string& file, const std::string& key, const std::string& origin) {
  if (file.empty()) return "";
  if (!fs::exists(file)) throw UserError(origin + ": pretrain." + key + ": cannot read '" + file + "'");
  return content_hash(file);
}

std::string stage_hash(const SweepBase& base) {
  const Config& c = base.stage;
  Config keyed = c;  // paths leave the key; what they hold enters it
  keyed.train.threads = 0;
  keyed.data.train = keyed.data.eval = keyed.model.init_from = "";
  const bool byte_tokenizer = c.data.tokenizer == "byte";
  if (!byte_tokenizer) keyed.data.tokenizer = "";
  Fnv1a h;
  h.add("pretrain").add(to_yaml(keyed));
  h.add(base.world_text ? Fnv1a().add(base.corpus).hex() : file_bytes(c.data.train, "data.train", base.origin));
  h.add(file_bytes(c.data.eval, "data.eval", base.origin));
  h.add(byte_tokenizer ? "" : file_bytes(c.data.tokenizer, "data.tokenizer", base.origin));
  h.add(file_bytes(c.model.init_from, "model.init_from", base.origin));
  return h.hex();
}

// Every prompt the runs fine-tune or are scored on, from their built-in tasks.
std::unordered_set<std::string> fine_tuning_prompts(const std::vector<const Config*>& runs) {
  std::unordered_set<std::string> prompts;
  std::unordered_set<std::string> seen;  // data configs already generated
  for (const Config* c : runs) {
    if (!c->data.train.empty()) continue;
    for (const auto& task : c->data.tasks) {
      const std::string key = fmt::format("{}/{}/{}/{}", task, c->data.train_size, c->data.eval_size, c->data.seed);
      if (!seen.insert(key).second) continue;
      const TaskSplit split = generate_task(task, c->data.train_size, c->data.eval_size,
                                            static_cast<std::uint64_t>(c->data.seed));
      for (const auto* part : {&split.train, &split.eval}) {
        for (const auto& ex : *part) prompts.insert(ex.messages.front().content);
      }
    }
  }
  return prompts;
}

std::vector<std::string> runs_tasks(const std::vector<const Config*>& runs) {
  std::vector<std::string> tasks;
  for (const Config* c : runs) {
    for (const auto& t : c->data.tasks) {
      if (std::find(tasks.begin(), tasks.end(), t) == tasks.end()) tasks.push_back(t);
    }
  }
  return tasks;
}

// The world text as data.format=text JSONL, each document under its task's name.
std::string world_corpus(const WorldText& text, const std::unordered_set<std::string>& excluded) {
  std::string out;
  for (const auto& task : text.tasks) {
    for (const auto& s : task_world_text(task, text.documents, static_cast<std::uint64_t>(text.seed), excluded)) {
      out += json{{"text", s.text}, {"task", task}}.dump() + "\n";
    }
  }
  return out;
}

// A resolved config as JSON for sweep.json: YAML scalars become numbers and
// booleans where they read as such.
json yaml_to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    json out = json::object();
    for (const auto& kv : node) out[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return out;
  }
  if (node.IsSequence()) {
    json out = json::array();
    for (const auto& item : node) out.push_back(yaml_to_json(item));
    return out;
  }
  if (!node.IsScalar()) return nullptr;
  const std::string& text = node.Scalar();
  if (node.Tag() != "!" && !text.empty()) {  // "!" marks a quoted scalar: a string
    if (text == "true" || text == "false") return text == "true";
    const json number = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (number.is_number()) return number;
  }
  return text;
}

std::string corpus_path(const SweepBase& base, const std::string& out_dir) {
  return out_dir + "/cache/text-" + Fnv1a().add(base.corpus).hex() + ".jsonl";
}

}  // namespace

SweepBase parse_pretrain(const YAML::Node& value, const std::string& path) {
  SweepBase base;
  base.origin = yaml_location(path, value);
  if (!value.IsMap() || value.size() == 0) {
    throw UserError(base.origin + ": pretrain must be {checkpoint: PATH} or a stage {model, train, data, text, ...}");
  }
  if (const YAML::Node checkpoint = value["checkpoint"]) {
    if (value.size() != 1) {
      throw UserError(base.origin + ": pretrain: checkpoint names an existing base; a stage's keys cannot go with it");
    }
    base.kind = BaseKind::kCheckpoint;
    base.checkpoint = checkpoint.IsScalar() ? checkpoint.Scalar() : "";
    const std::string where = yaml_location(path, checkpoint);
    if (base.checkpoint.empty()) throw UserError(where + ": pretrain.checkpoint expects a path");
    if (!fs::exists(base.checkpoint)) throw UserError(where + ": pretrain.checkpoint: no such file or folder '" + base.checkpoint + "'");
    base.hash = content_hash(base.checkpoint);
    return base;
  }
  parse_stage(base, value, path);
  return base;
}

void finish_base(SweepBase& base, const std::vector<const Config*>& runs) {
  if (base.kind != BaseKind::kPretrain) return;
  if (base.world_text) {
    if (base.text.tasks.empty()) base.text.tasks = runs_tasks(runs);
    if (base.text.tasks.empty()) throw UserError(base.origin + ": pretrain.text: no tasks (the runs use none either)");
    try {
      base.corpus = world_corpus(base.text, fine_tuning_prompts(runs));
    } catch (const UserError& e) {
      throw UserError(base.origin + ": " + e.what());
    }
  }
  base.hash = stage_hash(base);
}

void check_run_matches_base(const SweepBase& base, const Config& run) {
  if (base.kind != BaseKind::kPretrain) return;
  const YAML::Node stage = to_yaml_node(base.stage)["model"];
  const YAML::Node mine = to_yaml_node(run)["model"];
  for (const auto& kv : stage) {
    const std::string key = kv.first.as<std::string>();
    if (key == "init_from") continue;
    const std::string theirs = YAML::Dump(kv.second), ours = YAML::Dump(mine[key]);
    if (theirs != ours) {
      throw UserError(fmt::format("model.{} is {} but the pretrained base has {} (a run fine-tunes the base's model)",
                                  key, ours, theirs));
    }
  }
  if (run.data.tokenizer != base.stage.data.tokenizer) {
    throw UserError(fmt::format("data.tokenizer is '{}' but the pretrained base uses '{}'", run.data.tokenizer,
                                base.stage.data.tokenizer));
  }
}

std::string base_init_token(const SweepBase& base) { return "base:" + base.hash; }

std::string saved_model_path(const std::string& run_dir) { return run_dir + "/model"; }

std::string base_dir(const SweepBase& base, const std::string& out_dir) {
  return out_dir + "/cache/base-" + base.hash;
}

std::string base_model_path(const SweepBase& base, const std::string& out_dir) {
  return base.kind == BaseKind::kCheckpoint ? base.checkpoint : saved_model_path(base_dir(base, out_dir));
}

json base_record(const SweepBase& base) {
  json record = {{"kind", std::string(name_of(base.kind))}, {"hash", base.hash}};
  if (base.kind == BaseKind::kCheckpoint) {
    record["path"] = base.checkpoint;
    return record;
  }
  const std::string dir = "cache/base-" + base.hash;  // relative to the sweep directory
  record["dir"] = dir;
  record["path"] = saved_model_path(dir);
  record["config"] = yaml_to_json(to_yaml_node(base.stage));
  if (base.world_text) {
    record["text"] = {{"tasks", base.text.tasks}, {"documents", base.text.documents}, {"seed", base.text.seed}};
  }
  return record;
}

std::string content_hash(const std::string& path) {
  Fnv1a h;
  if (!fs::is_directory(path)) {  // plain FNV-1a of the bytes
    const auto bytes = read_file(path);
    if (!bytes) throw UserError(path + ": cannot read");
    return h.add(bytes->data(), bytes->size()).hex();
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(path)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    const auto bytes = read_file(file.string());
    if (!bytes) throw UserError(file.string() + ": cannot read");
    h.add(fs::relative(file, path).generic_string()).add(*bytes);
  }
  return h.hex();
}

bool base_ready(const SweepBase& base, const std::string& out_dir) {
  if (base.kind == BaseKind::kCheckpoint) return true;
  const std::string dir = base_dir(base, out_dir);
  if (!fs::exists(dir + "/metrics.json") || !fs::exists(saved_model_path(dir))) return false;
  try {
    return read_json_file(dir + "/metrics.json").value("status", "") == "ok";
  } catch (const UserError&) {
    return false;
  }
}

namespace {

// An exclusive flock on a file, released when this goes out of scope or the process ends.
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_CREAT | O_RDWR, 0644)) {
    if (fd_ < 0) throw std::runtime_error("cannot open lock file " + path);
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool try_lock() { return ::flock(fd_, LOCK_EX | LOCK_NB) == 0; }
  // False when a signal interrupted the wait.
  bool lock() { return ::flock(fd_, LOCK_EX) == 0; }

 private:
  int fd_;
};

// Waits for the stage's child; on an interrupt it ends the child too. -1 when interrupted.
int wait_for_stage(pid_t pid) {
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return -1;
    if (interrupted()) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
      return -1;
    }
  }
  // A child killed by the same Ctrl-C as the sweep is an interrupt, not a failure.
  return interrupted() ? -1 : wstatus;
}

// Trains the stage into base-<hash>.partial/ and renames it into place; 0, 1 or 130 as prepare_base.
int train_stage(const SweepBase& base, const BaseRunOptions& options) {
  const std::string dir = base_dir(base, options.out_dir), partial = dir + ".partial";
  fs::remove_all(partial);
  fs::create_directories(partial);
  Config c = base.stage;
  if (base.world_text) {
    c.data.train = corpus_path(base, options.out_dir);
    write_file_atomic(c.data.train, base.corpus);
  }
  c.train.threads = options.threads;
  write_file_atomic(partial + "/config.yaml", to_yaml(c));
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = spawn_logged({options.masklab_binary, "train", "--config", partial + "/config.yaml", "--out", partial,
                                  "--cache", options.out_dir + "/cache", "--save-model"},
                                 partial + "/train.log", thread_environment(options.threads));
  if (wait_for_stage(pid) < 0) return 130;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string status;
  try {
    status = read_json_file(partial + "/metrics.json").value("status", "failed");
  } catch (const UserError&) {
    status = "";  // no record: it died
  }
  if (status != "ok" || !fs::exists(saved_model_path(partial))) {
    const std::string why = status.empty() || status == "ok" ? last_line(partial + "/train.log") : "status " + status;
    std::fprintf(stderr, "masklab sweep: the pretrain stage failed (%s); see %s/train.log; no run was started\n",
                 why.empty() ? "no record" : why.c_str(), partial.c_str());
    return 1;
  }
  fs::remove_all(dir);  // an unfinished leftover; a finished base never reaches here
  fs::rename(partial, dir);
  if (!options.quiet) std::printf("base %s: pretrained in %.1fs -> %s\n", base.hash.c_str(), seconds, dir.c_str());
  return 0;
}

}  // namespace

int prepare_base(const SweepBase& base, const BaseRunOptions& options) {
  if (base.kind == BaseKind::kCheckpoint) return 0;
  fs::create_directories(options.out_dir + "/cache");
  FileLock lock(base_dir(base, options.out_dir) + ".lock");
  if (!lock.try_lock()) {
    if (!options.quiet) std::printf("base %s: another sweep is pretraining it; waiting\n", base.hash.c_str());
    std::fflush(stdout);
    while (!lock.lock()) {
      if (interrupted()) return 130;
    }
  }
  if (base_ready(base, options.out_dir)) {
    if (!options.quiet) {
      std::printf("base %s: already pretrained, reused (%s)\n", base.hash.c_str(), base_dir(base, options.out_dir).c_str());
    }
    return 0;
  }
  std::fflush(stdout);
  return train_stage(base, options);
}

}  // namespace masklab
