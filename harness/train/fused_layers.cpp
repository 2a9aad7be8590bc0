#include "harness/train/fused_layers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace masklab {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// A view of x as (N, last): rows of its last dimension.
torch::Tensor rows_of(const torch::Tensor& x) { return x.reshape({-1, x.size(-1)}); }

// x's shape with the last dimension replaced by `last`.
std::vector<int64_t> shape_with_last(const torch::Tensor& x, int64_t last) {
  auto sizes = x.sizes().vec();
  sizes.back() = last;
  return sizes;
}

struct RmsNormLinear : torch::autograd::Function<RmsNormLinear> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& gain,
                               const torch::Tensor& weight, double eps) {
    const auto x2 = rows_of(x).contiguous();                               // (N, C)
    const auto rstd = x2.pow(2).mean(-1, /*keepdim=*/true).add_(eps).rsqrt_();  // (N, 1)
    const auto normed = (x2 * rstd).mul_(gain);                            // (N, C), not kept
    ctx->save_for_backward({x2, rstd, gain, weight});
    ctx->saved_data["shape"] = x.sizes().vec();
    return torch::mm(normed, weight.t()).view(shape_with_last(x, weight.size(0)));  // (..., O)
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &x2 = saved[0], &rstd = saved[1], &gain = saved[2], &weight = saved[3];
    const auto gy = rows_of(grad_out[0]);        // (N, O)
    auto x_hat = x2 * rstd;                      // (N, C)
    const auto grad_weight = torch::mm(gy.t(), x_hat * gain);  // (O, C)
    auto grad_normed = torch::mm(gy, weight);    // (N, C)
    const auto grad_gain = (grad_normed * x_hat).sum(0);
    // d/dx of x·rstd(x): rstd · (g - x̂ · mean(g ⊙ x̂)), g the gradient at x̂.
    auto& g = grad_normed.mul_(gain);
    const auto along = (g * x_hat).mean(-1, /*keepdim=*/true);  // (N, 1)
    auto grad_x = g.sub_(x_hat.mul_(along)).mul_(rstd);
    return {grad_x.view(ctx->saved_data["shape"].toIntVector()), grad_gain, grad_weight, torch::Tensor()};
  }
};

struct SwigluLinear : torch::autograd::Function<SwigluLinear> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& gate_up, const torch::Tensor& weight) {
    const auto gu = rows_of(gate_up).contiguous();  // (N, 2F)
    const int64_t F = gu.size(1) / 2;
    const auto act = torch::silu(gu.narrow(1, 0, F)).mul_(gu.narrow(1, F, F));  // (N, F), not kept
    ctx->save_for_backward({gu, weight});
    ctx->saved_data["shape"] = gate_up.sizes().vec();
    return torch::mm(act, weight.t()).view(shape_with_last(gate_up, weight.size(0)));  // (..., C)
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &gu = saved[0], &weight = saved[1];
    const int64_t F = gu.size(1) / 2;
    const auto a = gu.narrow(1, 0, F), u = gu.narrow(1, F, F);
    const auto gy = rows_of(grad_out[0]);   // (N, C)
    const auto sig = torch::sigmoid(a);     // (N, F)
    const auto silu = a * sig;
    const auto grad_weight = torch::mm(gy.t(), silu * u);  // (C, F)
    const auto grad_act = torch::mm(gy, weight);           // (N, F)
    auto grad_gu = torch::empty_like(gu);                  // (N, 2F)
    auto grad_a = grad_gu.narrow(1, 0, F), grad_u = grad_gu.narrow(1, F, F);
    torch::mul_out(grad_u, grad_act, silu);
    // silu'(a) = σ(a) · (1 + a · (1 - σ(a))) = σ(a) + silu(a) · (1 - σ(a))
    const auto dsilu = torch::rsub(sig, 1).mul_(silu).add_(sig);
    torch::mul_out(grad_a, grad_act.mul_(u), dsilu);
    return {grad_gu.view(ctx->saved_data["shape"].toIntVector()), grad_weight};
  }
};

// 0 on and below the diagonal, -inf above, for the G·L query rows of a
// key/value head (G query heads of length L): (G*L, L), one per length.
class CausalBiases {
 public:
  CausalBiases(int64_t groups, torch::TensorOptions options) : groups_(groups), options_(options) {}
  const torch::Tensor& of_length(int64_t L) {
    auto found = std::find_if(by_length_.begin(), by_length_.end(), [&](const auto& e) { return e.first == L; });
    if (found != by_length_.end()) return found->second;
    const auto bias = torch::full({L, L}, -std::numeric_limits<float>::infinity(), options_).triu(1);
    return by_length_.emplace_back(L, bias.repeat({groups_, 1})).second;
  }

 private:
  int64_t groups_;
  torch::TensorOptions options_;
  std::vector<std::pair<int64_t, torch::Tensor>> by_length_;
};

// One example run's probabilities: softmax(q kᵀ / √D + causal) (K, G*L, L),
// q the run's queries as (K, G*L, D), k its keys (K, L, D).
torch::Tensor run_probabilities(const torch::Tensor& qs, const torch::Tensor& ks, const torch::Tensor& bias,
                                double scale) {
  return torch::softmax(torch::baddbmm(bias, qs, ks.transpose(1, 2), 1.0, scale), -1);
}

struct AttendRunsRecomputing : torch::autograd::Function<AttendRunsRecomputing> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& runs) {
    const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), K = k.size(1), G = H / K;
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    const auto table = runs.accessor<int64_t, 2>();
    CausalBiases biases(G, q.options());
    auto out = torch::empty({B, T, H, D}, q.options());
    for (int64_t r = 0; r < runs.size(0); ++r) {
      const int64_t b = table[r][0], start = table[r][1], L = table[r][2];
      auto out_run = out[b].narrow(0, start, L);  // (L, H, D)
      if (table[r][3] != 0) {
        out_run.zero_();
        continue;
      }
      const auto qs = q[b].narrow(1, start, L).reshape({K, G * L, D});  // G query heads per kv head
      const auto att = run_probabilities(qs, k[b].narrow(1, start, L), biases.of_length(L), scale);
      out_run.copy_(torch::bmm(att, v[b].narrow(1, start, L)).view({H, L, D}).transpose(0, 1));
    }
    // v is a view of the qkv projection's output: a copy of its own lets
    // that (N, H*D + 2*K*D) tensor go once the block's forward is done.
    ctx->save_for_backward({q, k, v.contiguous(), out, runs});
    return out.view({B * T, H * D});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &runs = saved[4];
    const int64_t H = q.size(1), T = q.size(2), D = q.size(3), K = k.size(1), G = H / K;
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    const auto grad = grad_out[0].reshape({q.size(0), T, H, D});  // (B, T, H, D)
    auto grad_q = torch::empty_like(q), grad_k = torch::empty_like(k), grad_v = torch::empty_like(v);
    const auto table = runs.accessor<int64_t, 2>();
    CausalBiases biases(G, q.options());
    for (int64_t r = 0; r < runs.size(0); ++r) {
      const int64_t b = table[r][0], start = table[r][1], L = table[r][2];
      if (table[r][3] != 0) {  // padding attends to nothing and is attended by nothing
        grad_q[b].narrow(1, start, L).zero_();
        grad_k[b].narrow(1, start, L).zero_();
        grad_v[b].narrow(1, start, L).zero_();
        continue;
      }
      const auto qs = q[b].narrow(1, start, L).reshape({K, G * L, D});
      const auto ks = k[b].narrow(1, start, L), vs = v[b].narrow(1, start, L);  // (K, L, D)
      const auto att = run_probabilities(qs, ks, biases.of_length(L), scale);  // (K, G*L, L)
      const auto grad_run = grad[b].narrow(0, start, L);                     // (L, H, D)
      const auto gs = grad_run.transpose(0, 1).reshape({K, G * L, D});
      // softmax backward: dS = P ⊙ (dP - rowsum(dO ⊙ O)), with rowsum(dP ⊙ P) = rowsum(dO ⊙ O).
      const auto along = (grad_run * out[b].narrow(0, start, L)).sum(-1).t().reshape({K, G * L, 1});
      grad_v[b].narrow(1, start, L).copy_(torch::bmm(att.transpose(1, 2), gs));
      auto grad_scores = torch::bmm(gs, vs.transpose(1, 2)).sub_(along).mul_(att).mul_(scale);  // (K, G*L, L)
      grad_q[b].narrow(1, start, L).copy_(torch::bmm(grad_scores, ks).view({H, L, D}));
      grad_k[b].narrow(1, start, L).copy_(torch::bmm(grad_scores.transpose(1, 2), qs));
    }
    return {grad_q, grad_k, grad_v, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor rms_norm_linear(const torch::Tensor& x, const torch::Tensor& gain, const torch::Tensor& weight,
                              double eps) {
  return RmsNormLinear::apply(x, gain, weight, eps);
}

torch::Tensor swiglu_linear(const torch::Tensor& gate_up, const torch::Tensor& weight) {
  return SwigluLinear::apply(gate_up, weight);
}

torch::Tensor attend_runs(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const torch::Tensor& runs, double dropout) {
  if (dropout == 0) return AttendRunsRecomputing::apply(q, k, v, runs);
  // Dropout on the probabilities needs them kept: autograd through each run.
  const int64_t H = q.size(1), D = q.size(3), K = k.size(1), G = H / K;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const auto table = runs.accessor<int64_t, 2>();
  CausalBiases biases(G, q.options());
  std::vector<torch::Tensor> pieces;  // (L, H*D) per run, in order
  for (int64_t r = 0; r < runs.size(0); ++r) {
    const int64_t b = table[r][0], start = table[r][1], L = table[r][2];
    if (table[r][3] != 0) {
      pieces.push_back(torch::zeros({L, H * D}, q.options()));
      continue;
    }
    const auto qs = q[b].narrow(1, start, L).reshape({K, G * L, D});
    auto att = run_probabilities(qs, k[b].narrow(1, start, L), biases.of_length(L), scale);  // (K, G*L, L)
    att = torch::dropout(att, dropout, /*train=*/true);
    pieces.push_back(torch::bmm(att, v[b].narrow(1, start, L)).view({H, L, D}).transpose(0, 1).reshape({L, H * D}));
  }
  return torch::cat(pieces, 0);
}

}  // namespace masklab
