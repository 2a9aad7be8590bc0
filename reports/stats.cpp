#include "reports/stats.hpp"

#include "harness/core/random.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

namespace masklab::reports {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;

// The continued fraction of I_x(a, b) (Numerical Recipes' betacf), evaluated
// with the modified Lentz method. It converges fast for x < (a + 1) / (a + b + 2).
double beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxIterations = 10000;
  constexpr double kEpsilon = 1e-16;
  constexpr double kTiny = 1e-300;  // keeps Lentz's c and d away from 0
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1;
  double d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const int m2 = 2 * m;
    // Even step.
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    // Odd step.
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < kEpsilon) return h;
  }
  throw std::runtime_error("incomplete beta: continued fraction did not converge");
}

// I_x(a, b) with y = 1 − x given separately, so that callers who know y
// exactly (t²/(df + t²)) do not lose it to cancellation near x = 1.
double incomplete_beta_xy(double a, double b, double x, double y) {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log(y);
  const double front = std::exp(log_front);
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, y) / b;
}

double t_pdf(double t, double df) {
  return std::exp(std::lgamma((df + 1) / 2) - std::lgamma(df / 2) - 0.5 * std::log(df * kPi) -
                  (df + 1) / 2 * std::log1p(t * t / df));
}

// F(t; df, delta) for t >= 0 (Lenth 1989, AS 243):
//   Φ(−δ) + ½ Σ_j [P_j I_x(j + ½, df/2) + Q_j I_x(j + 1, df/2)],  x = t² / (t² + df),
//   P_j = e^{−δ²/2} (δ²/2)^j / j!,  Q_j = δ e^{−δ²/2} (δ²/2)^j / (√2 Γ(j + 3/2)).
// The weights peak near j = δ²/2; summing outward from there until they
// fall below 1e-18 keeps a large δ (a small n under Holm) from underflowing.
double noncentral_t_cdf_nonnegative(double t, double df, double delta) {
  const double base = 0.5 * std::erfc(delta / std::sqrt(2.0));
  if (t == 0) return base;
  const double t2 = t * t, x = t2 / (df + t2), y = df / (df + t2);
  const double lambda = delta * delta / 2;
  if (lambda == 0) return base + 0.5 * incomplete_beta_xy(0.5, df / 2, x, y);
  const double log_lambda = std::log(lambda), log_abs_delta = std::log(std::fabs(delta));
  // Returns the term's weight P_j + |Q_j| (its bound, as each I is at most 1) and adds the term to `sum`.
  double sum = 0;
  auto add_term = [&](long j) {
    const double log_power = -lambda + static_cast<double>(j) * log_lambda;
    const double p = std::exp(log_power - std::lgamma(j + 1.0));
    const double q = std::copysign(std::exp(log_power + log_abs_delta - 0.5 * std::log(2.0) - std::lgamma(j + 1.5)), delta);
    if (p + std::fabs(q) > 0) {
      sum += p * incomplete_beta_xy(j + 0.5, df / 2, x, y) + q * incomplete_beta_xy(j + 1.0, df / 2, x, y);
    }
    return p + std::fabs(q);
  };
  constexpr double kNegligible = 1e-18;
  constexpr long kMaxTerms = 1000000;
  const long mode = static_cast<long>(std::floor(lambda));
  for (long j = mode; j < mode + kMaxTerms; ++j) {
    if (add_term(j) < kNegligible && j > mode) break;
  }
  for (long j = mode - 1; j >= 0; --j) {
    if (add_term(j) < kNegligible) break;
  }
  return base + 0.5 * sum;
}

// A table's metric under example multiplicities `counts`: the mean over
// wordings of Σ count·num / Σ count·den.
double table_metric(const ExampleScoresTable& table, const std::vector<long>& counts) {
  double total = 0;
  for (size_t w = 0; w < table.num.size(); ++w) {
    double num = 0, den = 0;
    for (size_t e = 0; e < counts.size(); ++e) {
      if (counts[e] == 0) continue;
      num += static_cast<double>(counts[e]) * table.num[w][e];
      den += static_cast<double>(counts[e]) * table.den[w][e];
    }
    total += num / den;
  }
  return total / static_cast<double>(table.num.size());
}

// The q-th quantile (0..1) of sorted values, as numpy.percentile's default (linear) method.
double sorted_quantile(const std::vector<double>& sorted, double q) {
  const double h = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= sorted.size()) return sorted.back();
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[lo + 1] - sorted[lo]);
}

}  // namespace

double mean(const std::vector<double>& xs) {
  if (xs.empty()) return kNaN;
  return std::accumulate(xs.begin(), xs.end(), 0.0) / static_cast<double>(xs.size());
}

double sample_sd(const std::vector<double>& xs) {
  if (xs.size() < 2) return kNaN;
  const double m = mean(xs);
  double ss = 0;  // two passes: no cancellation between Σx² and n·mean²
  for (double x : xs) ss += (x - m) * (x - m);
  return std::sqrt(ss / static_cast<double>(xs.size() - 1));
}

double incomplete_beta(double a, double b, double x) {
  if (std::isnan(x) || x < 0 || x > 1 || !(a > 0) || !(b > 0)) return kNaN;
  return incomplete_beta_xy(a, b, x, 1 - x);
}

double t_two_sided_p(double t, double df) {
  if (std::isnan(t) || !(df > 0)) return kNaN;
  if (std::isinf(t)) return 0;
  // P(|T| >= |t|) = I_{df/(df+t²)}(df/2, 1/2): the tail itself, not 1 − CDF,
  // so tiny p-values keep their relative precision.
  const double t2 = t * t;
  return incomplete_beta_xy(df / 2, 0.5, df / (df + t2), t2 / (df + t2));
}

double t_cdf(double t, double df) {
  const double tail = t_two_sided_p(t, df) / 2;
  return t < 0 ? tail : 1 - tail;
}

double t_quantile(double p, double df) {
  if (!(p > 0 && p < 1) || !(df > 0)) return kNaN;
  if (p == 0.5) return 0;
  // Solve for s >= 0 with P(T <= -s) = q, the smaller tail, then restore the
  // sign. Newton on the tail probability, falling back to bisection whenever
  // a step leaves the bracket [lo, hi] that is known to hold the root.
  const double q = std::min(p, 1 - p);
  auto excess = [&](double s) { return t_two_sided_p(s, df) / 2 - q; };  // decreasing in s
  double lo = 0, hi = 1;
  while (excess(hi) > 0) {
    lo = hi;
    hi *= 2;
    if (std::isinf(hi)) return p < 0.5 ? -hi : hi;
  }
  double s = (lo + hi) / 2;
  for (int iteration = 0; iteration < 500; ++iteration) {
    const double f = excess(s);
    if (f == 0) break;
    if (f > 0) lo = s; else hi = s;
    double next = s + f / t_pdf(s, df);  // d(excess)/ds = −pdf(s)
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    const bool converged = std::fabs(next - s) <= 1e-15 * std::max(1.0, s);
    s = next;
    if (converged || hi - lo <= 1e-15 * std::max(1.0, s)) break;
  }
  return p < 0.5 ? -s : s;
}

MeanInterval mean_interval(const std::vector<double>& xs, double level) {
  MeanInterval out;
  out.n = static_cast<long>(xs.size());
  out.mean = mean(xs);
  out.sd = sample_sd(xs);
  if (out.n < 2) {
    out.low = out.high = kNaN;
    return out;
  }
  const double half = t_quantile((1 + level) / 2, static_cast<double>(out.n - 1)) * out.sd / std::sqrt(out.n);
  out.low = out.mean - half;
  out.high = out.mean + half;
  return out;
}

PairedTest paired_t_test(const std::vector<double>& a, const std::vector<double>& b, double level) {
  if (a.size() != b.size()) throw std::invalid_argument("paired_t_test: samples of different sizes");
  std::vector<double> diffs(a.size());
  for (size_t i = 0; i < a.size(); ++i) diffs[i] = a[i] - b[i];
  const MeanInterval d = mean_interval(diffs, level);
  PairedTest out;
  out.n = d.n;
  out.mean_diff = d.mean;
  out.sd_diff = d.sd;
  out.low = d.low;
  out.high = d.high;
  if (out.n < 2) {
    out.t = out.p_value = out.cohens_dz = kNaN;
    return out;
  }
  if (out.sd_diff == 0) {
    // Every pair differs by the same amount: infinitely significant unless that amount is 0.
    out.t = out.cohens_dz = out.mean_diff == 0 ? kNaN : std::copysign(INFINITY, out.mean_diff);
    out.p_value = out.mean_diff == 0 ? kNaN : 0.0;
    return out;
  }
  out.t = out.mean_diff / (out.sd_diff / std::sqrt(static_cast<double>(out.n)));
  out.p_value = t_two_sided_p(out.t, static_cast<double>(out.n - 1));
  out.cohens_dz = out.mean_diff / out.sd_diff;
  return out;
}

std::vector<double> holm_adjust(const std::vector<double>& p_values) {
  std::vector<size_t> order;
  for (size_t i = 0; i < p_values.size(); ++i) {
    if (!std::isnan(p_values[i])) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return p_values[i] < p_values[j]; });
  std::vector<double> adjusted(p_values.size(), kNaN);
  const double m = static_cast<double>(order.size());
  double running_max = 0;  // adjusted p-values never decrease along the sorted order
  for (size_t rank = 0; rank < order.size(); ++rank) {
    running_max = std::max(running_max, std::min(1.0, (m - static_cast<double>(rank)) * p_values[order[rank]]));
    adjusted[order[rank]] = running_max;
  }
  return adjusted;
}

double noncentral_t_cdf(double t, double df, double delta) {
  if (std::isnan(t) || std::isnan(delta) || !(df > 0)) return kNaN;
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  // F(t; df, δ) = 1 − F(−t; df, −δ) brings t < 0 to the series above.
  const double cdf = t >= 0 ? noncentral_t_cdf_nonnegative(t, df, delta) : 1 - noncentral_t_cdf_nonnegative(-t, df, -delta);
  return std::clamp(cdf, 0.0, 1.0);
}

double paired_t_power(double delta_sd, long n, double alpha) {
  if (n < 2 || !(alpha > 0 && alpha < 1) || std::isnan(delta_sd)) return kNaN;
  const double df = static_cast<double>(n - 1);
  const double critical = t_quantile(1 - alpha / 2, df);
  const double noncentrality = delta_sd * std::sqrt(static_cast<double>(n));
  return (1 - noncentral_t_cdf(critical, df, noncentrality)) + noncentral_t_cdf(-critical, df, noncentrality);
}

double minimum_detectable_effect(long n, double sd, double alpha, double power) {
  if (n < 2 || !std::isfinite(sd) || sd < 0 || !(alpha > 0 && alpha < 1) || !(power > 0 && power < 1)) return kNaN;
  if (sd == 0) return 0;
  // The power grows with the standardized effect from alpha at 0: bracket the
  // root, then the Illinois variant of regula falsi (superlinear, and never
  // leaves the bracket), with bisection's step when it stalls.
  auto excess = [&](double effect_sd) { return paired_t_power(effect_sd, n, alpha) - power; };
  double lo = 0, hi = 1, f_lo = excess(lo), f_hi = excess(hi);
  if (!(f_lo < 0)) return 0;
  while (f_hi < 0) {
    lo = hi;
    f_lo = f_hi;
    hi *= 2;
    if (hi > 1e12) return kNaN;
    f_hi = excess(hi);
  }
  int side = 0;  // which end moved last: -1 lo, +1 hi
  for (int iteration = 0; iteration < 200 && hi - lo > 1e-14 * hi; ++iteration) {
    double x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo);
    if (!(x > lo && x < hi)) x = (lo + hi) / 2;
    const double f = excess(x);
    if (f == 0) return sd * x;
    if (f < 0) {
      lo = x;
      f_lo = f;
      if (side == -1) f_hi /= 2;
      side = -1;
    } else {
      hi = x;
      f_hi = f;
      if (side == +1) f_lo /= 2;
      side = +1;
    }
  }
  return sd * (lo + hi) / 2;
}

BootstrapResult paired_bootstrap(const std::vector<ExampleScoresTable>& a, const std::vector<ExampleScoresTable>& b,
                                 long replicates, std::uint64_t seed) {
  if (a.size() != b.size()) throw std::invalid_argument("paired_bootstrap: sides with different seed counts");
  BootstrapResult out;
  out.seeds = static_cast<long>(a.size());
  out.examples = a.empty() || a[0].num.empty() ? 0 : static_cast<long>(a[0].num[0].size());
  for (const auto* side : {&a, &b}) {
    for (const auto& table : *side) {
      bool aligned = table.num.size() == a[0].num.size() && table.den.size() == table.num.size();
      for (size_t w = 0; aligned && w < table.num.size(); ++w) {
        aligned = static_cast<long>(table.num[w].size()) == out.examples &&
                  static_cast<long>(table.den[w].size()) == out.examples;
      }
      if (!aligned) throw std::invalid_argument("paired_bootstrap: tables of different shapes");
    }
  }
  out.low = out.high = out.p_value = kNaN;
  if (out.seeds == 0 || out.examples == 0 || replicates <= 0) return out;
  std::mt19937_64 rng(seed);
  const auto n_seeds = static_cast<std::uint64_t>(out.seeds), n_examples = static_cast<std::uint64_t>(out.examples);
  std::vector<double> diffs;
  std::vector<size_t> drawn_seeds(a.size());
  std::vector<long> counts(n_examples);
  for (long r = 0; r < replicates; ++r) {
    for (auto& s : drawn_seeds) s = draw_below(rng, n_seeds);
    std::fill(counts.begin(), counts.end(), 0);
    for (std::uint64_t e = 0; e < n_examples; ++e) ++counts[draw_below(rng, n_examples)];
    double total = 0;
    for (size_t s : drawn_seeds) total += table_metric(a[s], counts) - table_metric(b[s], counts);
    const double diff = total / static_cast<double>(drawn_seeds.size());
    if (std::isfinite(diff)) diffs.push_back(diff);
  }
  out.replicates = static_cast<long>(diffs.size());
  if (diffs.empty()) return out;
  std::sort(diffs.begin(), diffs.end());
  out.low = sorted_quantile(diffs, 0.025);
  out.high = sorted_quantile(diffs, 0.975);
  const auto at_most_zero = std::count_if(diffs.begin(), diffs.end(), [](double d) { return d <= 0; });
  const auto at_least_zero = std::count_if(diffs.begin(), diffs.end(), [](double d) { return d >= 0; });
  const double smaller = static_cast<double>(std::min(at_most_zero, at_least_zero)) + 1;
  out.p_value = std::min(1.0, 2 * smaller / static_cast<double>(out.replicates + 1));
  return out;
}

OlsFit ols(const Eigen::MatrixXd& X, const Eigen::VectorXd& y) {
  OlsFit fit;
  const long k = X.cols();
  fit.n = X.rows();
  fit.df = fit.n - k;
  const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(X);
  if (fit.n < k || qr.rank() < k) return fit;
  fit.full_rank = true;
  fit.beta = qr.solve(y);
  const double ssr = (y - X * fit.beta).squaredNorm();
  const double sigma2 = fit.df > 0 ? ssr / static_cast<double>(fit.df) : kNaN;
  // X·P = Q·R, so (XᵀX)⁻¹ = P·R⁻¹·R⁻ᵀ·Pᵀ.
  const Eigen::MatrixXd R = qr.matrixR().topLeftCorner(k, k).triangularView<Eigen::Upper>();
  const Eigen::MatrixXd R_inv = R.triangularView<Eigen::Upper>().solve(Eigen::MatrixXd::Identity(k, k));
  const Eigen::MatrixXd xtx_inv = qr.colsPermutation() * (R_inv * R_inv.transpose()) * qr.colsPermutation().transpose();
  fit.se.resize(k);
  fit.t.resize(k);
  fit.p.resize(k);
  for (long j = 0; j < k; ++j) {
    fit.se(j) = std::sqrt(sigma2 * xtx_inv(j, j));
    fit.t(j) = fit.beta(j) / fit.se(j);
    fit.p(j) = fit.df > 0 ? t_two_sided_p(fit.t(j), static_cast<double>(fit.df)) : kNaN;
  }
  const double sst = (y.array() - y.mean()).matrix().squaredNorm();
  fit.r2 = sst > 0 ? 1 - ssr / sst : kNaN;
  return fit;
}

OlsFit quadratic_fit(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw std::invalid_argument("quadratic_fit: x and y of different sizes");
  const long n = static_cast<long>(x.size());
  Eigen::MatrixXd X(n, 3);
  Eigen::VectorXd Y(n);
  for (long i = 0; i < n; ++i) {
    X(i, 0) = 1;
    X(i, 1) = x[i];
    X(i, 2) = x[i] * x[i];
    Y(i) = y[i];
  }
  return ols(X, Y);
}

}  // namespace masklab::reports
