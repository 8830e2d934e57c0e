"""Aggregate per-problem results into one summary, shared by the harness and the report."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
BOOTSTRAP_RESAMPLES = 2000


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


def sign_flip_p(differences: Sequence[float], max_denominator: int = 64) -> float:
    """Two-sided exact paired permutation test of no change between two scorings of the same problems: under
    no difference each problem's score difference is as likely to have either sign, so all 2^n sign flips are
    equally likely, and p is the share of them whose total lies at least as far from 0 as the one observed.
    With one completion per problem the differences are -1, 0 or 1 and this is McNemar's exact test; with
    several it weighs each problem by how much its score moved, as the change and its interval do (a sign
    test would count a problem that moved by 1/4 as one that moved by 1). Scores are fractions of a problem's
    completions, so the differences are exact multiples of 1/lcm(completion counts) and the distribution of
    the flipped total is computed exactly, one problem at a time."""
    fractions = [Fraction(d).limit_denominator(max_denominator) for d in differences]
    fractions = [f for f in fractions if f != 0]  # a problem that did not move adds nothing under any flip
    if not fractions:
        return 1.0
    scale = math.lcm(*(f.denominator for f in fractions))
    moves = [int(f * scale) for f in fractions]  # exact: every fraction's denominator divides scale
    steps = [abs(move) for move in moves]
    total = sum(steps)
    observed = abs(sum(moves))
    # distribution[total + s]: probability that the flipped total is s; its support stays within ±total,
    # so the rolls never wrap any mass around.
    distribution = np.zeros(2 * total + 1)
    distribution[total] = 1.0
    for step in steps:
        distribution = 0.5 * (np.roll(distribution, step) + np.roll(distribution, -step))
    far = np.abs(np.arange(-total, total + 1)) >= observed
    return min(1.0, float(distribution[far].sum()))


def problem_score(result: Mapping[str, Any]) -> float:
    """One problem's score: the fraction of its completions judged right (`passed`, one per completion), or
    its single judgement (`correct`) in results written before completions were judged one by one."""
    passed = result.get("passed")
    return sum(map(bool, passed)) / len(passed) if passed else float(bool(result["correct"]))


def bootstrap_interval(scores: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
                       ) -> tuple[float, float]:
    """95% percentile interval of the mean of per-problem scores, resampling whole problems. With several
    completions per problem they are not independent draws (they share the problem's difficulty), so a
    binomial interval over all completions would be too narrow; problems are the independent unit."""
    if not scores:
        return 0.0, 1.0
    values = np.asarray(scores, dtype=np.float64)
    means = values[np.random.default_rng(seed).integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    mean = values.mean()
    return min(mean, float(low)), max(mean, float(high))


@dataclass
class Paired:
    """Two scorings of the same problems: problems whose score rose (gained) or fell (lost), the change in
    the mean score with its 95% interval (a bootstrap over the problems of their score differences), and p of
    the exact paired permutation test (`sign_flip_p`; with one completion per problem, McNemar's exact test)."""

    problems: int
    gained: int
    lost: int
    change: float
    p: float
    ci95_low: float
    ci95_high: float


def paired(reference: Mapping[str, float], other: Mapping[str, float]) -> Paired:
    """`reference` and `other`: problem id -> score (`problem_score`); compared on the ids both have."""
    shared = sorted(reference.keys() & other.keys())
    differences = [other[i] - reference[i] for i in shared]
    gained = sum(d > 0 for d in differences)
    lost = sum(d < 0 for d in differences)
    change = sum(differences) / max(1, len(shared))
    # The two scorings' noise is largely the same problems' difficulty, so the change's interval is far narrower
    # than either score's: it is the one that says whether the change is beyond chance.
    low, high = bootstrap_interval(differences) if shared else (0.0, 0.0)
    return Paired(len(shared), gained, lost, change, sign_flip_p(differences), low, high)


def summarize(results: Sequence[Mapping[str, Any]], metric: str = "accuracy", ks: Sequence[int] = ()) -> dict[str, Any]:
    """Summary of `Task.score` results: the score (the mean over problems of the fraction of each problem's
    completions judged right: accuracy, or for code tasks pass@1), n problems, n_completions, n_correct and
    n_unextracted completions (no answer counts as wrong, never dropped), a 95% interval and, for pass@k
    tasks, the mean pass@k over problems for each k that every problem has enough samples for.

    The interval is Wilson's with one completion per problem, and a bootstrap over problems with several
    (`interval` says which; see bootstrap_interval)."""
    if metric not in ("accuracy", "pass@k"):
        raise ValueError(f"unknown metric {metric!r}; expected 'accuracy' or 'pass@k'")
    n = len(results)
    scores = [problem_score(r) for r in results]
    completions = [len(r.get("passed") or [None]) for r in results]
    summary: dict[str, Any] = {
        "metric": metric,
        "n": n,
        "n_completions": sum(completions),
        "n_correct": sum(sum(map(bool, r["passed"])) if r.get("passed") else bool(r["correct"]) for r in results),
        "n_unextracted": sum(r["answers"].count(None) if "answers" in r else not r["extracted"] for r in results),
    }
    if metric == "pass@k":
        for k in ks:
            key = f"pass@{k}"
            if n and all(key in r for r in results):
                summary[key] = sum(r[key] for r in results) / n
    summary["score"] = sum(scores) / n if n else 0.0
    several = any(count > 1 for count in completions)
    summary["interval"] = "bootstrap over problems" if several else "wilson"
    interval = bootstrap_interval(scores) if several else wilson_interval(sum(scores), n)
    summary["ci95_low"], summary["ci95_high"] = interval
    return summary
