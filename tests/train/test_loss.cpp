// The loss against independent computations; normalization; accumulation.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <set>

#include <ATen/CPUGeneratorImpl.h>

#include "harness/train/batching.hpp"
#include "harness/train/loss.hpp"
#include "harness/train/model.hpp"
#include "harness/train/trainer.hpp"
#include "strategies/registry.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

struct Problem {
  torch::Tensor hidden, head, targets, coeff;
};

Problem random_problem(int64_t N, int64_t C, int64_t V, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Problem p;
  p.hidden = torch::empty({N, C}).normal_(0, 1, gen);
  p.head = torch::empty({V, C}).normal_(0, 0.5, gen);
  p.targets = torch::randint(V, {N}, gen, torch::kLong);
  p.coeff = torch::empty({N}).uniform_(0.1, 2.0, gen);
  return p;
}

// Direct per-token log-softmax, in double, one row at a time.
double direct_loss(const Problem& p) {
  const auto h = p.hidden.to(torch::kDouble), w = p.head.to(torch::kDouble);
  double total = 0;
  for (int64_t i = 0; i < h.size(0); ++i) {
    std::vector<double> logits(w.size(0));
    double max_logit = -1e300;
    for (int64_t v = 0; v < w.size(0); ++v) {
      logits[v] = (h[i] * w[v]).sum().item<double>();
      max_logit = std::max(max_logit, logits[v]);
    }
    double sum = 0;
    for (double l : logits) sum += std::exp(l - max_logit);
    const double log_z = max_logit + std::log(sum);
    total += p.coeff[i].item<double>() * (log_z - logits[p.targets[i].item<int64_t>()]);
  }
  return total;
}

}  // namespace

TEST_CASE("weighted NLL equals a direct per-token log-softmax loop", "[loss]") {
  const Problem p = random_problem(/*N=*/13, /*C=*/8, /*V=*/11, /*seed=*/3);
  const double expected = direct_loss(p);
  for (int64_t chunk : {1, 4, 13, 100}) {
    INFO("chunk " << chunk);
    const double got = weighted_nll(p.hidden, p.head, p.targets, p.coeff, chunk).item<double>();
    CHECK(got == Approx(expected).epsilon(1e-6));
  }
}

TEST_CASE("fused loss gradients equal autograd through full logits", "[loss]") {
  const Problem p = random_problem(17, 8, 23, 5);
  auto h1 = p.hidden.clone().requires_grad_(true), w1 = p.head.clone().requires_grad_(true);
  weighted_nll(h1, w1, p.targets, p.coeff, /*chunk_size=*/5).backward();
  auto h2 = p.hidden.clone().requires_grad_(true), w2 = p.head.clone().requires_grad_(true);
  const auto nll = torch::nn::functional::cross_entropy(
      torch::matmul(h2, w2.t()), p.targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  (nll * p.coeff).sum().backward();
  CHECK(torch::allclose(h1.grad(), h2.grad(), 1e-5, 1e-6));
  CHECK(torch::allclose(w1.grad(), w2.grad(), 1e-5, 1e-6));
}

TEST_CASE("weighted NLL and its gradients match python3-torch's F.cross_entropy", "[loss][python]") {
  test::TempDir dir;
  const Problem p = random_problem(29, 16, 37, 7);
  c10::Dict<std::string, torch::Tensor> in;
  in.insert("hidden", p.hidden);
  in.insert("head", p.head);
  in.insert("targets", p.targets);
  in.insert("coeff", p.coeff);
  const auto bytes = torch::pickle_save(in);
  std::ofstream(dir.file("in.pt"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const auto r = test::run_shell("/usr/bin/python3 " MASKLAB_SOURCE_DIR "/tests/python/masked_loss_reference.py " +
                                 dir.file("in.pt") + " " + dir.file("out.pt"));
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  const std::string raw = test::read_text(dir.file("out.pt"));
  const auto out = torch::pickle_load(std::vector<char>(raw.begin(), raw.end())).toGenericDict();
  auto get = [&](const char* k) { return out.at(c10::IValue(std::string(k))).toTensor(); };

  auto h = p.hidden.clone().requires_grad_(true), w = p.head.clone().requires_grad_(true);
  const auto loss = weighted_nll(h, w, p.targets, p.coeff, 8);
  loss.backward();
  CHECK(loss.item<double>() == Approx(get("loss").item<double>()).epsilon(1e-5));
  CHECK(torch::allclose(h.grad(), get("grad_hidden"), 1e-4, 1e-6));
  CHECK(torch::allclose(w.grad(), get("grad_head"), 1e-4, 1e-6));
}

TEST_CASE("each normalization mode matches a direct computation over the step", "[loss][normalization]") {
  // Two micro-batches of one step; ℓ are arbitrary per-token losses.
  const auto w1 = torch::tensor({{0.f, 1.f, 0.5f}, {2.f, 0.f, 0.f}});
  const auto w2 = torch::tensor({{1.f, 1.f, 0.f}});
  const auto s1 = torch::tensor({{0L, 0L, 0L}, {1L, 1L, -1L}});
  const auto s2 = torch::tensor({{0L, 0L, -1L}});
  const auto l1 = torch::tensor({{3.f, 1.f, 2.f}, {4.f, 9.f, 9.f}});
  const auto l2 = torch::tensor({{1.f, 5.f, 7.f}});
  auto step_loss = [&](Normalization n) {
    const auto c = normalize_step({w1, w2}, {s1, s2}, n);
    return (c[0] * l1).sum().item<double>() + (c[1] * l2).sum().item<double>();
  };
  // Σwℓ = 1*1 + 0.5*2 + 2*4 + 1*1 + 1*5 = 16; Σw = 5.5; #{w>0} = 5
  CHECK(step_loss(Normalization::kWeightSum) == Approx(16.0 / 5.5));
  CHECK(step_loss(Normalization::kTokenCount) == Approx(16.0 / 5.0));
  // Per example: (1+1)/1.5, 8/2, (1+5)/2 -> mean over 3 examples.
  CHECK(step_loss(Normalization::kSequence) == Approx((2.0 / 1.5 + 4.0 + 3.0) / 3.0));
  // All-zero weights: nothing to learn, no division by zero.
  const auto zero = normalize_step({torch::zeros({1, 3})}, {s2}, Normalization::kWeightSum);
  CHECK(zero[0].abs().sum().item<float>() == 0.0f);
}

TEST_CASE("accumulating 4 micro-batches of B equals one batch of 4B", "[loss][accumulation]") {
  Config config = test::tiny_config();
  const Dataset ds = build_dataset(config);
  std::vector<const TokenizedExample*> examples;
  for (int i = 0; i < 16; ++i) examples.push_back(&ds.train[i * 3]);
  const auto strategy = make_strategy("weighted:0.3");
  const int pad = ds.tokenizer->pad_id();

  for (auto norm : {Normalization::kWeightSum, Normalization::kTokenCount, Normalization::kSequence}) {
    for (bool packed : {false, true}) {
      INFO("normalization " << static_cast<int>(norm) << " packed " << packed);
      auto batch_of = [&](size_t from, size_t n) {
        std::vector<const TokenizedExample*> part(examples.begin() + from, examples.begin() + from + n);
        return packed ? make_packed_batch(part, pad, config.model.max_seq_len) : make_padded_batch(part, pad);
      };
      auto grads_for = [&](const std::vector<Batch>& micro) {
        Transformer model(config.model, ds.tokenizer->vocab_size());
        model->initialize(7);
        const auto out = forward_backward(model, micro, *strategy, norm, 0.0, 64, torch::kCPU);
        std::vector<torch::Tensor> grads;
        for (auto& p : model->parameters()) grads.push_back(p.grad().clone());
        return std::make_pair(out.loss.item<double>(), grads);
      };
      const auto [loss_one, grads_one] = grads_for({batch_of(0, 16)});
      const auto [loss_acc, grads_acc] = grads_for({batch_of(0, 4), batch_of(4, 4), batch_of(8, 4), batch_of(12, 4)});
      CHECK(std::abs(loss_one - loss_acc) < 1e-6);
      double max_diff = 0;
      for (size_t i = 0; i < grads_one.size(); ++i) {
        max_diff = std::max(max_diff, (grads_one[i] - grads_acc[i]).abs().max().item<double>());
      }
      CHECK(max_diff < 1e-6);
    }
  }
}

TEST_CASE("packed rows give each example the same loss as padded rows", "[loss][packing]") {
  Config config = test::tiny_config();
  const Dataset ds = build_dataset(config);
  std::vector<const TokenizedExample*> examples;
  for (int i = 0; i < 12; ++i) examples.push_back(&ds.train[i * 5]);
  Transformer model(config.model, ds.tokenizer->vocab_size());
  model->initialize(11);
  model->eval();
  torch::NoGradGuard no_grad;
  auto per_example_loss = [&](const Batch& b) {
    const auto hidden = model->forward(b.input_ids, b.position_ids, b.packed ? b.segment_ids : torch::Tensor());
    const auto flat_seg = b.segment_ids.flatten();
    const auto valid = flat_seg.ge(0).logical_and(b.label_role.flatten().ne(static_cast<int>(Role::kPad)));
    const auto index = valid.nonzero().flatten();
    const auto scores = score_tokens(hidden.reshape({-1, hidden.size(-1)}).index_select(0, index), model->head_weight(),
                                     b.targets.flatten().index_select(0, index), 64);
    return torch::zeros({b.n_examples}, torch::kDouble)
        .index_add_(0, flat_seg.index_select(0, index), scores.nll.to(torch::kDouble));
  };
  const Batch padded = make_padded_batch(examples, ds.tokenizer->pad_id());
  const Batch packed = make_packed_batch(examples, ds.tokenizer->pad_id(), config.model.max_seq_len);
  REQUIRE(packed.input_ids.size(0) < padded.input_ids.size(0));  // packing actually packed
  CHECK(packed.real_tokens == padded.real_tokens);
  CHECK(torch::allclose(per_example_loss(padded), per_example_loss(packed), 1e-5, 1e-5));
}

TEST_CASE("length bucketing keeps each epoch a permutation and cuts padding", "[batching]") {
  Config config = test::tiny_config();
  config.data.packing = false;
  config.data.train_size = 200;
  const Dataset ds = build_dataset(config);
  auto waste_of = [&](bool bucketing) {
    config.data.bucketing = bucketing;
    ExampleOrder order = training_order(config, ds);
    std::set<int> epoch;
    long real = 0, total = 0;
    for (size_t b = 0; b < ds.train.size() / config.train.batch_size; ++b) {
      std::vector<const TokenizedExample*> batch;
      for (int i = 0; i < config.train.batch_size; ++i) {
        const int idx = order.next();
        epoch.insert(idx);
        batch.push_back(&ds.train[idx]);
      }
      const Batch padded = make_padded_batch(batch, ds.tokenizer->pad_id());
      real += padded.real_tokens;
      total += padded.total_tokens;
    }
    CHECK(epoch.size() == ds.train.size());  // every example once per epoch
    return 1.0 - static_cast<double>(real) / total;
  };
  const double plain = waste_of(false), bucketed = waste_of(true);
  INFO("padding waste " << plain << " -> " << bucketed);
  CHECK(bucketed < plain / 2);
}
