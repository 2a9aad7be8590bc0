// Sweep specs (harness/sweep/spec.cpp parse_sweep_spec): parse, expand and
// validate every run, as `masklab sweep --dry-run` does.
#include "fuzz/fuzz_input.hpp"
#include "harness/sweep/sweep.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  using namespace masklab;
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_user_errors([&] {
    const SweepSpec spec = parse_sweep_spec(text, "fuzz.yaml");
    sweep_manifest(spec);
  });
  return 0;
}
