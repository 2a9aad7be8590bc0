#include "harness/train/adamw.hpp"

#include <cmath>
#include <sstream>
#include <type_traits>

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace masklab {

namespace {

// AdamW's state map is keyed by the parameter's TensorImpl: its address as
// a string in LibTorch 1.x, the pointer itself in 2.x.
template <class StateMap>
typename StateMap::key_type state_key(const StateMap&, const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename StateMap::key_type, std::string>) {
    std::ostringstream key;
    key << p.unsafeGetTensorImpl();
    return key.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

bool fusable(const torch::Tensor& p, const torch::Tensor& g, const torch::optim::AdamWOptions& o) {
  return !o.amsgrad() && p.device().is_cpu() && p.scalar_type() == torch::kFloat &&
         g.scalar_type() == torch::kFloat && !g.is_sparse() && p.is_contiguous() && g.is_contiguous();
}

// One pass: p ← p·(1 − lr·wd); m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²;
// p ← p − (lr / bc1) · m / (√v / √bc2 + eps), in AdamW's order of operations.
void fused_update(float* p, const float* g, float* m, float* v, int64_t n, float decay, float beta1, float beta2,
                  float step_size, float sqrt_bc2, float eps) {
  const float one_minus_beta1 = 1.0f - beta1, one_minus_beta2 = 1.0f - beta2;
  // Chunks of 64k floats: the grain that lets LibTorch's pool split a large
  // matrix when it has more than one thread; on one thread, a plain loop.
  at::parallel_for(0, n, 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float gi = g[i];
      const float mi = m[i] * beta1 + one_minus_beta1 * gi;
      const float vi = v[i] * beta2 + one_minus_beta2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - step_size * (mi / (std::sqrt(vi) / sqrt_bc2 + eps));
    }
  });
}

}  // namespace

void adamw_step(torch::optim::AdamW& optimizer) {
  torch::NoGradGuard no_grad;
  bool all_fusable = true;
  for (auto& group : optimizer.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (const auto& p : group.params()) {
      if (p.grad().defined() && !fusable(p, p.grad(), o)) all_fusable = false;
    }
  }
  if (!all_fusable) {
    optimizer.step();
    return;
  }
  auto& state = optimizer.state();
  for (auto& group : optimizer.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto key = state_key(state, p);
      auto found = state.find(key);
      if (found == state.end()) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
        found = state.emplace(key, std::move(fresh)).first;
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*found->second);
      s.step(s.step() + 1);
      const auto [beta1, beta2] = o.betas();
      const double bc1 = 1 - std::pow(beta1, s.step()), bc2 = 1 - std::pow(beta2, s.step());
      auto& m = s.exp_avg();
      auto& v = s.exp_avg_sq();
      if (!m.is_contiguous()) m = m.contiguous();
      if (!v.is_contiguous()) v = v.contiguous();
      fused_update(p.data_ptr<float>(), p.grad().data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(),
                   p.numel(), static_cast<float>(1 - o.lr() * o.weight_decay()), static_cast<float>(beta1),
                   static_cast<float>(beta2), static_cast<float>(o.lr() / bc1),
                   static_cast<float>(std::sqrt(bc2)), static_cast<float>(o.eps()));
    }
  }
}

}  // namespace masklab
