// The config (harness/core/config.cpp): a YAML config file, then each
// further NUL-separated part as a `--set key=value`, then validate().
#include <yaml-cpp/yaml.h>

#include "fuzz/fuzz_input.hpp"
#include "harness/core/config.hpp"
#include "harness/core/yaml_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  using namespace masklab;
  const auto parts = fuzz::split_at_nul(data, size);
  fuzz::expect_user_errors([&] {
    Config config;
    apply_yaml(config, parse_yaml(parts[0], "fuzz.yaml"), "fuzz.yaml");
    for (size_t i = 1; i < parts.size(); ++i) apply_override(config, parts[i]);
    validate(config);
    to_yaml(config);
  });
  return 0;
}
