#include "harness/train/batching.hpp"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

#include "harness/core/hashing.hpp"
#include "harness/core/random.hpp"

namespace masklab {
namespace {

// Writes example `ex` (as inputs and shifted labels) at row `row`, column `col`.
struct BatchWriter {
  int64_t* input;
  int64_t* target;
  uint8_t* role;
  uint8_t* flags;
  int64_t* position;
  int64_t* segment;
  int64_t T;

  void write(const TokenizedExample& ex, int64_t row, int64_t col, int64_t example_index) {
    const int64_t n = static_cast<int64_t>(ex.ids.size()) - 1;  // positions with a label
    const int64_t base = row * T + col;
    for (int64_t t = 0; t < n; ++t) {
      input[base + t] = ex.ids[t];
      target[base + t] = ex.ids[t + 1];
      role[base + t] = ex.roles[t + 1];   // the label decides (docs/design.md, invariant 2)
      flags[base + t] = ex.flags[t + 1];
      position[base + t] = t;
      segment[base + t] = example_index;
    }
  }
};

Batch allocate(int64_t B, int64_t T, int pad_id) {
  Batch b;
  b.input_ids = torch::full({B, T}, pad_id, torch::kLong);
  b.targets = torch::full({B, T}, pad_id, torch::kLong);
  b.label_role = torch::full({B, T}, static_cast<int>(Role::kPad), torch::kUInt8);
  b.label_flags = torch::zeros({B, T}, torch::kUInt8);
  b.position_ids = torch::zeros({B, T}, torch::kLong);
  b.segment_ids = torch::full({B, T}, -1, torch::kLong);
  b.total_tokens = B * T;
  return b;
}

BatchWriter writer(Batch& b) {
  return {b.input_ids.data_ptr<int64_t>(), b.targets.data_ptr<int64_t>(),
          b.label_role.data_ptr<uint8_t>(), b.label_flags.data_ptr<uint8_t>(),
          b.position_ids.data_ptr<int64_t>(), b.segment_ids.data_ptr<int64_t>(),
          b.input_ids.size(1)};
}

int64_t positions_of(const TokenizedExample& ex) { return static_cast<int64_t>(ex.ids.size()) - 1; }

}  // namespace

Batch make_padded_batch(const std::vector<const TokenizedExample*>& examples, int pad_id) {
  int64_t T = 1;
  for (const auto* ex : examples) T = std::max(T, positions_of(*ex));
  Batch b = allocate(static_cast<int64_t>(examples.size()), T, pad_id);
  BatchWriter w = writer(b);
  for (size_t i = 0; i < examples.size(); ++i) {
    w.write(*examples[i], static_cast<int64_t>(i), 0, static_cast<int64_t>(i));
    b.real_tokens += positions_of(*examples[i]);
  }
  b.n_examples = static_cast<int64_t>(examples.size());
  return b;
}

Batch make_packed_batch(const std::vector<const TokenizedExample*>& examples, int pad_id, int row_len) {
  if (row_len <= 0) {
    int64_t longest = 1;
    for (const auto* ex : examples) longest = std::max(longest, positions_of(*ex));
    row_len = static_cast<int>((longest + 7) / 8 * 8);
  }
  // Best-fit decreasing: longest first, each into the row it fills most tightly.
  std::vector<size_t> by_length(examples.size());
  std::iota(by_length.begin(), by_length.end(), 0);
  std::stable_sort(by_length.begin(), by_length.end(), [&](size_t a, size_t b) {
    return positions_of(*examples[a]) > positions_of(*examples[b]);
  });
  std::vector<int64_t> used;                     // positions used per row
  std::vector<std::vector<size_t>> row_members;  // example indices per row, in placement order
  for (size_t idx : by_length) {
    const int64_t n = positions_of(*examples[idx]);
    int best = -1;
    for (size_t r = 0; r < used.size(); ++r) {
      if (used[r] + n <= row_len && (best < 0 || used[r] > used[best])) best = static_cast<int>(r);
    }
    if (best < 0) {
      used.push_back(0);
      row_members.emplace_back();
      best = static_cast<int>(used.size()) - 1;
    }
    used[best] += n;
    row_members[best].push_back(idx);
  }
  const int64_t T = used.empty() ? 1 : *std::max_element(used.begin(), used.end());
  Batch b = allocate(static_cast<int64_t>(used.size()), T, pad_id);
  BatchWriter w = writer(b);
  for (size_t r = 0; r < row_members.size(); ++r) {
    int64_t col = 0;
    for (size_t idx : row_members[r]) {
      // Segment ids are the example's index in the caller's list, so that
      // per-example results line up with the padded layout.
      w.write(*examples[idx], static_cast<int64_t>(r), col, static_cast<int64_t>(idx));
      col += positions_of(*examples[idx]);
    }
    b.real_tokens += col;
  }
  b.packed = true;
  b.n_examples = static_cast<int64_t>(examples.size());
  return b;
}

ExampleOrder::ExampleOrder(std::size_t n_examples, std::uint64_t seed, std::vector<std::int32_t> lengths,
                           int batch_size)
    : order_(n_examples), lengths_(std::move(lengths)), batch_size_(batch_size), state_(seed) {
  std::iota(order_.begin(), order_.end(), 0);
  reshuffle();
}

void ExampleOrder::reshuffle() {
  std::mt19937_64 rng(state_);
  auto shuffle = [&](auto begin, auto end) { portable_shuffle(begin, end, rng); };
  std::iota(order_.begin(), order_.end(), 0);
  shuffle(order_.begin(), order_.end());
  if (!lengths_.empty() && batch_size_ > 1) {
    const size_t pool = static_cast<size_t>(batch_size_) * 64;
    for (size_t start = 0; start < order_.size(); start += pool) {
      const auto end = order_.begin() + static_cast<long>(std::min(order_.size(), start + pool));
      std::stable_sort(order_.begin() + static_cast<long>(start), end,
                       [&](std::int32_t a, std::int32_t b) { return lengths_[a] < lengths_[b]; });
    }
    std::vector<std::vector<std::int32_t>> batches;
    for (size_t start = 0; start < order_.size(); start += batch_size_) {
      batches.emplace_back(order_.begin() + static_cast<long>(start),
                           order_.begin() + static_cast<long>(std::min(order_.size(), start + batch_size_)));
    }
    shuffle(batches.begin(), batches.end());
    order_.clear();
    for (const auto& b : batches) order_.insert(order_.end(), b.begin(), b.end());
  }
  state_ = rng();
  pos_ = 0;
}

ExampleOrder training_order(const Config& config, const Dataset& dataset) {
  std::vector<std::int32_t> lengths;
  if (config.data.bucketing && !config.data.packing) {
    for (const auto& ex : dataset.train) lengths.push_back(static_cast<std::int32_t>(ex.ids.size()));
  }
  return ExampleOrder(dataset.train.size(), derive_seed(static_cast<std::uint64_t>(config.seed), "order"),
                      std::move(lengths), config.train.batch_size);
}

std::vector<std::vector<const TokenizedExample*>> draw_step(ExampleOrder& order, const Dataset& dataset,
                                                            const TrainConfig& train, Fnv1a* order_hash) {
  std::vector<std::vector<const TokenizedExample*>> micro(static_cast<size_t>(train.grad_accum));
  for (auto& examples : micro) {
    for (int i = 0; i < train.batch_size; ++i) {
      const auto idx = order.next();
      if (order_hash) order_hash->add_value(idx);
      examples.push_back(&dataset.train[static_cast<size_t>(idx)]);
    }
  }
  return micro;
}

void ExampleOrder::restore(const State& state) {
  if (state.order.size() != order_.size() || state.pos > state.order.size()) {
    throw std::invalid_argument("an example order of " + std::to_string(state.order.size()) + " examples at " +
                                std::to_string(state.pos) + " does not fit " + std::to_string(order_.size()) +
                                " examples");
  }
  order_ = state.order;
  pos_ = state.pos;
  state_ = state.next_seed;
}

std::int32_t ExampleOrder::next() {
  if (pos_ == order_.size()) reshuffle();
  return order_[pos_++];
}

}  // namespace masklab
