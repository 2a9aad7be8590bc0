// harness/data/hf_tokenizer: tokenizer folders in the Hugging Face layout
// (special tokens from tokenizer_config.json, SentencePiece folders), the
// byte tokenizer's tokenizer.json read back by the `tokenizers` library and
// by masklab, and the errors for what is not supported.
#include <catch2/catch.hpp>

#include <filesystem>
#include <iostream>

#include "harness/data/hf_tokenizer.hpp"
#include "harness/data/tokenizer.hpp"
#include "tests/data/tokenizer_reference.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

std::vector<std::int32_t> encode(const Tokenizer& tok, const std::string& text) {
  std::vector<std::int32_t> ids;
  std::vector<std::uint32_t> offsets;
  tok.encode(text, ids, offsets);
  return ids;
}

}  // namespace

TEST_CASE("a SentencePiece folder: python sentencepiece's ids, special tokens from tokenizer_config.json", "[slow][tokenizer][python]") {
  const std::string folder = test::reference_tokenizers() + "/spm";
  const auto tok = make_tokenizer(folder);
  const auto specials = nlohmann::json::parse(test::read_text(folder + "/specials.json"));
  CHECK(tok->bos_id() == specials["bos"].get<int>());
  CHECK(tok->eos_id() == specials["eos"].get<int>());  // <|eot|>, not the model's </s>
  CHECK(tok->pad_id() == specials["pad"].get<int>());
  int agree = 0, total = 0;
  std::string first_mismatch;
  for (const auto& line : test::read_jsonl(folder + "/expected.jsonl")) {
    const auto ids = encode(*tok, line["text"].get<std::string>());
    ++total;
    if (ids == line["ids"].get<std::vector<std::int32_t>>()) ++agree;
    else if (first_mismatch.empty()) first_mismatch = line.dump() + " masklab: " + nlohmann::json(ids).dump();
  }
  std::cout << "spm: ids agree on " << agree << "/" << total << " strings\n";
  INFO(first_mismatch);
  CHECK(total >= 2000);
  CHECK(agree == total);

  // A Llama 2 / Mistral folder also holds a SentencePiece-style tokenizer.json: its tokenizer.model is used.
  test::TempDir dir;
  for (const char* name : {"tokenizer.model", "tokenizer_config.json"}) {
    std::filesystem::copy_file(folder + "/" + name, dir.file(name));
  }
  test::write_text(dir.file("tokenizer.json"), R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}})");
  const auto both = make_tokenizer(dir.path());
  CHECK(both->eos_id() == tok->eos_id());
  CHECK(encode(*both, "hello world 日本語") == encode(*tok, "hello world 日本語"));
  std::filesystem::remove(dir.file("tokenizer.model"));
  CHECK_THAT(test::user_error_of([&] { make_tokenizer(dir.path()); }), Catch::Contains("byte_fallback is not supported"));
}

TEST_CASE("the byte tokenizer's tokenizer.json encodes as the byte tokenizer, in tokenizers and in masklab", "[slow][tokenizer][python]") {
  test::TempDir dir;
  const auto byte = make_tokenizer("byte");
  byte->save_pretrained(dir.path());
  const auto r = test::run_venv_python("tok_byte_roundtrip.py", dir.path() + " " + dir.file("ids.jsonl"));
  REQUIRE(r.exit_code == 0);
  const auto lines = test::read_jsonl(dir.file("ids.jsonl"));
  // transformers reads the special tokens from tokenizer_config.json.
  CHECK(lines[0]["bos"] == 257);
  CHECK(lines[0]["eos"] == 258);
  CHECK(lines[0]["pad"] == 256);
  CHECK(lines[0]["vocab"] == 259);
  const auto reloaded = make_tokenizer(dir.path());
  CHECK(reloaded->bos_id() == 257);
  CHECK(reloaded->eos_id() == 258);
  CHECK(reloaded->pad_id() == 256);
  CHECK(reloaded->vocab_size() == 259);
  int agree_library = 0, agree_reloaded = 0, total = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto text = lines[i]["text"].get<std::string>();
    const auto expected = lines[i]["ids"].get<std::vector<std::int32_t>>();
    // "<bos>", "<eos>", "<pad>" are special tokens in the library, as masklab's
    // templates treat them; elsewhere every byte is its own id.
    std::vector<std::int32_t> bytes;
    std::string rest = text;
    for (size_t p = 0; p < rest.size(); ++p) {
      const std::string next = rest.substr(p, 5);
      if (next == "<pad>" || next == "<bos>" || next == "<eos>") {
        bytes.push_back(next == "<pad>" ? 256 : next == "<bos>" ? 257 : 258);
        p += 4;
      } else {
        bytes.push_back(static_cast<unsigned char>(rest[p]));
      }
    }
    ++total;
    agree_library += expected == bytes;
    agree_reloaded += encode(*reloaded, text) == expected;
    if (text.find('<') == std::string::npos) CHECK(encode(*byte, text) == expected);
  }
  std::cout << "byte tokenizer.json: tokenizers agrees on " << agree_library << "/" << total
            << ", masklab's reload on " << agree_reloaded << "/" << total << "\n";
  CHECK(agree_library == total);
  CHECK(agree_reloaded == total);
}

namespace {

const char* const kWordPiece = R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"},
  "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "added_tokens": []})";

std::string with(const std::string& replace, const std::string& by) {
  std::string s = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []},
    "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "use_regex": true}, "added_tokens": []})";
  s.replace(s.find(replace), replace.size(), by);
  return s;
}

}  // namespace

TEST_CASE("unsupported tokenizer files and folders are one line naming the file", "[fast][tokenizer]") {
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("empty"));
  std::filesystem::create_directories(dir.file("tok"));
  CHECK_THAT(test::user_error_of([&] { make_tokenizer(dir.file("empty")); }),
             Catch::Contains("empty' holds neither tokenizer.json nor tokenizer.model"));
  struct Case {
    std::string json, message;
  };
  const std::vector<Case> cases = {
      {kWordPiece, "model type 'WordPiece' is not supported"},
      {"{not json", "invalid JSON"},
      {with("\"normalizer\": null", "\"normalizer\": {\"type\": \"Lowercase\"}"), "normalizer 'Lowercase' is not supported"},
      {with("\"type\": \"ByteLevel\", \"use_regex\": true", "\"type\": \"Metaspace\""), "pre_tokenizer 'Metaspace' is not supported"},
      {with("\"merges\": []", "\"merges\": [], \"byte_fallback\": true"), "byte_fallback is not supported"},
      {with("\"merges\": []", "\"merges\": [\"a c\"]"), "merge 'a c' names a token that is not in the vocabulary"},
  };
  for (const auto& c : cases) {
    test::write_text(dir.file("tok/tokenizer.json"), c.json);
    const std::string message = test::user_error_of([&] { make_tokenizer(dir.file("tok")); });
    CHECK_THAT(message, Catch::Contains("tokenizer.json") && Catch::Contains(c.message));
    CHECK(message.find('\n') == std::string::npos);
  }
  // A valid tokenizer.json without an eos token in its folder's json files.
  test::write_text(dir.file("tok/tokenizer.json"), with("", ""));
  CHECK_THAT(test::user_error_of([&] { make_tokenizer(dir.file("tok")); }), Catch::Contains("names no eos_token"));
  test::write_text(dir.file("tok/tokenizer_config.json"), R"({"eos_token": "<none>"})");
  CHECK_THAT(test::user_error_of([&] { make_tokenizer(dir.file("tok")); }),
             Catch::Contains("tokenizer_config.json: eos_token '<none>' is not a token"));
}

TEST_CASE("the CLI: an unsupported tokenizer is one line and exit status 2", "[slow][tokenizer][cli]") {
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("tok"));
  test::write_text(dir.file("tok/tokenizer.json"), kWordPiece);
  test::write_text(dir.file("d.jsonl"), "{\"prompt\": \"a\", \"completion\": \"b\"}\n");
  const auto r = test::run_masklab("inspect " + dir.file("d.jsonl") + " --tokenizer " + dir.file("tok"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.out, Catch::Contains("tokenizer.json: model type 'WordPiece' is not supported"));
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  CHECK(out.find('\n') == std::string::npos);
}

TEST_CASE("special tokens: bos from tokenizer_config.json, none for Qwen2, pad falls back to eos", "[fast][tokenizer]") {
  test::TempDir dir;
  const std::string json = with("\"added_tokens\": []",
                                R"("added_tokens": [{"id": 2, "content": "<e>", "special": true, "normalized": false},
                                                    {"id": 3, "content": "<b>", "special": true, "normalized": false}])");
  std::filesystem::create_directories(dir.file("tok"));
  test::write_text(dir.file("tok/tokenizer.json"), json);
  test::write_text(dir.file("tok/special_tokens_map.json"), R"({"eos_token": {"content": "<e>", "lstrip": false}})");
  auto tok = make_tokenizer(dir.file("tok"));
  CHECK(tok->bos_id() == -1);
  CHECK(tok->eos_id() == 2);
  CHECK(tok->pad_id() == 2);
  CHECK(tok->chat_template().empty());
  test::write_text(dir.file("tok/tokenizer_config.json"),
                   R"({"bos_token": "<b>", "pad_token": "a", "chat_template": [{"name": "tool_use", "template": "x"},
                       {"name": "default", "template": "{{ '<|im_start|>' }}"}]})");
  tok = make_tokenizer(dir.file("tok"));
  CHECK(tok->bos_id() == 3);
  CHECK(tok->eos_id() == 2);  // from special_tokens_map.json
  CHECK(tok->pad_id() == 0);
  CHECK(tok->chat_template() == "{{ '<|im_start|>' }}");
  test::write_text(dir.file("tok/tokenizer_config.json"), R"({"bos_token": "<b>", "add_bos_token": false})");
  CHECK(make_tokenizer(dir.file("tok"))->bos_id() == -1);
  // The tokenizer.json path works as well as its folder, and the files are the fingerprint.
  const auto by_file = make_tokenizer(dir.file("tok/tokenizer.json"));
  CHECK(by_file->fingerprint() == make_tokenizer(dir.file("tok"))->fingerprint());
  test::write_text(dir.file("tok/tokenizer_config.json"), R"({"bos_token": "<b>"})");
  CHECK(by_file->fingerprint() != make_tokenizer(dir.file("tok"))->fingerprint());

  // save_pretrained copies the files, so the copy encodes and names its specials the same.
  std::filesystem::create_directories(dir.file("saved"));
  make_tokenizer(dir.file("tok"))->save_pretrained(dir.file("saved"));
  CHECK(test::read_text(dir.file("saved/tokenizer.json")) == json);
  const auto saved = make_tokenizer(dir.file("saved"));
  CHECK(saved->bos_id() == 3);
  CHECK(saved->eos_id() == 2);
  CHECK(encode(*saved, "ab<b>") == std::vector<std::int32_t>{0, 1, 3});
}
