#pragma once
// Batching: examples -> (B, T) tensors of inputs and labels. The order of
// examples is fixed by the run seed alone (docs/design.md, invariant 3); padding and packing
// only change how the same examples are laid out.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "harness/core/hashing.hpp"
#include "harness/data/data.hpp"

namespace masklab {

// One micro-batch, on the CPU. Position t of a row holds input token t and
// the label (the next token) that it predicts.
struct Batch {
  torch::Tensor input_ids;     // (B, T) int64
  torch::Tensor targets;       // (B, T) int64; pad id where there is no label
  torch::Tensor label_role;    // (B, T) uint8 Role of the target token, kPad where none
  torch::Tensor label_flags;   // (B, T) uint8 TokenFlag bits of the target token
  torch::Tensor position_ids;  // (B, T) int64; restart at 0 for every packed example
  torch::Tensor segment_ids;   // (B, T) int64: which example (0..n_examples-1) a position belongs to, -1 for pads
  bool packed = false;         // rows hold several examples: attention must be block-diagonal
  std::int64_t n_examples = 0;
  std::int64_t real_tokens = 0;    // positions that hold an example token
  std::int64_t total_tokens = 0;   // B * T
};

// One example per row, right-padded to the longest in the batch.
Batch make_padded_batch(const std::vector<const TokenizedExample*>& examples, int pad_id);

// Examples packed best-fit-decreasing into rows of at most row_len positions;
// positions restart per example and no label crosses an example boundary.
// row_len 0: the longest example's length rounded up to a multiple of 8, so
// that the (quadratic) attention over a row stays close to what the examples need.
Batch make_packed_batch(const std::vector<const TokenizedExample*>& examples, int pad_id, int row_len);

// The training order: an endless stream of example indices, reshuffled every
// epoch with a generator seeded from the run seed. With lengths, it buckets:
// each epoch's shuffle is cut into pools of 64 batches, each pool sorted by
// length and cut into batches, and the batches shuffled, so that padded
// batches hold similar lengths. Either way the order depends on the seed and
// the data only, never on the strategy.
class ExampleOrder {
 public:
  ExampleOrder(std::size_t n_examples, std::uint64_t seed, std::vector<std::int32_t> lengths = {},
               int batch_size = 0);
  std::int32_t next();

  // Where the stream stands: this epoch's order, the position in it and the
  // generator state of the next reshuffle. A checkpoint carries it, so that
  // a resumed run draws what the uninterrupted one would have.
  struct State {
    std::vector<std::int32_t> order;
    std::size_t pos = 0;
    std::uint64_t next_seed = 0;
  };
  State state() const { return {order_, pos_, state_}; }
  // Continues from `state`, taken from an order of the same examples;
  // std::invalid_argument when its size or position cannot be that.
  void restore(const State& state);

 private:
  void reshuffle();
  std::vector<std::int32_t> order_;
  std::vector<std::int32_t> lengths_;  // empty: no bucketing
  int batch_size_;
  std::size_t pos_ = 0;
  std::uint64_t state_;
};

// The order a run of `config` draws its training examples in
// (data.bucketing when not packing).
ExampleOrder training_order(const Config& config, const Dataset& dataset);

// The examples of one optimizer step, micro-batch by micro-batch, drawn from
// `order`: the one place that decides which examples a step trains on, for
// the trainer and for bench's export alike. Each index drawn is added to
// `order_hash` when given (the run's "same job" fingerprint).
std::vector<std::vector<const TokenizedExample*>> draw_step(ExampleOrder& order, const Dataset& dataset,
                                                            const TrainConfig& train, Fnv1a* order_hash = nullptr);

}  // namespace masklab
