#include "harness/data/tokenizer_training.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "harness/data/data.hpp"
#include "harness/core/errors.hpp"
#include "harness/core/files.hpp"
#include "harness/core/text.hpp"
#include "harness/data/sentencepiece.hpp"

namespace masklab {

std::string train_tokenizer(const TokenizerTrainOptions& o) {
  namespace fs = std::filesystem;
  if (o.vocab_size < 16) throw UserError("--vocab must be at least 16");
  std::string out = o.out;
  if (out.size() < 6 || out.substr(out.size() - 6) != ".model") {
    throw UserError("--out must name a .model file, got '" + out + "'");
  }
  // SentencePiece reads sentences from a text file: one message per line.
  // The corpus is gathered in memory first, so that a bad DATA leaves no
  // temporary file behind.
  std::string sentences;
  long lines = 0;
  auto put = [&](std::string s) {
    for (auto& c : s) c = (c == '\n' || c == '\r') ? ' ' : c;
    if (!trim(s).empty()) {
      sentences += s + '\n';
      ++lines;
    }
  };
  if (fs::path(o.data).extension() == ".jsonl") {
    for (const auto& ex : load_jsonl(o.data, DataFormat::kAuto, false, "data", nullptr)) {
      for (const auto& m : ex.messages) {
        put(m.content);
        put(m.input);
      }
    }
  } else {
    std::istringstream in(read_file_for("DATA", o.data));
    for (std::string line; std::getline(in, line);) put(line);
  }
  if (lines == 0) throw UserError(o.data + ": no text to train a tokenizer on");
  const fs::path corpus = fs::temp_directory_path() / fmt::format("masklab-tok-{}.txt", ::getpid());
  // Checked: a corpus cut short by a full disk would train a different tokenizer without a word.
  write_file_atomic(corpus.string(), sentences);
  const std::string prefix = out.substr(0, out.size() - 6);
  std::string flags = fmt::format(
      "--input={} --model_prefix={} --vocab_size={} --model_type={} --character_coverage=1.0 "
      "--unk_id=0 --bos_id=1 --eos_id=2 --pad_id=3 --byte_fallback=true --hard_vocab_limit=false "
      "--minloglevel=2",
      corpus.string(), prefix, o.vocab_size, o.type);
  if (!o.user_symbols.empty()) flags += " --user_defined_symbols=" + o.user_symbols;
  try {
    train_sentencepiece(flags);
  } catch (...) {
    fs::remove(corpus);
    throw;
  }
  fs::remove(corpus);
  const std::string fingerprint = make_tokenizer(out)->fingerprint();
  return fmt::format("wrote {} ({} tokens, {} from {} lines of {}; {})", out, make_tokenizer(out)->vocab_size(), o.type,
                     lines, o.data, fingerprint);
}

}  // namespace masklab
