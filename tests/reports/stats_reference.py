#!/usr/bin/python3
"""Reference values for reports/stats.cpp, from scipy and numpy.

usage: stats_reference.py OUT.json

Writes one JSON object to OUT.json; the [scipy] cases of
tests/reports/test_stats.cpp compare their own results with it. CTest runs
this once per test run, as the stats_reference fixture those cases require
(tests/CMakeLists.txt). Run with /usr/bin/python3 (Debian's, which has
python3-scipy and python3-numpy from apt). A missing package is one line
naming it, and exit status 1.
"""
import json
import os
import sys

try:
    import numpy as np
    from scipy import optimize, stats
except ImportError as missing:
    sys.exit(f"stats_reference: missing Debian package python3-{missing.name.split('.')[0]}: scripts/install-deps.sh installs it")

# Paired samples (a, b): n = 2; n = 5 with a tie and negative differences;
# n = 12; and a tight one whose p-value is tiny (relative precision in the tail).
PAIRED = {
    "n2": ([1.0, 2.5], [0.5, 1.0]),
    "n5_ties_negative": ([0.31, 0.42, 0.29, 0.50, 0.33], [0.30, 0.45, 0.29, 0.41, 0.35]),
    "n12": (
        [2.91, 3.05, 2.77, 3.40, 2.95, 3.12, 2.88, 3.01, 3.33, 2.70, 2.99, 3.08],
        [3.02, 3.11, 2.80, 3.35, 3.10, 3.20, 2.95, 3.00, 3.41, 2.86, 3.05, 3.19],
    ),
    "tiny_p": ([10.0, 10.1, 10.2, 10.3, 10.4, 10.5], [0.0, 0.11, 0.19, 0.32, 0.38, 0.52]),
}

T_CDF_POINTS = [(-30.0, 1.0), (-3.0, 2.5), (-0.5, 4.0), (0.0, 7.0), (1.2, 11.0), (4.0, 3.0), (2.0, 100.0), (8.0, 5.0)]
# Integer df only: scipy's quantile for fractional df is good to ~1e-9 only
# (t.cdf(t.ppf(0.8, 2.5), 2.5) = 0.80000000046), looser than this test.
T_PPF_POINTS = [(0.975, 1.0), (0.975, 2.0), (0.975, 4.0), (0.975, 11.0), (0.975, 30.0), (0.975, 1000.0),
                (0.001, 3.0), (0.5, 9.0), (0.8, 3.0)]

# Quadratic fits: x is a transformed prompt weight, y a score; one with
# repeated x (several seeds per λ) as the report fits them.
OLS = {
    "log_lambda": (
        [np.log10(l + 0.001) for l in [0.0, 0.0, 0.01, 0.01, 0.1, 0.1, 1.0, 1.0]],
        [0.40, 0.42, 0.55, 0.51, 0.49, 0.53, 0.30, 0.33],
    ),
    "linear_five": ([0.0, 0.25, 0.5, 0.75, 1.0], [2.1, 1.7, 1.65, 1.8, 2.3]),
}


# The noncentral t CDF at (t, df, delta): both tails, both signs of delta,
# df from 1 to 60, and a large delta (a 2-seed sweep under Holm needs one).
NCT_CDF_POINTS = [(2.0, 4.0, 1.0), (-1.0, 3.0, -0.5), (0.5, 1.0, 2.0), (3.5, 9.0, 3.0), (1.5, 19.0, 0.0),
                  (-0.3, 7.0, 0.8), (12.7, 1.0, 15.0), (2.2, 60.0, 2.5), (30.0, 2.0, 35.0), (-2.0, 5.0, -3.0)]
# The minimum detectable effect (n, sd, alpha): alpha is the test's own level,
# 0.05 / (m - rank) at the comparison's Holm step; m = 1, 3 and 6.
MDE_POINTS = [(2, 0.1, 0.05), (3, 0.02, 0.05), (5, 1.0, 0.05), (5, 1.0, 0.05 / 3), (10, 0.3, 0.05 / 6),
              (10, 0.3, 0.05 / 2), (30, 2.5, 0.05)]


def mde(n, sd, alpha, power=0.8):
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)

    def short(effect):  # power at the standardized effect, minus the target
        nc = effect * np.sqrt(n)
        return stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc) - power

    # Boost's nct warns of a division by zero for df = 1 while returning
    # values that agree with a Monte-Carlo check; the warning is noise here.
    with np.errstate(divide="ignore", invalid="ignore"):
        hi = 1.0
        while short(hi) < 0:
            hi *= 2
        return sd * optimize.brentq(short, 0.0, hi, xtol=1e-14, rtol=1e-13)


class MT19937_64:
    """std::mt19937_64, as the C++ standard fixes it (seeded with one integer)."""
    N, M, MASK = 312, 156, (1 << 64) - 1

    def __init__(self, seed):
        self.mt = [seed & self.MASK]
        for i in range(1, self.N):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & self.MASK)
        self.index = self.N

    def __call__(self):
        if self.index >= self.N:
            upper, lower = 0xFFFFFFFF80000000, 0x7FFFFFFF
            for i in range(self.N):
                x = (self.mt[i] & upper) | (self.mt[(i + 1) % self.N] & lower)
                xa = (x >> 1) ^ (0xB5026F5AA96619E9 if x & 1 else 0)
                self.mt[i] = self.mt[(i + self.M) % self.N] ^ xa
            self.index = 0
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y


def check_mt19937_64():
    rng = MT19937_64(5489)
    for _ in range(9999):
        rng()
    # The standard's own check: the 10000th draw of a default-seeded mt19937_64.
    assert rng() == 9981545732273789042, "MT19937_64 does not match the C++ standard"


def paired_bootstrap(a, b, replicates, seed):
    """a, b: [seed][wording][example] of (num, den). The documented algorithm in numpy."""
    num_a, den_a = np.array(a)[..., 0], np.array(a)[..., 1]
    num_b, den_b = np.array(b)[..., 0], np.array(b)[..., 1]
    n_seeds, _, n_examples = num_a.shape
    rng = MT19937_64(seed)
    diffs = []
    for _ in range(replicates):
        seeds = [rng() % n_seeds for _ in range(n_seeds)]
        counts = np.bincount([rng() % n_examples for _ in range(n_examples)], minlength=n_examples).astype(float)

        def metric(num, den):  # mean over wordings of the pooled ratio
            return ((num * counts).sum(axis=-1) / (den * counts).sum(axis=-1)).mean(axis=-1)

        per_seed = metric(num_a, den_a) - metric(num_b, den_b)
        diffs.append(per_seed[seeds].mean())
    diffs = np.array(diffs)
    low, high = np.percentile(diffs, [2.5, 97.5])
    smaller = min((diffs <= 0).sum(), (diffs >= 0).sum()) + 1
    return {"low": float(low), "high": float(high), "p": float(min(1.0, 2 * smaller / (replicates + 1)))}


def bootstrap_cases():
    """Fixed inputs: 3 seeds x 2 wordings x 7 examples of ratios, and 4 seeds x 1 wording x 9 of values."""
    gen = np.random.default_rng(7)
    cases = {}
    den = gen.integers(1, 6, size=(3, 2, 7)).astype(float)
    a = np.stack([gen.normal(2.0, 0.5, size=(3, 2, 7)) * den, den], axis=-1)
    b = np.stack([gen.normal(2.2, 0.5, size=(3, 2, 7)) * den, den], axis=-1)
    cases["ratios_two_wordings"] = (a.tolist(), b.tolist(), 500, 20240917)
    values_a = gen.integers(0, 2, size=(4, 1, 9)).astype(float)
    values_b = gen.integers(0, 2, size=(4, 1, 9)).astype(float)
    ones = np.ones_like(values_a)
    cases["values_one_wording"] = (np.stack([values_a, ones], -1).tolist(), np.stack([values_b, ones], -1).tolist(),
                                   2000, 5)
    out = {}
    for name, (a, b, replicates, seed) in cases.items():
        out[name] = {"a": a, "b": b, "replicates": replicates, "seed": seed, **paired_bootstrap(a, b, replicates, seed)}
    return out


def paired(a, b):
    a, b = np.array(a), np.array(b)
    d = a - b
    n = len(d)
    res = stats.ttest_rel(a, b)
    sd = d.std(ddof=1)
    sem = sd / np.sqrt(n)
    low, high = stats.t.interval(0.95, n - 1, loc=d.mean(), scale=sem)
    return {
        "a": a.tolist(), "b": b.tolist(),
        "t": float(res.statistic), "p": float(res.pvalue),
        "mean_diff": float(d.mean()), "sd_diff": float(sd), "low": float(low), "high": float(high),
        "cohens_dz": float(d.mean() / sd),
    }


def mean_interval(xs):
    xs = np.array(xs)
    n = len(xs)
    low, high = stats.t.interval(0.95, n - 1, loc=xs.mean(), scale=xs.std(ddof=1) / np.sqrt(n))
    return {"xs": xs.tolist(), "mean": float(xs.mean()), "sd": float(xs.std(ddof=1)), "low": float(low), "high": float(high)}


def ols(x, y):
    x, y = np.array(x), np.array(y)
    X = np.column_stack([np.ones_like(x), x, x * x])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    n, k = X.shape
    df = n - k
    sigma2 = resid @ resid / df
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X)))
    t = beta / se
    p = 2 * stats.t.sf(np.abs(t), df)
    r2 = 1 - (resid @ resid) / np.sum((y - y.mean()) ** 2)
    return {"x": x.tolist(), "y": y.tolist(), "beta": beta.tolist(), "se": se.tolist(), "p": p.tolist(), "r2": float(r2)}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: stats_reference.py OUT.json")
    path = sys.argv[1]
    # A failed run must not leave the previous run's answers for the tests to read.
    if os.path.exists(path):
        os.remove(path)
    check_mt19937_64()
    out = {
        "paired": {name: paired(a, b) for name, (a, b) in PAIRED.items()},
        "mean_interval": {name: mean_interval(a) for name, (a, _) in PAIRED.items()},
        "t_cdf": [{"t": t, "df": df, "cdf": float(stats.t.cdf(t, df))} for t, df in T_CDF_POINTS],
        "t_ppf": [{"p": p, "df": df, "ppf": float(stats.t.ppf(p, df))} for p, df in T_PPF_POINTS],
        "ols": {name: ols(x, y) for name, (x, y) in OLS.items()},
        "nct_cdf": [{"t": t, "df": df, "delta": d, "cdf": float(stats.nct.cdf(t, df, d))} for t, df, d in NCT_CDF_POINTS],
        "mde": [{"n": n, "sd": sd, "alpha": alpha, "mde": float(mde(n, sd, alpha))} for n, sd, alpha in MDE_POINTS],
        "bootstrap": bootstrap_cases(),
    }
    # Written whole, then renamed: a reader never sees half a file.
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(out, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
