#!/usr/bin/python3
"""Checks a report directory written by masklab's reports library.

usage: check_report.py REPORT_DIR EXPECTED_JSON

Reads runs.csv, summary.csv, comparisons.csv and plw_fit.csv with pandas as a
user would (no cleanup), recomputes every summary, comparison and fit from
runs.csv with pandas, scipy and numpy, and compares; checks the headline cells
of report.html against runs.csv too. EXPECTED_JSON holds what the caller knows
about the sweep (row counts, statuses, one mean computed from the run records,
a factor value, and "sweep_dir", whose sweep.json and run records give each
run's λ). Prints "OK", or every problem found and exits 1. Run with
/usr/bin/python3 (Debian's, which has python3-pandas and python3-scipy from
apt); a missing package is one line naming it, and exit status 1.
"""
import html
import json
import math
import os
import re
import sys

import warnings

try:
    import numpy as np
    import pandas as pd
    from scipy import optimize, stats
except ImportError as missing:
    sys.exit(f"check_report: missing Debian package python3-{missing.name.split('.')[0]}: scripts/install-deps.sh installs it")

# scipy warns about the degenerate samples (one pair, equal differences) that
# the report must handle too; the checks below compare those cases explicitly.
warnings.simplefilter("ignore", RuntimeWarning)

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


def close(a, b, rel=1e-9, abs_=1e-12):
    """Relative closeness; NaN matches NaN and an infinity matches itself."""
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return abs(a - b) <= max(rel * abs(b), abs_)


def direction(metric):
    if metric == "final_train_loss":  # each strategy's own objective: not compared
        return None
    leaf = metric.rsplit(".", 1)[-1].lower()
    if "accuracy" in leaf or "exact_match" in leaf or leaf in ("f1", "rouge_l", "acc", "acc_norm"):
        return "higher"
    if "nll" in leaf or "ppl" in leaf or "loss" in leaf:
        return "lower"
    return None


def mde(n, sd, alpha, power=0.8):
    """The smallest |mean difference| the two-sided paired t-test at alpha detects with `power` (scipy's nct)."""
    if n < 2 or not math.isfinite(sd):
        return float("nan")
    if sd == 0:
        return 0.0
    df, crit = n - 1, stats.t.ppf(1 - alpha / 2, n - 1)

    def short(effect):
        nc = effect * math.sqrt(n)
        return stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc) - power

    hi = 1.0
    while short(hi) < 0:
        hi *= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return sd * optimize.brentq(short, 0.0, hi, xtol=1e-14, rtol=1e-13)


def plw_lambda(record):
    """λ of a run whose recorded role weights lie on the prompt-loss-weight axis, else None."""
    if not isinstance(record, dict) or record.get("schedule") != "constant":
        return None
    start = record["start"]
    if start["completion"] != 1 or start["earlier_completion"] != 1 or start["system"] != start["prompt"]:
        return None
    return float(start["prompt"])


def run_lambdas(sweep_dir):
    """run id -> λ, from the role weights of sweep.json's run entry, else of the run's metrics.json."""
    with open(os.path.join(sweep_dir, "sweep.json")) as f:
        sweep = json.load(f)
    lambdas = {}
    for entry in sweep["runs"]:
        record = entry.get("role_weights")
        if record is None:
            path = os.path.join(sweep_dir, entry.get("dir") or os.path.join("runs", entry["id"]), "metrics.json")
            try:
                with open(path) as f:
                    record = json.load(f).get("role_weights")
            except (OSError, ValueError, AttributeError):
                record = None
        lambdas[entry["id"]] = plw_lambda(record)
    return lambdas


def transform(lam, kind):
    return {"log": lambda v: math.log10(v + 0.001), "quarter": lambda v: v ** 0.25, "linear": lambda v: v}[kind](lam)


def main():
    report_dir, expected = sys.argv[1], json.loads(sys.argv[2])
    factors = expected["factors"]
    setting_factors = [f for f in factors if f not in ("strategy", "seed")]
    condition_factors = [f for f in factors if f != "seed"]

    runs = pd.read_csv(os.path.join(report_dir, "runs.csv"))
    check(list(runs.columns[: 1 + len(factors) + 2]) == ["run_id"] + factors + ["status", "error"],
          f"runs.csv leading columns {list(runs.columns[:6])}")
    metrics = list(runs.columns[1 + len(factors) + 2:])
    check(len(runs) == expected["runs"], f"runs.csv has {len(runs)} rows, expected {expected['runs']}")
    check(runs["status"].value_counts().to_dict() == expected["statuses"],
          f"statuses {runs['status'].value_counts().to_dict()} != {expected['statuses']}")
    check(runs["seed"].dtype == np.int64, f"seed dtype {runs['seed'].dtype}")
    for m in metrics:
        check(np.issubdtype(runs[m].dtype, np.number), f"runs.csv column {m} is {runs[m].dtype}, not numeric")
    check(runs["eval.exact_match"].dtype == np.float64, "eval.exact_match is not float64")
    for factor, value in expected.get("factor_values", {}).items():
        check(value in set(runs[factor]), f"factor value {value!r} of {factor} did not survive the CSV round trip")
    check(int(runs["eval.prompt_nll"].isna().sum()) == expected["prompt_nll_missing"],
          f"{int(runs['eval.prompt_nll'].isna().sum())} empty eval.prompt_nll cells")
    ok = runs[runs["status"] == "ok"]

    # summary.csv: every condition x metric, recomputed from runs.csv.
    summary = pd.read_csv(os.path.join(report_dir, "summary.csv"))
    check(list(summary.columns) == condition_factors + ["metric", "n", "mean", "std", "ci95_low", "ci95_high"],
          f"summary.csv columns {list(summary.columns)}")
    n_conditions = len(runs.groupby(condition_factors, sort=False))
    check(len(summary) == n_conditions * len(metrics), f"summary.csv has {len(summary)} rows, expected {n_conditions * len(metrics)}")
    check(summary["n"].dtype == np.int64 and summary["mean"].dtype == np.float64, "summary.csv dtypes")
    for _, row in summary.iterrows():
        mask = np.logical_and.reduce([ok[f] == row[f] for f in condition_factors])
        values = ok.loc[mask, row["metric"]].dropna().to_numpy()
        check(row["n"] == len(values), f"summary n for {row['metric']} {[row[f] for f in condition_factors]}")
        if len(values) == 0:
            continue
        check(close(row["mean"], values.mean()), f"summary mean of {row['metric']}: {row['mean']} vs {values.mean()}")
        if len(values) >= 2:
            sem = values.std(ddof=1) / math.sqrt(len(values))
            low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=sem)
            check(close(row["std"], values.std(ddof=1)), f"summary std of {row['metric']}")
            if sem > 0:
                check(close(row["ci95_low"], low) and close(row["ci95_high"], high), f"summary CI of {row['metric']}")
        else:
            check(math.isnan(row["ci95_low"]) and math.isnan(row["std"]), "a single run has no sd or CI")
    key = expected["mean_check"]
    mask = np.logical_and.reduce([summary[f] == v for f, v in key["condition"].items()]) & (summary["metric"] == key["metric"])
    check(mask.sum() == 1 and close(summary.loc[mask, "mean"].iloc[0], key["mean"]),
          f"summary mean for {key} is {summary.loc[mask, 'mean'].tolist()}")

    # comparisons.csv: paired t-tests against the baseline, recomputed with scipy; Holm per metric.
    comparisons = pd.read_csv(os.path.join(report_dir, "comparisons.csv"))
    check(list(comparisons.columns) == setting_factors + ["strategy", "baseline", "metric", "n_pairs", "mean_diff",
                                                          "ci95_low", "ci95_high", "t", "p_value", "p_holm",
                                                          "cohens_d", "wins", "losses", "ties", "mde",
                                                          "bootstrap_low", "bootstrap_high", "bootstrap_p"],
          f"comparisons.csv columns {list(comparisons.columns)}")
    baseline = expected["baseline"]
    recomputed = []
    for setting, group in ok.groupby(setting_factors, sort=False) if setting_factors else [((), ok)]:
        base = group[group["strategy"] == baseline].set_index("seed")
        for strategy in group["strategy"].unique():
            if strategy == baseline:
                continue
            other = group[group["strategy"] == strategy].set_index("seed")
            for metric in metrics:
                better = direction(metric)
                if better is None:
                    continue
                joined = pd.concat([other[metric].rename("s"), base[metric].rename("b")], axis=1, join="inner").dropna()
                if len(joined) == 0:
                    continue
                rec = {"setting": setting if isinstance(setting, tuple) else (setting,), "strategy": strategy,
                       "metric": metric, "n": len(joined), "diff": (joined["s"] - joined["b"]).mean()}
                wins = (joined["s"] > joined["b"]) if better == "higher" else (joined["s"] < joined["b"])
                rec["wins"], rec["ties"] = int(wins.sum()), int((joined["s"] == joined["b"]).sum())
                if len(joined) >= 2:
                    res = stats.ttest_rel(joined["s"], joined["b"])
                    rec["t"], rec["p"] = float(res.statistic), float(res.pvalue)
                else:
                    rec["t"] = rec["p"] = float("nan")
                rec["sd"] = float((joined["s"] - joined["b"]).std(ddof=1)) if len(joined) >= 2 else float("nan")
                recomputed.append(rec)
    check(len(comparisons) == len(recomputed), f"comparisons.csv has {len(comparisons)} rows, expected {len(recomputed)}")
    for metric in {r["metric"] for r in recomputed}:  # Holm over each metric's family
        family = [r for r in recomputed if r["metric"] == metric and not math.isnan(r["p"])]
        order = sorted(family, key=lambda r: r["p"])
        running = 0.0
        for rank, r in enumerate(order):
            running = max(running, min(1.0, (len(order) - rank) * r["p"]))
            r["holm"] = running
            r["mde_alpha"] = 0.05 / (len(order) - rank)  # the comparison's own Holm step
        for r in recomputed:
            if r["metric"] == metric and "mde_alpha" not in r:
                r["mde_alpha"] = 0.05 / max(len(order), 1)
    for r in recomputed:
        mask = (comparisons["strategy"] == r["strategy"]) & (comparisons["metric"] == r["metric"])
        for f, v in zip(setting_factors, r["setting"]):
            mask &= comparisons[f] == v
        if mask.sum() != 1:
            problems.append(f"comparison {r['strategy']} {r['metric']} {r['setting']} appears {mask.sum()} times")
            continue
        row = comparisons[mask].iloc[0]
        what = f"comparison {r['strategy']} {r['metric']} {r['setting']}"
        check(row["n_pairs"] == r["n"] and row["wins"] == r["wins"] and row["ties"] == r["ties"], f"{what}: counts")
        check(close(row["mean_diff"], r["diff"]), f"{what}: mean_diff {row['mean_diff']} vs {r['diff']}")
        check(close(row["t"], r["t"]), f"{what}: t {row['t']} vs {r['t']}")
        check(close(row["p_value"], r["p"], rel=1e-6), f"{what}: p {row['p_value']} vs {r['p']}")
        check(close(row["p_holm"], r.get("holm", float("nan")), rel=1e-6), f"{what}: p_holm {row['p_holm']} vs {r.get('holm')}")
        expected_mde = mde(r["n"], r["sd"], r["mde_alpha"])
        check(close(row["mde"], expected_mde, rel=1e-6), f"{what}: mde {row['mde']} vs {expected_mde}")
    for column in ("mean_diff", "p_value", "p_holm", "cohens_d"):
        check(comparisons[column].dtype == np.float64, f"comparisons.csv {column} is {comparisons[column].dtype}")

    # plw_fit.csv: the quadratic in transformed λ, refitted with numpy.
    plw_path = os.path.join(report_dir, "plw_fit.csv")
    check(os.path.exists(plw_path) == expected["plw"], f"plw_fit.csv exists: {os.path.exists(plw_path)}")
    if os.path.exists(plw_path):
        lambdas = run_lambdas(expected["sweep_dir"])
        fits = pd.read_csv(plw_path)
        check(len(fits) == expected["plw_rows"], f"plw_fit.csv has {len(fits)} rows, expected {expected['plw_rows']}")
        for _, row in fits.iterrows():
            mask = np.logical_and.reduce([ok[f] == row[f] for f in setting_factors]) if setting_factors else np.full(len(ok), True)
            data = ok[mask]
            lam = data["run_id"].map(lambdas)
            keep = lam.notna() & data[row["metric"]].notna()
            x = np.array([transform(v, row["transform"]) for v in lam[keep]])
            y = data.loc[keep, row["metric"]].to_numpy()
            X = np.column_stack([np.ones_like(x), x, x * x])
            beta = np.linalg.lstsq(X, y, rcond=None)[0]
            resid = y - X @ beta
            se = np.sqrt(np.diag(resid @ resid / (len(y) - 3) * np.linalg.inv(X.T @ X)))
            p = 2 * stats.t.sf(np.abs(beta / se), len(y) - 3)
            what = f"plw fit of {row['metric']}"
            check(row["n"] == len(y), f"{what}: n")
            for j in range(3):
                check(close(row[f"b{j}"], beta[j], rel=1e-8, abs_=1e-10), f"{what}: b{j} {row[f'b{j}']} vs {beta[j]}")
                check(close(row[f"se_b{j}"], se[j], rel=1e-8), f"{what}: se_b{j}")
                check(close(row[f"p_b{j}"], p[j], rel=1e-6, abs_=1e-12), f"{what}: p_b{j}")
            grid = np.linspace(x.min(), x.max(), 20001)
            fitted = beta[0] + beta[1] * grid + beta[2] * grid * grid
            best_x = grid[np.argmax(fitted) if row["direction"] == "max" else np.argmin(fitted)]
            check(row["direction"] == ("max" if direction(row["metric"]) == "higher" else "min"), f"{what}: direction")
            check(abs(transform(row["best_lambda"], row["transform"]) - best_x) < 2e-3 * (x.max() - x.min()),
                  f"{what}: best_lambda {row['best_lambda']} but the grid optimum is at x = {best_x}")

    # report.html: every headline cell's mean equals the mean of the matching ok runs in runs.csv.
    page = open(os.path.join(report_dir, "report.html"), encoding="utf-8").read()
    settings = [tuple(s) for s in runs[setting_factors].drop_duplicates().itertuples(index=False)] if setting_factors else [()]
    cells = re.findall(r'data-setting="(\d+)" data-strategy="([^"]*)" data-metric="([^"]*)" data-n="(\d+)" data-mean="([^"]*)"', page)
    check(len(cells) >= expected["min_headline_cells"], f"only {len(cells)} headline cells with a mean")
    for setting_index, strategy, metric, n, mean in cells:
        setting = settings[int(setting_index)]
        mask = ok["strategy"] == html.unescape(strategy)
        for f, v in zip(setting_factors, setting):
            mask &= ok[f] == v
        values = ok.loc[mask, html.unescape(metric)].dropna()
        check(int(n) == len(values) and close(float(mean), values.mean()),
              f"report.html cell {strategy} {metric} {setting}: {mean} (n={n}) vs runs.csv {values.mean()} (n={len(values)})")

    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
