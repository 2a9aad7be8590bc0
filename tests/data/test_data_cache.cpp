// harness/data/data_cache: a second load of the same data and settings hits
// the cache with identical tokens; changed data or settings miss.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>

#include "harness/core/hashing.hpp"
#include "harness/data/data.hpp"
#include "harness/data/data_cache.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;

namespace {

// Four three-turn chats in DIR/d.jsonl under the chatml template, a quarter held out.
Config chat_config(const test::TempDir& dir) {
  test::write_text(dir.file("d.jsonl"), test::kThreeTurns + std::string(test::kThreeTurns) + test::kThreeTurns + test::kThreeTurns);
  Config c = test::tiny_config();
  c.data.train = dir.file("d.jsonl");
  c.data.eval_fraction = 0.25;
  c.data.template_name = "chatml";
  c.model.max_seq_len = 128;
  return c;
}

}  // namespace

TEST_CASE("the dataset cache hits on a second load and misses after the data changes", "[fast][formats][cache]") {
  test::TempDir dir;
  Config c = chat_config(dir);
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

TEST_CASE("a damaged dataset cache file is rebuilt, never trusted or crashed on", "[fast][cache]") {
  test::TempDir dir;
  Config c = chat_config(dir);
  const Dataset fresh = build_dataset(c);
  load_dataset(c, dir.file("cache"), nullptr);
  const auto entries = std::filesystem::directory_iterator(dir.file("cache"));
  const std::string path = entries->path().string();
  const std::string good = test::read_text(path);
  REQUIRE(good.size() > 100);
  auto same_examples = [&](const Dataset& ds) {
    bool same = ds.fingerprint == fresh.fingerprint && ds.tasks == fresh.tasks &&
                ds.train.size() == fresh.train.size() && ds.eval.size() == fresh.eval.size();
    for (size_t i = 0; same && i < ds.train.size(); ++i) {
      same = ds.train[i].ids == fresh.train[i].ids && ds.train[i].roles == fresh.train[i].roles &&
             ds.train[i].flags == fresh.train[i].flags && ds.train[i].task == fresh.train[i].task &&
             ds.train[i].completion_begin == fresh.train[i].completion_begin &&
             ds.train[i].completion_end == fresh.train[i].completion_end;
    }
    for (const auto i : ds.train_eval) same = same && i >= 0 && static_cast<size_t>(i) < ds.train.size();
    return same;
  };
  auto same_as_fresh = [&](const Dataset& ds) {
    return same_examples(ds) && ds.train_eval == fresh.train_eval && ds.stats.load.lines == fresh.stats.load.lines &&
           ds.stats.truncation.truncated == fresh.stats.truncation.truncated;
  };
  // The file ends in a checksum of what precedes it. Damage with the checksum
  // left stale must be caught by it; damage resealed with a matching checksum
  // must be caught by the bounds and fingerprint checks behind it.
  const std::string body = good.substr(0, good.size() - sizeof(std::uint64_t));
  auto seal = [](std::string b) {
    const std::uint64_t sum = Fnv1a().add(b.data(), b.size()).value();
    b.append(reinterpret_cast<const char*>(&sum), sizeof(sum));
    return b;
  };
  REQUIRE(seal(body) == good);
  struct Damage {
    std::string bytes;
    bool sealed;
  };
  std::vector<Damage> damaged;
  for (size_t at = 0; at < good.size(); at += 7) {  // every 7th byte flipped, every 7th length cut
    std::string flipped = good;
    flipped[at] = static_cast<char>(flipped[at] ^ 0xff);
    damaged.push_back({flipped, false});
    damaged.push_back({good.substr(0, at), false});
    if (at < body.size()) {
      damaged.push_back({seal(flipped.substr(0, body.size())), true});
      damaged.push_back({seal(body.substr(0, at)), true});
    }
  }
  int stale_hits = 0;
  for (size_t k = 0; k < damaged.size(); ++k) {
    INFO("case " << k << (damaged[k].sealed ? " (resealed)" : ""));
    test::write_text(path, damaged[k].bytes);
    bool hit = false;
    const Dataset ds = load_dataset(c, dir.file("cache"), &hit);
    // A resealed flip in train_eval or a counter can still load; the examples must be the fresh ones.
    CHECK((damaged[k].sealed ? same_examples(ds) : same_as_fresh(ds)));
    if (!damaged[k].sealed) stale_hits += hit;
  }
  CHECK(stale_hits == 0);
  // A count that claims more bytes than the file holds.
  std::string huge = body;
  const std::uint64_t lots = ~std::uint64_t{0} >> 4;
  std::memcpy(huge.data() + 8, &lots, sizeof(lots));  // after magic and version: the tokenizer fingerprint's length
  test::write_text(path, seal(huge));
  CHECK(same_as_fresh(load_dataset(c, dir.file("cache"), nullptr)));
  // The intact file still hits.
  bool hit = false;
  test::write_text(path, good);
  CHECK(same_as_fresh(load_dataset(c, dir.file("cache"), &hit)));
  CHECK(hit);
}

TEST_CASE("a cached dataset with an empty train-eval subset reads back", "[fast][cache]") {
  // An empty vector in the entry is a read of zero bytes into a null
  // data(): memcpy must not be handed it (UBSan's nonnull check).
  test::TempDir dir;
  Config c = chat_config(dir);
  c.data.train_eval_size = 0;
  const Dataset first = load_dataset(c, dir.file("cache"), nullptr);
  REQUIRE(first.train_eval.empty());
  bool hit = false;
  const Dataset second = load_dataset(c, dir.file("cache"), &hit);
  CHECK(hit);
  CHECK(second.train.size() == first.train.size());
  CHECK(second.train_eval.empty());
}

TEST_CASE("the dataset cache key follows every file of a tokenizer folder", "[fast][cache][tokenizer]") {
  test::TempDir dir;
  Config c = chat_config(dir);
  std::filesystem::create_directories(dir.file("tok"));
  test::write_text(dir.file("tok/tokenizer.json"), R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
    "pre_tokenizer": {"type": "ByteLevel"}, "added_tokens": []})");
  c.data.tokenizer = dir.file("tok");
  c.data.template_name = "auto";
  const std::string before = dataset_cache_key(c);
  test::write_text(dir.file("tok/tokenizer_config.json"), R"({"eos_token": "a", "chat_template": "<|im_start|>"})");
  const std::string with_config = dataset_cache_key(c);
  CHECK(with_config != before);
  test::write_text(dir.file("tok/tokenizer_config.json"), R"({"eos_token": "a", "chat_template": "[INST]"})");
  CHECK(dataset_cache_key(c) != with_config);  // a new chat template changes what data.template=auto renders
  CHECK(dataset_cache_key(c) == dataset_cache_key(c));
}
