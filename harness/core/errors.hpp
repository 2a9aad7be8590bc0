#pragma once
// Errors a user can cause (bad config, bad data, unknown strategy). The CLI
// prints what() as one line and exits with exit_code(); everything else is a
// bug or a resource failure and is reported differently. Header-only so that
// every folder, strategies included, can throw it.
#include <stdexcept>
#include <string>

namespace masklab {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& message, int exit_code = 2)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// The exit status of `masklab train` and `masklab sweep` that got SIGTERM or
// SIGUSR1 (a scheduler's preemption warning): the run checkpointed at the
// next step boundary (the sweep waited for its runs to), and rerunning the
// same command resumes. 0 ok, 1 recorded failure, 2 user error and 130
// SIGINT keep their meanings.
constexpr int kExitPreempted = 75;

// "FILE:LINE: reason", the form editors and terminals can jump to.
inline UserError error_at(const std::string& file, long line, const std::string& reason) {
  return UserError(file + ":" + std::to_string(line) + ": " + reason);
}

}  // namespace masklab
