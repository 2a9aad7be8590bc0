#include "harness/core/cores.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace masklab {

int available_cores() {
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = std::max(1, CPU_COUNT(&set));
  if (const char* slurm = std::getenv("SLURM_CPUS_PER_TASK")) {
    char* end = nullptr;
    const long per_task = std::strtol(slurm, &end, 10);
    if (end != slurm && *end == '\0' && per_task > 0) cores = std::min<long>(cores, per_task);
  }
  return cores;
}

}  // namespace masklab
