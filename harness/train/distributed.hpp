#pragma once
// Data-parallel training over c10d: which rank of how many this process is,
// and the three collectives a training step needs (sum, barrier, broadcast).
// Gloo on the CPU; NCCL for CUDA where LibTorch was built with it. A single
// process (world 1) has no process group and every collective is a no-op, so
// a plain run computes exactly what it did before.
//
// This header names no c10d or LibTorch type, so run.hpp and the CLI can
// carry a DistEnv without LibTorch's headers.
#include <memory>
#include <string>
#include <vector>

#include "harness/core/config.hpp"

namespace at {
class Tensor;
}

namespace masklab {

// Where this rank finds its peers, read from the environment by
// dist_env_from_environment():
//   WORLD_SIZE, RANK, LOCAL_RANK               torchrun, and masklab train --nproc
//   SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID  srun (when WORLD_SIZE is unset)
//   MASKLAB_DIST_STORE                         a FileStore path (masklab train --nproc; or a shared filesystem)
//   MASTER_ADDR, MASTER_PORT                   otherwise a TCPStore served by rank 0
//   MASKLAB_DIST_TIMEOUT                       seconds a collective waits for a peer (default 300)
struct DistEnv {
  int rank = 0;
  int world = 1;
  int local_rank = 0;        // rank on this machine: which CUDA device it takes
  std::string store_file;    // non-empty: rendezvous through this file
  std::string master_addr;   // else: TCPStore at master_addr:master_port
  int master_port = 29500;
  int timeout_seconds = 300;
  std::string launcher;      // "RANK/WORLD_SIZE", "srun" or "" (one process); for messages
};

// The rank this process is, from the variables above; a single process when
// none is set. Throws UserError naming the variable when one is malformed.
DistEnv dist_env_from_environment();

// Every rank needs at least one example of each micro-batch: UserError naming
// train.batch_size when it is below the world size.
void check_world_fits(const TrainConfig& train, int world);

// The environment variables that make a child process rank `rank` of a
// local launch (masklab train --nproc) rendezvousing through `store_file`.
std::vector<std::string> rank_environment(int rank, int world, const std::string& store_file);

// The process group of a data-parallel run (or none, for one process).
// Collectives throw std::runtime_error naming the rank and the operation when
// a peer died or did not answer within the timeout.
class DistContext {
 public:
  DistContext() = default;  // one process: every collective is a no-op
  // Joins the group of `env` (blocks until every rank has joined, at most the
  // timeout). `cuda`: NCCL when LibTorch has it, else Gloo.
  static DistContext connect(const DistEnv& env, bool cuda);

  int rank() const { return rank_; }
  int world() const { return world_; }
  bool is_main() const { return rank_ == 0; }

  // In place: every rank ends with the element-wise sum over ranks. One
  // contiguous tensor per call (Gloo reduces a list only of equal shapes):
  // callers flatten what they send.
  void allreduce_sum(const at::Tensor& tensor) const;
  // In place: every rank ends with rank `root`'s values.
  void broadcast(const at::Tensor& tensor, int root = 0) const;
  void barrier() const;

 private:
  struct Group;
  std::shared_ptr<Group> group_;
  int rank_ = 0;
  int world_ = 1;
};

}  // namespace masklab
