#include "harness/data/text_metrics.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

namespace masklab {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_punctuation(char c) { return c != '\0' && std::strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) != nullptr; }
bool is_article(std::string_view word) { return word == "a" || word == "an" || word == "the"; }

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text) {
    if (!is_space(c)) {
      word += c;
    } else if (!word.empty()) {
      out.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

// Length of the longest common subsequence, one row of the table at a time.
size_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<size_t> prev(b.size() + 1, 0), row(b.size() + 1, 0);
  for (const auto& x : a) {
    for (size_t j = 0; j < b.size(); ++j) row[j + 1] = x == b[j] ? prev[j] + 1 : std::max(prev[j + 1], row[j]);
    std::swap(prev, row);
  }
  return prev[b.size()];
}

size_t bag_overlap(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::map<std::string, long> counts;
  for (const auto& w : b) ++counts[w];
  size_t common = 0;
  for (const auto& w : a) {
    auto it = counts.find(w);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++common;
    }
  }
  return common;
}

// 2PR/(P+R) from the overlap count; the empty cases as the header says.
double f_measure(size_t common, size_t output_tokens, size_t reference_tokens) {
  if (output_tokens == 0 || reference_tokens == 0) return output_tokens == reference_tokens ? 1.0 : 0.0;
  if (common == 0) return 0.0;
  const double precision = static_cast<double>(common) / output_tokens;
  const double recall = static_cast<double>(common) / reference_tokens;
  return 2 * precision * recall / (precision + recall);
}

}  // namespace

std::string normalize_answer(std::string_view text) {
  std::string kept;
  for (char c : text) {
    if (is_punctuation(c)) continue;
    kept += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::string out;
  for (const auto& w : words(kept)) {
    if (is_article(w)) continue;
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

AnswerScores score_answer(std::string_view output, std::string_view reference) {
  const std::string out_text = normalize_answer(output), ref_text = normalize_answer(reference);
  const auto out = words(out_text), ref = words(ref_text);
  AnswerScores s{};
  s.exact_match = out_text == ref_text ? 1.0 : 0.0;
  s.f1 = f_measure(bag_overlap(out, ref), out.size(), ref.size());
  s.rouge_l = f_measure(lcs_length(out, ref), out.size(), ref.size());
  s.length_ratio = ref.empty() ? static_cast<double>(out.size()) : static_cast<double>(out.size()) / ref.size();
  return s;
}

}  // namespace masklab
