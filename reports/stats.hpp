#pragma once
// Statistics for comparing runs: descriptive summaries, Student-t intervals,
// the paired t-test, Holm's correction, Cohen's d_z, ordinary least squares,
// the noncentral t distribution with the paired t-test's minimum detectable
// effect, and the paired bootstrap over (seed, example). Self-contained
// (Eigen for the linear algebra only) and checked against scipy and numpy in
// tests/reports/stats_reference.py.
//
// Conventions: NaN means "not defined for this data" (a sample too small, a
// zero variance) and is never an error; inputs are plain vectors of finite
// values unless a function says it filters.
#include <cstdint>
#include <vector>

#include <Eigen/Dense>

namespace masklab::reports {

double mean(const std::vector<double>& xs);       // NaN when empty
double sample_sd(const std::vector<double>& xs);  // ddof = 1; NaN when n < 2

// I_x(a, b), the regularized incomplete beta function, for a, b > 0 and x in [0, 1].
double incomplete_beta(double a, double b, double x);

// Student's t distribution with df > 0 degrees of freedom.
double t_cdf(double t, double df);              // P(T <= t)
double t_two_sided_p(double t, double df);      // P(|T| >= |t|), accurate in the far tail
double t_quantile(double p, double df);         // the t with P(T <= t) = p, for 0 < p < 1

// A sample's mean with its t-based confidence interval.
struct MeanInterval {
  long n = 0;
  double mean = 0;  // NaN when n = 0
  double sd = 0;    // sample sd (ddof = 1); NaN when n < 2
  double low = 0;   // mean ∓ t_{(1+level)/2, n-1} · sd / √n; NaN when n < 2
  double high = 0;
};
MeanInterval mean_interval(const std::vector<double>& xs, double level = 0.95);

// The paired t-test of a − b (as scipy.stats.ttest_rel(a, b)) with the
// interval of the mean difference and the paired effect size.
struct PairedTest {
  long n = 0;             // pairs
  double mean_diff = 0;   // mean of a − b
  double sd_diff = 0;     // sample sd of a − b
  double low = 0;         // t interval of mean_diff at `level`
  double high = 0;
  double t = 0;           // mean_diff / (sd_diff / √n); ±inf when every difference is the same nonzero value
  double p_value = 0;     // two-sided, n − 1 df; NaN when n < 2 or every difference is 0
  double cohens_dz = 0;   // mean_diff / sd_diff (Cohen's d for paired samples)
};
// a and b must have the same length: element i of each is one pair.
PairedTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b, double level = 0.95);

// Holm–Bonferroni step-down adjusted p-values, in the input order. The family
// is the finite p-values; a NaN stays NaN and does not count towards m.
std::vector<double> holm_adjust(const std::vector<double>& p_values);

// The noncentral t distribution with df > 0 degrees of freedom and
// noncentrality delta: P(T <= t), as scipy.stats.nct.cdf(t, df, delta).
// Lenth's (1989, AS 243) series of incomplete beta functions weighted by
// Poisson(delta²/2) terms, summed outward from the largest term.
double noncentral_t_cdf(double t, double df, double delta);

// The power of the two-sided paired t-test at level alpha with n pairs when
// the true mean difference is delta_sd standard deviations of a difference:
// P(|T| > t_{1-alpha/2, n-1}) with T noncentral t, df n − 1, noncentrality delta_sd·√n.
double paired_t_power(double delta_sd, long n, double alpha);

// The smallest |mean difference| that the two-sided paired t-test at level
// alpha detects with probability `power`, given n pairs whose differences
// have sample sd `sd`: sd · delta* / √n where delta* solves
// paired_t_power(delta*/√n, n, alpha) = power. NaN when n < 2 or sd is not
// finite; 0 when sd = 0 (any difference is then certain).
double minimum_detectable_effect(long n, double sd, double alpha, double power = 0.8);

// The paired bootstrap over (seed, example). One side of a comparison, for one
// seed: a metric's per-example scores as numerator and denominator, per
// wording; the metric is the mean over wordings of Σnum/Σden over the
// examples (a per-example mean has den = 1 for every example; a pooled
// per-token ratio carries its token counts). Examples are aligned: index e is
// the same example in every wording, every seed and both sides.
struct ExampleScoresTable {
  std::vector<std::vector<double>> num;  // [wording][example]
  std::vector<std::vector<double>> den;  // [wording][example]
};

struct BootstrapResult {
  long seeds = 0;        // seeds both sides have
  long examples = 0;     // examples every table has
  long replicates = 0;   // replicates with a finite difference (a draw whose denominators sum to 0 is dropped)
  double low = 0;        // 2.5th and 97.5th percentiles of the replicated differences (numpy's linear
  double high = 0;       //   interpolation between order statistics); NaN when there is no replicate
  double p_value = 0;    // two-sided: min(1, 2·min(1 + #{d* <= 0}, 1 + #{d* >= 0}) / (replicates + 1))
};

// The seed every report's bootstrap starts from, so reports are reproducible.
constexpr std::uint64_t kBootstrapSeed = 20240917;

// a[s] and b[s] are seed s of each side. Each replicate draws the seeds with
// replacement (n draws of rng() % n from std::mt19937_64(seed), fixed by the
// standard on every machine), then the examples with replacement (E draws of
// rng() % E), the same example draw for every seed of the replicate, and
// takes the mean over the drawn seeds of metric(a[s]) − metric(b[s]) on the
// drawn examples. Zero seeds or zero examples: every field but the counts is NaN.
BootstrapResult paired_bootstrap(const std::vector<ExampleScoresTable>& a, const std::vector<ExampleScoresTable>& b,
                                 long replicates = 2000, std::uint64_t seed = kBootstrapSeed);

// y = X·beta + e by least squares (Householder QR with column pivoting).
struct OlsFit {
  long n = 0;               // observations
  long df = 0;              // residual degrees of freedom, n − columns
  bool full_rank = false;   // false: X's columns are dependent and nothing below is filled
  Eigen::VectorXd beta;     // coefficients, one per column of X
  Eigen::VectorXd se;       // sqrt(diag(sigma² (XᵀX)⁻¹)), sigma² = SSR / df; NaN when df = 0
  Eigen::VectorXd t;        // beta / se
  Eigen::VectorXd p;        // two-sided, df degrees of freedom
  double r2 = 0;            // 1 − SSR / SST (about the mean of y); NaN when y is constant
};
OlsFit ols(const Eigen::MatrixXd& X, const Eigen::VectorXd& y);

// ols() of y on [1, x, x²].
OlsFit quadratic_fit(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace masklab::reports
