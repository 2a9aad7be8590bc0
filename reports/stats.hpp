#pragma once
// Statistics for comparing runs: descriptive summaries, Student-t intervals,
// the paired t-test, Holm's correction, Cohen's d_z and ordinary least
// squares. Self-contained (Eigen for the linear algebra only) and checked
// against scipy and numpy in tests/reports/stats_reference.py.
//
// Conventions: NaN means "not defined for this data" (a sample too small, a
// zero variance) and is never an error; inputs are plain vectors of finite
// values unless a function says it filters.
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
