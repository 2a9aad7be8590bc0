// SentencePiece: a model trained by harness/data/tokenizer_training loads as
// a tokenizer, and a token that merges text across a role boundary takes
// the role of its first character.
#include <catch2/catch.hpp>

#include <filesystem>

#include "harness/data/data.hpp"
#include "harness/data/tokenizer.hpp"
#include "harness/data/tokenizer_training.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("SentencePiece: training, loading, roles when tokens merge across a boundary", "[fast][formats][sentencepiece]") {
  test::TempDir dir;
  std::string corpus;
  for (int i = 0; i < 200; ++i) corpus += "abc xyz abc xyz abcxyz hello world\n";
  test::write_text(dir.file("corpus.txt"), corpus);
  TokenizerTrainOptions o;
  o.data = dir.file("corpus.txt");
  o.vocab_size = 300;
  o.type = "bpe";
  o.out = dir.file("tok.model");
  const std::string summary = train_tokenizer(o);
  INFO(summary);
  REQUIRE(std::filesystem::exists(dir.file("tok.model")));
  const auto tok = make_tokenizer(dir.file("tok.model"));
  CHECK(tok->bos_id() == 1);
  CHECK(tok->eos_id() == 2);
  std::vector<int32_t> ids;
  std::vector<uint32_t> offsets;
  tok->encode("abcxyz", ids, offsets);
  REQUIRE(ids.size() == 1);  // merged into one piece

  // The user's "abc" and the template's "xyz" are one token: it takes the role of its first character.
  test::write_text(dir.file("t.yaml"), "bos: \"<bos>\"\nuser: {prefix: \"\", suffix: \"xyz\"}\nassistant: {prefix: \" \", suffix: \"\"}\nassistant_end: \"<eos>\"\n");
  Example ex;
  ex.messages = {{Role::kUser, "abc", "", true}, {Role::kAssistant, "hello", "", true}};
  TokenizeStats stats;
  const auto t = tokenize_example(ex, load_template(dir.file("t.yaml")), *tok, 64, true, &stats);
  REQUIRE(t);
  REQUIRE(t->ids.size() == 4);  // <bos> ▁abcxyz ▁hello </s>
  CHECK(t->roles[1] == static_cast<uint8_t>(Role::kUser));
  // "▁hello" starts at the template's space but holds the answer: the completion's first token,
  // with the assistant role (a token whose first character is template text takes the role of
  // the first message text it holds).
  CHECK(t->roles[2] == static_cast<uint8_t>(Role::kAssistant));
  CHECK(t->completion_begin == 2);
  CHECK(t->completion_end == 4);
  CHECK(stats.straddling_tokens == 2);
  CHECK(tok->decode({t->ids[2]}) == "hello");
}
