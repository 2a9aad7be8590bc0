// harness/train/generate and the model's KV cache: the cached forward equals
// the full forward, cached decoding equals a plain loop of full forwards,
// batching changes nothing, the stop rules, the sampler's distribution, and
// parity with transformers' generate().
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "harness/core/hf_config.hpp"
#include "harness/data/tokenizer.hpp"
#include "harness/train/generate.hpp"
#include "harness/train/model.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

// GQA 4/2, head_dim 24 != 64/4, q/k norm, q/k/v and output biases, llama3
// RoPE scaling, untied head; every weight drawn wide (std 0.3, gains 1 +- 0.3,
// biases nonzero) so that the argmax is far from ties and every part counts.
ModelConfig gqa_config() {
  ModelConfig m;
  m.n_layers = 2;
  m.d_model = 64;
  m.n_heads = 4;
  m.n_kv_heads = 2;
  m.head_dim = 24;
  m.qk_norm = true;
  m.attention_bias = true;
  m.tie_embeddings = false;
  m.rope_scaling = RopeScaling::kLlama3;
  m.rope_original_max_len = 32;
  m.init_std = 0.3;
  return m;
}

Transformer make_model(const ModelConfig& m, int64_t vocab, std::uint64_t seed) {
  Transformer t(m, vocab);
  t->initialize(seed);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1000);
  torch::NoGradGuard no_grad;
  for (auto& item : t->named_parameters(/*recurse=*/true)) {
    if (item.value().dim() != 1) continue;
    const bool bias = item.key().find("_bias") != std::string::npos;
    item.value().normal_(bias ? 0.0 : 1.0, 0.3, gen);
  }
  t->eval();
  return t;
}

std::vector<std::int32_t> random_prompt(int length, int vocab, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> ids;
  for (int i = 0; i < length; ++i) ids.push_back(static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(vocab)));
  return ids;
}

// The reference: one full forward of the whole unpadded sequence per new token, argmax of its last position.
std::vector<std::int32_t> plain_greedy(Transformer& model, const std::vector<std::int32_t>& prompt, int n) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> context(prompt.begin(), prompt.end());
  std::vector<std::int32_t> out;
  for (int step = 0; step < n && static_cast<int64_t>(context.size()) < model->config.max_seq_len; ++step) {
    const int64_t T = static_cast<int64_t>(context.size());
    const auto ids = torch::tensor(context, torch::kLong).view({1, T});
    const auto last = model->forward(ids, torch::arange(T, torch::kLong).view({1, T})).select(1, T - 1);  // (1, C)
    const auto next = static_cast<std::int32_t>(torch::matmul(last, model->head_weight().t()).argmax(-1).item<int64_t>());
    out.push_back(next);
    context.push_back(next);
  }
  return out;
}

std::vector<std::vector<std::int32_t>> prompts_of_lengths(const std::vector<int>& lengths, int vocab) {
  std::vector<std::vector<std::int32_t>> out;
  for (size_t i = 0; i < lengths.size(); ++i) out.push_back(random_prompt(lengths[i], vocab, 77 + i));
  return out;
}

std::vector<std::int64_t> indices(size_t n) {
  std::vector<std::int64_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<std::int64_t>(i);
  return out;
}

}  // namespace

TEST_CASE("the cached incremental forward's hidden states equal the full forward's at every position",
          "[fast][model][generate]") {
  torch::NoGradGuard no_grad;
  for (const auto& [name, config] : {std::pair{"default", ModelConfig{}}, std::pair{"gqa", gqa_config()}}) {
    INFO(name);
    auto model = make_model(config, 259, 5);
    // Two rows, 23 and 14 tokens: the shorter left-padded by 9 slots.
    const auto a = random_prompt(23, 259, 1), b = random_prompt(14, 259, 2);
    std::vector<torch::Tensor> full;
    for (const auto& p : {a, b}) {
      const int64_t T = static_cast<int64_t>(p.size());
      const auto ids = torch::tensor(std::vector<int64_t>(p.begin(), p.end()), torch::kLong).view({1, T});
      full.push_back(model->forward(ids, torch::arange(T, torch::kLong).view({1, T}))[0]);  // (T, C)
    }
    auto ids = torch::zeros({2, 23}, torch::kLong), pos = torch::zeros({2, 23}, torch::kLong);
    auto valid = torch::zeros({2, 23}, torch::kBool);
    for (int t = 0; t < 23; ++t) {
      ids[0][t] = a[t];
      pos[0][t] = t;
      valid[0][t] = true;
      if (t >= 9) {
        ids[1][t] = b[t - 9];
        pos[1][t] = t - 9;
        valid[1][t] = true;
      }
    }
    // Slots fed in chunks of 7, 5, then one at a time.
    KVCache cache(23);
    std::vector<torch::Tensor> parts;
    for (int64_t start = 0, n = 7; start < 23; start += n, n = start >= 12 ? 1 : 5) {
      parts.push_back(model->forward_cached(ids.narrow(1, start, n), pos.narrow(1, start, n),
                                            valid.narrow(1, start, n), cache));
    }
    const auto cached = torch::cat(parts, 1);  // (2, 23, C)
    CHECK(cache.length == 23);
    CHECK((cached[0] - full[0]).abs().max().item<double>() < 1e-5);
    CHECK((cached[1].narrow(0, 9, 14) - full[1]).abs().max().item<double>() < 1e-5);
    CHECK(full[0].abs().max().item<double>() > 0.1);  // not a vacuous comparison
  }
}

TEST_CASE("KV-cached greedy decoding equals step-by-step decoding without a cache, token for token",
          "[fast][generate]") {
  const auto byte = make_tokenizer("byte");
  for (const auto& [name, config] : {std::pair{"default", ModelConfig{}}, std::pair{"gqa", gqa_config()}}) {
    INFO(name);
    auto model = make_model(config, 259, 11);
    const auto prompts = prompts_of_lengths({5, 17, 9, 30}, 259);
    DecodeOptions o;
    o.max_new_tokens = 40;
    o.batch_size = 4;
    const auto cached = generate(model, prompts, indices(prompts.size()), o, *byte, torch::kCPU);
    o.use_cache = false;
    const auto uncached = generate(model, prompts, indices(prompts.size()), o, *byte, torch::kCPU);
    std::set<std::int32_t> distinct;
    for (size_t i = 0; i < prompts.size(); ++i) {
      INFO("prompt " << i);
      const auto reference = plain_greedy(model, prompts[i], 40);
      REQUIRE(cached[i].tokens.size() == 40);
      CHECK(cached[i].tokens == reference);
      CHECK(uncached[i].tokens == reference);
      CHECK(cached[i].stop_reason == "length");
      distinct.insert(reference.begin(), reference.end());
    }
    CHECK(distinct.size() > 3);  // the continuation is not one token repeated
  }
}

TEST_CASE("batched decoding equals decoding each prompt alone, greedy and sampled", "[fast][generate]") {
  const auto byte = make_tokenizer("byte");
  auto model = make_model(gqa_config(), 259, 21);
  const auto prompts = prompts_of_lengths({3, 25, 11, 7, 19, 2, 14}, 259);
  const auto ids = indices(prompts.size());
  for (const double temperature : {0.0, 0.8}) {
    INFO("temperature " << temperature);
    DecodeOptions o;
    o.max_new_tokens = 24;
    o.temperature = temperature;
    o.top_p = temperature > 0 ? 0.9 : 1.0;
    o.seed = 3;
    o.batch_size = 1;
    const auto alone = generate(model, prompts, ids, o, *byte, torch::kCPU);
    for (const int batch : {7, 3}) {
      o.batch_size = batch;
      const auto together = generate(model, prompts, ids, o, *byte, torch::kCPU);
      for (size_t i = 0; i < prompts.size(); ++i) CHECK(together[i].tokens == alone[i].tokens);
    }
    // Reversed order, same example indices: each example keeps its stream.
    const std::vector<std::vector<std::int32_t>> reversed(prompts.rbegin(), prompts.rend());
    const std::vector<std::int64_t> reversed_ids(ids.rbegin(), ids.rend());
    o.batch_size = 4;
    const auto back = generate(model, reversed, reversed_ids, o, *byte, torch::kCPU);
    for (size_t i = 0; i < prompts.size(); ++i) CHECK(back[prompts.size() - 1 - i].tokens == alone[i].tokens);
    if (temperature > 0) {
      // Sampling really samples: another seed, other tokens; greedy differs too.
      o.seed = 4;
      const auto other = generate(model, prompts, ids, o, *byte, torch::kCPU);
      DecodeOptions greedy = o;
      greedy.temperature = 0;
      const auto argmax = generate(model, prompts, ids, greedy, *byte, torch::kCPU);
      int differ_seed = 0, differ_greedy = 0;
      for (size_t i = 0; i < prompts.size(); ++i) {
        differ_seed += other[i].tokens != alone[i].tokens;
        differ_greedy += argmax[i].tokens != alone[i].tokens;
      }
      CHECK(differ_seed > 0);
      CHECK(differ_greedy > 0);
    }
  }
}

TEST_CASE("decoding stops at a stop string, at EOS, at max_new_tokens and at model.max_seq_len", "[fast][generate]") {
  // A 256-token vocabulary under the byte tokenizer: one byte per token, so
  // text offsets are token counts.
  const auto byte = make_tokenizer("byte");
  auto model = make_model(gqa_config(), 256, 31);
  const std::vector<std::vector<std::int32_t>> prompt = {random_prompt(12, 256, 9)};
  DecodeOptions o;
  o.max_new_tokens = 30;
  const auto plain = generate(model, prompt, {0}, o, *byte, torch::kCPU)[0];
  REQUIRE(plain.stop_reason == "length");
  REQUIRE(plain.tokens.size() == 30);
  CHECK(plain.text == byte->decode(plain.tokens));

  SECTION("stop string: the text and the tokens end before its first occurrence") {
    const std::string stop = plain.text.substr(10, 2);
    const size_t at = plain.text.find(stop);  // 10, or earlier if it occurs before
    o.stop = {"never-generated-\x01\x02", stop};
    const auto g = generate(model, prompt, {0}, o, *byte, torch::kCPU)[0];
    CHECK(g.stop_reason == "stop");
    CHECK(g.text == plain.text.substr(0, at));
    CHECK(g.tokens == std::vector<std::int32_t>(plain.tokens.begin(), plain.tokens.begin() + static_cast<long>(at)));
  }
  SECTION("EOS: the tokens before its first occurrence, EOS excluded") {
    o.eos_id = plain.tokens[6];
    size_t first = 0;
    while (plain.tokens[first] != o.eos_id) ++first;
    const auto g = generate(model, prompt, {0}, o, *byte, torch::kCPU)[0];
    CHECK(g.stop_reason == "eos");
    CHECK(g.tokens == std::vector<std::int32_t>(plain.tokens.begin(), plain.tokens.begin() + static_cast<long>(first)));
  }
  SECTION("max_new_tokens: exactly that many, a prefix of the longer decoding") {
    o.max_new_tokens = 8;
    const auto g = generate(model, prompt, {0}, o, *byte, torch::kCPU)[0];
    CHECK(g.stop_reason == "length");
    CHECK(g.tokens == std::vector<std::int32_t>(plain.tokens.begin(), plain.tokens.begin() + 8));
  }
  SECTION("model.max_seq_len: prompt and continuation fill the context and no more") {
    const int64_t max_len = model->config.max_seq_len;  // 128
    const std::vector<std::vector<std::int32_t>> prompts = {random_prompt(static_cast<int>(max_len) - 5, 256, 1),
                                                            random_prompt(static_cast<int>(max_len), 256, 2),
                                                            random_prompt(4, 256, 3)};
    for (const bool cache : {true, false}) {
      o.use_cache = cache;
      const auto g = generate(model, prompts, {0, 1, 2}, o, *byte, torch::kCPU);
      CHECK(g[0].stop_reason == "context");
      CHECK(g[0].tokens.size() == 5);
      CHECK(g[0].tokens == plain_greedy(model, prompts[0], 30));
      CHECK(g[1].stop_reason == "context");
      CHECK(g[1].tokens.empty());
      CHECK(g[2].stop_reason == "length");
      CHECK(g[2].tokens == plain_greedy(model, prompts[2], 30));
    }
  }
}

TEST_CASE("the sampler: a tiny top_p is greedy, and draws follow softmax(logits / T) on the nucleus",
          "[fast][generate]") {
  SECTION("top_p tiny or temperature 0 picks the argmax") {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    for (int row = 0; row < 50; ++row) {
      const auto logits = torch::randn({300}, gen);
      const auto best = logits.argmax().item<int64_t>();
      std::mt19937_64 rng(static_cast<std::uint64_t>(row));
      CHECK(choose_token(logits, 0.8, 1e-9, rng) == best);
      CHECK(choose_token(logits, 0.0, 1.0, rng) == best);
    }
  }
  // Six tokens at T = 0.7; the probabilities were worked out separately (python's math.exp).
  const auto logits = torch::tensor({2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 1.0f});
  const double T = 0.7;
  std::vector<double> p;
  double total = 0;
  for (int i = 0; i < 6; ++i) total += std::exp(logits[i].item<double>() / T);
  for (int i = 0; i < 6; ++i) p.push_back(std::exp(logits[i].item<double>() / T) / total);
  // p = {0.59959, 0.14369, 0.07034, 0.03444, 0.00825, 0.14369}: a check on the formula above.
  CHECK(p[0] == Approx(0.59959).margin(1e-5));
  CHECK(p[4] == Approx(0.00825).margin(1e-5));
  const int draws = 40000;
  auto frequencies = [&](double top_p) {
    std::vector<double> f(6, 0);
    for (int i = 0; i < draws; ++i) {
      auto rng = example_stream(/*seed=*/17, i);  // one stream per "example", as decoding uses them
      f[static_cast<size_t>(choose_token(logits, T, top_p, rng))] += 1.0 / draws;
    }
    return f;
  };
  auto within_binomial = [&](const std::vector<double>& f, const std::vector<double>& q) {
    for (int i = 0; i < 6; ++i) {
      INFO("token " << i << " frequency " << f[i] << " expected " << q[i]);
      CHECK(std::abs(f[i] - q[i]) <= 5 * std::sqrt(q[i] * (1 - q[i]) / draws) + 1e-12);
    }
  };
  SECTION("top_p = 1: the whole softmax") { within_binomial(frequencies(1.0), p); }
  SECTION("top_p = 0.75: the nucleus {0, 1, 5}, renormalised") {
    // Sorted: 0 (0.600), then the tie 1 and 5 (0.144 each; lower id first):
    // 0.600 < 0.75, 0.743 < 0.75, 0.887 >= 0.75, so the nucleus is {0, 1, 5}.
    const double mass = p[0] + p[1] + p[5];
    within_binomial(frequencies(0.75), {p[0] / mass, p[1] / mass, 0, 0, 0, p[5] / mass});
  }
}

namespace {

// Loads a transformers checkpoint the way a run does (config.json, then the weights).
Transformer load_checkpoint(const std::string& dir) {
  Config c;
  apply_value(c, "model.init_from", dir, "test");
  resolve_init_from(c);
  validate(c);
  Transformer t(c.model, c.model.vocab_size);
  t->initialize(1);
  load_parameters(*t, dir);
  t->eval();
  return t;
}

}  // namespace

TEST_CASE("greedy decoding equals transformers' generate(do_sample=False) token for token", "[slow][generate][python]") {
  test::TempDir dir;
  const auto made = test::run_venv_python("hf_make_checkpoints.py", dir.file("hf"));
  INFO(made.out);
  REQUIRE(made.exit_code == 0);
  const auto byte = make_tokenizer("byte");
  // llama: GQA, llama3 RoPE scaling, untied; qwen2: q/k/v biases, bf16 weights; qwen3: q/k norm, head_dim 32.
  for (const std::string name : {"llama", "qwen2", "qwen3"}) {
    INFO(name);
    auto model = load_checkpoint(dir.file("hf/" + name));
    const auto prompts = prompts_of_lengths({4, 13, 7, 21, 1}, static_cast<int>(model->vocab_size));
    DecodeOptions o;
    o.max_new_tokens = 32;
    o.batch_size = 5;
    const auto ours = generate(model, prompts, indices(prompts.size()), o, *byte, torch::kCPU);
    test::write_text(dir.file(name + ".json"), nlohmann::json{{"prompts", prompts}, {"max_new_tokens", 32}}.dump());
    const auto ref = test::run_venv_python("hf_generate_reference.py", dir.file("hf/" + name) + " " + dir.file(name + ".json"));
    INFO(ref.out);
    REQUIRE(ref.exit_code == 0);
    // The one stdout line; progress bars on stderr may come before or after it.
    const size_t at = ref.out.find("{\"continuations\"");
    REQUIRE(at != std::string::npos);
    const auto theirs = nlohmann::json::parse(ref.out.substr(at, ref.out.find('\n', at) - at))["continuations"];
    REQUIRE(theirs.size() == prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      INFO("prompt " << i);
      CHECK(ours[i].tokens == theirs[i].get<std::vector<std::int32_t>>());
    }
  }
}
