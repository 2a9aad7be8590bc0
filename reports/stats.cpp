#include "reports/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
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
