// reports/stats: the t distribution, intervals, paired tests and OLS agree
// with scipy and numpy (tests/reports/stats_reference.py, run once per ctest
// run as a fixture; the cases that read it are tagged [scipy]); Holm and d_z
// agree with hand-worked examples; degenerate samples give NaN, not errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "reports/stats.hpp"
#include "tests/test_helpers.hpp"

using namespace masklab;
using namespace masklab::reports;
using nlohmann::json;

namespace {

constexpr double kStatTolerance = 1e-9;    // relative: statistics, intervals, quantiles, coefficients
constexpr double kPValueTolerance = 1e-6;  // relative: p-values

// scipy's answers, computed once per ctest run by the stats_reference
// fixture (tests/CMakeLists.txt), which writes MASKLAB_STATS_REFERENCE
// before any test that requires it starts.
const json& scipy_reference() {
  static const json reference = [] {
    const std::string path = MASKLAB_STATS_REFERENCE;
    if (!std::filesystem::exists(path)) {
      FAIL(path + " is missing: run these tests through ctest, whose stats_reference fixture writes it");
    }
    return json::parse(test::read_text(path));
  }();
  return reference;
}

bool close(double actual, double expected, double relative) {
  return std::fabs(actual - expected) <= relative * std::max(std::fabs(expected), 1e-300);
}

std::vector<double> doubles(const json& list) { return list.get<std::vector<double>>(); }

}  // namespace

TEST_CASE("the t distribution's CDF and quantiles match scipy", "[fast][reports][stats][scipy]") {
  for (const auto& point : scipy_reference()["t_cdf"]) {
    const double t = point["t"], df = point["df"], expected = point["cdf"];
    INFO("t.cdf(" << t << ", df=" << df << ") expected " << expected << " got " << t_cdf(t, df));
    CHECK(close(t_cdf(t, df), expected, kStatTolerance));
  }
  for (const auto& point : scipy_reference()["t_ppf"]) {
    const double p = point["p"], df = point["df"], expected = point["ppf"];
    const double got = t_quantile(p, df);
    INFO("t.ppf(" << p << ", df=" << df << ") expected " << expected << " got " << got);
    CHECK((std::fabs(expected) < 1e-12 ? std::fabs(got) < 1e-12 : close(got, expected, kStatTolerance)));
  }
  // The quantile inverts the CDF to ~1e-12 everywhere, not just at scipy's points.
  for (double df : {1.0, 3.0, 17.0}) {
    for (double p : {1e-6, 0.025, 0.3, 0.9, 0.999999}) CHECK(std::fabs(t_cdf(t_quantile(p, df), df) - p) < 1e-12);
  }
}

TEST_CASE("paired t-test, its interval and d_z match scipy.stats.ttest_rel", "[fast][reports][stats][scipy]") {
  for (const auto& [name, ref] : scipy_reference()["paired"].items()) {
    const PairedTest got = paired_t_test(doubles(ref["a"]), doubles(ref["b"]));
    INFO(name << ": t " << got.t << " vs " << ref["t"] << ", p " << got.p_value << " vs " << ref["p"]);
    CHECK(got.n == static_cast<long>(ref["a"].size()));
    CHECK(close(got.t, ref["t"], kStatTolerance));
    CHECK(close(got.p_value, ref["p"], kPValueTolerance));
    CHECK(close(got.mean_diff, ref["mean_diff"], kStatTolerance));
    CHECK(close(got.sd_diff, ref["sd_diff"], kStatTolerance));
    CHECK(close(got.low, ref["low"], kStatTolerance));
    CHECK(close(got.high, ref["high"], kStatTolerance));
    CHECK(close(got.cohens_dz, ref["cohens_dz"], kStatTolerance));
  }
  // The tight sample's p-value is ~1e-9: computed from the tail, not as 1 − CDF.
  CHECK(scipy_reference()["paired"]["tiny_p"]["p"].get<double>() < 1e-8);
}

TEST_CASE("mean and t interval match scipy.stats.t.interval", "[fast][reports][stats][scipy]") {
  for (const auto& [name, ref] : scipy_reference()["mean_interval"].items()) {
    const MeanInterval got = mean_interval(doubles(ref["xs"]));
    INFO(name);
    CHECK(close(got.mean, ref["mean"], kStatTolerance));
    CHECK(close(got.sd, ref["sd"], kStatTolerance));
    CHECK(close(got.low, ref["low"], kStatTolerance));
    CHECK(close(got.high, ref["high"], kStatTolerance));
  }
}

TEST_CASE("the quadratic OLS fit matches numpy: coefficients, standard errors, p-values, R²", "[fast][reports][stats][scipy]") {
  for (const auto& [name, ref] : scipy_reference()["ols"].items()) {
    const OlsFit fit = quadratic_fit(doubles(ref["x"]), doubles(ref["y"]));
    INFO(name);
    REQUIRE(fit.full_rank);
    CHECK(fit.n == static_cast<long>(ref["x"].size()));
    CHECK(fit.df == fit.n - 3);
    for (int j = 0; j < 3; ++j) {
      INFO("coefficient " << j << ": beta " << fit.beta(j) << " se " << fit.se(j) << " p " << fit.p(j));
      CHECK(close(fit.beta(j), ref["beta"][j], kStatTolerance));
      CHECK(close(fit.se(j), ref["se"][j], kStatTolerance));
      CHECK(close(fit.p(j), ref["p"][j], kPValueTolerance));
    }
    CHECK(close(fit.r2, ref["r2"], kStatTolerance));
  }
}

TEST_CASE("Holm's correction on a hand-worked example", "[fast][reports][stats]") {
  // Sorted: 0.01 (×4 = 0.04), 0.02 (×3 = 0.06), 0.03 (×2 = 0.06, already 0.06), 0.04 (×1 = 0.04 -> running max 0.06).
  const std::vector<double> p = {0.03, 0.01, 0.04, 0.02};
  const auto adjusted = holm_adjust(p);
  REQUIRE(adjusted.size() == 4);
  CHECK(adjusted[0] == Approx(0.06));
  CHECK(adjusted[1] == Approx(0.04));
  CHECK(adjusted[2] == Approx(0.06));
  CHECK(adjusted[3] == Approx(0.06));
  // Capped at 1; a NaN is outside the family (m = 2 here) and stays NaN.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto with_nan = holm_adjust({0.7, nan, 0.2});
  CHECK(with_nan[0] == Approx(0.7));
  CHECK(std::isnan(with_nan[1]));
  CHECK(with_nan[2] == Approx(0.4));
  CHECK(holm_adjust({0.6, 0.9})[0] == 1.0);
  CHECK(holm_adjust({}).empty());
}

TEST_CASE("Cohen's d_z is the mean difference over the sd of the differences", "[fast][reports][stats]") {
  // Differences 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3 = 14/3.
  const PairedTest t = paired_t_test({2, 4, 6, 10}, {1, 2, 3, 4});
  CHECK(t.mean_diff == Approx(3.0));
  CHECK(t.sd_diff == Approx(std::sqrt(14.0 / 3.0)));
  CHECK(t.cohens_dz == Approx(3.0 / std::sqrt(14.0 / 3.0)));
  CHECK(t.t == Approx(t.cohens_dz * 2.0));  // t = d_z · √n
}

TEST_CASE("degenerate samples give NaN or infinities, never an error", "[fast][reports][stats]") {
  CHECK(std::isnan(mean({})));
  CHECK(std::isnan(sample_sd({1.0})));
  const MeanInterval one = mean_interval({0.5});
  CHECK(one.n == 1);
  CHECK(one.mean == 0.5);
  CHECK(std::isnan(one.low));
  CHECK(std::isnan(one.high));

  const PairedTest single_pair = paired_t_test({1.0}, {0.5});
  CHECK(single_pair.mean_diff == 0.5);
  CHECK(std::isnan(single_pair.p_value));

  const PairedTest identical = paired_t_test({1, 2, 3}, {1, 2, 3});
  CHECK(std::isnan(identical.t));
  CHECK(std::isnan(identical.p_value));

  const PairedTest constant_shift = paired_t_test({2, 3, 4}, {1, 2, 3});
  CHECK(std::isinf(constant_shift.t));
  CHECK(constant_shift.t > 0);
  CHECK(constant_shift.p_value == 0);

  // Two distinct x cannot carry a quadratic; three points fit exactly with no df left.
  CHECK_FALSE(quadratic_fit({0, 0, 1, 1}, {1, 2, 3, 4}).full_rank);
  const OlsFit exact = quadratic_fit({0, 1, 2}, {1, 0, 3});
  REQUIRE(exact.full_rank);
  CHECK(exact.df == 0);
  CHECK(exact.beta(2) == Approx(2.0));
  CHECK(std::isnan(exact.se(0)));
  CHECK(std::isnan(exact.p(2)));

  CHECK(std::isnan(t_quantile(0.0, 3)));
  CHECK(std::isnan(t_quantile(0.5, 0)));
  CHECK(t_two_sided_p(INFINITY, 4) == 0);
  CHECK(incomplete_beta(2, 3, 0) == 0);
  CHECK(incomplete_beta(2, 3, 1) == 1);
  CHECK(incomplete_beta(2, 3, 0.4) == Approx(0.5248).epsilon(1e-12));  // I_0.4(2,3) = 1 − 0.6⁴ − 4·0.4·0.6³
}

TEST_CASE("the noncentral t CDF matches scipy.stats.nct", "[fast][reports][stats][scipy]") {
  for (const auto& point : scipy_reference()["nct_cdf"]) {
    const double t = point["t"], df = point["df"], delta = point["delta"], expected = point["cdf"];
    const double got = noncentral_t_cdf(t, df, delta);
    INFO("nct.cdf(" << t << ", " << df << ", " << delta << ") expected " << expected << " got " << got);
    CHECK(close(got, expected, kPValueTolerance));
  }
  // δ = 0 is Student's t.
  for (double t : {-2.5, 0.3, 4.0}) CHECK(close(noncentral_t_cdf(t, 6, 0), t_cdf(t, 6), 1e-12));
  CHECK(std::isnan(noncentral_t_cdf(1, 0, 1)));
  CHECK(noncentral_t_cdf(INFINITY, 3, 2) == 1);
}

TEST_CASE("the minimum detectable effect matches a scipy root-find, Holm's step level included",
          "[fast][reports][stats][scipy]") {
  for (const auto& point : scipy_reference()["mde"]) {
    const long n = point["n"];
    const double sd = point["sd"], alpha = point["alpha"], expected = point["mde"];
    const double got = minimum_detectable_effect(n, sd, alpha);
    INFO("n " << n << " sd " << sd << " alpha " << alpha << ": expected " << expected << " got " << got);
    CHECK(close(got, expected, kPValueTolerance));
    // At the effect found the power is 80%.
    CHECK(std::fabs(paired_t_power(got / sd, n, alpha) - 0.8) < 1e-9);
  }
  // The MDE scales with the sd; a stricter level needs a larger effect; n < 2 has none; sd 0 detects anything.
  CHECK(close(minimum_detectable_effect(6, 2.0, 0.05), 2 * minimum_detectable_effect(6, 1.0, 0.05), 1e-12));
  CHECK(minimum_detectable_effect(6, 1.0, 0.01) > minimum_detectable_effect(6, 1.0, 0.05));
  CHECK(std::isnan(minimum_detectable_effect(1, 1.0, 0.05)));
  CHECK(minimum_detectable_effect(4, 0.0, 0.05) == 0);
}

namespace {

// [seed][wording][example] of (num, den) -> the bootstrap's tables.
std::vector<ExampleScoresTable> tables_of(const json& side) {
  std::vector<ExampleScoresTable> out;
  for (const auto& seed : side) {
    ExampleScoresTable table;
    for (const auto& wording : seed) {
      table.num.emplace_back();
      table.den.emplace_back();
      for (const auto& example : wording) {
        table.num.back().push_back(example[0]);
        table.den.back().push_back(example[1]);
      }
    }
    out.push_back(std::move(table));
  }
  return out;
}

}  // namespace

TEST_CASE("the paired bootstrap draws what numpy draws with the same mt19937_64", "[fast][reports][stats][scipy]") {
  for (const auto& [name, ref] : scipy_reference()["bootstrap"].items()) {
    const long replicates = ref["replicates"];
    const BootstrapResult got = paired_bootstrap(tables_of(ref["a"]), tables_of(ref["b"]), replicates, ref["seed"]);
    INFO(name << ": [" << got.low << ", " << got.high << "] p " << got.p_value << " vs [" << ref["low"] << ", "
              << ref["high"] << "] p " << ref["p"]);
    CHECK(got.replicates == replicates);
    CHECK(got.seeds == static_cast<long>(ref["a"].size()));
    CHECK(close(got.low, ref["low"], 1e-12));
    CHECK(close(got.high, ref["high"], 1e-12));
    CHECK(got.p_value == Approx(ref["p"].get<double>()).epsilon(1e-12));
  }
}

TEST_CASE("the paired bootstrap of a side shifted by c is [c, c] exactly", "[fast][reports][stats]") {
  // Dyadic values over 8 examples and 4 seeds: every sum and mean is exact in binary.
  const double c = 0.125;
  std::vector<ExampleScoresTable> a, b;
  for (int s = 0; s < 4; ++s) {
    ExampleScoresTable base{{{}}, {{}}}, shifted{{{}}, {{}}};
    for (int e = 0; e < 8; ++e) {
      const double v = 0.25 * ((s * 3 + e * 5) % 7);
      base.num[0].push_back(v);
      base.den[0].push_back(1);
      shifted.num[0].push_back(v + c);
      shifted.den[0].push_back(1);
    }
    a.push_back(shifted);
    b.push_back(base);
  }
  const BootstrapResult r = paired_bootstrap(a, b);
  CHECK(r.replicates == 2000);
  CHECK(r.examples == 8);
  CHECK(r.low == c);
  CHECK(r.high == c);
  CHECK(r.p_value == Approx(2.0 / 2001));  // no replicate at or below 0
  // The reverse comparison is [-c, -c]; identical sides give [0, 0] and p = 1.
  const BootstrapResult reverse = paired_bootstrap(b, a);
  CHECK(reverse.low == -c);
  CHECK(reverse.high == -c);
  const BootstrapResult same = paired_bootstrap(b, b);
  CHECK(same.low == 0);
  CHECK(same.high == 0);
  CHECK(same.p_value == 1);
  // No examples: nothing to draw.
  CHECK(std::isnan(paired_bootstrap({}, {}).low));
}
