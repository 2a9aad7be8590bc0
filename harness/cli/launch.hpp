#pragma once
// masklab train --nproc N: one run as N data-parallel ranks on this machine.
// The launcher starts N copies of `masklab train` (the same arguments, less
// --nproc) with RANK, LOCAL_RANK, WORLD_SIZE and MASKLAB_DIST_STORE (a fresh
// FileStore path) in their environment (harness/train/distributed.hpp), and
// waits for all of them.
#include <string>
#include <vector>

#include "harness/train/distributed.hpp"

namespace masklab {

// --nproc N starts N ranks here: UserError when N < 1, or when this process
// already is a rank (srun, torchrun, --nproc's own children).
void check_nproc(int nproc, const DistEnv& dist);

// `args` without `name VALUE` and `name=VALUE`.
std::vector<std::string> without_option(const std::vector<std::string>& args, const std::string& name);

// Runs the ranks and returns the run's exit status: 0 when every rank
// succeeded; else the status of the first rank that failed (1 for a rank
// killed by a signal), after one line naming it on stderr and SIGTERM (then
// SIGKILL 5 s later) to the others. SIGTERM, SIGUSR1 and SIGINT sent to the
// launcher go to every rank; ranks that then exit 75 (preempted) or 130
// (interrupted) are not failures, and the launcher exits with that status.
// A rank exiting 3 (diverged) is not a failure either: every rank holds the
// same loss and diverges at the same step.
// `train_args` are the train command's arguments without --nproc; each rank
// also gets --set train.threads=threads_per_rank.
int launch_ranks(const std::vector<std::string>& train_args, int nproc, int threads_per_rank);

}  // namespace masklab
