#include "harness/train/loss.hpp"

#include "harness/core/errors.hpp"

namespace masklab {

namespace {

// Σ_t w over each example's positions of one micro-batch, in double: (examples).
torch::Tensor example_weight_sums(const torch::Tensor& weights, const torch::Tensor& segment_ids) {
  const auto w = weights.flatten();
  const auto seg = segment_ids.flatten();
  const int64_t n_seg = seg.numel() == 0 ? 0 : seg.max().item<int64_t>() + 1;
  return torch::zeros({std::max<int64_t>(n_seg, 1)}, torch::kDouble)
      .index_add_(0, seg.clamp_min(0), w.to(torch::kDouble) * seg.ge(0));
}

}  // namespace

double step_denominator(const std::vector<torch::Tensor>& weights, const std::vector<torch::Tensor>& segment_ids,
                        Normalization normalization) {
  double denom = 0;
  for (size_t m = 0; m < weights.size(); ++m) {
    if (normalization == Normalization::kSequence) {
      denom += example_weight_sums(weights[m], segment_ids[m]).gt(0).sum().item<double>();
    } else if (normalization == Normalization::kWeightSum) {
      denom += weights[m].sum(torch::kDouble).item<double>();
    } else {
      denom += weights[m].gt(0).sum().item<double>();
    }
  }
  return denom;
}

std::vector<torch::Tensor> normalize_step(const std::vector<torch::Tensor>& weights,
                                          const std::vector<torch::Tensor>& segment_ids,
                                          Normalization normalization, std::optional<double> global_denominator) {
  const double denom = global_denominator ? *global_denominator : step_denominator(weights, segment_ids, normalization);
  std::vector<torch::Tensor> coeffs;
  if (normalization == Normalization::kSequence) {
    // Per example: w / Σ_t w; then one mean over every example of the step.
    for (size_t m = 0; m < weights.size(); ++m) {
      const auto w = weights[m].flatten().to(torch::kDouble);
      const auto seg = segment_ids[m].flatten();
      const auto per_example = example_weight_sums(weights[m], segment_ids[m]).index_select(0, seg.clamp_min(0));
      const auto c = torch::where(seg.ge(0).logical_and(per_example.gt(0)), w / per_example,
                                  torch::zeros_like(per_example));
      coeffs.push_back((denom > 0 ? c / denom : c * 0).to(torch::kFloat).view(weights[m].sizes()));
    }
    return coeffs;
  }
  for (const auto& w : weights) {
    coeffs.push_back(denom > 0 ? (w.to(torch::kDouble) / denom).to(torch::kFloat) : torch::zeros_like(w));
  }
  return coeffs;
}

LossRows select_loss_rows(const torch::Tensor& coeff, const torch::Tensor& targets) {
  const auto flat = coeff.flatten();
  LossRows rows;
  rows.index = flat.gt(0).nonzero().flatten();  // (N), CPU: no device sync
  rows.targets = targets.flatten().index_select(0, rows.index);
  rows.coeff = flat.index_select(0, rows.index);
  return rows;
}

int64_t resolve_chunk_size(int64_t requested, int64_t vocab_size) {
  if (requested > 0) return requested;
  constexpr int64_t kLogitsBudget = 8 * 1024 * 1024;  // fp32 elements: 32 MiB
  return std::max<int64_t>(1, kLogitsBudget / std::max<int64_t>(1, vocab_size));
}

namespace {

// Fused LM head + cross-entropy. The gradient of Σ c·NLL with respect to the
// logits is c·(softmax − onehot): it is formed per chunk during the forward
// pass and folded straight into dL/dh and dL/dW, so no (N, V) tensor lives
// beyond one chunk. backward() only scales the saved gradients.
struct FusedLinearCrossEntropy : public torch::autograd::Function<FusedLinearCrossEntropy> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor hidden, torch::Tensor head,
                               torch::Tensor targets, torch::Tensor coeff, int64_t chunk_size) {
    const auto cdt = hidden.scalar_type();
    const auto head_c = head.to(cdt);                                  // (V, C)
    auto grad_hidden = torch::empty_like(hidden);                      // (N, C)
    auto grad_head = torch::zeros(head.sizes(), head.options().dtype(torch::kFloat));  // (V, C)
    auto loss = torch::zeros({}, hidden.options().dtype(torch::kFloat));
    const int64_t N = hidden.size(0);
    for (int64_t start = 0; start < N; start += chunk_size) {
      const int64_t n = std::min(chunk_size, N - start);
      const auto h = hidden.narrow(0, start, n);                       // (n, C)
      const auto y = targets.narrow(0, start, n).unsqueeze(1);         // (n, 1)
      const auto c = coeff.narrow(0, start, n).to(torch::kFloat);      // (n)
      auto logits = torch::mm(h, head_c.t());                          // (n, V)
      if (logits.scalar_type() != torch::kFloat) logits = logits.to(torch::kFloat);
      const auto lse = torch::logsumexp(logits, 1, /*keepdim=*/true);  // (n, 1)
      const auto nll = (lse - logits.gather(1, y)).squeeze(1);         // (n)
      loss.add_((c * nll).sum());
      // The logits become the gradient in place: softmax, minus the one-hot
      // target, times the row's coefficient. One (n, V) buffer per chunk.
      auto& g = logits.sub_(lse).exp_();
      g.scatter_add_(1, y, torch::full({n, 1}, -1.0f, g.options()));
      g.mul_(c.unsqueeze(1));
      const auto gc = g.to(cdt);
      auto grad_rows = grad_hidden.narrow(0, start, n);                // rows of a contiguous (N, C): written in place
      torch::mm_out(grad_rows, gc, head_c);
      if (gc.scalar_type() == torch::kFloat) {
        grad_head.addmm_(gc.t(), h);                                   // accumulated in place: no (V, C) temporary
      } else {
        grad_head.add_(torch::mm(gc.t(), h).to(torch::kFloat));
      }
    }
    ctx->saved_data["grad_hidden"] = grad_hidden;
    ctx->saved_data["grad_head"] = grad_head.to(head.scalar_type());
    return loss;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto go = grad_outputs[0];
    const auto grad_hidden = ctx->saved_data["grad_hidden"].toTensor();
    const auto grad_head = ctx->saved_data["grad_head"].toTensor();
    return {grad_hidden * go.to(grad_hidden.scalar_type()), grad_head * go.to(grad_head.scalar_type()),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor weighted_nll(const torch::Tensor& hidden, const torch::Tensor& head,
                           const torch::Tensor& targets, const torch::Tensor& coeff, int64_t chunk_size) {
  if (hidden.size(0) == 0) {
    // Nothing carries weight this micro-batch: a zero that still joins the graph.
    return (hidden.sum() * 0).to(torch::kFloat) + (head.sum() * 0).to(torch::kFloat);
  }
  return FusedLinearCrossEntropy::apply(hidden, head, targets, coeff, resolve_chunk_size(chunk_size, head.size(0)));
}

TokenScores score_tokens(const torch::Tensor& hidden, const torch::Tensor& head, const torch::Tensor& targets,
                         int64_t chunk_size) {
  torch::NoGradGuard no_grad;
  chunk_size = resolve_chunk_size(chunk_size, head.size(0));
  const auto head_c = head.to(hidden.scalar_type());
  std::vector<torch::Tensor> nll_parts, correct_parts;
  const int64_t N = hidden.size(0);
  for (int64_t start = 0; start < N; start += chunk_size) {
    const int64_t n = std::min(chunk_size, N - start);
    const auto logits = torch::matmul(hidden.narrow(0, start, n), head_c.t()).to(torch::kFloat);  // (n, V)
    const auto y = targets.narrow(0, start, n).unsqueeze(1);
    nll_parts.push_back((torch::logsumexp(logits, 1, true) - logits.gather(1, y)).squeeze(1));
    correct_parts.push_back(logits.argmax(1).eq(y.squeeze(1)));
  }
  if (nll_parts.empty()) {
    return {torch::zeros({0}, hidden.options().dtype(torch::kFloat)),
            torch::zeros({0}, hidden.options().dtype(torch::kBool))};
  }
  return {torch::cat(nll_parts), torch::cat(correct_parts)};
}

}  // namespace masklab
