#include "harness/train/generate.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "harness/core/hashing.hpp"

namespace masklab {

std::mt19937_64 example_stream(std::uint64_t seed, std::int64_t example_index) {
  return std::mt19937_64(Fnv1a().add_value(seed).add_value(example_index).add("decode").value());
}

namespace {

// [0, 1) from the top 53 bits: the same on every standard library, unlike
// std::uniform_real_distribution.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

std::int32_t choose_token(const torch::Tensor& logits_in, double temperature, double top_p, std::mt19937_64& rng) {
  const auto logits = logits_in.to(torch::kCPU, torch::kFloat).contiguous();
  const float* l = logits.data_ptr<float>();
  const int64_t V = logits.numel();
  TORCH_CHECK(V > 0, "choose_token: empty logits");
  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i) best = l[i] > l[best] ? i : best;
  if (temperature <= 0) return static_cast<std::int32_t>(best);
  // Unnormalised softmax(l / T) in double, shifted by the max so exp never overflows.
  std::vector<double> p(static_cast<size_t>(V));
  double total = 0;
  for (int64_t i = 0; i < V; ++i) total += p[i] = std::exp((static_cast<double>(l[i]) - l[best]) / temperature);
  std::vector<int64_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  size_t kept = order.size();
  double mass = total;
  if (top_p < 1) {
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    mass = 0;
    kept = 0;
    while (kept < order.size()) {
      mass += p[order[kept++]];
      if (mass >= top_p * total) break;
    }
  }
  const double target = uniform01(rng) * mass;
  double cumulative = 0;
  for (size_t k = 0; k < kept; ++k) {
    cumulative += p[order[k]];
    if (target < cumulative) return static_cast<std::int32_t>(order[k]);
  }
  return static_cast<std::int32_t>(order[kept - 1]);  // rounding left target at the very top
}

namespace {

struct Row {
  const std::vector<std::int32_t>* prompt;
  Generation* out;
  std::mt19937_64 rng;
  size_t length() const { return prompt->size() + out->tokens.size(); }  // tokens in the sequence so far
};

// Cuts at the earliest stop string in the generated text; false when none occurs.
bool cut_at_stop(Generation& g, const std::vector<std::string>& stop, const Tokenizer& tokenizer) {
  const std::string text = tokenizer.decode(g.tokens);
  size_t at = std::string::npos;
  for (const auto& s : stop) {
    if (!s.empty()) at = std::min(at, text.find(s));
  }
  if (at == std::string::npos) return false;
  // Keep the tokens whose text lies wholly before the stop string.
  size_t keep = g.tokens.size();
  for (; keep > 0; --keep) {
    const std::string prefix = tokenizer.decode({g.tokens.begin(), g.tokens.begin() + static_cast<long>(keep)});
    if (prefix.size() <= at && text.compare(0, prefix.size(), prefix) == 0) break;
  }
  g.tokens.resize(keep);
  g.text = text.substr(0, at);
  g.stop_reason = "stop";
  return true;
}

void finish(Generation& g, const char* reason, const Tokenizer& tokenizer) {
  g.stop_reason = reason;
  g.text = tokenizer.decode(g.tokens);
}

// Whether a row can take no token at all: no budget, or a prompt that fills the context.
bool finished_before_start(Row& row, const DecodeOptions& o, const Tokenizer& tokenizer, int64_t max_seq_len) {
  if (o.max_new_tokens <= 0) finish(*row.out, "length", tokenizer);
  else if (static_cast<int64_t>(row.prompt->size()) >= max_seq_len) finish(*row.out, "context", tokenizer);
  return !row.out->stop_reason.empty();
}

// Applies the chosen token to a row; true when the row has finished.
bool accept(Row& row, std::int32_t token, const DecodeOptions& o, const Tokenizer& tokenizer, int64_t max_seq_len) {
  Generation& g = *row.out;
  if (token == o.eos_id) {
    finish(g, "eos", tokenizer);
    return true;
  }
  g.tokens.push_back(token);
  if (!o.stop.empty() && cut_at_stop(g, o.stop, tokenizer)) return true;
  if (static_cast<int>(g.tokens.size()) >= o.max_new_tokens) {
    finish(g, "length", tokenizer);
    return true;
  }
  if (static_cast<int64_t>(row.length()) >= max_seq_len) {
    finish(g, "context", tokenizer);
    return true;
  }
  return false;
}

// The next token of each row from its last hidden state (B, C).
std::vector<std::int32_t> choose_next(Transformer& model, const torch::Tensor& last, const std::vector<Row*>& rows,
                                      const DecodeOptions& o) {
  const auto logits = torch::matmul(last, model->head_weight().to(last.scalar_type()).t());  // (B, V)
  std::vector<std::int32_t> next(rows.size());
  if (o.temperature <= 0) {
    const auto best = logits.argmax(-1).to(torch::kCPU).contiguous();  // (B)
    const auto* best_p = best.data_ptr<int64_t>();
    for (size_t b = 0; b < rows.size(); ++b) next[b] = static_cast<std::int32_t>(best_p[b]);
    return next;
  }
  const auto cpu = logits.to(torch::kCPU, torch::kFloat);
  for (size_t b = 0; b < rows.size(); ++b) next[b] = choose_token(cpu[b], o.temperature, o.top_p, rows[b]->rng);
  return next;
}

struct Padded {
  torch::Tensor ids, positions, valid;  // (B, S) int64, int64, bool
};

// Sequences right-aligned in S = the longest's length: a row's positions
// start at 0 on its first real token, padding is id 0 at position 0.
Padded left_padded(const std::vector<const std::vector<std::int32_t>*>& seqs,
                   const std::vector<const std::vector<std::int32_t>*>& tails) {
  int64_t width = 0;
  for (size_t b = 0; b < seqs.size(); ++b) {
    width = std::max<int64_t>(width, static_cast<int64_t>(seqs[b]->size() + (tails[b] ? tails[b]->size() : 0)));
  }
  const int64_t B = static_cast<int64_t>(seqs.size());
  Padded p{torch::zeros({B, width}, torch::kLong), torch::zeros({B, width}, torch::kLong),
           torch::zeros({B, width}, torch::kBool)};
  auto ids = p.ids.accessor<int64_t, 2>();
  auto pos = p.positions.accessor<int64_t, 2>();
  auto valid = p.valid.accessor<bool, 2>();
  for (int64_t b = 0; b < B; ++b) {
    std::vector<std::int32_t> seq(*seqs[b]);
    if (tails[b]) seq.insert(seq.end(), tails[b]->begin(), tails[b]->end());
    const int64_t offset = width - static_cast<int64_t>(seq.size());
    for (size_t t = 0; t < seq.size(); ++t) {
      ids[b][offset + static_cast<int64_t>(t)] = seq[t];
      pos[b][offset + static_cast<int64_t>(t)] = static_cast<int64_t>(t);
      valid[b][offset + static_cast<int64_t>(t)] = true;
    }
  }
  return p;
}

// One token per active row and step; returns the rows still decoding and,
// in `kept`, their indices among `active`.
std::vector<Row*> step_rows(const std::vector<Row*>& active, const std::vector<std::int32_t>& next,
                            const DecodeOptions& o, const Tokenizer& tokenizer, int64_t max_seq_len,
                            std::vector<int64_t>& kept) {
  std::vector<Row*> still;
  kept.clear();
  for (size_t b = 0; b < active.size(); ++b) {
    if (accept(*active[b], next[b], o, tokenizer, max_seq_len)) continue;
    still.push_back(active[b]);
    kept.push_back(static_cast<int64_t>(b));
  }
  return still;
}

// With the KV cache: the prompts in one left-padded pass, then one new token
// per row and step; finished rows leave the batch and the cache.
long decode_cached(Transformer& model, std::vector<Row*> active, const DecodeOptions& o, const Tokenizer& tokenizer,
                   const torch::Device& device) {
  std::vector<const std::vector<std::int32_t>*> prompts, no_tails(active.size(), nullptr);
  for (Row* r : active) prompts.push_back(r->prompt);
  const Padded p = left_padded(prompts, no_tails);
  const int64_t width = p.ids.size(1);
  KVCache cache(width + o.max_new_tokens - 1);  // the last token chosen is never fed back
  auto last = model->forward_cached(p.ids.to(device), p.positions.to(device), p.valid.to(device), cache)
                  .select(1, width - 1);  // (B, C)
  long chosen = 0;
  std::vector<int64_t> kept;
  while (true) {
    const auto next = choose_next(model, last, active, o);
    chosen += static_cast<long>(active.size());
    auto still = step_rows(active, next, o, tokenizer, model->config.max_seq_len, kept);
    if (still.empty()) return chosen;
    if (still.size() < active.size()) cache.keep_rows(torch::tensor(kept, torch::kLong));
    std::vector<int64_t> ids, positions;
    for (Row* r : still) {
      ids.push_back(r->out->tokens.back());
      positions.push_back(static_cast<int64_t>(r->length()) - 1);
    }
    active = std::move(still);
    const int64_t B = static_cast<int64_t>(active.size());
    const auto valid = torch::ones({B, 1}, torch::kBool);
    last = model->forward_cached(torch::tensor(ids, torch::kLong).view({B, 1}).to(device),
                                 torch::tensor(positions, torch::kLong).view({B, 1}).to(device), valid.to(device), cache)
               .select(1, 0);  // (B, C)
  }
}

// Without a cache: every step runs the whole left-padded prefix through
// forward(), padding and tokens in different segments (never attending each other).
long decode_uncached(Transformer& model, std::vector<Row*> active, const DecodeOptions& o, const Tokenizer& tokenizer,
                     const torch::Device& device) {
  long chosen = 0;
  std::vector<int64_t> kept;
  while (!active.empty()) {
    std::vector<const std::vector<std::int32_t>*> prompts, tails;
    for (Row* r : active) {
      prompts.push_back(r->prompt);
      tails.push_back(&r->out->tokens);
    }
    const Padded p = left_padded(prompts, tails);
    const int64_t width = p.ids.size(1);
    const auto hidden = model->forward(p.ids.to(device), p.positions.to(device), p.valid.to(torch::kLong).to(device));
    const auto next = choose_next(model, hidden.select(1, width - 1), active, o);  // from (B, C)
    chosen += static_cast<long>(active.size());
    active = step_rows(active, next, o, tokenizer, model->config.max_seq_len, kept);
  }
  return chosen;
}

// Restores the model's training flag however generate() leaves.
struct EvalModeScope {
  explicit EvalModeScope(Transformer& m) : model(m), was_training(m->is_training()) { model->eval(); }
  ~EvalModeScope() { model->train(was_training); }
  Transformer& model;
  bool was_training;
};

}  // namespace

std::vector<Generation> generate(Transformer& model, const std::vector<std::vector<std::int32_t>>& prompts,
                                 const std::vector<std::int64_t>& example_index, const DecodeOptions& options,
                                 const Tokenizer& tokenizer, const torch::Device& device, DecodeStats* stats) {
  TORCH_CHECK(prompts.size() == example_index.size(), "generate: ", prompts.size(), " prompts but ",
              example_index.size(), " example indices");
  TORCH_CHECK(options.batch_size >= 1, "generate: batch_size must be >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  EvalModeScope eval_mode(model);
  torch::NoGradGuard no_grad;
  std::vector<Generation> out(prompts.size());
  // Shortest first: less padding per batch. Outputs do not depend on the grouping.
  std::vector<size_t> order(prompts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prompts[a].size() < prompts[b].size(); });
  long chosen = 0;
  const auto batch = static_cast<size_t>(options.batch_size);
  for (size_t start = 0; start < order.size(); start += batch) {
    std::vector<Row> rows;
    for (size_t k = start; k < std::min(order.size(), start + batch); ++k) {
      const size_t i = order[k];
      TORCH_CHECK(!prompts[i].empty(), "generate: prompt ", i, " has no tokens");
      rows.push_back(Row{&prompts[i], &out[i], example_stream(options.seed, example_index[i])});
    }
    std::vector<Row*> active;
    for (Row& r : rows) {
      if (!finished_before_start(r, options, tokenizer, model->config.max_seq_len)) active.push_back(&r);
    }
    if (active.empty()) continue;
    chosen += options.use_cache ? decode_cached(model, active, options, tokenizer, device)
                                : decode_uncached(model, active, options, tokenizer, device);
  }
  if (stats) {
    stats->generated_tokens += chosen;
    stats->seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return out;
}

}  // namespace masklab
