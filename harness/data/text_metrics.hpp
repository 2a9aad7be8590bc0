#pragma once
// Scores of a generated answer against its reference, SQuAD-style: exact
// match and token F1 (Rajpurkar et al. 2016, the official evaluation
// script's definitions), ROUGE-L (Lin 2004, F-measure with beta = 1) and a
// length ratio, all on the same whitespace tokens of normalize_answer().
#include <string>
#include <string_view>

namespace masklab {

// The normalisation every score applies to both texts, as SQuAD's script does:
//   1. ASCII letters are lowercased (other bytes, UTF-8 included, are kept);
//   2. ASCII punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) is removed;
//   3. the whole words "a", "an" and "the" are removed;
//   4. whitespace runs (space, tab, newline, CR, FF, VT) become one space,
//      and leading and trailing whitespace is trimmed.
// The tokens are then the space-separated words of the result.
std::string normalize_answer(std::string_view text);

struct AnswerScores {
  double exact_match;   // 1 when the normalised texts are equal (two empty texts are equal), else 0
  double f1;            // token F1 on the bags of tokens: 2PR/(P+R), P = common/|output|, R = common/|reference|;
                        // 1 when both are empty, 0 when only one is or nothing is in common
  double rouge_l;       // the same with common = the longest common subsequence of the token sequences
  double length_ratio;  // |output| / |reference| in tokens; a zero-token reference gives |output| (0 if both empty)
};

AnswerScores score_answer(std::string_view output, std::string_view reference);

}  // namespace masklab
