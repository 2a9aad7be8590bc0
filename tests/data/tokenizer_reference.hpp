#pragma once
// The reference tokenizer folders of tests/python/tok_train_bpe.py (trained
// by the `tokenizers` library and python sentencepiece, with the expected ids
// of 2,200 strings), made once per test process.
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/test_helpers.hpp"

namespace masklab::test {

// OUT/<name>/ for name in gpt2, llama3, qwen2, smollm, prefix_space, split_behaviors,
// affixes, llama2, mistral, spm.
inline std::string reference_tokenizers() {
  static TempDir dir;
  static const bool made = [] {
    const auto r = run_venv_python("tok_train_bpe.py", dir.path() + "/ref 2200");
    if (r.exit_code != 0) FAIL("tok_train_bpe.py failed: " + r.out);
    return true;
  }();
  (void)made;
  return dir.path() + "/ref";
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  if (out.empty()) FAIL("no lines in " + path);
  return out;
}

}  // namespace masklab::test
