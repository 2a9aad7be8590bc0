// Real data: chat, Alpaca and text formats, templates, SentencePiece,
// role-aware weights, the dataset cache, inspect.
#include <catch2/catch.hpp>

#include <filesystem>

#include "harness/train/batching.hpp"
#include "harness/data/data.hpp"
#include "harness/data/data_cache.hpp"
#include "harness/core/errors.hpp"
#include "harness/core/run_record.hpp"
#include "harness/data/tokenizer_training.hpp"
#include "strategies/labels.hpp"
#include "strategies/registry.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {


// Concatenated text of the tokens (byte tokenizer) whose label weight under `spec` is > 0.
std::string trained_text(const TokenizedExample& ex, const std::string& spec) {
  const Batch b = make_padded_batch({&ex}, 256);
  const auto w = make_strategy(spec)->weights(LabelView{b.label_role, b.label_flags, 0})[0];
  std::string out;
  for (int64_t t = 0; t < w.size(0); ++t) {
    if (w[t].item<float>() <= 0) continue;
    const int id = ex.ids[t + 1];
    out += id < 256 ? std::string(1, static_cast<char>(id)) : id == 258 ? "<eos>" : "<special>";
  }
  return out;
}

TokenizedExample tokenize(const Example& ex, const std::string& tmpl) {
  const auto tok = make_tokenizer("byte");
  auto out = tokenize_example(ex, load_template(tmpl), *tok, 4096, true, nullptr);
  REQUIRE(out);
  return *out;
}

const char* kThreeTurns =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"},"
    " {\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"A1\"},"
    " {\"role\": \"user\", \"content\": \"你好\"}, {\"role\": \"assistant\", \"content\": \"A2 🙂\"},"
    " {\"role\": \"user\", \"content\": \"bye\"}, {\"role\": \"assistant\", \"content\": \"A3\"}]}\n";

}  // namespace

TEST_CASE("chat JSONL: multi-turn, system, Unicode, chatml roles", "[formats][chat]") {
  test::TempDir dir;
  test::write_text(dir.file("chat.jsonl"), kThreeTurns);
  DataFormat detected;
  const auto examples = load_jsonl(dir.file("chat.jsonl"), DataFormat::kAuto, false, "chat", nullptr, &detected);
  CHECK(detected == DataFormat::kChat);
  REQUIRE(examples[0].messages.size() == 7);
  const auto ex = tokenize(examples[0], "chatml");
  // completion_only trains every assistant turn and its end marker; nothing else.
  CHECK(trained_text(ex, "completion_only") == "A1<|im_end|>A2 🙂<|im_end|>A3<|im_end|>");
  CHECK(trained_text(ex, "last_turn_only") == "A3<|im_end|>");
  CHECK(trained_text(ex, "completion_only:eos=last") == "A1A2 🙂A3<|im_end|>");
  // The final completion for exact match is the last turn and its end marker.
  std::string completion(ex.ids.begin() + ex.completion_begin, ex.ids.begin() + ex.completion_end);
  CHECK(completion == "A3<|im_end|>");
  // weighted with its own system weight: system text weighs 0, user text 0.5.
  const Batch b = make_padded_batch({&ex}, 256);
  const auto w = make_strategy("weighted:0.5,system=0")->weights(LabelView{b.label_role, b.label_flags, 0})[0];
  for (int64_t t = 0; t < w.size(0); ++t) {
    const auto role = static_cast<Role>(ex.roles[t + 1]);
    if (role == Role::kSystem) CHECK(w[t].item<float>() == 0.0f);
    if (role == Role::kUser) CHECK(w[t].item<float>() == 0.5f);
  }
}

TEST_CASE("llama2 and alpaca templates render with exact roles", "[formats][template]") {
  Example chat;
  chat.messages = {{Role::kSystem, "sys", "", true}, {Role::kUser, "u1", "", true}, {Role::kAssistant, "a1", "", true},
                   {Role::kUser, "u2", "", true}, {Role::kAssistant, "a2", "", true}};
  const auto llama = tokenize(chat, "llama2");
  std::string text;
  for (auto id : llama.ids) text += id < 256 ? std::string(1, static_cast<char>(id)) : id == 257 ? "<s>" : "</s>";
  CHECK(text == "<s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nu1 [/INST] a1 </s><s>[INST] u2 [/INST] a2 </s>");
  CHECK(trained_text(llama, "completion_only") == "a1 <eos>a2 <eos>");

  test::TempDir dir;
  test::write_text(dir.file("a.jsonl"), "{\"instruction\": \"Add\", \"input\": \"1+2\", \"output\": \"3\"}\n");
  DataFormat detected;
  const auto alpaca = load_jsonl(dir.file("a.jsonl"), DataFormat::kAuto, false, "a", nullptr, &detected);
  CHECK(detected == DataFormat::kAlpaca);
  const auto ex = tokenize(alpaca[0], "alpaca");
  std::string all;
  for (auto id : ex.ids) all += id < 256 ? std::string(1, static_cast<char>(id)) : "#";
  CHECK(all == "#### Instruction:\nAdd\n\n### Input:\n1+2\n\n### Response:\n3#");
  CHECK(trained_text(ex, "completion_only") == "3<eos>");
}

TEST_CASE("user-defined templates come from YAML", "[formats][template]") {
  test::TempDir dir;
  test::write_text(dir.file("t.yaml"),
                   "bos: \"<bos>\"\nuser: {prefix: \"Q: \", suffix: \"\\n\"}\nassistant: {prefix: \"A: \", suffix: \"\\n\"}\n"
                   "assistant_end: \"<eos>\"\n");
  Example ex;
  ex.messages = {{Role::kUser, "why", "", true}, {Role::kAssistant, "because", "", true}};
  const auto t = tokenize(ex, dir.file("t.yaml"));
  CHECK(trained_text(t, "completion_only") == "because<eos>");
  CHECK(trained_text(t, "full") == "Q: why\nA: because<eos>\n");
  test::write_text(dir.file("bad.yaml"), "user: {prefix: a, sufix: b}\n");
  CHECK_THAT(test::user_error_of([&] { load_template(dir.file("bad.yaml")); }), Catch::Contains("bad.yaml:1: unknown template key 'user.sufix'"));
}

TEST_CASE("a per-message weight of 0 is honoured", "[formats][chat]") {
  test::TempDir dir;
  test::write_text(dir.file("w.jsonl"),
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"q1\"}, {\"role\": \"assistant\", \"content\": \"bad\", \"weight\": 0},"
                   " {\"role\": \"user\", \"content\": \"q2\"}, {\"role\": \"assistant\", \"content\": \"good\", \"weight\": 1}]}\n");
  const auto ex = tokenize(load_jsonl(dir.file("w.jsonl"), DataFormat::kAuto, false, "w", nullptr)[0], "chatml");
  CHECK(trained_text(ex, "completion_only") == "good<|im_end|>");
  CHECK(trained_text(ex, "full").find("bad") == std::string::npos);
}

TEST_CASE("prompt/completion as message lists, and plain text", "[formats]") {
  test::TempDir dir;
  test::write_text(dir.file("pc.jsonl"),
                   "{\"prompt\": [{\"role\": \"user\", \"content\": \"2+2?\"}], \"completion\": [{\"role\": \"assistant\", \"content\": \"4\"}]}\n");
  const auto pc = tokenize(load_jsonl(dir.file("pc.jsonl"), DataFormat::kAuto, false, "pc", nullptr)[0], "plain");
  CHECK(trained_text(pc, "completion_only") == "4<eos>");
  test::write_text(dir.file("t.jsonl"), "{\"text\": \"every token 字\"}\n");
  DataFormat detected;
  const auto text = tokenize(load_jsonl(dir.file("t.jsonl"), DataFormat::kAuto, false, "t", nullptr, &detected)[0], "chatml");
  CHECK(detected == DataFormat::kText);
  CHECK(trained_text(text, "completion_only") == "every token 字<eos>");
  CHECK(trained_text(text, "full") == "every token 字<eos>");
}

TEST_CASE("bad chat data gives file:line and the reason", "[formats][errors]") {
  test::TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"y\"}]}", ":1: messages[0]: unknown role 'robot'"},
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"  \"}]}", ":1: empty completion"},
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", ":1: no assistant message"},
      {"{\"messages\": [{\"role\": \"user\"}, {\"role\": \"assistant\", \"content\": \"y\"}]}", ":1: missing field 'content'"},
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"y\", \"weight\": 2}]}", "weight must be 0 or 1"},
      {"{\"instruction\": \"x\", \"output\": \"\"}", ":1: empty completion"},
      {"{\"text\": \"\"}", ":1: empty text"},
      {"{\"foo\": 1}", ":1: unknown format"},
  };
  for (const auto& [line, expected] : cases) {
    INFO(line);
    test::write_text(dir.file("bad.jsonl"), line + "\n");
    const std::string msg = test::user_error_of([&] { load_jsonl(dir.file("bad.jsonl"), DataFormat::kAuto, false, "x", nullptr); });
    CHECK_THAT(msg, Catch::StartsWith(dir.file("bad.jsonl") + ":1: ") && Catch::Contains(expected));
  }
}

TEST_CASE("SentencePiece: training, loading, roles when tokens merge across a boundary", "[formats][sentencepiece]") {
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
  // "▁hello" starts at the template's space: template role, yet it is the completion's first token.
  CHECK(t->roles[2] == static_cast<uint8_t>(Role::kTemplate));
  CHECK(t->completion_begin == 2);
  CHECK(t->completion_end == 4);
  CHECK(stats.straddling_tokens == 2);
  CHECK(tok->decode({t->ids[2]}) == "hello");
}

TEST_CASE("the dataset cache hits on a second load and misses after the data changes", "[formats][cache]") {
  test::TempDir dir;
  test::write_text(dir.file("d.jsonl"), kThreeTurns + std::string(kThreeTurns) + kThreeTurns + kThreeTurns);
  Config c = test::tiny_config();
  c.data.train = dir.file("d.jsonl");
  c.data.eval_fraction = 0.25;
  c.data.template_name = "chatml";
  c.model.max_seq_len = 128;
  bool hit = true;
  const Dataset first = load_dataset(c, dir.file("cache"), &hit);
  CHECK_FALSE(hit);
  const Dataset second = load_dataset(c, dir.file("cache"), &hit);
  CHECK(hit);
  CHECK(second.fingerprint == first.fingerprint);
  CHECK(second.train.size() == first.train.size());
  CHECK(second.train[0].ids == first.train[0].ids);
  CHECK(second.train[0].flags == first.train[0].flags);
  CHECK(second.train_eval == first.train_eval);
  test::write_text(dir.file("d.jsonl"), kThreeTurns + std::string(kThreeTurns) + kThreeTurns);
  load_dataset(c, dir.file("cache"), &hit);
  CHECK_FALSE(hit);
  c.data.max_len = 64;  // another setting that shapes the tokens
  load_dataset(c, dir.file("cache"), &hit);
  CHECK_FALSE(hit);
}

TEST_CASE("inspect prints token|role|weight tables and a summary", "[formats][inspect][cli]") {
  test::TempDir dir;
  test::write_text(dir.file("chat.jsonl"), kThreeTurns);
  const auto r = test::run_masklab("inspect " + dir.file("chat.jsonl") + " --template chatml --strategy last_turn_only "
                                   "--strategy completion_only --html " + dir.file("i.html"));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("token|role|last_turn_only|completion_only"));
  CHECK_THAT(r.out, Catch::Contains("A|assistant|0|1"));     // first turn: only completion_only
  CHECK_THAT(r.out, Catch::Contains("3|assistant|1|1"));     // "A3": both
  CHECK_THAT(r.out, Catch::Contains("# tokens per role:"));
  CHECK_THAT(r.out, Catch::Contains("R_g = completion/prompt"));
  CHECK(std::filesystem::exists(dir.file("i.html")));
  const auto bad = test::run_masklab("inspect " + dir.file("chat.jsonl") + " --strategy weighted:-1");
  CHECK(bad.exit_code == 2);
}

TEST_CASE("the shipped 3-turn chats train under assistant_only and last_turn_only, with train and with a sweep "
          "on a SentencePiece model from `masklab tokenizer train`", "[formats][cli][sentencepiece]") {
  test::TempDir dir;
  const std::string data = MASKLAB_SOURCE_DIR "/experiments/data/chat_3turn.jsonl";
  const std::string tiny =
      "--set model.n_layers=1 --set model.d_model=32 --set model.n_heads=2 --set model.max_seq_len=352 "
      "--set train.steps=2 --set train.batch_size=4 --set train.threads=1 --set data.template=chatml "
      "--set data.train=" + data;
  long trained[2] = {0, 0};
  int i = 0;
  for (const char* strategy : {"assistant_only", "last_turn_only"}) {
    const auto r = test::run_masklab(std::string("train --strategy ") + strategy + " --out " + dir.file(strategy) + " " + tiny);
    INFO(r.out);
    REQUIRE(r.exit_code == 0);
    trained[i++] = read_json_file(dir.file(strategy) + "/metrics.json")["tokens_trained"].get<long>();
  }
  CHECK(trained[1] < trained[0]);  // only the final turn

  const auto tok = test::run_masklab("tokenizer train " + data + " --vocab 400 --type unigram --out " + dir.file("chat.model"));
  INFO(tok.out);
  REQUIRE(tok.exit_code == 0);
  test::write_text(dir.file("spec.yaml"),
                   "base:\n"
                   "  model: {n_layers: 1, d_model: 32, n_heads: 2, max_seq_len: 160}\n"
                   "  train: {steps: 2, batch_size: 4, threads: 1, eval_every: 0}\n"
                   "  data: {train: " + data + ", template: chatml, tokenizer: " + dir.file("chat.model") + "}\n"
                   "grid:\n  strategy: [assistant_only, last_turn_only]\n");
  const auto sweep = test::run_masklab("sweep " + dir.file("spec.yaml") + " --out " + dir.file("sweep"));
  INFO(sweep.out);
  CHECK(sweep.exit_code == 0);
  CHECK_THAT(sweep.out, Catch::Contains("2 runs ok, 0 not ok"));
  const auto report = test::run_masklab("report " + dir.file("sweep"));
  INFO(report.out);
  CHECK(report.exit_code == 0);
}
