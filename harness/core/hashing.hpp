#pragma once
// A stable 64-bit hash (FNV-1a) for run ids, cache keys and the "same job"
// fingerprints. std::hash is not stable across builds, so it is never used
// for anything written to disk.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace masklab {

class Fnv1a {
 public:
  Fnv1a() = default;
  // Continues a hash whose value() so far was `state` (a resumed run's order hash).
  explicit Fnv1a(std::uint64_t state) : state_(state) {}
  Fnv1a& add(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) {
      state_ ^= p[i];
      state_ *= 0x100000001b3ULL;
    }
    return *this;
  }
  Fnv1a& add(std::string_view s) {
    add(s.data(), s.size());
    const char separator = '\x1f';  // so ("ab","c") and ("a","bc") differ
    return add(&separator, 1);
  }
  template <class T>
  Fnv1a& add_value(const T& v) {
    return add(&v, sizeof(T));
  }
  std::uint64_t value() const { return state_; }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(state_));
    return buf;
  }

 private:
  std::uint64_t state_ = 0xcbf29ce484222325ULL;
};

// A seed for one purpose ("init", "order", "dropout") derived from the run
// seed alone, never from the strategy (docs/design.md, invariant 3).
inline std::uint64_t derive_seed(std::uint64_t run_seed, std::string_view purpose) {
  return Fnv1a().add_value(run_seed).add(purpose).value();
}

}  // namespace masklab
