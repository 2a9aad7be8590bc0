#include "harness/train/model.hpp"

#include <cmath>
#include <fstream>
#include <iterator>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/hashing.hpp"

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

// RoPE, "rotate half" convention: the first and second halves of each head
// are the real and imaginary parts. x (B, H, T, D); cos/sin (B, 1, T, D/2).
torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const auto x1 = x.narrow(-1, 0, half);
  const auto x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x1 * sin + x2 * cos}, -1);
}

}  // namespace

AttentionImpl::AttentionImpl(int64_t d_model, int64_t heads, double dropout_p)
    : n_heads(heads), dropout(dropout_p) {
  qkv = register_parameter("qkv", torch::empty({3 * d_model, d_model}));
  proj = register_parameter("proj", torch::empty({d_model, d_model}));
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

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const torch::Tensor& mask, const torch::Tensor& rows) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = n_heads, D = C / H;
  // split (not three selects): its backward is one cat, not three full-size zero tensors.
  const auto parts = cast_linear(x, qkv).split(C, -1);                       // 3 x (B, T, C)
  auto heads = [&](const torch::Tensor& t) { return t.view({B, T, H, D}).transpose(1, 2); };  // (B, H, T, D)
  const auto q = rotate(heads(parts[0]), cos, sin);
  const auto k = rotate(heads(parts[1]), cos, sin);
  const auto v = heads(parts[2]);
  const double p = is_training() ? dropout : 0.0;
  auto y = attend(q, k, v, mask, p).transpose(1, 2).reshape({B * T, C});  // (B*T, C)
  if (rows.defined()) y = y.index_select(0, rows);                         // (N, C)
  y = cast_linear(y, proj);
  if (p > 0) y = torch::dropout(y, p, /*train=*/true);
  return rows.defined() ? y : y.view({B, T, C});
}

MlpImpl::MlpImpl(int64_t d_model, int64_t d_ff, bool use_swiglu, double dropout_p)
    : swiglu(use_swiglu), dropout(dropout_p) {
  up = register_parameter("up", torch::empty({(use_swiglu ? 2 : 1) * d_ff, d_model}));
  down = register_parameter("down", torch::empty({d_model, d_ff}));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = cast_linear(x, up);  // (B, T, 2F) or (B, T, F)
  if (swiglu) {
    const auto parts = h.chunk(2, -1);
    h = torch::silu(parts[0]) * parts[1];  // (B, T, F)
  } else {
    h = torch::gelu(h);
  }
  h = cast_linear(h, down);
  const double p = is_training() ? dropout : 0.0;
  return p > 0 ? torch::dropout(h, p, /*train=*/true) : h;
}

BlockImpl::BlockImpl(const ModelConfig& c, int64_t d_ff)
    : norm1(register_module("norm1", RMSNorm(c.d_model))),
      attn(register_module("attn", Attention(c.d_model, c.n_heads, c.dropout))),
      norm2(register_module("norm2", RMSNorm(c.d_model))),
      mlp(register_module("mlp", Mlp(c.d_model, d_ff, c.mlp == MlpKind::kSwiGLU, c.dropout))) {}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                 const torch::Tensor& mask, const torch::Tensor& rows) {
  const auto residual = rows.defined() ? x.reshape({-1, x.size(-1)}).index_select(0, rows) : x;  // (N, C) or (B, T, C)
  auto h = residual + attn(norm1(x), cos, sin, mask, rows);
  return h + mlp(norm2(h));
}

int64_t resolved_d_ff(const ModelConfig& c) {
  if (c.d_ff > 0) return c.d_ff;
  if (c.mlp == MlpKind::kGelu) return 4 * c.d_model;
  const int64_t raw = (8 * c.d_model + 2) / 3;
  return (raw + 15) / 16 * 16;
}

TransformerImpl::TransformerImpl(const ModelConfig& c, int64_t vocab)
    : config(c),
      vocab_size(vocab),
      embed(register_module("embed", torch::nn::Embedding(vocab, c.d_model))),
      blocks(register_module("blocks", torch::nn::ModuleList())),
      norm_f(register_module("norm_f", RMSNorm(c.d_model))) {
  for (int i = 0; i < c.n_layers; ++i) blocks->push_back(Block(c, resolved_d_ff(c)));
  if (!c.tie_embeddings) lm_head = register_parameter("lm_head", torch::empty({vocab, c.d_model}));
  // RoPE tables: angle(t, i) = t * theta^(-2i/D).
  const int64_t D = c.d_model / c.n_heads;
  const auto inv_freq =
      torch::pow(c.rope_theta, -torch::arange(0, D, 2, torch::kDouble) / static_cast<double>(D));
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
  torch::Tensor mask;  // packed rows: attend only within the same example, causally
  if (segment_ids.defined()) {
    const auto same = segment_ids.unsqueeze(2).eq(segment_ids.unsqueeze(1));  // (B, T, T)
    const auto causal = torch::ones({T, T}, torch::dtype(torch::kBool).device(x.device())).tril();
    mask = same.logical_and(causal).unsqueeze(1);  // (B, 1, T, T)
  }
  // With rows, the last block keeps only what the loss needs: attention runs
  // over every position (the keys and values are needed anyway), then its
  // output projection and the MLP only at the selected rows.
  const size_t L = blocks->size();
  for (size_t i = 0; i < L; ++i) {
    x = blocks[i]->as<Block>()->forward(x, cos, sin, mask, i + 1 == L ? rows : torch::Tensor());
  }
  return norm_f(x);  // (B, T, C), or (N, C) with rows
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
    if (p.dim() == 1) {
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
  const auto text = read_file(path);
  if (!text) throw UserError("model.init_from: cannot read '" + path + "'");
  const std::vector<char> bytes(text->begin(), text->end());
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
