// harness/data/chat_template: built-in and YAML templates render with the
// exact text and give every token its role.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>

#include "harness/data/chat_template.hpp"
#include "harness/data/data.hpp"
#include "harness/data/tokenizer.hpp"
#include "tests/data/tokenizer_reference.hpp"
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

namespace {

// The text masklab renders: special pieces as the tokenizer writes them.
std::string rendered_text(const RenderedExample& r, const Tokenizer& tok) {
  std::string text;
  for (const auto& p : r.pieces) {
    if (p.special < 0) text += p.text;
    else if (const int id = p.special == kSpecialBos ? tok.bos_id() : tok.eos_id(); id >= 0) text += tok.token_text(id);
  }
  return text;
}

Example chat_example(const nlohmann::json& messages) {
  Example ex;
  for (const auto& m : messages) {
    const auto role = m["role"].get<std::string>();
    ex.messages.push_back({role == "system" ? Role::kSystem : role == "user" ? Role::kUser : Role::kAssistant,
                           m["content"].get<std::string>(), "", true});
  }
  return ex;
}

// Byte ranges in `text` of each assistant message's content and of the end
// marker after it, found in the reference rendering itself.
struct Spans {
  std::vector<std::pair<size_t, size_t>> content, end_marker;
};
Spans assistant_spans(const std::string& text, const nlohmann::json& messages, const std::string& marker) {
  Spans s;
  size_t cursor = 0;
  for (const auto& m : messages) {
    const auto content = m["content"].get<std::string>();
    const size_t at = text.find(content, cursor);
    if (at == std::string::npos) FAIL("no '" + content + "' in " + text);
    cursor = at + content.size();
    if (m["role"] != "assistant") continue;
    s.content.emplace_back(at, cursor);
    const size_t end = text.find(marker, cursor);
    REQUIRE(end == cursor);
    s.end_marker.emplace_back(end, end + marker.size());
  }
  return s;
}

bool overlaps(const std::vector<std::pair<size_t, size_t>>& spans, size_t begin, size_t end) {
  return std::any_of(spans.begin(), spans.end(), [&](const auto& s) { return begin < s.second && s.first < end; });
}

// Every token that holds assistant text has the assistant role, the end
// markers' tokens the eos role, and no other token either of them.
void check_roles(const TokenizedExample& t, const Tokenizer& tok, const std::string& text, const Spans& spans) {
  size_t pos = 0;
  for (size_t i = 0; i < t.ids.size(); ++i) {
    const size_t end = pos + tok.token_text(t.ids[i]).size();
    const auto role = static_cast<Role>(t.roles[i]);
    INFO("token " << i << " '" << text.substr(pos, end - pos) << "' role " << role_name(role));
    if (overlaps(spans.content, pos, end)) CHECK(role == Role::kAssistant);
    else if (overlaps(spans.end_marker, pos, end)) CHECK(role == Role::kEos);
    else CHECK((role != Role::kAssistant && role != Role::kEos));
    pos = end;
  }
  CHECK(pos == text.size());
}

}  // namespace

TEST_CASE("chat templates of checkpoints: family recognised, text, ids and roles as transformers renders them", "[slow][template][python]") {
  const std::string ref = test::reference_tokenizers();
  const std::string folders = ref + "/gpt2 " + ref + "/qwen2 " + ref + "/llama3 " + ref + "/llama2 " + ref + "/mistral";
  const auto r = test::run_venv_python("tok_chat_render.py", folders);
  REQUIRE(r.exit_code == 0);
  const std::string qwen_default_system =
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n";
  const std::vector<std::array<std::string, 3>> families = {{"gpt2", "chatml", "<|im_end|>"},
                                                            {"qwen2", "chatml", "<|im_end|>"},
                                                            {"llama3", "llama3", "<|eot_id|>"},
                                                            {"llama2", "llama2", " </s>"},
                                                            {"mistral", "mistral", "</s>"}};
  for (const auto& [folder, family, marker] : families) {
    const auto tok = make_tokenizer(ref + "/" + folder);
    CHECK(template_family(tok->chat_template()) == family);
    const ChatTemplate tmpl = load_template("auto", *tok);
    CHECK(tmpl.name == family);
    int conversations = 0;
    for (const auto& line : test::read_jsonl(ref + "/" + folder + "/rendered.jsonl")) {
      ++conversations;
      const Example ex = chat_example(line["messages"]);
      std::string expected = line["text"].get<std::string>();
      auto expected_ids = line["ids"].get<std::vector<std::int32_t>>();
      INFO(folder << ": " << expected);
      // Documented difference: Qwen2.5's template adds a default system prompt; masklab's chatml does not.
      if (folder == "qwen2" && ex.messages[0].role != Role::kSystem) {
        std::vector<std::int32_t> ids;
        std::vector<std::uint32_t> offsets;
        tok->encode(qwen_default_system, ids, offsets);
        REQUIRE(expected.rfind(qwen_default_system, 0) == 0);
        REQUIRE(std::equal(ids.begin(), ids.end(), expected_ids.begin()));
        expected = expected.substr(qwen_default_system.size());
        expected_ids.erase(expected_ids.begin(), expected_ids.begin() + static_cast<long>(ids.size()));
      }
      CHECK(rendered_text(render(tmpl, ex), *tok) == expected);
      const auto t = tokenize_example(ex, tmpl, *tok, 4096, true, nullptr);
      REQUIRE(t);
      CHECK(t->ids == expected_ids);
      check_roles(*t, *tok, expected, assistant_spans(expected, line["messages"], marker));
      // The final completion starts at the token that holds the last answer's first character.
      CHECK(t->roles[static_cast<size_t>(t->completion_begin)] == static_cast<std::uint8_t>(Role::kAssistant));
      CHECK(t->roles[static_cast<size_t>(t->completion_begin) - 1] != static_cast<std::uint8_t>(Role::kAssistant));
    }
    CHECK(conversations >= (family == "mistral" ? 2 : 4));
  }
}

TEST_CASE("data.template=auto: an unknown or missing chat template says how to name one", "[fast][template]") {
  CHECK(template_family("{% for m in messages %}{{ m.content }}{% endfor %}").empty());
  CHECK(template_family("{{ '[INST] ' + m + ' [/INST]' }}") == "mistral");
  CHECK(template_family("{{ '[INST] <<SYS>>' }}") == "llama2");
  const auto byte = make_tokenizer("byte");
  CHECK_THAT(test::user_error_of([&] { load_template("auto", *byte); }),
             Catch::Contains("has no chat template") && Catch::Contains("data.template") &&
                 Catch::Contains("FILE.yaml"));
  CHECK(load_template("llama3", *byte).assistant_end == "<|eot_id|>");
}

TEST_CASE("byte-level BPE: a completion's first token keeps the completion role when the space before it merges in", "[slow][template][python]") {
  const auto tok = make_tokenizer(test::reference_tokenizers() + "/gpt2");
  test::TempDir dir;
  // "Answer:" + " 42" and "Answer: " + "42" give the same tokens; "Ġ42" holds the answer's digits either way.
  test::write_text(dir.file("space_in_prompt.yaml"), "user: {prefix: \"\", suffix: \"\"}\nassistant: {prefix: \"\", suffix: \"\"}\nassistant_end: \"<eos>\"\n");
  test::write_text(dir.file("space_in_template.yaml"), "user: {prefix: \"\", suffix: \"\"}\nassistant: {prefix: \" \", suffix: \"\"}\nassistant_end: \"<eos>\"\n");
  Example with_space, without_space;
  with_space.messages = {{Role::kUser, "Answer:", "", true}, {Role::kAssistant, " 42", "", true}};
  without_space.messages = {{Role::kUser, "Answer:", "", true}, {Role::kAssistant, "42", "", true}};
  const auto a = tokenize_example(with_space, load_template(dir.file("space_in_prompt.yaml")), *tok, 64, true, nullptr);
  const auto b = tokenize_example(without_space, load_template(dir.file("space_in_template.yaml")), *tok, 64, true, nullptr);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->ids == b->ids);
  CHECK(a->roles == b->roles);
  REQUIRE(b->completion_begin >= 1);
  CHECK_THAT(tok->token_text(b->ids[static_cast<size_t>(b->completion_begin)]), Catch::StartsWith(" 4"));
  CHECK(b->roles[static_cast<size_t>(b->completion_begin)] == static_cast<std::uint8_t>(Role::kAssistant));
  CHECK(b->roles[static_cast<size_t>(b->completion_begin) - 1] == static_cast<std::uint8_t>(Role::kUser));
}
