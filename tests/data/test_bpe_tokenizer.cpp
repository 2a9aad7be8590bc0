// harness/data/bpe_tokenizer: byte-level BPE from tokenizer.json gives the
// ids and offsets of the `tokenizers` library (tests/python/tok_train_bpe.py)
// and hand-worked merges.
#include <catch2/catch.hpp>

#include <iostream>

#include <fmt/format.h>

#include "harness/data/bpe_tokenizer.hpp"
#include "harness/data/tokenizer.hpp"
#include "tests/data/tokenizer_reference.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

struct Agreement {
  int strings = 0, ids = 0, offsets = 0;
  std::string first_mismatch;
};

Agreement compare_with_reference(const std::string& folder) {
  const auto tok = make_tokenizer(folder);
  Agreement a;
  for (const auto& line : test::read_jsonl(folder + "/expected.jsonl")) {
    const auto text = line["text"].get<std::string>();
    std::vector<std::int32_t> ids;
    std::vector<std::uint32_t> offsets;
    tok->encode(text, ids, offsets);
    ++a.strings;
    const bool same_ids = ids == line["ids"].get<std::vector<std::int32_t>>();
    a.ids += same_ids;
    a.offsets += offsets == line["offsets"].get<std::vector<std::uint32_t>>();
    if (!same_ids && a.first_mismatch.empty()) a.first_mismatch = line.dump() + " masklab: " + nlohmann::json(ids).dump();
  }
  return a;
}

}  // namespace

TEST_CASE("byte-level BPE ids and offsets equal the tokenizers library's on 2,200 strings", "[slow][tokenizer][python]") {
  const std::string ref = test::reference_tokenizers();
  for (const std::string name : {"gpt2", "llama3", "qwen2", "smollm", "prefix_space", "split_behaviors", "affixes"}) {
    const Agreement a = compare_with_reference(ref + "/" + name);
    std::cout << fmt::format("{}: ids agree on {}/{} strings, offsets on {}/{}\n", name, a.ids, a.strings, a.offsets,
                             a.strings);
    INFO(name << ": " << a.first_mismatch);
    CHECK(a.strings >= 2000);
    CHECK(a.ids == a.strings);
    CHECK(a.offsets == a.strings);
  }
}

TEST_CASE("added tokens in text encode as their single ids, and decode inverts encode", "[slow][tokenizer][python]") {
  const std::string ref = test::reference_tokenizers();
  const auto tok = make_tokenizer(ref + "/llama3");
  for (const std::string special : {"<|begin_of_text|>", "<|start_header_id|>", "<|eot_id|>", "<|im_start|>"}) {
    std::vector<std::int32_t> ids;
    std::vector<std::uint32_t> offsets;
    tok->encode("a" + special + "b", ids, offsets);
    REQUIRE(ids.size() == 3);
    CHECK(tok->token_text(ids[1]) == special);
    CHECK(offsets == std::vector<std::uint32_t>{0, 1, static_cast<std::uint32_t>(1 + special.size())});
  }
  // Decoding gives the text back, except the whitespace <mask> (lstrip) and <|tool|> (rstrip) swallow.
  for (const auto& line : test::read_jsonl(ref + "/llama3/expected.jsonl")) {
    const auto text = line["text"].get<std::string>();
    if (text.find("<mask>") != std::string::npos || text.find("<|tool|>") != std::string::npos) continue;
    CHECK(tok->decode(line["ids"].get<std::vector<std::int32_t>>()) == text);
  }
}

namespace {

// A hand-written tokenizer.json: bytes a b c and the space, merges in rank order.
std::string tiny_tokenizer_json(bool ignore_merges, const std::string& added) {
  return R"({"added_tokens": [)" + added + R"(], "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "model": {"type": "BPE", "ignore_merges": )" + (ignore_merges ? std::string("true") : std::string("false")) + R"(,
      "vocab": {"a": 0, "b": 1, "c": 2, "Ġ": 3, "ab": 4, "abc": 5, "bc": 6, "Ġa": 7},
      "merges": ["b c", ["a", "b"], "ab c", "Ġ a"]}})";
}

std::vector<std::int32_t> ids_of(const BpeEncoder& e, const std::string& text,
                                 std::vector<std::uint32_t>* offsets_out = nullptr) {
  std::vector<std::int32_t> ids;
  std::vector<std::uint32_t> offsets;
  e.encode(text, ids, offsets);
  if (offsets_out) *offsets_out = offsets;
  return ids;
}

}  // namespace

TEST_CASE("BPE merges by rank, ignore_merges, lstrip and rstrip, by hand", "[fast][tokenizer]") {
  // "abc": (b,c) has rank 0 and merges before (a,b): a + bc, and no merge joins them.
  const BpeEncoder by_rank(tiny_tokenizer_json(false, ""), "tiny.json");
  CHECK(ids_of(by_rank, "abc") == std::vector<std::int32_t>{0, 6});
  CHECK(ids_of(by_rank, "ab") == std::vector<std::int32_t>{4});
  // GPT-2's regex keeps the space with the word: "Ġa" + "bc".
  std::vector<std::uint32_t> offsets;
  CHECK(ids_of(by_rank, "c abc", &offsets) == std::vector<std::int32_t>{2, 7, 6});
  CHECK(offsets == std::vector<std::uint32_t>{0, 1, 3});
  // ignore_merges: a word that is in the vocabulary is one token.
  const BpeEncoder whole(tiny_tokenizer_json(true, ""), "tiny.json");
  CHECK(ids_of(whole, "abc") == std::vector<std::int32_t>{5});
  // <m> takes the spaces before it (lstrip), <r> those after it (rstrip).
  const std::string added = R"({"id": 8, "content": "<m>", "special": true, "lstrip": true, "normalized": false},
                               {"id": 9, "content": "<r>", "special": false, "rstrip": true, "normalized": false})";
  const BpeEncoder strip(tiny_tokenizer_json(false, added), "tiny.json");
  CHECK(ids_of(strip, "a  <m>  b", &offsets) == std::vector<std::int32_t>{0, 8, 3, 3, 1});
  CHECK(offsets == std::vector<std::uint32_t>{0, 1, 6, 7, 8});
  CHECK(ids_of(strip, "a<r>   b") == std::vector<std::int32_t>{0, 9, 1});
  CHECK(strip.vocab_size() == 10);
  CHECK(strip.decode({0, 8, 3, 6}) == "a<m> bc");
}

TEST_CASE("a token id outside 0 to 4194303 is one line naming the file and the token", "[fast][tokenizer]") {
  auto error_of = [](const std::string& json) {
    return test::user_error_of([&] { BpeEncoder(json, "tok/tokenizer.json"); });
  };
  const std::string tiny = tiny_tokenizer_json(false, "");
  auto with_vocab = [&](const std::string& from, const std::string& to) {
    std::string json = tiny;
    json.replace(json.find(from), from.size(), to);
    return json;
  };
  // A negative id once indexed before the id table; a huge one sized it.
  CHECK(error_of(with_vocab("\"Ġa\": 7", "\"Ġa\": -900")) ==
        "tok/tokenizer.json: token \"Ġa\" has id -900, not an integer from 0 to 4194303");
  CHECK(error_of(with_vocab("\"Ġa\": 7", "\"Ġa\": 3000000000")) ==
        "tok/tokenizer.json: token \"Ġa\" has id 3000000000, not an integer from 0 to 4194303");
  CHECK(error_of(with_vocab("\"Ġa\": 7", "\"Ġa\": 7.5")) ==
        "tok/tokenizer.json: token \"Ġa\" has id 7.5, not an integer from 0 to 4194303");
  CHECK(error_of(tiny_tokenizer_json(false, R"({"id": -1, "content": "<m>"})")) ==
        "tok/tokenizer.json: token \"<m>\" has id -1, not an integer from 0 to 4194303");
  CHECK(error_of(tiny).empty());
}
