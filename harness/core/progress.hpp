#pragma once
// Progress reporting: a self-rewriting line on a terminal, plain log lines
// otherwise (files, pipes, sweep workers).
#include <chrono>
#include <cstdio>
#include <string>

namespace masklab {

class Progress {
 public:
  // interactive: rewrite one line in place; otherwise print whole lines.
  explicit Progress(bool interactive, std::FILE* out = stdout) : interactive_(interactive), out_(out) {}
  static bool stdout_is_terminal();

  bool interactive() const { return interactive_; }
  // The live status line (interactive only), redrawn at most 10 times a second.
  void status(const std::string& text);
  // A permanent line; clears the status line first on a terminal.
  void line(const std::string& text);
  void finish();  // ends the status line

 private:
  bool interactive_;
  std::FILE* out_;
  size_t shown_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

// "1:05" / "1:02:03".
std::string format_duration(double seconds);

}  // namespace masklab
