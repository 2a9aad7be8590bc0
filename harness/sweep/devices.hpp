#pragma once
// The devices of `sweep --devices cpu,cuda:1,...`: one run at a time on each
// slot, and a device a run could not use is retired (the run goes to
// another). Slots, not names: `--devices cpu,cpu` is two slots of one name.
#include <string>
#include <vector>

namespace masklab {

class DeviceSlots {
 public:
  explicit DeviceSlots(std::vector<std::string> devices)
      : devices_(std::move(devices)), retired_(devices_.size()) {}
  bool empty() const { return devices_.empty(); }
  const std::string& name(int slot) const { return devices_[static_cast<size_t>(slot)]; }
  // The first slot neither retired nor in `busy`; -1 when there is none.
  int free_slot(const std::vector<int>& busy) const;
  bool all_retired() const;  // false without devices
  void retire(int slot, const std::string& why) { retired_[static_cast<size_t>(slot)] = why; }
  std::string retired_reasons() const;  // each retired slot's why, joined by "; "

 private:
  std::vector<std::string> devices_;
  std::vector<std::string> retired_;  // why each slot was retired; "" while in use
};

// Whether a child's ending means its device is unusable: `masklab train`
// exits 2 with an error naming train.device ("train.device 'cuda:7': ...").
// Any other ending is the run's own result.
bool device_unusable(int wstatus, const std::string& last_log_line);

}  // namespace masklab
