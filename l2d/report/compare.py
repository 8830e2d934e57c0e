"""Paired comparisons of scorings of the same problems: python -m l2d.report.compare REF OTHER [OTHER ...]

Each argument is a results.json of `python -m l2d.evaluate`; every OTHER is compared with REF on the problems
both scored (l2d.tasks.summary.paired: problems whose score rose and fell, the change in points with its 95%
interval over the problems, p of the exact paired permutation test — McNemar's with one completion per problem).

An argument A.json+B.json+... is the mean of those scorings of the same problems (e.g. one arm's seeds): each
problem's score is its mean over them, on the problems all of them scored, and its interval is the bootstrap over
problems (it holds the problems' chance, not the seeds'; the seeds' own spread is printed beside it). Two such
means of as many runs are also compared run by run, in order (seed by seed): the runs' differences and p of the
paired t-test over them, which holds the seeds' chance (and, with few runs, little power)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from scipy.stats import ttest_rel

from l2d.tasks.summary import bootstrap_interval, paired, problem_score
from l2d.validation import InputError

PROGRAM = "python -m l2d.report.compare"


def read(path: str) -> dict:
    """One results.json; a missing or foreign file is an InputError naming it."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (a results.json of python -m l2d.evaluate)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list) or "summary" not in data:
        raise InputError(f"{path}: not a results.json of python -m l2d.evaluate (it needs 'records' and 'summary')")
    return data


def scores(argument: str) -> tuple[dict[str, float], dict]:
    """Problem id -> score, and the summary, of one argument (a results.json, or A+B+... for their mean)."""
    runs = [read(path) for path in argument.split("+")]
    found = [{str(r["id"]): problem_score(r) for r in data["records"]} for data in runs]
    if len(runs) == 1:
        return found[0], runs[0]["summary"]
    shared = sorted(set.intersection(*(set(run) for run in found)))
    if not shared:
        raise InputError(f"{argument}: its scorings share no problem, so they have no mean")
    mean = {i: sum(run[i] for run in found) / len(found) for i in shared}
    low, high = bootstrap_interval(list(mean.values()))
    spread = [sum(run[i] for i in shared) / len(shared) for run in found]
    summary = {"score": sum(mean.values()) / len(mean), "ci95_low": low, "ci95_high": high, "runs": spread}
    return mean, summary


def score_line(argument: str, summary: dict) -> str:
    runs = f" [mean of {' / '.join(f'{100 * score:.1f}' for score in summary['runs'])}]" if "runs" in summary else ""
    return (f"{argument}: {100 * summary['score']:.1f}% "
            f"({100 * summary['ci95_low']:.1f}-{100 * summary['ci95_high']:.1f}){runs}")


def compare(reference: str, *others: str) -> list[str]:
    """The lines printed: the reference's score, then each other's score and its paired comparison with it."""
    base, base_summary = scores(reference)
    lines = [score_line(reference, base_summary)]
    for other in others:
        found, summary = scores(other)
        pair = paired(base, found)
        by_run = ""
        if "runs" in summary and len(summary["runs"]) == len(base_summary.get("runs", ())):
            differences = [b - a for a, b in zip(base_summary["runs"], summary["runs"], strict=True)]
            by_run = (f"; run by run {' / '.join(f'{100 * d:+.1f}' for d in differences)}, "
                      f"t-test over the runs p = {ttest_rel(summary['runs'], base_summary['runs']).pvalue:.2g}")
        lines.append(f"{score_line(other, summary)}; "
                     f"against the reference on {pair.problems} problems +{pair.gained} / -{pair.lost}, "
                     f"{100 * pair.change:+.1f} points ({100 * pair.ci95_low:+.1f} to {100 * pair.ci95_high:+.1f}), "
                     f"p = {pair.p:.2g}{by_run}")
    return lines


def main(arguments: Sequence[str]) -> None:
    if len(arguments) < 2 or any(a in ("-h", "--help") for a in arguments):
        raise SystemExit(__doc__)
    try:
        lines = compare(*arguments)
    except InputError as error:
        raise SystemExit(f"{PROGRAM}: error: {error}") from None
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
