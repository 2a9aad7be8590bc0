#pragma once
// How many CPU cores this process may use: what "all cores" means for
// train.threads 0 and for a sweep dividing threads between its runs.

namespace masklab {

// The cores this process may run on: its CPU affinity (what a cgroup,
// taskset or Slurm's task binding leaves it), capped by SLURM_CPUS_PER_TASK
// when set (a Slurm task's share of a node it may not be bound to); at least 1.
int available_cores();

}  // namespace masklab
