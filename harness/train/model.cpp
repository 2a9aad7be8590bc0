#include "harness/train/model.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/hashing.hpp"
#include "harness/train/checkpoint.hpp"
#include "harness/train/fused_layers.hpp"

namespace masklab {

torch::Tensor cast_linear(const torch::Tensor& x, const torch::Tensor& weight) {
  return torch::linear(x, weight.to(x.scalar_type()));
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_in) : eps(eps_in) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // fp32 statistics even when activations are bf16.
  const auto xf = x.to(torch::kFloat);
  const auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return (normed * weight).to(x.scalar_type());
}

namespace {

// fp32 activations take the fused layers (fused_layers.hpp), which compute
// what the composed code does and keep less for backward; bf16 ones (CUDA)
// keep the composed code, whose norms compute in fp32 from bf16 inputs.
bool fused(const torch::Tensor& x) { return x.scalar_type() == torch::kFloat; }

// RoPE, "rotate half" convention: the first and second halves of each head
// are the real and imaginary parts. x (B, H, T, D); cos/sin (B, 1, T, D/2).
torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const auto x1 = x.narrow(-1, 0, half);
  const auto x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x1 * sin + x2 * cos}, -1);
}

}  // namespace

AttentionImpl::AttentionImpl(const ModelConfig& c)
    : n_heads(c.n_heads), n_kv_heads(resolved_kv_heads(c)), head_dim(resolved_head_dim(c)), dropout(c.dropout) {
  const int64_t q_width = n_heads * head_dim, kv_width = n_kv_heads * head_dim;
  // Registration order is the initialization order: qkv, then proj, as
  // before the optional parts existed, so the default model is unchanged.
  qkv = register_parameter("qkv", torch::empty({q_width + 2 * kv_width, c.d_model}));
  if (c.attention_bias || c.qkv_bias) qkv_bias = register_parameter("qkv_bias", torch::zeros({q_width + 2 * kv_width}));
  proj = register_parameter("proj", torch::empty({c.d_model, q_width}));
  if (c.attention_bias) proj_bias = register_parameter("proj_bias", torch::zeros({c.d_model}));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim, c.norm_eps));
    k_norm = register_module("k_norm", RMSNorm(head_dim, c.norm_eps));
  }
}

namespace {

// softmax(q kᵀ / √D) v over the positions `mask` allows (true = attend).
// q (..., Tq, D), k and v (..., Tk, D); mask broadcastable to (..., Tq, Tk),
// or undefined for plain causal attention (Tq == Tk).
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& mask,
                     double dropout) {
#if TORCH_VERSION_MAJOR >= 2
  // Fused kernels (flash / memory-efficient) on CUDA; causal without a mask tensor when unpacked.
  return mask.defined() ? at::scaled_dot_product_attention(q, k, v, mask, dropout, /*is_causal=*/false)
                        : at::scaled_dot_product_attention(q, k, v, {}, dropout, /*is_causal=*/true);
#else
  const int64_t T = k.size(-2);
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  const auto allowed = mask.defined() ? mask : torch::ones({T, T}, torch::dtype(torch::kBool).device(q.device())).tril();
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  auto att = torch::softmax(scores.to(torch::kFloat), -1).to(q.scalar_type());
  if (dropout > 0) att = torch::dropout(att, dropout, /*train=*/true);
  return torch::matmul(att, v);
#endif
}


}  // namespace

torch::Tensor attention_layout(const torch::Tensor& segment_ids) {
  // On the CPU both LibTorch versions attend one example at a time: Σ L²
  // scores per row instead of the T² that 2.x's SDPA computes under a mask.
  if (segment_ids.device().is_cpu()) {
    const auto seg = segment_ids.to(torch::kLong).contiguous();
    const auto ids = seg.accessor<int64_t, 2>();
    std::vector<int64_t> flat;
    for (int64_t b = 0; b < seg.size(0); ++b) {
      for (int64_t t = 0; t < seg.size(1);) {
        int64_t end = t + 1;
        while (end < seg.size(1) && ids[b][end] == ids[b][t]) ++end;
        flat.insert(flat.end(), {b, t, end - t, ids[b][t] < 0 ? 1 : 0});
        t = end;
      }
    }
    return torch::tensor(flat, torch::kLong).view({-1, 4});  // (S, 4)
  }
  const int64_t T = segment_ids.size(1);
  const auto same = segment_ids.unsqueeze(2).eq(segment_ids.unsqueeze(1));  // (B, T, T)
  const auto causal = torch::ones({T, T}, torch::dtype(torch::kBool).device(segment_ids.device())).tril();
  return same.logical_and(causal).unsqueeze(1);  // (B, 1, T, T)
}

std::array<torch::Tensor, 3> AttentionImpl::project(const torch::Tensor& x, RMSNormImpl& norm,
                                                    const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t B = x.size(0), T = x.size(1), H = n_heads, K = n_kv_heads, D = head_dim;
  // The bias rides on the GEMM (addmm), so a biased projection stays composed.
  torch::Tensor projected;  // (B, T, H*D + 2*K*D)
  if (qkv_bias.defined()) {
    projected = torch::linear(norm.forward(x), qkv.to(x.scalar_type()), qkv_bias.to(x.scalar_type()));
  } else {
    projected = fused(x) ? rms_norm_linear(x, norm.weight, qkv, norm.eps) : cast_linear(norm.forward(x), qkv);
  }
  // split (not selects): its backward is one cat, not three full-size zero tensors.
  const auto parts = projected.split_with_sizes({H * D, K * D, K * D}, -1);
  auto heads = [&](const torch::Tensor& t, int64_t n, RMSNorm& norm) {
    auto h = t.view({B, T, n, D});
    if (!norm.is_empty()) h = norm(h);  // Qwen3: per-head RMSNorm before RoPE
    return h.transpose(1, 2);           // (B, n, T, D)
  };
  RMSNorm no_norm{nullptr};
  auto q = rotate(heads(parts[0], H, q_norm), cos, sin);  // (B, H, T, D)
  auto k = rotate(heads(parts[1], K, k_norm), cos, sin);  // (B, K, T, D)
  auto v = heads(parts[2], K, no_norm);                   // (B, K, T, D)
  return {q, k, v};
}

torch::Tensor AttentionImpl::output(const torch::Tensor& y) {
  return proj_bias.defined() ? torch::linear(y, proj.to(y.scalar_type()), proj_bias.to(y.scalar_type()))
                             : cast_linear(y, proj);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, RMSNormImpl& norm, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const torch::Tensor& mask, const torch::Tensor& rows) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = n_heads, K = n_kv_heads, D = head_dim;
  auto [q, k, v] = project(x, norm, cos, sin);
  const double p = is_training() ? dropout : 0.0;
  torch::Tensor y;  // (B*T, H*D)
  if (mask.defined() && mask.scalar_type() == torch::kLong) y = attend_runs(q, k, v, mask, p);
  if (!y.defined()) {
    if (K != H) {  // grouped-query attention: query head h reads key/value head h / (H/K)
      k = k.repeat_interleave(H / K, /*dim=*/1);
      v = v.repeat_interleave(H / K, /*dim=*/1);
    }
    y = attend(q, k, v, mask, p).transpose(1, 2).reshape({B * T, H * D});
  }
  if (rows.defined()) y = y.index_select(0, rows);                             // (N, H*D)
  y = output(y);
  if (p > 0) y = torch::dropout(y, p, /*train=*/true);
  return rows.defined() ? y : y.view({B, T, C});
}

torch::Tensor AttentionImpl::forward_cached(const torch::Tensor& x, RMSNormImpl& norm, const torch::Tensor& cos,
                                            const torch::Tensor& sin, const torch::Tensor& mask, torch::Tensor& keys,
                                            torch::Tensor& values, int64_t start) {
  const int64_t B = x.size(0), Tn = x.size(1), C = x.size(2), H = n_heads, K = n_kv_heads, D = head_dim;
  const auto [q, k, v] = project(x, norm, cos, sin);  // (B, H, Tn, D), (B, K, Tn, D) x2
  keys.narrow(2, start, Tn).copy_(k);
  values.narrow(2, start, Tn).copy_(v);
  auto k_all = keys.narrow(2, 0, start + Tn);  // (B, K, S, D), S = start + Tn
  auto v_all = values.narrow(2, 0, start + Tn);
  if (K != H) {  // the cache holds K heads; the repeat is per step, as in forward()
    k_all = k_all.repeat_interleave(H / K, /*dim=*/1);
    v_all = v_all.repeat_interleave(H / K, /*dim=*/1);
  }
  const auto y = attend(q, k_all, v_all, mask, /*dropout=*/0.0).transpose(1, 2).reshape({B * Tn, H * D});
  return output(y).view({B, Tn, C});
}

MlpImpl::MlpImpl(int64_t d_model, int64_t d_ff, bool use_swiglu, double dropout_p)
    : swiglu(use_swiglu), dropout(dropout_p) {
  up = register_parameter("up", torch::empty({(use_swiglu ? 2 : 1) * d_ff, d_model}));
  down = register_parameter("down", torch::empty({d_model, d_ff}));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x, RMSNormImpl& norm) {
  torch::Tensor h = fused(x) ? rms_norm_linear(x, norm.weight, up, norm.eps) : cast_linear(norm.forward(x), up);  // (..., 2F) or (..., F)
  if (swiglu && fused(x)) {
    h = swiglu_linear(h, down);  // (..., C)
  } else if (swiglu) {
    const auto parts = h.chunk(2, -1);
    h = cast_linear(torch::silu(parts[0]) * parts[1], down);  // (..., F) -> (..., C)
  } else {
    h = cast_linear(torch::gelu(h), down);
  }
  const double p = is_training() ? dropout : 0.0;
  return p > 0 ? torch::dropout(h, p, /*train=*/true) : h;
}

BlockImpl::BlockImpl(const ModelConfig& c, int64_t d_ff)
    : norm1(register_module("norm1", RMSNorm(c.d_model, c.norm_eps))),
      attn(register_module("attn", Attention(c))),
      norm2(register_module("norm2", RMSNorm(c.d_model, c.norm_eps))),
      mlp(register_module("mlp", Mlp(c.d_model, d_ff, c.mlp == MlpKind::kSwiGLU, c.dropout))) {}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                 const torch::Tensor& mask, const torch::Tensor& rows) {
  const auto residual = rows.defined() ? x.reshape({-1, x.size(-1)}).index_select(0, rows) : x;  // (N, C) or (B, T, C)
  auto h = residual + attn->forward(x, *norm1, cos, sin, mask, rows);
  return h + mlp->forward(h, *norm2);
}

torch::Tensor BlockImpl::forward_cached(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                        const torch::Tensor& mask, torch::Tensor& keys, torch::Tensor& values,
                                        int64_t start) {
  const auto h = x + attn->forward_cached(x, *norm1, cos, sin, mask, keys, values, start);
  return h + mlp->forward(h, *norm2);
}

namespace {

// LibTorch C++ has no torch.utils.checkpoint: this is its reentrant form.
// forward runs under no-grad (Function::apply disables it), so the block's
// activations are freed; backward re-runs the block with grad enabled from
// the saved input and the saved RNG state, then back-propagates into its
// parameters (their .grad accumulates) and returns the input's gradient.
// What the block needs besides its differentiable input. The mask and the
// rows may be undefined, which autograd's inputs may not, so they travel here.
struct BlockContext {
  BlockImpl* block;
  torch::Tensor mask, rows;
};

struct CheckpointedBlock : torch::autograd::Function<CheckpointedBlock> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin, const BlockContext& block) {
    ctx->saved_data["rng"] = at::globalContext().defaultGenerator(x.device()).get_state();
    ctx->saved_data["block"] = reinterpret_cast<std::int64_t>(block.block);
    ctx->saved_data["has_mask"] = block.mask.defined();
    if (block.mask.defined()) ctx->saved_data["mask"] = block.mask;
    ctx->saved_data["has_rows"] = block.rows.defined();
    if (block.rows.defined()) ctx->saved_data["rows"] = block.rows;
    ctx->save_for_backward({x, cos, sin});
    return block.block->forward(x, cos, sin, block.mask, block.rows);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    auto* block = reinterpret_cast<BlockImpl*>(ctx->saved_data["block"].toInt());
    const auto mask = ctx->saved_data["has_mask"].toBool() ? ctx->saved_data["mask"].toTensor() : torch::Tensor();
    const auto rows = ctx->saved_data["has_rows"].toBool() ? ctx->saved_data["rows"].toTensor() : torch::Tensor();
    auto gen = at::globalContext().defaultGenerator(saved[0].device());
    const auto rng_now = gen.get_state();
    gen.set_state(ctx->saved_data["rng"].toTensor());  // the same dropout masks as the first run
    const auto x = saved[0].detach().requires_grad_(true);
    torch::Tensor y;
    {
      torch::AutoGradMode enable(true);
      y = block->forward(x, saved[1], saved[2], mask, rows);
    }
    gen.set_state(rng_now);  // later draws as if the block had run once
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor()};  // one per forward argument
  }
};

}  // namespace

torch::Tensor checkpointed_block(BlockImpl& block, const torch::Tensor& x, const torch::Tensor& cos,
                                 const torch::Tensor& sin, const torch::Tensor& mask, const torch::Tensor& rows) {
  return CheckpointedBlock::apply(x, cos, sin, BlockContext{&block, mask, rows});
}

int64_t resolved_d_ff(const ModelConfig& c) {
  if (c.d_ff > 0) return c.d_ff;
  if (c.mlp == MlpKind::kGelu) return 4 * c.d_model;
  const int64_t raw = (8 * c.d_model + 2) / 3;
  return (raw + 15) / 16 * 16;
}

int64_t resolved_kv_heads(const ModelConfig& c) { return c.n_kv_heads > 0 ? c.n_kv_heads : c.n_heads; }
int64_t resolved_head_dim(const ModelConfig& c) { return c.head_dim > 0 ? c.head_dim : c.d_model / c.n_heads; }

torch::Tensor rope_inv_freq(const ModelConfig& c) {
  // angle(t, i) = t * theta^(-2i/D).
  const int64_t D = resolved_head_dim(c);
  auto inv_freq = torch::pow(c.rope_theta, -torch::arange(0, D, 2, torch::kDouble) / static_cast<double>(D));
  if (c.rope_scaling == RopeScaling::kLinear) return inv_freq / c.rope_factor;
  if (c.rope_scaling != RopeScaling::kLlama3) return inv_freq;
  // transformers' _compute_llama3_parameters: long wavelengths are slowed by
  // `factor`, short ones kept, the band between interpolated.
  const double old_len = c.rope_original_max_len;
  const double low_wavelen = old_len / c.rope_low_freq_factor, high_wavelen = old_len / c.rope_high_freq_factor;
  const auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_wavelen, inv_freq / c.rope_factor, inv_freq);
  const auto smooth = (old_len / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
  const auto smoothed = (1 - smooth) * scaled / c.rope_factor + smooth * scaled;
  const auto medium = wavelen.ge(high_wavelen).logical_and(wavelen.le(low_wavelen));
  return torch::where(medium, smoothed, scaled);
}

TransformerImpl::TransformerImpl(const ModelConfig& c, int64_t vocab)
    : config(c),
      vocab_size(vocab),
      embed(register_module("embed", torch::nn::Embedding(vocab, c.d_model))),
      blocks(register_module("blocks", torch::nn::ModuleList())),
      norm_f(register_module("norm_f", RMSNorm(c.d_model, c.norm_eps))) {
  for (int i = 0; i < c.n_layers; ++i) blocks->push_back(Block(c, resolved_d_ff(c)));
  if (!c.tie_embeddings) lm_head = register_parameter("lm_head", torch::empty({vocab, c.d_model}));
  const auto inv_freq = rope_inv_freq(c);  // (D/2)
  const auto angles = torch::outer(torch::arange(c.max_seq_len, torch::kDouble), inv_freq);  // (T, D/2)
  rope_cos = register_buffer("rope_cos", angles.cos().to(torch::kFloat));
  rope_sin = register_buffer("rope_sin", angles.sin().to(torch::kFloat));
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                       const torch::Tensor& segment_ids, const torch::Tensor& rows) {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  TORCH_CHECK(T <= config.max_seq_len, "sequence of ", T, " positions exceeds model.max_seq_len ",
              config.max_seq_len);
  auto x = embed(input_ids).to(compute_dtype);  // (B, T, C)
  const auto pos = position_ids.flatten();
  const auto cos = rope_cos.index_select(0, pos).view({B, 1, T, -1}).to(compute_dtype);  // (B, 1, T, D/2)
  const auto sin = rope_sin.index_select(0, pos).view({B, 1, T, -1}).to(compute_dtype);
  // Packed rows: attend only within the same example, causally.
  auto mask = segment_ids.defined() ? attention_layout(segment_ids) : torch::Tensor();
#if TORCH_VERSION_MAJOR < 2
  // Unpacked rows on LibTorch 1.13: one run per row, so that they too take
  // attend_runs (grouped-query heads without repeating k and v, and in fp32
  // no probabilities kept for backward) rather than the composed attention.
  // Evaluation and decoding keep the composed attention they are compared against.
  if (!mask.defined() && input_ids.device().is_cpu() && is_training() && torch::GradMode::is_enabled()) {
    mask = attention_layout(torch::zeros({B, T}, torch::kLong));
  }
#endif
  // With rows, the last block keeps only what the loss needs: attention runs
  // over every position (the keys and values are needed anyway), then its
  // output projection and the MLP only at the selected rows.
  const size_t L = blocks->size();
  const bool recompute = config.checkpoint_activations && is_training() && torch::GradMode::is_enabled();
  for (size_t i = 0; i < L; ++i) {
    auto* block = blocks[i]->as<Block>();
    const auto block_rows = i + 1 == L ? rows : torch::Tensor();
    x = recompute ? checkpointed_block(*block, x, cos, sin, mask, block_rows)
                  : block->forward(x, cos, sin, mask, block_rows);
  }
  return norm_f(x);  // (B, T, C), or (N, C) with rows
}

void KVCache::keep_rows(const torch::Tensor& rows) {
  if (!valid.defined()) return;
  const auto index = rows.to(valid.device());
  for (auto& k : keys) k = k.index_select(0, index);
  for (auto& v : values) v = v.index_select(0, index);
  valid = valid.index_select(0, index);
}

torch::Tensor TransformerImpl::forward_cached(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                              const torch::Tensor& valid, KVCache& cache) {
  TORCH_CHECK(!is_training(), "forward_cached() is for decoding: call eval() first");
  const int64_t B = input_ids.size(0), Tn = input_ids.size(1), start = cache.length, S = start + Tn;
  TORCH_CHECK(S <= cache.capacity, "KV cache of ", cache.capacity, " slots cannot take ", S);
  const auto device = input_ids.device();
  auto x = embed(input_ids).to(compute_dtype);  // (B, Tn, C)
  const auto pos = position_ids.flatten();      // index_select fails past model.max_seq_len
  const auto cos = rope_cos.index_select(0, pos).view({B, 1, Tn, -1}).to(compute_dtype);  // (B, 1, Tn, D/2)
  const auto sin = rope_sin.index_select(0, pos).view({B, 1, Tn, -1}).to(compute_dtype);
  if (cache.keys.empty()) {
    const auto opts = torch::TensorOptions().dtype(compute_dtype).device(device);
    const int64_t K = resolved_kv_heads(config), D = resolved_head_dim(config);
    for (size_t i = 0; i < blocks->size(); ++i) {
      cache.keys.push_back(torch::zeros({B, K, cache.capacity, D}, opts));
      cache.values.push_back(torch::zeros({B, K, cache.capacity, D}, opts));
    }
    cache.valid = torch::zeros({B, cache.capacity}, torch::dtype(torch::kBool).device(device));
  }
  cache.valid.narrow(1, start, Tn).copy_(valid);
  // Query j (slot start + j) attends to valid slots up to its own; a padding
  // slot attends to itself alone, so that its row of scores is never all -inf
  // (softmax would give NaN, and 0 * NaN would reach the real tokens).
  const auto slots = torch::arange(S, torch::dtype(torch::kLong).device(device)).unsqueeze(0);          // (1, S)
  const auto query_slots = torch::arange(start, S, torch::dtype(torch::kLong).device(device)).unsqueeze(1);  // (Tn, 1)
  const auto causal = slots.le(query_slots);                                                             // (Tn, S)
  const auto own = slots.eq(query_slots);
  const auto mask = cache.valid.narrow(1, 0, S).unsqueeze(1).logical_or(own).logical_and(causal).unsqueeze(1);  // (B, 1, Tn, S)
  for (size_t i = 0; i < blocks->size(); ++i) {
    x = blocks[i]->as<Block>()->forward_cached(x, cos, sin, mask, cache.keys[i], cache.values[i], start);
  }
  cache.length = S;
  return norm_f(x);  // (B, Tn, C)
}

torch::Tensor TransformerImpl::head_weight() const { return lm_head.defined() ? lm_head : embed->weight; }

void TransformerImpl::initialize(std::uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // GPT-2 style: residual output projections are scaled down with depth.
  const double out_std = config.init_std / std::sqrt(2.0 * config.n_layers);
  torch::NoGradGuard no_grad;
  for (auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    auto& p = item.value();
    TORCH_CHECK(p.device().is_cpu(), "initialize() must run before the model moves to a device");
    if (name.size() >= 5 && name.compare(name.size() - 5, 5, "_bias") == 0) {
      p.zero_();  // attention biases start at zero (transformers' init does the same)
    } else if (p.dim() == 1) {
      p.fill_(1.0);  // norm gains
    } else if (name.size() >= 4 && (name.rfind(".proj") == name.size() - 5 || name.rfind(".down") == name.size() - 5)) {
      p.normal_(0.0, out_std, gen);
    } else {
      p.normal_(0.0, config.init_std, gen);
    }
  }
}

std::string parameters_hash(const torch::nn::Module& module) {
  Fnv1a h;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const auto t = item.value().detach().to(torch::kCPU).contiguous();
    h.add(item.key());
    h.add(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
  }
  return h.hex();
}

void save_parameters(const torch::nn::Module& module, const std::string& path) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    dict.insert(item.key(), item.value().detach().to(torch::kCPU).contiguous());
  }
  const std::vector<char> bytes = torch::pickle_save(dict);
  write_file_atomic(path, std::string_view(bytes.data(), bytes.size()));
}

void load_parameters(torch::nn::Module& module, const std::string& path) {
  if (std::filesystem::is_directory(path)) {
    auto* transformer = dynamic_cast<TransformerImpl*>(&module);
    TORCH_CHECK(transformer, "a Hugging Face model folder loads into a Transformer only");
    load_hf_weights(*transformer, path);
    return;
  }
  const std::string text = read_file_for("model.init_from", path);
  const std::vector<char> bytes(text.begin(), text.end());
  auto read = [&] {
    try {
      return torch::pickle_load(bytes).toGenericDict();
    } catch (const c10::Error&) {
      throw UserError("model.init_from: '" + path + "' is not a model.pt written by --save-model");
    }
  };
  const auto dict = read();
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    auto it = dict.find(c10::IValue(item.key()));
    if (it == dict.end()) {
      throw UserError(fmt::format("model.init_from: '{}' has no parameter '{}' (different architecture?)",
                                  path, item.key()));
    }
    const auto src = it->value().toTensor();
    if (src.sizes() != item.value().sizes()) {
      throw UserError(fmt::format("model.init_from: parameter '{}' is {} in '{}' but {} in this config",
                                  item.key(), fmt::join(src.sizes(), "x"), path,
                                  fmt::join(item.value().sizes(), "x")));
    }
    item.value().copy_(src);
  }
}

}  // namespace masklab
