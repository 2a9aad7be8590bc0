#pragma once
// The sweep's cluster flags: `--devices` (one run per device at a time) and
// `--slurm` (a job array whose task K runs shard K+1/N, and a report job),
// for `masklab sweep` (harness/cli/cli.cpp cmd_sweep). The scripts
// themselves come from harness/sweep/slurm.hpp.
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "harness/sweep/sweep.hpp"

namespace masklab {

// Adds --devices, --slurm, --submit and the Slurm settings' flags.
void add_sweep_cluster_options(boost::program_options::options_description& options);

// The paragraphs of `masklab sweep --help` about --devices and --slurm.
extern const char* const kSweepClusterHelp;

// --devices cpu,cuda:1: each entry a train.device value; a bad one is a UserError naming --devices.
std::vector<std::string> parse_devices(const std::string& text);

// --devices into the options: the device list, and one job per device (with --jobs: a UserError).
void apply_devices(const boost::program_options::variables_map& vm, SweepOptions& o);

// A Slurm settings flag without --slurm is a UserError naming it.
void reject_slurm_flags(const boost::program_options::variables_map& vm);

// `sweep --slurm`: writes DIR/slurm/{array,report}.sbatch from the spec's
// slurm: block with the flags on top (flags win), then submits them
// (--submit) or prints the commands that do. Every check runs before a file
// is written. Returns the exit status.
int sweep_on_slurm(const boost::program_options::variables_map& vm, const SweepSpec& spec, const SweepOptions& o);

}  // namespace masklab
