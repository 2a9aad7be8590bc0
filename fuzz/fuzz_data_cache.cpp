// Dataset cache entries (harness/data/data_cache.cpp deserialize_dataset):
// the input is an entry without its trailing checksum, which is appended
// here so that the fuzzer reaches the reader behind it.
#include <cstring>

#include "fuzz/fuzz_input.hpp"
#include "harness/core/hashing.hpp"
#include "harness/data/data_cache.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  using namespace masklab;
  static const std::shared_ptr<const Tokenizer> tokenizer = make_tokenizer("byte");
  std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::uint64_t sum = Fnv1a().add(bytes.data(), bytes.size()).value();
  bytes.append(reinterpret_cast<const char*>(&sum), sizeof(sum));
  fuzz::expect_user_errors([&] {
    Dataset ds;
    ds.tokenizer = tokenizer;
    deserialize_dataset(bytes, ds);
  });
  return 0;
}
