"""The paper's figures as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from l2d.report.records import Result, TrainingRun
from l2d.report.rows import run_labels
from l2d.report.series import Curves, guidance_of
from l2d.report.tables import panel_title

COLUMNS = 3  # subplots per figure row, one per task
INCHES_PER_CHARACTER = 0.075  # of a legend label at the default font size
RL_PANEL_INCHES = 5.0
# A run's label holds its overrides (paths among them): wrapped to its panel (the axes take ~80% of it).
RL_TITLE_CHARACTERS = int(0.8 * RL_PANEL_INCHES / INCHES_PER_CHARACTER)


def colours(labels: Sequence[str]) -> dict[str, tuple]:
    """One colour per series, the same in every subplot."""
    palette = plt.get_cmap("tab10")
    return {label: palette(i % 10) for i, label in enumerate(labels)}


def series_labels(found: Curves) -> list[str]:
    return list(dict.fromkeys(label for series in found.values() for label in series))


def score_axis_label(results: Sequence[Result]) -> str:
    return "pass@1 (%)" if any(r.metric == "pass@k" for r in results) else "accuracy (%)"


def error_bars(results: Sequence[Result]) -> list[list[float]] | None:
    """Below/above each score, in percentage points; None when a result has no interval."""
    if any(r.interval is None for r in results):
        return None
    # Clamped at 0: results files written before wilson_interval held its p carry bounds 1e-19 past it.
    return [[100 * max(0.0, r.score - r.interval[0]) for r in results],
            [100 * max(0.0, r.interval[1] - r.score) for r in results]]


def legend_below(figure: Figure, handles: Sequence, labels: Sequence[str]) -> None:
    """One legend for the whole figure, under the plots, in as many columns as its width allows."""
    widest = INCHES_PER_CHARACTER * max(map(len, labels)) + 0.8
    columns = max(1, min(len(labels), 3, int(figure.get_figwidth() // widest)))
    figure.legend(handles, labels, loc="outside lower center", ncol=columns, frameon=False)


def per_task_figure(found: Curves, x: Callable[[Result], float], x_label: str, title: str,
                    references: Curves | None = None, log2_x: bool = False) -> Figure:
    """One subplot per panel (task and protocol), one line per series (with 95% error bars), references as
    dashed lines."""
    references = references or {}
    labels = series_labels(found) + series_labels(references)
    colour = colours(labels)
    rows, columns = math.ceil(len(found) / COLUMNS), min(COLUMNS, len(found))
    width = max(4.6 * columns, INCHES_PER_CHARACTER * max(map(len, labels)) + 1.0)  # the legend fits
    figure, axes = plt.subplots(rows, columns, figsize=(width, 3.4 * rows + 1.0), squeeze=False,
                                layout="constrained")
    for ax, (panel, series) in zip(axes.flat, found.items(), strict=False):  # a last row's spare axes are hidden below
        for label, members in series.items():
            ax.errorbar([x(r) for r in members], [100 * r.score for r in members], yerr=error_bars(members),
                        marker="o", capsize=3, elinewidth=1, color=colour[label], label=label)
        for label, members in references.get(panel, {}).items():
            ax.axhline(100 * members[-1].score, linestyle="--", color=colour[label], label=label)
        if log2_x:
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.set_title(panel_title(panel))
        ax.set_xlabel(x_label)
        ax.set_ylabel(score_axis_label([r for members in series.values() for r in members]))
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(found):]:
        ax.set_visible(False)
    handles: dict[str, object] = {}  # every series once, whichever subplot has it
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    legend_below(figure, list(handles.values()), list(handles))
    figure.suptitle(title)
    return figure


def accuracy_vs_nfe(found: Curves, base: Curves) -> Figure:
    return per_task_figure(found, lambda r: r.nfe, "NFE per token (log2 scale)", "Score against diffusion steps",
                           references=base, log2_x=True)


def accuracy_vs_guidance(found: Curves) -> Figure:
    return per_task_figure(found, guidance_of, "guidance strength $w_g$", "Score against guidance strength")


def nfe_per_task(found: Curves) -> Figure:
    """Grouped bars: one group per panel (task and protocol), one bar per adaptive-solver series, its mean NFE
    written on top."""
    tasks, labels = list(found), series_labels(found)
    colour = colours(labels)
    width = 0.8 / len(labels)
    figure, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(tasks) * len(labels) + 2.5), 4.6), layout="constrained")
    for i, label in enumerate(labels):
        present = [t for t, task in enumerate(tasks) if label in found[task]]
        positions = [t + (i - (len(labels) - 1) / 2) * width for t in present]
        bars = ax.bar(positions, [found[tasks[t]][label][-1].nfe for t in present], width, color=colour[label],
                      label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(range(len(tasks)), [panel_title(t) for t in tasks])
    ax.set_ylabel("mean NFE per token")
    ax.set_title("Adaptive solvers: evaluations per token by task")
    ax.margins(y=0.15)
    ax.grid(axis="y", alpha=0.3)
    legend_below(figure, *ax.get_legend_handles_labels())
    return figure


def loss_vs_t(runs: Sequence[TrainingRun]) -> Figure:
    """The validation loss at fixed t when the runs logged it (one line per L2D run, the plain LMs'
    teacher-forced validation loss as dashed reference lines), else the loss per t-bin."""
    if any(run.loss_at_t() for run in runs):
        return loss_at_fixed_t(runs)
    return loss_per_bin(runs)


def loss_at_fixed_t(runs: Sequence[TrainingRun]) -> Figure:
    labels = run_labels(runs)
    colour = colours(list(labels.values()))
    figure, ax = plt.subplots(figsize=(7.0, 5.0), layout="constrained")
    for run in runs:
        if losses := run.loss_at_t():
            ax.plot(list(losses), list(losses.values()), "o-", color=colour[labels[run]], label=labels[run])
        elif not run.is_l2d and (loss := run.final_val_loss()) is not None:
            ax.axhline(loss, linestyle="--", color=colour[labels[run]], label=f"{labels[run]} (next-token)")
    ax.set_xlabel("diffusion time t (t = 0: the frozen base alone; t = 1: the path sees the answer)")
    ax.set_ylabel("validation cross-entropy (end of training)")
    ax.set_title("Validation loss at fixed t, every validation position")
    ax.set_xlim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    legend_below(figure, *ax.get_legend_handles_labels())
    return figure


def loss_per_bin(runs: Sequence[TrainingRun]) -> Figure:
    """Training (solid) and validation (dashed) loss per t-bin, one colour per run."""
    labels = run_labels(runs)
    colour = colours(list(labels.values()))
    figure, ax = plt.subplots(figsize=(7.0, 5.0), layout="constrained")
    for run in runs:
        for split, style in (("train", "o-"), ("val", "s--")):
            losses = run.loss_per_bin(split)
            if losses:
                centres = [(i + 0.5) / len(losses) for i in range(len(losses))]
                ax.plot(centres, losses, style, color=colour[labels[run]])
    ax.set_xlabel("diffusion time t (bin centre)")
    ax.set_ylabel("cross-entropy loss (end of training)")
    ax.set_title("Loss along the diffusion process")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    # A legend entry per run (its colour) and per split (its line style), not one per combination.
    handles = [Line2D([], [], color=colour[label]) for label in labels.values()]
    handles += [Line2D([], [], color="grey", linestyle="-", marker="o"),
                Line2D([], [], color="grey", linestyle="--", marker="s")]
    legend_below(figure, handles, [*labels.values(), "train", "validation"])
    return figure


def rl_reward(runs: Sequence[TrainingRun], window: int = 5) -> Figure:
    """RL stages: rollout reward against rollout batch, one panel per run, one colour per level count (points:
    each batch; line: the running mean of that level count's last `window` batches)."""
    labels = run_labels(runs)
    count = len(runs)
    figure, axes = plt.subplots(1, count, figsize=(RL_PANEL_INCHES * count, 4.2), squeeze=False, layout="constrained")
    levels = sorted({n for run in runs for n in run.reward_by_levels()})
    colour = colours([str(n) for n in levels])
    for ax, run in zip(axes.flat, runs, strict=True):
        for n, points in run.reward_by_levels().items():
            batches, rewards = [b for b, _ in points], [100 * r for _, r in points]
            smooth = [sum(rewards[max(0, i - window + 1):i + 1]) / len(rewards[max(0, i - window + 1):i + 1])
                      for i in range(len(rewards))]
            label = "plain LM" if n == 1 else f"levels {n}"
            ax.plot(batches, rewards, "o", alpha=0.35, color=colour[str(n)])
            ax.plot(batches, smooth, "-", color=colour[str(n)], label=label)
        ax.set_title(textwrap.fill(labels[run], RL_TITLE_CHARACTERS), fontsize="medium")
        ax.set_xlabel("rollout batch")
        ax.set_ylabel("mean verifier reward (%)")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    figure.suptitle("RL: rollout reward by level count")
    return figure


def save(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="png", dpi=120)
    plt.close(figure)
