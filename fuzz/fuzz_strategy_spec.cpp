// Strategy specs (strategies/registry.cpp): a spec that parses has a
// canonical form that parses to itself.
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_input.hpp"
#include "strategies/registry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  using namespace masklab;
  const std::string spec(reinterpret_cast<const char*>(data), size);
  fuzz::expect_user_errors([&] {
    const auto strategy = make_strategy(spec);
    const auto again = make_strategy(strategy->spec());
    if (again->spec() != strategy->spec()) {
      std::fprintf(stderr, "fuzz: canonical spec '%s' parses to '%s'\n", strategy->spec().c_str(),
                   again->spec().c_str());
      std::abort();
    }
    role_weights_record(*strategy);
  });
  return 0;
}
