// harness/train/batching: packed rows are equivalent to padded rows, and
// length bucketing keeps epochs permutations while cutting padding.
#include <catch2/catch.hpp>

#include <set>

#include "harness/train/batching.hpp"
#include "harness/train/loss.hpp"
#include "harness/train/model.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("packed rows give each example the same loss as padded rows", "[fast][loss][packing]") {
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

TEST_CASE("length bucketing keeps each epoch a permutation and cuts padding", "[fast][batching]") {
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
