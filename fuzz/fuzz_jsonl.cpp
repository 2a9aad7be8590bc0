// JSONL data files (harness/data/data.cpp parse_jsonl), every format: the
// first byte picks the format and data.skip_invalid, the rest is the file.
#include "fuzz/fuzz_input.hpp"
#include "harness/data/data.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  using namespace masklab;
  if (size == 0) return 0;
  static constexpr DataFormat kFormats[] = {DataFormat::kAuto, DataFormat::kPromptCompletion, DataFormat::kChat,
                                            DataFormat::kAlpaca, DataFormat::kText};
  const DataFormat format = kFormats[data[0] % std::size(kFormats)];
  const bool skip_invalid = (data[0] / std::size(kFormats)) % 2 == 1;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  fuzz::expect_user_errors([&] {
    LoadStats stats;
    parse_jsonl(text, "fuzz.jsonl", format, skip_invalid, "fuzz", &stats);
  });
  return 0;
}
