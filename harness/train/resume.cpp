// The training checkpoint: written whole or not at all, checked byte for
// byte before anything is restored from it (harness/train/resume.hpp).
#include "harness/train/resume.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "harness/core/files.hpp"
#include "harness/core/hashing.hpp"
#include "harness/core/run_record.hpp"

namespace masklab {
namespace fs = std::filesystem;

namespace {

constexpr const char* kTensors = "tensors.pt";
constexpr const char* kOptimizer = "optimizer.pt";
constexpr const char* kState = "state.json";
constexpr const char* kManifest = "manifest.json";
constexpr const char* kStepPrefix = "step-";

std::string step_name(int step) { return fmt::format("{}{:08d}", kStepPrefix, step); }

[[noreturn]] void throw_os_error(const std::string& what, const std::string& path, int error) {
  throw std::runtime_error("cannot " + what + " " + path + ": " + std::strerror(error));
}

// Writes `bytes` to a new file and fsyncs it: the rename that publishes the
// checkpoint must not land before its contents do.
void write_synced(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_os_error("write", path, errno);
  size_t done = 0;
  int error = 0;
  while (done < bytes.size() && error == 0) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno != EINTR) error = errno;
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) throw_os_error("write", path, error);
}

// A rename is durable once its directory is synced.
void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_os_error("open", dir, errno);
  const int error = ::fsync(fd) != 0 ? errno : 0;
  ::close(fd);
  if (error != 0 && error != EINVAL) throw_os_error("sync", dir, error);  // EINVAL: the filesystem cannot
}

std::string fnv1a_hex(std::string_view bytes) { return Fnv1a().add(bytes.data(), bytes.size()).hex(); }

at::Generator default_generator(const torch::Device& device) {
  return at::globalContext().defaultGenerator(device.is_cuda() ? device : torch::Device(torch::kCPU));
}

torch::Tensor generator_state(const torch::Device& device) {
  at::Generator gen = default_generator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_generator_state(const torch::Device& device, const torch::Tensor& state) {
  at::Generator gen = default_generator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

std::string tensors_bytes(const TrainJob& job, const LoopState& loop, const ExampleOrder::State& order) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& item : job.model->named_parameters(/*recurse=*/true)) {
    dict.insert("model." + item.key(), item.value().detach().to(torch::kCPU).contiguous());
  }
  dict.insert("rng.cpu", generator_state(torch::kCPU));
  if (job.device.is_cuda()) dict.insert("rng.cuda", generator_state(job.device));
  dict.insert("order", torch::tensor(order.order, torch::kInt));
  dict.insert("loss_since_log", loop.loss_since_log.detach().to(torch::kCPU).clone());
  const std::vector<char> bytes = torch::pickle_save(dict);
  return std::string(bytes.data(), bytes.size());
}

std::string optimizer_bytes(const TrainJob& job) {
  std::ostringstream out;
  torch::save(*job.optimizer, out);
  return out.str();
}

nlohmann::json state_json(const TrainJob& job, const LoopState& loop, const ExampleOrder::State& order) {
  return {{"format", kCheckpointFormat},
          {"built_by", build_provenance()},
          {"config_hash", checkpoint_config_hash(job.config)},
          {"step", loop.steps_done},
          {"order_pos", order.pos},
          {"order_next_seed", order.next_seed},
          {"order_hash", job.order_hash.value()},
          {"tokens_trained", loop.tokens_trained},
          {"tokens_seen", loop.tokens_seen},
          {"tokens_total", loop.tokens_total},
          {"steps_since_log", loop.steps_since_log},
          {"last_logged_loss", std::isfinite(loop.last_logged_loss) ? nlohmann::json(loop.last_logged_loss)
                                                                    : nlohmann::json()},
          {"train_seconds", loop.train_seconds},
          {"curve", loop.curve}};
}

// The step-* folders of a checkpoint root, newest first.
std::vector<std::pair<int, std::string>> checkpoints_newest_first(const std::string& root) {
  std::vector<std::pair<int, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kStepPrefix, 0) != 0 || !entry.is_directory()) continue;
    try {
      found.emplace_back(std::stoi(name.substr(std::strlen(kStepPrefix))), entry.path().string());
    } catch (const std::exception&) {
      // not one of ours
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return found;
}

// A checkpoint, read and checked against its manifest, parsed, not yet applied.
struct CheckpointFiles {
  c10::impl::GenericDict tensors{c10::StringType::get(), c10::TensorType::get()};
  std::string optimizer;
  LoopState loop;  // all but loss_since_log, which is in `tensors`
  ExampleOrder::State order;
  std::uint64_t order_hash = 0;
};

// Why the files of `dir` cannot be trusted ("" when they can); fills `bytes`.
std::string check_manifest(const std::string& dir, std::map<std::string, std::string>& bytes) {
  const auto manifest_text = read_file(dir + "/" + kManifest);
  if (!manifest_text) return std::string("no readable ") + kManifest + " (an unfinished write?)";
  const auto manifest = nlohmann::json::parse(*manifest_text, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_object() || !manifest.contains("files") || !manifest["files"].is_object() ||
      !manifest.contains("format") || !manifest["format"].is_number_integer()) {
    return std::string(kManifest) + " is not a checkpoint manifest";
  }
  if (manifest["format"].get<int>() != kCheckpointFormat) {
    return fmt::format("format {} (this masklab reads format {})", manifest["format"].get<int>(), kCheckpointFormat);
  }
  for (const char* name : {kTensors, kOptimizer, kState}) {
    const auto content = read_file(dir + "/" + name);
    if (!content) return fmt::format("{} is missing or unreadable", name);
    const nlohmann::json entry = manifest["files"].value(name, nlohmann::json());
    if (!entry.is_object() || !entry.value("bytes", nlohmann::json()).is_number_unsigned() ||
        !entry.value("fnv1a", nlohmann::json()).is_string()) {
      return fmt::format("{} does not describe {}", kManifest, name);
    }
    if (content->size() != entry["bytes"].get<std::size_t>()) {
      return fmt::format("{} has {} bytes, the manifest says {} (truncated?)", name, content->size(),
                         entry["bytes"].get<std::size_t>());
    }
    if (fnv1a_hex(*content) != entry["fnv1a"].get<std::string>()) return fmt::format("{} fails its checksum", name);
    bytes[name] = *content;
  }
  return "";
}

// state.json's fields into `files`; "" or why not.
std::string parse_state(const std::string& text, const TrainJob& job, CheckpointFiles& files) {
  const auto st = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!st.is_object()) return std::string(kState) + " is not JSON";
  const std::string hash = checkpoint_config_hash(job.config);
  if (st.value("config_hash", nlohmann::json()) != hash) {
    return fmt::format("it belongs to another config (config hash {}, this run's {})",
                       st.value("config_hash", nlohmann::json("none")).dump(), hash);
  }
  try {
    LoopState& loop = files.loop;
    loop.steps_done = st.at("step").get<int>();
    loop.tokens_trained = st.at("tokens_trained").get<long long>();
    loop.tokens_seen = st.at("tokens_seen").get<long long>();
    loop.tokens_total = st.at("tokens_total").get<long long>();
    loop.steps_since_log = st.at("steps_since_log").get<int>();
    const auto& last = st.at("last_logged_loss");
    loop.last_logged_loss = last.is_null() ? std::nan("") : last.get<double>();
    loop.train_seconds = st.at("train_seconds").get<double>();
    loop.curve = st.at("curve").get<std::vector<nlohmann::json>>();
    files.order.pos = st.at("order_pos").get<std::size_t>();
    files.order.next_seed = st.at("order_next_seed").get<std::uint64_t>();
    files.order_hash = st.at("order_hash").get<std::uint64_t>();
  } catch (const nlohmann::json::exception& e) {
    return std::string(kState) + " is incomplete: " + e.what();
  }
  if (files.loop.steps_done < 0 || files.loop.steps_done > job.config.train.steps) {
    return fmt::format("its step {} is not of this run", files.loop.steps_done);
  }
  return "";
}

// Why `files` cannot resume `job` ("" when it can): every tensor present in its shape.
std::string check_fits(CheckpointFiles& files, const TrainJob& job) {
  for (const auto& item : job.model->named_parameters(/*recurse=*/true)) {
    const auto it = files.tensors.find("model." + item.key());
    if (it == files.tensors.end() || !it->value().isTensor()) return "it has no weight " + item.key();
    if (it->value().toTensor().sizes() != item.value().sizes()) return "its weight " + item.key() + " has another shape";
  }
  std::vector<std::string> needed = {"rng.cpu", "order", "loss_since_log"};
  if (job.device.is_cuda()) needed.push_back("rng.cuda");
  for (const auto& name : needed) {
    const auto it = files.tensors.find(name);
    if (it == files.tensors.end() || !it->value().isTensor()) return "it has no " + name;
  }
  if (files.tensors.at("rng.cpu").toTensor().sizes() != generator_state(torch::kCPU).sizes()) {
    return "its CPU generator state is not this LibTorch's";
  }
  const torch::Tensor order = files.tensors.at("order").toTensor().to(torch::kInt).contiguous();
  files.order.order.assign(order.data_ptr<std::int32_t>(), order.data_ptr<std::int32_t>() + order.numel());
  if (files.order.order.size() != job.order->state().order.size() || files.order.pos > files.order.order.size()) {
    return "its example order is not of this dataset";
  }
  return "";
}

// Reads the checkpoint in `dir` for `job`: "" and `files` filled, or why not.
std::string read_checkpoint(const std::string& dir, const TrainJob& job, CheckpointFiles& files) {
  std::map<std::string, std::string> bytes;
  if (std::string why = check_manifest(dir, bytes); !why.empty()) return why;
  if (std::string why = parse_state(bytes[kState], job, files); !why.empty()) return why;
  try {
    const std::vector<char> pickled(bytes[kTensors].begin(), bytes[kTensors].end());
    files.tensors = torch::pickle_load(pickled).toGenericDict();
  } catch (const c10::Error&) {
    return std::string(kTensors) + " does not load";
  }
  files.optimizer = std::move(bytes[kOptimizer]);
  return check_fits(files, job);
}

// AdamW's state from optimizer.pt, loaded into a twin over the same
// parameters so that a file that does not load leaves the job's optimizer as it was.
bool restore_optimizer(TrainJob& job, const std::string& bytes) {
  torch::optim::AdamW twin(job.optimizer->param_groups());
  try {
    std::istringstream in(bytes);
    torch::load(twin, in, job.device);
  } catch (const c10::Error&) {
    return false;
  }
  job.optimizer->state() = std::move(twin.state());
  return true;
}

// Applies a checked checkpoint (everything that could fail was checked before).
void restore(CheckpointFiles& files, TrainJob& job, LoopState& loop) {
  {
    torch::NoGradGuard no_grad;
    for (auto& item : job.model->named_parameters(/*recurse=*/true)) {
      item.value().copy_(files.tensors.at("model." + item.key()).toTensor());
    }
  }
  set_generator_state(torch::kCPU, files.tensors.at("rng.cpu").toTensor());
  if (job.device.is_cuda()) set_generator_state(job.device, files.tensors.at("rng.cuda").toTensor());
  job.order->restore(files.order);
  job.order_hash = Fnv1a(files.order_hash);
  loop = std::move(files.loop);
  loop.loss_since_log = files.tensors.at("loss_since_log").toTensor().to(job.device);
}

}  // namespace

std::string checkpoint_dir(const std::string& run_dir) { return run_dir + "/checkpoint"; }

std::string checkpoint_config_hash(const Config& config) {
  Config keyed = config;
  keyed.train.threads = 0;
  keyed.train.checkpoint_every = 0;
  keyed.train.keep_checkpoints = false;
  return Fnv1a().add(to_yaml(keyed)).hex();
}

void save_checkpoint(const std::string& run_dir, const TrainJob& job, const LoopState& loop) {
  const std::string root = checkpoint_dir(run_dir);
  fs::create_directories(root);
  const std::string name = step_name(loop.steps_done), pid = std::to_string(::getpid());
  const std::string tmp = root + "/." + name + ".tmp." + pid, target = root + "/" + name;
  fs::remove_all(tmp);
  try {
    fs::create_directory(tmp);
    const ExampleOrder::State order = job.order->state();
    const std::map<std::string, std::string> files = {{kTensors, tensors_bytes(job, loop, order)},
                                                      {kOptimizer, optimizer_bytes(job)},
                                                      {kState, state_json(job, loop, order).dump(1) + "\n"}};
    nlohmann::json manifest = {{"format", kCheckpointFormat}, {"files", nlohmann::json::object()}};
    for (const auto& [file, bytes] : files) {
      write_synced(tmp + "/" + file, bytes);
      manifest["files"][file] = {{"bytes", bytes.size()}, {"fnv1a", fnv1a_hex(bytes)}};
    }
    write_synced(tmp + "/" + kManifest, manifest.dump(1) + "\n");  // last: its presence means the rest is whole
    sync_dir(tmp);
  } catch (...) {
    // A write that failed (a full disk) leaves no partial copy to fill the disk
    // further; the error already names the file and the OS error.
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
  // The same step written again (preempted again before a step): the old copy
  // steps aside, so that some checkpoint of this step is always in place.
  const std::string old = root + "/." + name + ".old." + pid;
  if (fs::exists(target)) fs::rename(target, old);
  fs::rename(tmp, target);
  sync_dir(root);
  fs::remove_all(old);
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string other = entry.path().filename().string();
    const bool stale_temporary = other.rfind(".", 0) == 0;
    if (other != name && (stale_temporary || !job.config.train.keep_checkpoints)) fs::remove_all(entry.path());
  }
}

std::optional<int> resume_from_checkpoint(const std::string& run_dir, TrainJob& job, LoopState& loop,
                                          const std::function<void(const std::string&)>& refused) {
  const auto found = checkpoints_newest_first(checkpoint_dir(run_dir));
  for (size_t i = 0; i < found.size(); ++i) {
    const std::string& dir = found[i].second;
    CheckpointFiles files;
    std::string why;
    try {
      why = read_checkpoint(dir, job, files);
    } catch (const std::exception& e) {  // a damaged file LibTorch chokes on in a way not foreseen above
      why = std::string("it does not load: ") + e.what();
      why = why.substr(0, why.find('\n'));
    }
    if (why.empty() && !restore_optimizer(job, files.optimizer)) why = std::string(kOptimizer) + " does not load";
    if (why.empty()) {
      restore(files, job, loop);
      return loop.steps_done;
    }
    const bool older = i + 1 < found.size();
    refused(fmt::format("checkpoint {} refused: {}; {}", dir, why,
                        older ? "trying the one before it" : "starting from step 0"));
  }
  return std::nullopt;
}

void remove_checkpoints(const std::string& run_dir) { fs::remove_all(checkpoint_dir(run_dir)); }

}  // namespace masklab
