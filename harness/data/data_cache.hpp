#pragma once
// Tokenized datasets cached on disk, keyed by a content hash of everything
// that shapes them (data files, tokenizer, template, lengths, task settings),
// so the runs of a sweep tokenize their data once.
#include <string>

#include "harness/core/config.hpp"
#include "harness/data/data.hpp"

namespace masklab {

// The cache key for `config`'s data: hex digits.
std::string dataset_cache_key(const Config& config);

// Fills `ds` (all but its tokenizer, which must be set, and its template)
// from the bytes of a cache entry; false when they are not a valid entry for
// that tokenizer, and the caller rebuilds.
bool deserialize_dataset(const std::string& bytes, Dataset& ds);

// The dataset for `config`: read from cache_dir/<key>.mlds when present and
// valid, otherwise built and then stored there (atomically). An empty
// cache_dir means no caching. *from_cache says which happened.
Dataset load_dataset(const Config& config, const std::string& cache_dir, bool* from_cache = nullptr);

}  // namespace masklab
