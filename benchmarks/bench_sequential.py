"""Always-valid intervals under daily peeking: A/A simulation, width at day 28, and speed beside bootstrap_mean.

Usage: python benchmarks/bench_sequential.py [--experiments 2000] [--per-day 100] [--days 28] [--subset 100]

Every simulated experiment is an A/A test (no effect): `--per-day` new clients per branch each day, with a
skewed outcome (log-normal, like active hours), looked at after every day for `--days` days. Reported:

1. the share of experiments whose interval for the difference (and the relative uplift) excludes 0 at
   *some* look, for `always_valid_mean` and for a fixed-horizon 95% interval read the same way. The
   fixed-horizon interval is the normal approximation of `bootstrap_mean` for all experiments (the
   bootstrap's own percentile interval agrees with it to Monte Carlo error at these sizes) and the real
   `bootstrap_mean` (10,000 samples) for the first `--subset` experiments; `always_valid_mean` is also run
   through `statistics.compute` on that subset, to show the vectorised figures are the statistic's;
2. the half-width at the last look, always-valid / fixed-horizon;
3. the time of one `statistics.compute` call of each statistic at 10k and 100k clients per branch.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
from scipy import stats

from jetstream_assets import statistics
from jetstream_assets.statistics.sequential import boundary_multiplier, mixture_rho

ALPHA = 0.05
SIGMA = 1.0  # log-normal shape: skewness ≈ 6, as active hours


def simulate(rng: np.random.Generator, experiments: int, days: int, per_day: int):
    return (rng.lognormal(0.0, SIGMA, (experiments, days * per_day)),
            rng.lognormal(0.0, SIGMA, (experiments, days * per_day)))


def running(values: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the mean after each look (looks at the cumulative sizes `n`)."""
    idx = n - 1
    mean = np.cumsum(values, 1)[:, idx] / n
    var = (np.cumsum(values * values, 1)[:, idx] - n * mean**2) / (n - 1)
    return mean, var / n


def vectorised(control: np.ndarray, treatment: np.ndarray, days: int, per_day: int, optimal: int) -> dict:
    n = per_day * np.arange(1, days + 1)
    mc, vc = running(control, n)
    mt, vt = running(treatment, n)
    multiplier = boundary_multiplier(2 * n, ALPHA, mixture_rho(ALPHA, optimal))
    z = stats.norm.ppf(1 - ALPHA / 2)
    se_diff = np.sqrt(vc + vt)
    relative = mt / mc - 1
    se_rel = np.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    out = {}
    for name, k in (("always_valid_mean", multiplier), ("fixed-horizon (normal approx.)", z)):
        out[name] = {
            "difference": np.any(np.abs(mt - mc) > k * se_diff, axis=1),
            "relative_uplift": np.any(np.abs(relative) > k * se_rel, axis=1),
            "last_halfwidth": (k * se_diff)[:, -1] if np.ndim(k) == 0 else (k[-1] * se_diff[:, -1]),
        }
    return out


def through_compute(control: np.ndarray, treatment: np.ndarray, days: int, per_day: int, optimal: int) -> dict:
    """The real statistics on each look of each experiment: does the difference interval exclude 0?"""
    ever = {"always_valid_mean": [], "mean": []}
    seconds = {"always_valid_mean": 0.0, "mean": 0.0}
    for c, t in zip(control, treatment):
        excluded = {"always_valid_mean": False, "mean": False}
        for day in range(1, days + 1):
            k = day * per_day
            data = pd.DataFrame({"branch": ["control"] * k + ["treatment"] * k, "x": np.r_[c[:k], t[:k]]})
            for name, params in (("always_valid_mean", {"optimal_sample_size": optimal}), ("mean", {})):
                start = time.perf_counter()
                rows = statistics.compute("bootstrap_mean" if name == "mean" else name, data, "x",
                                          seed=day, **params)
                seconds[name] += time.perf_counter() - start
                diff = rows[(rows.comparison == "difference") & (rows.branch == "treatment")].iloc[0]
                excluded[name] |= bool(diff.lower > 0 or diff.upper < 0)
        for name in ever:
            ever[name].append(excluded[name])
    return {name: np.array(v) for name, v in ever.items()} | {"seconds": seconds}


def share(flags: np.ndarray) -> str:
    p = flags.mean()
    return f"{p:.3f} ± {1.96 * math.sqrt(max(p * (1 - p), 1e-12) / len(flags)):.3f}"


def speed(rows: int, repeats: int = 3) -> dict[str, float]:
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"branch": np.repeat(["control", "treatment"], rows),
                         "x": rng.lognormal(0.0, SIGMA, 2 * rows)})
    out = {}
    for name in ("always_valid_mean", "bootstrap_mean"):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            statistics.compute(name, data, "x", seed=1)
            times.append(time.perf_counter() - start)
        out[name] = min(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=int, default=2000)
    parser.add_argument("--per-day", type=int, default=100)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--subset", type=int, default=100)
    args = parser.parse_args()
    optimal = 2 * args.per_day * args.days  # tuned to the final size, as a user would set optimal_sample_size
    rng = np.random.default_rng(20261205)
    control, treatment = simulate(rng, args.experiments, args.days, args.per_day)

    started = time.perf_counter()
    result = vectorised(control, treatment, args.days, args.per_day, optimal)
    print(f"{args.experiments} A/A experiments, {args.per_day} clients per branch per day, {args.days} daily looks, "
          f"log-normal(0, {SIGMA}) outcome, optimal_sample_size={optimal} ({time.perf_counter() - started:.1f} s)\n")
    print("| interval | ever excludes 0: difference | ever excludes 0: relative uplift | half-width at last look |")
    print("|---|---|---|---|")
    fixed_width = result["fixed-horizon (normal approx.)"]["last_halfwidth"].mean()
    for name, r in result.items():
        print(f"| {name} | {share(r['difference'])} | {share(r['relative_uplift'])} | "
              f"{r['last_halfwidth'].mean():.4f} ({r['last_halfwidth'].mean() / fixed_width:.2f}× fixed) |")

    if args.subset:
        subset = through_compute(control[:args.subset], treatment[:args.subset], args.days, args.per_day, optimal)
        looks = args.subset * args.days
        print(f"\nThrough statistics.compute, first {args.subset} experiments × {args.days} looks:\n")
        print("| statistic | ever excludes 0: difference | same decisions as vectorised | mean time per look |")
        print("|---|---|---|---|")
        for name, reference in (("always_valid_mean", "always_valid_mean"),
                                ("mean", "fixed-horizon (normal approx.)")):
            agree = (subset[name] == result[reference]["difference"][:args.subset]).mean()
            label = "bootstrap_mean (10,000 samples)" if name == "mean" else name
            print(f"| {label} | {share(subset[name])} | {agree:.0%} | "
                  f"{subset['seconds'][name] / looks * 1000:.1f} ms |")

    print("\n| clients per branch | always_valid_mean | bootstrap_mean |")
    print("|---|---|---|")
    for rows in (10_000, 100_000):
        timing = speed(rows)
        print(f"| {rows:,} | {timing['always_valid_mean'] * 1000:.1f} ms | {timing['bootstrap_mean'] * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
