"""The data of the paper's figures, shared by the markdown tables and the plots.

A `Curves` maps a panel, (task, protocol), -> series name -> results sorted along the figure's x axis; a
series is a row of the report with one decoding field (`vary`) left free, e.g. the midpoint solver at every
level count. Protocols get panels of their own: a score sampled at temperature 1 and a greedy one are never
on one line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from l2d.report.records import Result
from l2d.report.rows import label_rows, protocol_rank, row_key, task_columns

Panel = tuple[str, str]  # (task, protocol)
Curves = dict[Panel, dict[str, list[Result]]]


def curves(results: Sequence[Result], vary: str | None, x: Callable[[Result], float]) -> Curves:
    labels = label_rows(results, vary)
    tasks = [task for group in task_columns(results).values() for task in group]
    protocols = sorted({r.protocol for r in results}, key=protocol_rank)
    grouped: Curves = {(task, protocol): {label: [] for label in labels.values()}
                       for task in tasks for protocol in protocols}
    for result in results:
        grouped[result.task, result.protocol][labels[row_key(result, vary)]].append(result)
    found = {panel: {label: sorted(members, key=x) for label, members in series.items() if members}
             for panel, series in grouped.items()}
    return {panel: series for panel, series in found.items() if series}


def guidance_of(result: Result) -> float:
    return float(result.decoding["guidance"])


def nfe_curves(results: Sequence[Result]) -> Curves:
    """Figure 1: L2D score against NFE, one series per model and solver (the level count left free).
    Guided and token-search decoding have their own axes and stay out. Empty unless some series has
    at least two NFE values: a single setting is already in the main table."""
    plain_l2d = [r for r in results if r.is_l2d and r.decoding.get("guidance") is None
                 and not r.decoding.get("token_search")]
    found = curves(plain_l2d, "levels", lambda r: r.nfe)
    swept = any(len({r.nfe for r in members}) > 1 for series in found.values() for members in series.values())
    return found if swept else {}


def base_scores(results: Sequence[Result]) -> Curves:
    """The plain LMs' scores (the base, LoRA and full finetuning): Figure 1's horizontal reference lines."""
    found = curves([r for r in results if not r.is_l2d], None, lambda r: r.nfe)
    return {panel: {f"{label} (no diffusion)": members for label, members in series.items()}
            for panel, series in found.items()}


def adaptive_nfe(results: Sequence[Result]) -> Curves:
    """Figure 4: the NFE that adaptive solvers spend on each task."""
    return curves([r for r in results if r.adaptive], None, lambda r: r.nfe)


def guidance_curves(results: Sequence[Result]) -> Curves:
    """Figure 5: score against the guidance strength w_g (unguided results are not on this axis)."""
    return curves([r for r in results if r.decoding.get("guidance") is not None], "guidance", guidance_of)
