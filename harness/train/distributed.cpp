#include "harness/train/distributed.hpp"

// c10d's headers declare a backend only when its macro is set, as LibTorch's
// own build sets it. Both LibTorch builds masklab supports (Debian's 1.13 CPU,
// the PyPI wheel's 2.x) ship Gloo; NCCL only where CMake found nccl.h next to
// a CUDA LibTorch (MASKLAB_NCCL, harness/train/CMakeLists.txt).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#if defined(MASKLAB_NCCL) && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL 1
#endif

#include <cstdlib>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#include <torch/version.h>
#ifdef MASKLAB_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "harness/core/errors.hpp"

namespace masklab {

namespace {

// 1.13's backends derive from ProcessGroup; 2.x split the interface out into Backend.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

const char* env_or_null(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

int env_int(const char* name, int fallback, int min_value) {
  const char* text = env_or_null(name);
  if (text == nullptr) return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < min_value || value > 1 << 20) {
    throw UserError(fmt::format("environment variable {}='{}': expected an integer >= {}", name, text, min_value));
  }
  return static_cast<int>(value);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The rank's own network device: loopback when every peer is on this machine,
// GLOO_SOCKET_IFNAME when the user names one (as PyTorch reads it), else the
// address this machine's hostname resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const DistEnv& env) {
  if (const char* interface = env_or_null("GLOO_SOCKET_IFNAME")) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  }
  if (!env.store_file.empty() || is_loopback(env.master_addr)) {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

c10::intrusive_ptr<c10d::Store> make_store(const DistEnv& env, std::chrono::milliseconds timeout) {
  if (!env.store_file.empty()) return c10::make_intrusive<c10d::FileStore>(env.store_file, env.world);
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(env.master_port);
  options.isServer = env.rank == 0;
  options.numWorkers = env.world;
  options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
}

}  // namespace

struct DistContext::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> collectives;
  bool nccl = false;
  int timeout_seconds = 0;

  torch::Device device = torch::kCPU;  // where the backend reduces: the CPU (Gloo), the rank's GPU (NCCL)

  // Runs one collective on `tensor` in place and waits for it; a tensor
  // elsewhere than the backend's device travels there and back.
  template <typename Op>
  void run(const char* what, int rank, const at::Tensor& tensor, Op op) const {
    try {
      const bool staged = tensor.device() != device;
      std::vector<at::Tensor> list{staged ? tensor.to(device) : tensor};
      op(list)->wait();
      if (staged) tensor.copy_(list.front());
    } catch (const std::exception& e) {
      fail(what, rank, e);
    }
  }
  [[noreturn]] void fail(const char* what, int rank, const std::exception& e) const {
    const std::string why = e.what();
    throw std::runtime_error(fmt::format("rank {}: {} failed (a peer died, or did not answer within {} s): {}",
                                         rank, what, timeout_seconds, why.substr(0, why.find('\n'))));
  }
};

DistEnv dist_env_from_environment() {
  DistEnv env;
  if (env_or_null("WORLD_SIZE")) {
    env.world = env_int("WORLD_SIZE", 1, 1);
    env.rank = env_int("RANK", 0, 0);
    env.local_rank = env_int("LOCAL_RANK", env.rank, 0);
    env.launcher = "RANK/WORLD_SIZE";
  } else if (env_int("SLURM_NTASKS", 1, 1) > 1) {
    env.world = env_int("SLURM_NTASKS", 1, 1);
    env.rank = env_int("SLURM_PROCID", 0, 0);
    env.local_rank = env_int("SLURM_LOCALID", 0, 0);
    env.launcher = "srun";
  }
  if (env.world == 1) return DistEnv{};
  if (env.rank >= env.world) {
    throw UserError(fmt::format("rank {} of world size {}: the rank must be below the world size", env.rank,
                                env.world));
  }
  env.timeout_seconds = env_int("MASKLAB_DIST_TIMEOUT", env.timeout_seconds, 1);
  if (const char* file = env_or_null("MASKLAB_DIST_STORE")) {
    env.store_file = file;
    return env;
  }
  const char* addr = env_or_null("MASTER_ADDR");
  if (addr == nullptr) {
    throw UserError(fmt::format("{} with {} ranks: set MASTER_ADDR (and MASTER_PORT, default 29500) to rank 0's "
                                "host, or MASKLAB_DIST_STORE to a file on a shared filesystem",
                                env.launcher, env.world));
  }
  env.master_addr = addr;
  env.master_port = env_int("MASTER_PORT", env.master_port, 1);
  if (env.master_port > 65535) throw UserError(fmt::format("MASTER_PORT={}: not a port", env.master_port));
  return env;
}

void check_world_fits(const TrainConfig& train, int world) {
  if (train.batch_size >= world) return;
  throw UserError(fmt::format("train.batch_size={} is below the {} ranks: each rank takes a share of every "
                              "micro-batch, so it needs train.batch_size >= {} (train.grad_accum adds micro-batches)",
                              train.batch_size, world, world));
}

std::vector<std::string> rank_environment(int rank, int world, const std::string& store_file) {
  return {fmt::format("RANK={}", rank), fmt::format("LOCAL_RANK={}", rank), fmt::format("WORLD_SIZE={}", world),
          "MASKLAB_DIST_STORE=" + store_file};
}

DistContext DistContext::connect(const DistEnv& env, bool cuda) {
  DistContext context;
  if (env.world <= 1) return context;
  context.rank_ = env.rank;
  context.world_ = env.world;
  auto group = std::make_shared<Group>();
  group->timeout_seconds = env.timeout_seconds;
  const std::chrono::milliseconds timeout(1000LL * env.timeout_seconds);
  try {
    group->store = make_store(env, timeout);
#ifdef MASKLAB_NCCL
    if (cuda) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      group->collectives = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, env.rank, env.world, options);
      group->nccl = true;
      // The rank's device, as make_train_job (trainer.cpp) picks it.
      group->device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank %
                                                                              torch::cuda::device_count()));
    }
#endif
    if (!group->nccl) {
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      options->devices.push_back(gloo_device(env));
      group->collectives = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, env.rank, env.world, options);
    }
  } catch (const std::exception& e) {
    const std::string why = e.what();
    throw std::runtime_error(fmt::format("rank {} of {}: cannot join the process group within {} s: {}", env.rank,
                                         env.world, env.timeout_seconds, why.substr(0, why.find('\n'))));
  }
  (void)cuda;
  context.group_ = std::move(group);
  return context;
}

void DistContext::allreduce_sum(const at::Tensor& tensor) const {
  if (!group_) return;
  group_->run("all-reduce", rank_, tensor, [&](std::vector<at::Tensor>& list) {
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    return group_->collectives->allreduce(list, options);
  });
}

void DistContext::broadcast(const at::Tensor& tensor, int root) const {
  if (!group_) return;
  group_->run("broadcast", rank_, tensor, [&](std::vector<at::Tensor>& list) {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    return group_->collectives->broadcast(list, options);
  });
}

void DistContext::barrier() const {
  if (!group_) return;
  try {
    group_->collectives->barrier()->wait();
  } catch (const std::exception& e) {
    group_->fail("barrier", rank_, e);
  }
}

}  // namespace masklab
