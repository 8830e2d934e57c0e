"""Aggregate per-problem results into one summary, shared by the harness and the report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there is no data."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # The interval always holds p: at p = 0 (or 1) rounding would otherwise leave a bound 1e-19 inside it.
    return min(p, max(0.0, center - half_width)), max(p, min(1.0, center + half_width))


def mcnemar_exact(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value for two scorings of the same problems: `gained` problems only the
    second gets right, `lost` only the first; under no difference each discordant problem is a fair coin."""
    discordant = gained + lost
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, i) for i in range(min(gained, lost) + 1)) / 2 ** discordant
    return min(1.0, 2 * tail)


def summarize(results: Sequence[Mapping[str, Any]], metric: str = "accuracy", ks: Sequence[int] = ()) -> dict[str, Any]:
    """Summary of `Task.score` results: score, n, n_correct (first generation), n_unextracted
    (counted as wrong, never dropped), a 95% Wilson interval and, for pass@k tasks, the mean pass@k
    over problems for each k that every problem has enough samples for.

    For pass@k tasks the score is mean pass@1, and its interval treats the summed per-problem pass
    rates as the successes (conservative: averaging over samples only lowers the variance)."""
    n = len(results)
    summary: dict[str, Any] = {
        "metric": metric,
        "n": n,
        "n_correct": sum(bool(r["correct"]) for r in results),
        "n_unextracted": sum(not r["extracted"] for r in results),
    }
    if metric == "pass@k":
        for k in ks:
            key = f"pass@{k}"
            if n and all(key in r for r in results):
                summary[key] = sum(r[key] for r in results) / n
        successes = sum(r["pass@1"] for r in results)
    elif metric == "accuracy":
        successes = summary["n_correct"]
    else:
        raise ValueError(f"unknown metric {metric!r}; expected 'accuracy' or 'pass@k'")
    summary["score"] = successes / n if n else 0.0
    summary["ci95_low"], summary["ci95_high"] = wilson_interval(successes, n)
    return summary
