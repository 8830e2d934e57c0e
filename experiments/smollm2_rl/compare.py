"""Paired comparisons of scorings of the same problems: python experiments/smollm2_rl/compare.py REF OTHER [...]

Each argument is a results.json of `python -m l2d.evaluate`; every OTHER is compared with REF on the problems
both scored (l2d.tasks.summary.paired: problems whose score rose and fell, the change in points with its 95%
interval over the problems, p of the exact paired permutation test — McNemar's with one completion per problem)."""

import json
import sys
from pathlib import Path

from l2d.tasks.summary import paired, problem_score


def scores(path: str) -> tuple[dict[str, float], dict]:
    data = json.loads(Path(path).read_text())
    return {str(r["id"]): problem_score(r) for r in data["records"]}, data["summary"]


def main(reference: str, *others: str) -> None:
    base, summary = scores(reference)
    print(f"{reference}: {100 * summary['score']:.1f}% ({100 * summary['ci95_low']:.1f}-{100 * summary['ci95_high']:.1f})")
    for other in others:
        found, summary = scores(other)
        pair = paired(base, found)
        print(f"{other}: {100 * summary['score']:.1f}% ({100 * summary['ci95_low']:.1f}-{100 * summary['ci95_high']:.1f}); "
              f"against the reference on {pair.problems} problems +{pair.gained} / -{pair.lost}, "
              f"{100 * pair.change:+.1f} points ({100 * pair.ci95_low:+.1f} to {100 * pair.ci95_high:+.1f}), "
              f"p = {pair.p:.2g}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
