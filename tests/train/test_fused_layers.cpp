// harness/train/fused_layers: each hand-written backward against LibTorch's
// autograd through the composed operations it replaces, in double precision
// (so that a wrong term, not rounding, is what fails), on random inputs.
#include <vector>

#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "harness/train/fused_layers.hpp"

using namespace masklab;

namespace {

// Leaf tensors of the given shapes, normal(0, 1) from one seed, with gradients.
std::vector<torch::Tensor> random_leaves(const std::vector<std::vector<int64_t>>& shapes, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<torch::Tensor> leaves;
  for (const auto& shape : shapes) {
    leaves.push_back(torch::empty(shape, torch::kDouble).normal_(0, 1, gen).requires_grad_(true));
  }
  return leaves;
}

// The gradients of Σ out ⊙ w with respect to `leaves` (w fixed random weights),
// with each leaf's .grad cleared before.
std::vector<torch::Tensor> gradients(const torch::Tensor& out, std::vector<torch::Tensor>& leaves) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(99);
  const auto w = torch::empty(out.sizes(), out.options()).normal_(0, 1, gen);
  for (auto& leaf : leaves) leaf.mutable_grad() = torch::Tensor();
  (out * w).sum().backward();
  std::vector<torch::Tensor> grads;
  for (auto& leaf : leaves) grads.push_back(leaf.grad().clone());
  return grads;
}

void check_close(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("gradient " << i);
    REQUIRE(got[i].sizes() == expected[i].sizes());
    CHECK(torch::allclose(got[i], expected[i], 1e-10, 1e-10));
  }
}

}  // namespace

TEST_CASE("rms_norm_linear's output and gradients are those of RMSNorm then a linear layer", "[fast][model]") {
  for (const auto& x_shape : std::vector<std::vector<int64_t>>{{2, 5, 8}, {7, 8}}) {
    auto leaves = random_leaves({x_shape, {8}, {12, 8}}, 3);
    const auto &x = leaves[0], &gain = leaves[1], &weight = leaves[2];
    const double eps = 1e-5;
    const auto fused = rms_norm_linear(x, gain, weight, eps);
    const auto composed = torch::linear(x * torch::rsqrt(x.pow(2).mean(-1, true) + eps) * gain, weight);
    REQUIRE(fused.sizes() == composed.sizes());
    CHECK(torch::allclose(fused, composed, 1e-12, 1e-12));
    check_close(gradients(fused, leaves), gradients(composed, leaves));
  }
}

TEST_CASE("swiglu_linear's output and gradients are those of SwiGLU then a linear layer", "[fast][model]") {
  for (const auto& shape : std::vector<std::vector<int64_t>>{{2, 5, 12}, {7, 12}}) {
    auto leaves = random_leaves({shape, {4, 6}}, 5);
    const auto &gate_up = leaves[0], &weight = leaves[1];
    const auto fused = swiglu_linear(gate_up, weight);
    const auto parts = gate_up.chunk(2, -1);
    const auto composed = torch::linear(torch::silu(parts[0]) * parts[1], weight);
    REQUIRE(fused.sizes() == composed.sizes());
    CHECK(torch::allclose(fused, composed, 1e-12, 1e-12));
    check_close(gradients(fused, leaves), gradients(composed, leaves));
  }
}

TEST_CASE("attend_runs without dropout equals causal attention within each example, outputs and gradients",
          "[fast][model]") {
  // Two rows of 9 positions: row 0 holds examples of 4 and 3 positions and
  // 2 of padding, row 1 one example of 9. 4 query heads over 2 key/value heads.
  const int64_t B = 2, T = 9, H = 4, K = 2, D = 6;
  const auto runs = torch::tensor({0, 0, 4, 0, 0, 4, 3, 0, 0, 7, 2, 1, 1, 0, 9, 0}, torch::kLong).view({-1, 4});
  auto leaves = random_leaves({{B, H, T, D}, {B, K, T, D}, {B, K, T, D}}, 7);
  const auto &q = leaves[0], &k = leaves[1], &v = leaves[2];
  const auto fused = attend_runs(q, k, v, runs, /*dropout=*/0.0);  // (B*T, H*D)
  REQUIRE(fused.sizes() == torch::IntArrayRef{B * T, H * D});

  // Each example alone: softmax(q kᵀ / √D) v, causal, k and v repeated per
  // query head; padding rows zero. The runs cover the positions in order.
  std::vector<torch::Tensor> pieces;  // (L, H, D) each
  const auto table = runs.accessor<int64_t, 2>();
  for (int64_t r = 0; r < runs.size(0); ++r) {
    const int64_t b = table[r][0], start = table[r][1], L = table[r][2];
    if (table[r][3] != 0) {
      pieces.push_back(torch::zeros({L, H, D}, torch::kDouble));
      continue;
    }
    const auto qs = q[b].narrow(1, start, L);                              // (H, L, D)
    const auto ks = k[b].narrow(1, start, L).repeat_interleave(H / K, 0);  // (H, L, D)
    const auto vs = v[b].narrow(1, start, L).repeat_interleave(H / K, 0);
    const auto causal = torch::ones({L, L}, torch::kBool).tril();
    const auto scores = torch::matmul(qs, ks.transpose(1, 2)) / std::sqrt(static_cast<double>(D));
    const auto att = torch::softmax(scores.masked_fill(causal.logical_not(), -INFINITY), -1);
    pieces.push_back(torch::matmul(att, vs).transpose(0, 1));
  }
  const auto composed = torch::cat(pieces, 0).reshape({B * T, H * D});
  CHECK(torch::allclose(fused, composed, 1e-12, 1e-12));
  CHECK(fused.view({B, T, H * D})[0].narrow(0, 7, 2).abs().max().item<double>() == 0);  // padding
  check_close(gradients(fused, leaves), gradients(composed, leaves));
}
