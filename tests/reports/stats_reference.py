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
    from scipy import stats
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
    out = {
        "paired": {name: paired(a, b) for name, (a, b) in PAIRED.items()},
        "mean_interval": {name: mean_interval(a) for name, (a, _) in PAIRED.items()},
        "t_cdf": [{"t": t, "df": df, "cdf": float(stats.t.cdf(t, df))} for t, df in T_CDF_POINTS],
        "t_ppf": [{"p": p, "df": df, "ppf": float(stats.t.ppf(p, df))} for p, df in T_PPF_POINTS],
        "ols": {name: ols(x, y) for name, (x, y) in OLS.items()},
    }
    # Written whole, then renamed: a reader never sees half a file.
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(out, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
