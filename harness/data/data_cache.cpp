#include "harness/data/data_cache.hpp"

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "harness/core/hashing.hpp"
#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/roles.hpp"

namespace masklab {
namespace {

// Bump when the tokenized format or the tokenization rules change.
constexpr std::uint32_t kCacheVersion = 4;  // 4: Hugging Face tokenizers, roles of tokens that start in template text
constexpr char kMagic[4] = {'M', 'L', 'D', 'S'};

void hash_file(Fnv1a& h, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  h.add(path);
  if (!in) return;  // a missing file fails later, in the build, with a proper message
  char buf[1 << 16];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) h.add(buf, static_cast<size_t>(in.gcount()));
}

class Writer {
 public:
  template <class T>
  void pod(const T& v) { out_.write(reinterpret_cast<const char*>(&v), sizeof(T)); }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    out_.write(s.data(), static_cast<std::streamsize>(s.size()));
  }
  template <class T>
  void vec(const std::vector<T>& v) {
    pod<std::uint64_t>(v.size());
    out_.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
  }
  std::string bytes() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

class Reader {
 public:
  explicit Reader(std::string bytes) : data_(std::move(bytes)) {}
  template <class T>
  T pod() {
    T v{};
    take(&v, sizeof(T));
    return v;
  }
  std::string str() {
    std::string s(count(1), '\0');
    take(s.data(), s.size());
    return s;
  }
  template <class T>
  std::vector<T> vec() {
    std::vector<T> v(count(sizeof(T)));
    take(v.data(), v.size() * sizeof(T));
    return v;
  }
  // A stored count of items that take at least `min_bytes` each: larger than
  // the bytes left can hold means a damaged file, and must not size an
  // allocation.
  size_t count(size_t min_bytes) {
    const auto n = pod<std::uint64_t>();
    if (n > (data_.size() - pos_) / min_bytes) throw std::runtime_error("truncated dataset cache");
    return static_cast<size_t>(n);
  }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  void take(void* dst, size_t n) {
    if (n > data_.size() - pos_) throw std::runtime_error("truncated dataset cache");
    if (n == 0) return;  // an empty vector's data() may be null, which memcpy must never get
    std::memcpy(dst, data_.data() + pos_, n);
    pos_ += n;
  }
  std::string data_;
  size_t pos_ = 0;
};

// Every counter of DataStats, in the order an entry stores them.
template <class Stats>
auto stat_counters(Stats& s) {
  return std::array{&s.load.lines, &s.load.invalid_skipped, &s.truncation.truncated,
                    &s.truncation.skipped_too_long, &s.truncation.earlier_turn_tokens_dropped,
                    &s.truncation.straddling_tokens};
}

void write_examples(Writer& w, const std::vector<TokenizedExample>& examples) {
  w.pod<std::uint64_t>(examples.size());
  for (const auto& e : examples) {
    w.vec(e.ids);
    w.vec(e.roles);
    w.vec(e.flags);
    w.pod(e.completion_begin);
    w.pod(e.completion_end);
    w.pod(e.task);
  }
}

std::string serialize(const Dataset& ds) {
  Writer w;
  w.pod(kMagic);
  w.pod(kCacheVersion);
  w.str(ds.tokenizer->fingerprint());
  w.str(ds.fingerprint);
  w.pod<std::uint64_t>(ds.tasks.size());
  for (const auto& t : ds.tasks) w.str(t);
  write_examples(w, ds.train);
  write_examples(w, ds.eval);
  w.vec(ds.train_eval);
  for (const long* v : stat_counters(ds.stats)) w.pod<std::int64_t>(*v);
  // A trailing checksum of everything before it: the fingerprint covers the
  // examples, not train_eval or the counters.
  std::string bytes = w.bytes();
  const std::uint64_t sum = Fnv1a().add(bytes.data(), bytes.size()).value();
  bytes.append(reinterpret_cast<const char*>(&sum), sizeof(sum));
  return bytes;
}

// The smallest stored example: three empty vectors (a count each) and three int32s.
constexpr size_t kMinExampleBytes = 3 * sizeof(std::uint64_t) + 3 * sizeof(std::int32_t);

// An example the rest of the program can index without checks: parallel
// vectors, ids in the vocabulary, known roles and flags, completion bounds
// inside the example, a task that exists.
bool valid_example(const TokenizedExample& e, int vocab_size, size_t n_tasks) {
  const size_t n = e.ids.size();
  if (n == 0 || e.roles.size() != n || e.flags.size() != n) return false;
  for (const auto id : e.ids) {
    if (id < 0 || id >= vocab_size) return false;
  }
  for (size_t t = 0; t < n; ++t) {
    if (e.roles[t] >= kNumRoles || (e.flags[t] & ~(kFlagLastTurn | kFlagMessageMasked)) != 0) return false;
  }
  return e.completion_begin >= 0 && e.completion_begin <= e.completion_end &&
         static_cast<size_t>(e.completion_end) <= n && e.task >= 0 && static_cast<size_t>(e.task) < n_tasks;
}

bool read_examples(Reader& r, int vocab_size, size_t n_tasks, std::vector<TokenizedExample>& out) {
  out.resize(r.count(kMinExampleBytes));
  for (auto& e : out) {
    e.ids = r.vec<std::int32_t>();
    e.roles = r.vec<std::uint8_t>();
    e.flags = r.vec<std::uint8_t>();
    e.completion_begin = r.pod<std::int32_t>();
    e.completion_end = r.pod<std::int32_t>();
    e.task = r.pod<std::int32_t>();
    if (!valid_example(e, vocab_size, n_tasks)) return false;
  }
  return !out.empty();
}

}  // namespace

// A damaged file must never reach training: the checksum catches damage, and
// should it miss, every count is still checked against the bytes left, every
// index against what it indexes, and the examples against their stored
// fingerprint.
bool deserialize_dataset(const std::string& bytes, Dataset& ds) {
  std::uint64_t sum = 0;
  if (bytes.size() < sizeof(sum)) return false;
  const size_t body = bytes.size() - sizeof(sum);
  std::memcpy(&sum, bytes.data() + body, sizeof(sum));
  if (Fnv1a().add(bytes.data(), body).value() != sum) return false;
  try {
    Reader r(bytes.substr(0, body));
    const auto magic = r.pod<std::array<char, 4>>();
    if (std::memcmp(magic.data(), kMagic, 4) != 0 || r.pod<std::uint32_t>() != kCacheVersion) return false;
    if (r.str() != ds.tokenizer->fingerprint()) return false;
    ds.fingerprint = r.str();
    ds.tasks.resize(r.count(sizeof(std::uint64_t)));
    for (auto& t : ds.tasks) t = r.str();
    const int vocab = ds.tokenizer->vocab_size();
    if (!read_examples(r, vocab, ds.tasks.size(), ds.train) || !read_examples(r, vocab, ds.tasks.size(), ds.eval)) {
      return false;
    }
    ds.train_eval = r.vec<std::int32_t>();
    for (const auto i : ds.train_eval) {
      if (i < 0 || static_cast<size_t>(i) >= ds.train.size()) return false;
    }
    for (long* v : stat_counters(ds.stats)) {
      *v = r.pod<std::int64_t>();
      if (*v < 0) return false;
    }
    return r.at_end() && dataset_fingerprint(ds) == ds.fingerprint;
  } catch (const std::runtime_error&) {
    return false;
  }
}

std::string dataset_cache_key(const Config& config) {
  Fnv1a h;
  h.add_value(kCacheVersion);
  YAML::Emitter data_yaml;
  data_yaml << to_yaml_node(config)["data"];
  h.add(data_yaml.c_str());
  h.add_value(config.model.max_seq_len);
  const auto& d = config.data;
  if (!d.train.empty()) hash_file(h, d.train);
  if (!d.eval.empty()) hash_file(h, d.eval);
  for (const auto& file : tokenizer_files(d.tokenizer)) hash_file(h, file);
  if (std::filesystem::is_regular_file(d.template_name)) hash_file(h, d.template_name);
  return h.hex();
}

Dataset load_dataset(const Config& config, const std::string& cache_dir, bool* from_cache) {
  if (from_cache) *from_cache = false;
  if (cache_dir.empty()) return build_dataset(config);
  // Checked before the build, so that a file given for the folder fails at
  // once, with its name, instead of after tokenizing everything.
  if (std::filesystem::exists(cache_dir) && !std::filesystem::is_directory(cache_dir)) {
    throw UserError("--cache: " + cache_dir + ": Not a directory");
  }
  const std::string path = cache_dir + "/" + dataset_cache_key(config) + ".mlds";
  // A folder in an entry's place can be neither read nor replaced by rename:
  // named before the build, like a file given for the folder.
  if (std::filesystem::is_directory(path)) throw UserError("--cache: " + path + ": Is a directory, not a cache entry");
  if (std::filesystem::exists(path)) {
    Dataset ds;
    ds.tokenizer = make_tokenizer(config.data.tokenizer);
    ds.chat_template = load_template(config.data.template_name, *ds.tokenizer);
    const auto bytes = read_file(path);
    if (bytes && deserialize_dataset(*bytes, ds)) {
      if (from_cache) *from_cache = true;
      return ds;
    }
  }
  Dataset ds = build_dataset(config);
  std::filesystem::create_directories(cache_dir);
  write_file_atomic(path, serialize(ds));  // concurrent runs write the same bytes; rename keeps it whole
  return ds;
}

}  // namespace masklab
