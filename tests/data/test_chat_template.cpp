// harness/data/chat_template: built-in and YAML templates render with the
// exact text and give every token its role.
#include <catch2/catch.hpp>

#include "harness/data/chat_template.hpp"
#include "harness/data/data.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("the plain template gives every token its role", "[fast][data][template]") {
  const auto ex = test::byte_example("add 1+2", "3");
  CHECK(test::text_with_role(ex, Role::kUser) == "add 1+2");
  CHECK(test::text_with_role(ex, Role::kTemplate) == "\n=> ");
  CHECK(test::text_with_role(ex, Role::kAssistant) == "3");
  CHECK(ex.ids.front() == 257);  // <bos>
  CHECK(ex.ids.back() == 258);   // <eos>
  CHECK(ex.roles.back() == static_cast<uint8_t>(Role::kEos));
  // The final completion is "3" + <eos>.
  CHECK(ex.completion_end - ex.completion_begin == 2);
  CHECK(ex.ids[ex.completion_begin] == '3');
}

TEST_CASE("llama2 and alpaca templates render with exact roles", "[fast][formats][template]") {
  Example chat;
  chat.messages = {{Role::kSystem, "sys", "", true}, {Role::kUser, "u1", "", true}, {Role::kAssistant, "a1", "", true},
                   {Role::kUser, "u2", "", true}, {Role::kAssistant, "a2", "", true}};
  const auto llama = test::tokenize(chat, "llama2");
  std::string text;
  for (auto id : llama.ids) text += id < 256 ? std::string(1, static_cast<char>(id)) : id == 257 ? "<s>" : "</s>";
  CHECK(text == "<s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nu1 [/INST] a1 </s><s>[INST] u2 [/INST] a2 </s>");
  CHECK(test::trained_text(llama, "completion_only") == "a1 <eos>a2 <eos>");

  test::TempDir dir;
  test::write_text(dir.file("a.jsonl"), "{\"instruction\": \"Add\", \"input\": \"1+2\", \"output\": \"3\"}\n");
  DataFormat detected;
  const auto alpaca = load_jsonl(dir.file("a.jsonl"), DataFormat::kAuto, false, "a", nullptr, &detected);
  CHECK(detected == DataFormat::kAlpaca);
  const auto ex = test::tokenize(alpaca[0], "alpaca");
  std::string all;
  for (auto id : ex.ids) all += id < 256 ? std::string(1, static_cast<char>(id)) : "#";
  CHECK(all == "#### Instruction:\nAdd\n\n### Input:\n1+2\n\n### Response:\n3#");
  CHECK(test::trained_text(ex, "completion_only") == "3<eos>");
}

TEST_CASE("user-defined templates come from YAML", "[fast][formats][template]") {
  test::TempDir dir;
  test::write_text(dir.file("t.yaml"),
                   "bos: \"<bos>\"\nuser: {prefix: \"Q: \", suffix: \"\\n\"}\nassistant: {prefix: \"A: \", suffix: \"\\n\"}\n"
                   "assistant_end: \"<eos>\"\n");
  Example ex;
  ex.messages = {{Role::kUser, "why", "", true}, {Role::kAssistant, "because", "", true}};
  const auto t = test::tokenize(ex, dir.file("t.yaml"));
  CHECK(test::trained_text(t, "completion_only") == "because<eos>");
  CHECK(test::trained_text(t, "full") == "Q: why\nA: because<eos>\n");
  test::write_text(dir.file("bad.yaml"), "user: {prefix: a, sufix: b}\n");
  CHECK_THAT(test::user_error_of([&] { load_template(dir.file("bad.yaml")); }), Catch::Contains("bad.yaml:1: unknown template key 'user.sufix'"));
}
