#pragma once
// Portable seeded draws. std::shuffle and std::uniform_int_distribution are
// implemented differently by each standard library, so a run's data, split
// and batch order would depend on the compiler; these depend only on
// mt19937_64, whose output the standard fixes.
#include <cstdint>
#include <random>
#include <utility>

namespace masklab {

// A draw in [0, n): the modulo's bias is below 1e-15 for the n used here.
inline std::uint64_t draw_below(std::mt19937_64& rng, std::uint64_t n) { return rng() % n; }

// Fisher-Yates over [begin, end).
template <class It>
void portable_shuffle(It begin, It end, std::mt19937_64& rng) {
  for (auto n = end - begin; n > 1; --n) {
    std::swap(begin[n - 1], begin[static_cast<decltype(n)>(draw_below(rng, static_cast<std::uint64_t>(n)))]);
  }
}

}  // namespace masklab
