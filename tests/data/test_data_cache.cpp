// harness/data/data_cache: a second load of the same data and settings hits
// the cache with identical tokens; changed data or settings miss.
#include <catch2/catch.hpp>

#include "harness/data/data_cache.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

TEST_CASE("the dataset cache hits on a second load and misses after the data changes", "[fast][formats][cache]") {
  test::TempDir dir;
  test::write_text(dir.file("d.jsonl"), test::kThreeTurns + std::string(test::kThreeTurns) + test::kThreeTurns + test::kThreeTurns);
  Config c = test::tiny_config();
  c.data.train = dir.file("d.jsonl");
  c.data.eval_fraction = 0.25;
  c.data.template_name = "chatml";
  c.model.max_seq_len = 128;
  bool hit = true;
  const Dataset first = load_dataset(c, dir.file("cache"), &hit);
  CHECK_FALSE(hit);
  const Dataset second = load_dataset(c, dir.file("cache"), &hit);
  CHECK(hit);
  CHECK(second.fingerprint == first.fingerprint);
  CHECK(second.train.size() == first.train.size());
  CHECK(second.train[0].ids == first.train[0].ids);
  CHECK(second.train[0].flags == first.train[0].flags);
  CHECK(second.train_eval == first.train_eval);
  test::write_text(dir.file("d.jsonl"), test::kThreeTurns + std::string(test::kThreeTurns) + test::kThreeTurns);
  load_dataset(c, dir.file("cache"), &hit);
  CHECK_FALSE(hit);
  c.data.max_len = 64;  // another setting that shapes the tokens
  load_dataset(c, dir.file("cache"), &hit);
  CHECK_FALSE(hit);
}
