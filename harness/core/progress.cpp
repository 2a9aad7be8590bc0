#include "harness/core/progress.hpp"

#include <unistd.h>

#include <cmath>

#include <fmt/format.h>

namespace masklab {

bool Progress::stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

void Progress::status(const std::string& text) {
  if (!interactive_) return;
  const auto now = std::chrono::steady_clock::now();
  if (shown_ > 0 && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::string padded = text;
  if (padded.size() < shown_) padded.append(shown_ - padded.size(), ' ');
  std::fprintf(out_, "\r%s", padded.c_str());
  std::fflush(out_);
  shown_ = text.size();
}

void Progress::line(const std::string& text) {
  if (interactive_ && shown_ > 0) {
    std::fprintf(out_, "\r%s\r", std::string(shown_, ' ').c_str());
    shown_ = 0;
  }
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

void Progress::finish() {
  if (interactive_ && shown_ > 0) {
    std::fprintf(out_, "\n");
    std::fflush(out_);
    shown_ = 0;
  }
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  if (s >= 3600) return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02d}", s / 60, s % 60);
}

}  // namespace masklab
