// tokenizer.json (harness/data/bpe_tokenizer.cpp BpeEncoder, which
// hf_tokenizer.cpp builds from the file's bytes): the first NUL-separated
// part is the file, the second a text to encode, whose ids are then decoded.
#include "fuzz/fuzz_input.hpp"
#include "harness/data/bpe_tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  using namespace masklab;
  const auto parts = fuzz::split_at_nul(data, size);
  fuzz::expect_user_errors([&] {
    const BpeEncoder encoder(parts[0], "fuzz/tokenizer.json");
    const std::string text = parts.size() > 1 ? parts[1] : "Hello, world! 123 <|im_start|>user\n héllo";
    std::vector<std::int32_t> ids;
    std::vector<std::uint32_t> offsets;
    encoder.encode(text, ids, offsets);
    for (const auto id : ids) {
      if (id < 0 || id >= encoder.vocab_size()) {
        std::fprintf(stderr, "fuzz: encode gave id %d outside the vocabulary of %d\n", id, encoder.vocab_size());
        std::abort();
      }
      encoder.token_bytes(id);
    }
    encoder.decode(ids);
  });
  return 0;
}
