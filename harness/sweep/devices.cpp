#include "harness/sweep/devices.hpp"

#include <sys/wait.h>

#include <algorithm>

namespace masklab {

int DeviceSlots::free_slot(const std::vector<int>& busy) const {
  for (size_t i = 0; i < devices_.size(); ++i) {
    const int slot = static_cast<int>(i);
    if (retired_[i].empty() && std::find(busy.begin(), busy.end(), slot) == busy.end()) return slot;
  }
  return -1;
}

bool DeviceSlots::all_retired() const {
  return !devices_.empty() &&
         std::all_of(retired_.begin(), retired_.end(), [](const std::string& why) { return !why.empty(); });
}

std::string DeviceSlots::retired_reasons() const {
  std::string out;
  for (const auto& why : retired_) {
    if (!why.empty()) out += (out.empty() ? "" : "; ") + why;
  }
  return out;
}

bool device_unusable(int wstatus, const std::string& last_log_line) {
  return WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 2 && last_log_line.find("train.device '") != std::string::npos;
}

}  // namespace masklab
