// harness/data/text_metrics: the answer normalisation and scores against a
// table of hand-worked cases (tokens after normalisation; F1 from the bag
// overlap, ROUGE-L from the longest common subsequence, both 2PR/(P+R)).
#include <catch2/catch.hpp>

#include "harness/data/text_metrics.hpp"

using namespace masklab;

TEST_CASE("normalize_answer lowercases, drops punctuation and articles, collapses whitespace", "[fast][metrics]") {
  CHECK(normalize_answer("") == "");
  CHECK(normalize_answer("  The  Quick,\tbrown FOX. \n") == "quick brown fox");
  CHECK(normalize_answer("theory an anthem A") == "theory anthem");  // whole words only
  CHECK(normalize_answer("don't (stop)") == "dont stop");             // punctuation is removed, not spaced
  CHECK(normalize_answer("\xc3\x9c" "ber A b") == "\xc3\x9c" "ber b");   // non-ASCII bytes are kept as they are
  CHECK(normalize_answer("1, 2; 3") == "1 2 3");
}

TEST_CASE("exact match, token F1, ROUGE-L and length ratio equal hand-worked values", "[fast][metrics]") {
  struct Case {
    const char* output;
    const char* reference;
    double exact_match, f1, rouge_l, length_ratio;
  };
  // |o| and |r| are token counts after normalisation, c the bag overlap, l the LCS length.
  const Case cases[] = {
      {"", "", 1, 1, 1, 0},                  // both empty: equal; the ratio of 0 tokens to 0 is 0
      {"", "cat", 0, 0, 0, 0},               // empty output
      {"cat", "", 0, 0, 0, 1},               // empty reference: the ratio is the output's count
      {"...", "", 1, 1, 1, 0},               // punctuation alone normalises to empty
      {"The Cat!", "cat", 1, 1, 1, 1},       // case, article and punctuation
      {"  Hello,\n\tWORLD  ", "hello world", 1, 1, 1, 1},  // whitespace runs and case
      // o=4 r=3 c=2 (y z): P=1/2 R=2/3 F1=2(1/3)/(7/6)=4/7; l=2 (y z): 4/7.
      {"x y z w", "y z v", 0, 4.0 / 7, 4.0 / 7, 4.0 / 3},
      // repeated output token: o=3 r=1 c=min(3,1)=1: P=1/3 R=1 F1=(2/3)/(4/3)=1/2; l=1: 1/2.
      {"cat cat cat", "cat", 0, 0.5, 0.5, 3},
      // repeated reference token: o=1 r=3 c=1: P=1 R=1/3 F1=1/2; l=1: 1/2.
      {"cat", "cat cat dog", 0, 0.5, 0.5, 1.0 / 3},
      // order: the bag is whole (c=3, F1=1) but the LCS is one token: P=R=1/3, 1/3.
      {"z y x", "x y z", 0, 1, 1.0 / 3, 1},
      // o=5 r=4 c=3 (1 3 5): P=3/5 R=3/4 F1=0.9/1.35=2/3; l=3 (1 3 5): 2/3.
      {"1 2 3 4 5", "1 3 5 7", 0, 2.0 / 3, 2.0 / 3, 5.0 / 4},
      // o=5 r=3 c=3: P=3/5 R=1 F1=1.2/1.6=3/4; l=3 (x y z): 3/4.
      {"x q y r z", "x y z", 0, 0.75, 0.75, 5.0 / 3},
      // o=3 r=2: bag {y:2,x:1} vs {x,y}: c=2, P=2/3 R=1 F1=0.8; l=2 (x y at 2,3): 0.8.
      {"y x y", "x y", 0, 0.8, 0.8, 1.5},
      // reversed: c=4 (F1=1), l=1: P=R=1/4, F=1/4.
      {"p q r s", "s r q p", 0, 1, 0.25, 1},
      // F1 and ROUGE-L part ways: o=4 r=4 c=3, F1=3/4; l=2 (u w or v w): 1/2.
      {"w u v t", "u v w s", 0, 0.75, 0.5, 1},
      {"an apple, the pear", "Apple  pear", 1, 1, 1, 1},  // articles go, then the texts are equal
  };
  for (const auto& c : cases) {
    INFO("output '" << c.output << "' reference '" << c.reference << "'");
    const AnswerScores s = score_answer(c.output, c.reference);
    CHECK(s.exact_match == c.exact_match);
    CHECK(s.f1 == Approx(c.f1).margin(1e-12));
    CHECK(s.rouge_l == Approx(c.rouge_l).margin(1e-12));
    CHECK(s.length_ratio == Approx(c.length_ratio).margin(1e-12));
  }
}
