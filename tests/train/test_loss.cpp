// harness/train/loss: the fused weighted NLL against a direct loop, autograd
// and python3-torch; each normalization mode against a direct computation.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include <ATen/CPUGeneratorImpl.h>

#include "harness/train/loss.hpp"
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

TEST_CASE("weighted NLL equals a direct per-token log-softmax loop", "[fast][loss]") {
  const Problem p = random_problem(/*N=*/13, /*C=*/8, /*V=*/11, /*seed=*/3);
  const double expected = direct_loss(p);
  for (int64_t chunk : {1, 4, 13, 100}) {
    INFO("chunk " << chunk);
    const double got = weighted_nll(p.hidden, p.head, p.targets, p.coeff, chunk).item<double>();
    CHECK(got == Approx(expected).epsilon(1e-6));
  }
}

TEST_CASE("fused loss gradients equal autograd through full logits", "[fast][loss]") {
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

TEST_CASE("weighted NLL and its gradients match python3-torch's F.cross_entropy", "[slow][loss][python]") {
  test::require_python_module("torch", "python3-torch");
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

TEST_CASE("each normalization mode matches a direct computation over the step", "[fast][loss][normalization]") {
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
