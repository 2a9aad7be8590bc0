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

// "FILE:LINE: reason", the form editors and terminals can jump to.
inline UserError error_at(const std::string& file, long line, const std::string& reason) {
  return UserError(file + ":" + std::to_string(line) + ": " + reason);
}

}  // namespace masklab
