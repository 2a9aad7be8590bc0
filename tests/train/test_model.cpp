// harness/train/model: the transformer's deterministic init, causality,
// block-diagonal packing, saved weights, the last block at selected rows.
#include <array>

#include <catch2/catch.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include "harness/train/batching.hpp"
#include "harness/core/errors.hpp"
#include "harness/train/model.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {
ModelConfig tiny_model() { return test::tiny_config().model; }

// Three examples of different lengths, for the packing and row tests.
std::array<TokenizedExample, 3> three_examples() {
  return {test::byte_example("reverse abcdef", "fedcba"), test::byte_example("add 12+5", "17"),
          test::byte_example("count 3 to 9", "3 4 5 6 7 8 9")};
}

std::vector<torch::Tensor> gradients_of(Transformer& m) {
  std::vector<torch::Tensor> grads;
  for (auto& p : m->parameters()) grads.push_back(p.grad().clone());
  return grads;
}

// Another order of the same float operations: equal up to rounding, relative to each gradient's scale.
void check_gradients_equal(Transformer& m, const std::vector<torch::Tensor>& expected) {
  size_t i = 0;
  for (auto& p : m->parameters()) {
    const double scale = expected[i].abs().max().item<double>();
    CHECK((p.grad() - expected[i++]).abs().max().item<double>() <= 1e-5 * scale + 1e-9);
  }
}
}  // namespace

TEST_CASE("initialization is a function of the seed alone", "[fast][model]") {
  Transformer a(tiny_model(), 259), b(tiny_model(), 259), c(tiny_model(), 259);
  a->initialize(1);
  b->initialize(1);
  c->initialize(2);
  CHECK(parameters_hash(*a) == parameters_hash(*b));
  CHECK(parameters_hash(*a) != parameters_hash(*c));
  // Norm gains start at one; output projections are scaled down with depth.
  const auto& blk = a->blocks[0]->as<Block>();
  CHECK(blk->norm1->weight.eq(1).all().item<bool>());
  CHECK(blk->attn->proj.std().item<double>() < blk->attn->qkv.std().item<double>());
}

TEST_CASE("attention is causal: a later token never changes an earlier position", "[fast][model]") {
  Transformer m(tiny_model(), 259);
  m->initialize(3);
  m->eval();
  torch::NoGradGuard no_grad;
  auto ids = torch::randint(256, {1, 12}, torch::kLong);
  const auto pos = torch::arange(12, torch::kLong).view({1, 12});
  const auto h1 = m->forward(ids, pos);
  ids[0][9] = (ids[0][9].item<int64_t>() + 1) % 256;
  const auto h2 = m->forward(ids, pos);
  CHECK(torch::equal(h1.narrow(1, 0, 9), h2.narrow(1, 0, 9)));
  CHECK_FALSE(torch::allclose(h1.narrow(1, 9, 1), h2.narrow(1, 9, 1)));
}

TEST_CASE("packed examples never see each other", "[fast][model][packing]") {
  Transformer m(tiny_model(), 259);
  m->initialize(4);
  m->eval();
  torch::NoGradGuard no_grad;
  const auto a = test::byte_example("reverse abc", "cba");
  const auto b = test::byte_example("add 12+5", "17");
  auto b_changed = b;
  b_changed.ids[3] = 'x';
  const Batch p1 = make_packed_batch({&a, &b}, 256, 96);
  const Batch p2 = make_packed_batch({&a, &b_changed}, 256, 96);
  REQUIRE(p1.input_ids.size(0) == 1);  // one row holds both
  const auto h1 = m->forward(p1.input_ids, p1.position_ids, p1.segment_ids);
  const auto h2 = m->forward(p2.input_ids, p2.position_ids, p2.segment_ids);
  // Every position of example a is unchanged by editing example b.
  const auto in_a = p1.segment_ids[0].eq(0);
  CHECK(torch::equal(h1[0].index({in_a}), h2[0].index({in_a})));
  // Positions restart per example and no label crosses the boundary.
  const auto seg = p1.segment_ids[0];
  const auto first_b = seg.eq(1).nonzero()[0].item<int64_t>();
  CHECK(p1.position_ids[0][first_b].item<int64_t>() == 0);
  CHECK(p1.label_role[0][first_b - 1].item<int>() == static_cast<int>(Role::kEos));
}

TEST_CASE("a packed row computes, and back-propagates, what each example computes alone",
          "[fast][model][packing]") {
  // Grouped-query heads (4 query heads on 2 key/value heads) and a padded
  // tail: the packed layout (attention_layout: one attention per example on
  // the CPU) against each example run by itself as a plain causal sequence
  // (on LibTorch 2.x its SDPA, on 1.13 one run per row).
  ModelConfig mc = tiny_model();
  mc.n_layers = 2;
  mc.n_heads = 4;
  mc.n_kv_heads = 2;
  Transformer m(mc, 259);
  m->initialize(8);
  const auto ex = three_examples();
  const Batch packed = make_packed_batch({&ex[0], &ex[1], &ex[2]}, 256, 64);
  REQUIRE(packed.segment_ids.eq(-1).any().item<bool>());  // some padding
  REQUIRE(packed.input_ids.size(0) < 3);                   // some row holds two examples
  const auto h = m->forward(packed.input_ids, packed.position_ids, packed.segment_ids);  // (B, T, C)
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto w = torch::empty(h.sizes()).normal_(0, 1, gen);
  const auto real = packed.segment_ids.ge(0).unsqueeze(-1).to(torch::kFloat);  // padding carries nothing
  m->zero_grad();
  (h * w * real).sum().backward();
  const auto packed_grads = gradients_of(m);

  m->zero_grad();
  const auto seg = packed.segment_ids.flatten();
  const auto flat_h = h.detach().reshape({-1, h.size(-1)});
  const auto flat_w = w.reshape({-1, w.size(-1)});
  for (int64_t e = 0; e < 3; ++e) {
    const auto at = seg.eq(e).nonzero().flatten();  // this example's flat positions, in order
    const int64_t L = at.numel();
    const auto ids = packed.input_ids.flatten().index_select(0, at).view({1, L});
    const auto alone = m->forward(ids, torch::arange(L, torch::kLong).view({1, L}));  // (1, L, C)
    CHECK(torch::allclose(alone[0].detach(), flat_h.index_select(0, at), 1e-5, 1e-5));
    (alone[0] * flat_w.index_select(0, at)).sum().backward();  // gradients accumulate over the examples
  }
  check_gradients_equal(m, packed_grads);
}

TEST_CASE("saved weights load back exactly, mismatches are named", "[fast][model]") {
  test::TempDir dir;
  Transformer a(tiny_model(), 259);
  a->initialize(5);
  save_parameters(*a, dir.file("model.pt"));
  Transformer b(tiny_model(), 259);
  b->initialize(6);
  load_parameters(*b, dir.file("model.pt"));
  CHECK(parameters_hash(*a) == parameters_hash(*b));

  ModelConfig wider = tiny_model();
  wider.d_model = 64;
  Transformer c(wider, 259);
  try {
    load_parameters(*c, dir.file("model.pt"));
    FAIL("expected an error");
  } catch (const UserError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("embed.weight") && Catch::Contains("259x32"));
  }
  test::write_text(dir.file("junk.pt"), "not a model");
  CHECK_THROWS_AS(load_parameters(*b, dir.file("junk.pt")), UserError);
}

TEST_CASE("the last block computed only at selected rows equals the full forward there", "[fast][model][rows]") {
  ModelConfig mc = tiny_model();
  mc.n_layers = 2;
  Transformer m(mc, 259);
  m->initialize(9);
  const auto ex = three_examples();
  const std::vector<const TokenizedExample*> examples{&ex[0], &ex[1], &ex[2]};
  for (bool packed : {false, true}) {
    INFO("packed " << packed);
    const Batch batch = packed ? make_packed_batch(examples, 256, 0) : make_padded_batch(examples, 256);
    const auto seg = packed ? batch.segment_ids : torch::Tensor();
    // Completion positions, as completion_only selects them.
    const auto role = batch.label_role.flatten();
    const auto rows = role.eq(static_cast<int>(Role::kAssistant)).logical_or(role.eq(static_cast<int>(Role::kEos)))
                          .nonzero().flatten();
    REQUIRE(rows.numel() > 0);
    const auto full = m->forward(batch.input_ids, batch.position_ids, seg);
    const auto expected = full.reshape({-1, full.size(-1)}).index_select(0, rows);
    const auto got = m->forward(batch.input_ids, batch.position_ids, seg, rows);
    CHECK(torch::allclose(got, expected, 1e-5, 1e-5));
    // And the gradients agree.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    const auto w = torch::empty({got.size(0), got.size(1)}).normal_(0, 1, gen);
    m->zero_grad();
    (expected * w).sum().backward();
    const auto grads = gradients_of(m);
    m->zero_grad();
    (m->forward(batch.input_ids, batch.position_ids, seg, rows) * w).sum().backward();
    check_gradients_equal(m, grads);
  }
}

TEST_CASE("activation checkpointing gives the gradients of the plain backward, dropout included",
          "[fast][model][checkpoint-activations]") {
  ModelConfig c = tiny_model();
  c.n_layers = 2;
  c.dropout = 0.1;  // the recomputation must replay the same dropout masks
  c.n_kv_heads = 1;
  auto grads_of = [&](bool checkpointed, bool with_rows) {
    c.checkpoint_activations = checkpointed;
    Transformer m(c, 259);
    m->initialize(5);
    m->train();
    torch::manual_seed(11);
    const auto ids = torch::randint(256, {2, 10}, torch::kLong);
    const auto pos = torch::arange(10, torch::kLong).repeat({2, 1});
    const auto seg = torch::cat({torch::zeros({2, 4}, torch::kLong), torch::ones({2, 6}, torch::kLong)}, 1);
    const auto rows = torch::tensor(std::vector<int64_t>{1, 3, 12, 17});
    const auto h = with_rows ? m->forward(ids, pos, seg, rows) : m->forward(ids, pos, seg);
    const auto loss = torch::matmul(h, m->head_weight().t()).logsumexp(-1).sum();
    loss.backward();
    std::vector<torch::Tensor> g;
    for (const auto& p : m->parameters()) g.push_back(p.grad().clone());
    // The generator ends where the plain run leaves it: later draws are unchanged.
    g.push_back(torch::rand({4}));
    return g;
  };
  for (bool with_rows : {false, true}) {
    INFO("rows: " << with_rows);
    const auto plain = grads_of(false, with_rows);
    const auto recomputed = grads_of(true, with_rows);
    REQUIRE(plain.size() == recomputed.size());
    for (size_t i = 0; i < plain.size(); ++i) {
      INFO("parameter " << i);
      CHECK(plain[i].abs().sum().item<double>() > 0);
      CHECK(torch::allclose(plain[i], recomputed[i], /*rtol=*/1e-6, /*atol=*/1e-7));
    }
  }
}
