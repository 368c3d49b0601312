"""Speed and agreement of `jetstream_assets.statistics` against mozanalysis, measured in the same run.

Usage: python benchmarks/bench_statistics.py [--rows 100000] [--samples 10000] [--repeats 5] [--moz-repeats 1]
mozanalysis is optional: without it only our timings are printed.
"""

from __future__ import annotations

import argparse
import statistics as pystats
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from jetstream_assets import statistics

try:
    from mozanalysis.bayesian_stats import bayesian_bootstrap, binary
    from mozanalysis.frequentist_stats import bootstrap as freq_bootstrap
    from mozanalysis.frequentist_stats.linear_models import compare_branches_lm
except ImportError:  # the comparison is optional
    bayesian_bootstrap = binary = freq_bootstrap = compare_branches_lm = None


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return pystats.median(times)


def sample_data(rows: int) -> pd.DataFrame:
    """A10's setup: float gamma(0.5, 4.0/4.1) per branch, essentially all values distinct."""
    rng = np.random.default_rng(2024)
    return pd.DataFrame({
        "branch": np.repeat(["control", "treatment"], rows),
        "active_hours": np.r_[rng.gamma(0.5, 4.0, rows), rng.gamma(0.5, 4.1, rows)],
        "converted": np.r_[rng.random(rows) < 0.30, rng.random(rows) < 0.31].astype(int),
        "den": np.r_[rng.poisson(3, rows), rng.poisson(3, rows)] + 1.0,
        "active_hours_pre": rng.gamma(0.5, 4.0, 2 * rows),
    })


def ours(df: pd.DataFrame, name: str, metric: str, **params) -> pd.DataFrame:
    return statistics.compute(name, df, metric, seed=statistics.stable_seed("bench", name), **params)


def report(label: str, ours_s: float, moz_s: float | None) -> None:
    if moz_s is None:
        print(f"{label:<44} ours {ours_s:8.3f} s   (mozanalysis not installed)")
    else:
        print(f"{label:<44} ours {ours_s:8.3f} s   mozanalysis {moz_s:8.3f} s   ratio {moz_s / ours_s:8.1f}x")


def show_interval(rows: pd.DataFrame, moz: dict | None) -> None:
    """Our (point, lower, upper) next to mozanalysis' for control and for treatment vs control."""
    control = rows[(rows.branch == "control") & rows.comparison.isna()].iloc[0]
    uplift = rows[(rows.branch == "treatment") & (rows.comparison == "relative_uplift")
                  & (rows.comparison_to_branch == "control")].iloc[0]
    print(f"    ours  control mean {control.point:.5f} [{control.lower:.5f}, {control.upper:.5f}]"
          f"  rel_uplift {uplift.point:.5f} [{uplift.lower:.5f}, {uplift.upper:.5f}]")
    if moz is not None:
        ind, comp = moz["individual"]["control"], moz["comparative"]["treatment"]
        theirs = (ind["0.025"], ind["0.975"], comp[("rel_uplift", "0.025")], comp[("rel_uplift", "0.975")])
        print(f"    moz   control mean {ind['mean']:.5f} [{theirs[0]:.5f}, {theirs[1]:.5f}]"
              f"  rel_uplift {comp[('rel_uplift', 'exp')]:.5f} [{theirs[2]:.5f}, {theirs[3]:.5f}]")
        # the largest endpoint difference, as a fraction of the interval's width (Monte Carlo error ~ 1-2%)
        widths = (control.upper - control.lower, uplift.upper - uplift.lower)
        gaps = (abs(control.lower - theirs[0]) / widths[0], abs(control.upper - theirs[1]) / widths[0],
                abs(uplift.lower - theirs[2]) / widths[1], abs(uplift.upper - theirs[3]) / widths[1])
        print(f"    largest endpoint difference: {max(gaps):.2%} of the interval width")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="clients per branch")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--moz-repeats", type=int, default=1)
    args = parser.parse_args()
    df = sample_data(args.rows)
    n = args.samples
    have_moz = bayesian_bootstrap is not None
    if not have_moz:
        print("mozanalysis is not importable: skipping the comparison, timing ours only")
    print(f"2 branches x {args.rows} clients, {n} samples; medians of {args.repeats} (ours) / "
          f"{args.moz_repeats} (mozanalysis) runs. Ours computes ALL reference branches in one call.")

    cases = [
        ("bootstrap_mean", "active_hours", {"num_samples": n},
         lambda: bayesian_bootstrap.compare_branches(df, "active_hours", num_samples=n, threshold_quantile=0.995,
                                                     individual_summary_quantiles=(0.025, 0.975))),
        ("population_ratio", "active_hours", {"numerator": "active_hours", "denominator": "den", "num_samples": n},
         lambda: freq_bootstrap.compare_branches(df, ["active_hours", "den"], num_samples=n,
                                                 stat_fn=lambda d: np.mean(d[:, 0]) / np.mean(d[:, 1]),
                                                 threshold_quantile=0.995)),
        ("deciles", "active_hours", {"num_samples": n},
         lambda: freq_bootstrap.compare_branches_quantiles(df, "active_hours", num_samples=n)),
        ("binomial", "converted", {}, lambda: binary.compare_branches(df, "converted")),
        ("linear_model_mean", "active_hours",
         {"covariate_adjustment": {"period": "preenrollment_week"}, "period": "week"},
         lambda: compare_branches_lm(df, "active_hours", ref_branch_label="control",
                                     covariate_col_label="active_hours_pre", threshold_quantile=0.995,
                                     alphas=[0.05], interactive=False)),
    ]
    for name, metric, params, moz_call in cases:
        ours_s = median_seconds(lambda: ours(df, name, metric, **params), args.repeats)
        moz_result, moz_s = None, None
        if have_moz:
            start = time.perf_counter()
            moz_result = moz_call()
            moz_s = (time.perf_counter() - start) + (
                median_seconds(moz_call, args.moz_repeats - 1) * (args.moz_repeats - 1) if args.moz_repeats > 1 else 0
            )
            moz_s /= args.moz_repeats
        report(f"{name} (one mozanalysis call, one reference)", ours_s, moz_s)
        if moz_s is not None:
            report(f"{name} (Jetstream: one call per reference)", ours_s, 2 * moz_s)
        if name in ("bootstrap_mean", "population_ratio", "binomial", "linear_model_mean"):
            show_interval(ours(df, name, metric, **params), moz_result)


if __name__ == "__main__":
    main()
