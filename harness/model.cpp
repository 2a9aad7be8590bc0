#include "harness/model.hpp"

#include <cmath>
#include <fstream>
#include <iterator>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/errors.hpp"
#include "harness/hashing.hpp"

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

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const torch::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = n_heads, D = C / H;
  auto qkv_out = cast_linear(x, qkv).view({B, T, 3, H, D}).permute({2, 0, 3, 1, 4});  // (3, B, H, T, D)
  const auto q = rotate(qkv_out[0], cos, sin);
  const auto k = rotate(qkv_out[1], cos, sin);
  const auto v = qkv_out[2];
  const double p = is_training() ? dropout : 0.0;
  torch::Tensor y;  // (B, H, T, D)
#if TORCH_VERSION_MAJOR >= 2
  // Fused kernels (flash / memory-efficient) on CUDA; causal without a mask tensor when unpacked.
  y = mask.defined() ? at::scaled_dot_product_attention(q, k, v, mask, p, /*is_causal=*/false)
                     : at::scaled_dot_product_attention(q, k, v, {}, p, /*is_causal=*/true);
#else
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(D)));
  const auto allowed = mask.defined() ? mask
                                      : torch::ones({T, T}, torch::dtype(torch::kBool).device(x.device())).tril();
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  auto att = torch::softmax(scores.to(torch::kFloat), -1).to(q.scalar_type());
  if (p > 0) att = torch::dropout(att, p, /*train=*/true);
  y = torch::matmul(att, v);
#endif
  y = y.transpose(1, 2).reshape({B, T, C});
  y = cast_linear(y, proj);
  return p > 0 ? torch::dropout(y, p, /*train=*/true) : y;
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
      mlp(register_module("mlp", Mlp(c.d_model, d_ff, c.mlp == "swiglu", c.dropout))) {}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                 const torch::Tensor& mask) {
  auto h = x + attn(norm1(x), cos, sin, mask);
  return h + mlp(norm2(h));
}

int64_t resolved_d_ff(const ModelConfig& c) {
  if (c.d_ff > 0) return c.d_ff;
  if (c.mlp == "gelu") return 4 * c.d_model;
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
                                       const torch::Tensor& segment_ids) {
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
  for (const auto& block : *blocks) {
    x = block->as<Block>()->forward(x, cos, sin, mask);
  }
  return norm_f(x);
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

double TransformerImpl::flops_per_token(int64_t context) const {
  const double C = config.d_model, L = config.n_layers, F = static_cast<double>(resolved_d_ff(config));
  const double mlp = (config.mlp == "swiglu" ? 3.0 : 2.0) * C * F;
  const double per_layer = 4.0 * C * C + mlp;  // qkv + proj + MLP matmul params
  const double head = C * static_cast<double>(vocab_size);
  return 6.0 * (L * per_layer + head) + 12.0 * L * C * static_cast<double>(context);
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
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  std::rename(tmp.c_str(), path.c_str());
}

void load_parameters(torch::nn::Module& module, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError("model.init_from: cannot read '" + path + "'");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
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
