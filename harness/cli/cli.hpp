#pragma once
// The masklab command line: `masklab <command> [options]`.
namespace masklab {

// Runs the CLI and returns the process exit status: 0 ok, 1 a run failed or
// an internal error, 2 a user error (one line on stderr), 3 a run diverged.
int cli_main(int argc, char** argv);

}  // namespace masklab
