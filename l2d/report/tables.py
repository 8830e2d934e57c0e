"""report.md: the paper's main table, the data behind each figure, and where it all came from."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from l2d.report.records import Result, TrainingRun
from l2d.report.rows import label_rows, row_key, run_labels, task_columns
from l2d.report.series import Curves, Panel, adaptive_nfe, base_scores, guidance_curves, guidance_of, nfe_curves
from l2d.tasks.summary import paired

TASK_TITLES = {"gsm8k": "GSM8K", "math": "MATH", "humaneval": "HumanEval", "mbpp": "MBPP", "mmlu": "MMLU",
               "mmlu_pro": "MMLU-Pro", "arc_easy": "ARC-Easy", "arc_challenge": "ARC-Challenge", "piqa": "PIQA"}
CATEGORY_TITLES = {"math": "Math", "code": "Coding", "general": "General"}
AVERAGES_NOTE = (
    "Scores in % (code tasks: pass@1), ± half the width of the 95% interval (Wilson's with one completion per "
    "problem; with several, the score is the mean over all completions and the interval a bootstrap over "
    "problems). Protocol: `paper` samples the emitted token at temperature 1 (the paper's tables), `greedy` "
    "takes the most likely one (its Table 15); averages never mix protocols. A category's average "
    "is the mean over its tasks; **Avg** is the mean of the category averages, as the paper's \"Average "
    "Score\" (there every category has two tasks, so it equals the mean over tasks; here it keeps a "
    "category with more tasks from outweighing the others). `*`: averaged over fewer tasks than the "
    "table has, so not comparable with complete rows.")


def task_title(task: str) -> str:
    return TASK_TITLES.get(task, task.removeprefix("reasoning_gym/"))


def panel_title(panel: Panel) -> str:
    task, protocol = panel
    return f"{task_title(task)}, {protocol}"


def category_title(category: str) -> str:
    return CATEGORY_TITLES.get(category, category)


def percent(fraction: float) -> str:
    return f"{100 * fraction:.2f}"


def score_cell(result: Result) -> str:
    interval = result.interval
    return percent(result.score) + ("" if interval is None else f" ±{50 * (interval[1] - interval[0]):.1f}")


def parameters(count: int | None) -> str:
    """Like the paper: '73M', '1235M'; one decimal below 10M; '-' when nothing is trained (the base)."""
    if count is None:
        return "-"
    if count >= 10_000_000:
        return f"{count / 1e6:.0f}M"
    if count >= 1_000_000:
        return f"{count / 1e6:.1f}M"
    return f"{count / 1e3:.0f}K" if count >= 1_000 else str(count)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def shown_path(path: Path) -> str:
    """Relative to the working directory when under it: shorter, and the same on every machine."""
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def average(scores: list[float]) -> float | None:
    return sum(scores) / len(scores) if scores else None


def average_cell(value: float | None, incomplete: bool) -> str:
    return "-" if value is None else percent(value) + ("*" if incomplete else "")


def main_header(columns: dict[str, list[str]]) -> list[str]:
    header = ["Model", "Protocol"]
    for category, tasks in columns.items():
        header += [task_title(t) for t in tasks] + ([f"{category_title(category)} avg"] if len(tasks) > 1 else [])
    return header + ["Avg", "Params"]


def main_row(label: str, row: dict[str, Result], columns: dict[str, list[str]]) -> list[str]:
    cells, category_means, incomplete = [label, next(iter(row.values())).protocol], [], False
    for tasks in columns.values():
        cells += [score_cell(row[t]) if t in row else "-" for t in tasks]
        mean = average([row[t].score for t in tasks if t in row])
        missing = any(t not in row for t in tasks)
        incomplete |= missing
        if len(tasks) > 1:
            cells.append(average_cell(mean, missing))
        if mean is not None:
            category_means.append(mean)
    trained = next(iter(row.values())).model.get("trainable_parameters")
    return cells + [average_cell(average(category_means), incomplete), parameters(trained)]


def main_table(results: Sequence[Result]) -> str:
    """Rows: models and decodings. Columns: tasks by category, the category averages (for categories
    with several tasks), the overall average and the trainable parameters."""
    columns = task_columns(results)
    labels = label_rows(results)
    by_row: dict[object, dict[str, Result]] = {key: {} for key in labels}
    for result in results:
        by_row[row_key(result)][result.task] = result
    rows = [main_row(labels[key], row, columns) for key, row in by_row.items()]
    return "## Results\n\n" + markdown_table(main_header(columns), rows) + "\n\n" + AVERAGES_NOTE


def nfe_table(found: Curves, base: Curves) -> str:
    rows = []
    for (task, protocol), series in found.items():
        rows += [[task_title(task), protocol, label, f"{r.nfe:g}", score_cell(r)]
                 for label, members in base.get((task, protocol), {}).items() for r in members]
        rows += [[task_title(task), protocol, label, f"{r.nfe:.1f}", score_cell(r)]
                 for label, members in series.items() for r in members]
    return ("## Score against NFE per token (Figure 1)\n\nMean evaluations of the diffusion path per "
            "generated token; the base model decodes with one forward pass.\n\n"
            + markdown_table(["Task", "Protocol", "Model", "NFE", "Score %"], rows))


def paired_table(found: Curves) -> str | None:
    """Each fixed-grid decoding of a series against the series' fewest-NFE diffusion decoding, on the problems
    both scored: problems whose score rose and fell, the change with its interval, and the exact paired
    permutation test (McNemar's with one completion per problem). Paired, it resolves a change in steps that the
    two separate intervals cannot (their noise is largely the same problems' difficulty)."""
    rows = []
    for (task, protocol), series in found.items():
        for label, members in series.items():
            fixed = [r for r in members if r.outcomes and not r.adaptive and r.decoding.get("levels", 1) > 1]
            if len(fixed) < 2:
                continue
            reference, *others = fixed
            for result in others:
                pair = paired(reference.outcomes, result.outcomes)
                rows.append([task_title(task), protocol, label, f"{reference.nfe:.1f} → {result.nfe:.1f}",
                             str(pair.problems), f"+{pair.gained} / −{pair.lost}",
                             f"{100 * pair.change:+.1f} ({100 * pair.ci95_low:+.1f} to {100 * pair.ci95_high:+.1f})",
                             f"{pair.p:.3g}"])
    if not rows:
        return None
    return ("## More steps, paired on the same problems\n\nEach decoding against the same model's fewest-NFE "
            "diffusion decoding under the same protocol: problems it scores higher than the reference (+; with one "
            "completion per problem, right where the reference was wrong) and lower (−), the change in points with its "
            "95% interval (a bootstrap over the problems of their score differences), and p of the exact two-sided "
            "paired permutation test of the score differences (McNemar's test with one completion per problem).\n\n"
            + markdown_table(["Task", "Protocol", "Model", "NFE", "Problems", "Gained / lost", "Change (95%)", "p"],
                             rows))


def adaptive_table(found: Curves) -> str:
    panels = list(found)
    labels = list(dict.fromkeys(label for series in found.values() for label in series))
    rows = []
    for label in labels:
        nfes = [found[p][label][-1].nfe if label in found[p] else None for p in panels]
        known = [n for n in nfes if n is not None]
        rows.append([label, *("-" if n is None else f"{n:.1f}" for n in nfes), f"{sum(known) / len(known):.1f}"])
    return ("## NFE per token of adaptive solvers (Figure 4)\n\n"
            + markdown_table(["Model", *map(panel_title, panels), "Mean"], rows))


def guidance_table(found: Curves) -> str:
    strengths = sorted({guidance_of(r) for series in found.values() for members in series.values() for r in members})
    rows = []
    for (task, protocol), series in found.items():
        for label, members in series.items():
            by_strength = {guidance_of(r): score_cell(r) for r in members}
            rows.append([task_title(task), protocol, label, *(by_strength.get(w, "-") for w in strengths)])
    return ("## Score against guidance strength (Figure 5)\n\n"
            + markdown_table(["Task", "Protocol", "Model", *(f"w = {w:g}" for w in strengths)], rows))


def loss_table(runs: Sequence[TrainingRun]) -> str:
    labels = run_labels(runs)
    rows = [[labels[run], split, *(f"{loss:.3f}" for loss in losses)]
            for run in runs for split in ("train", "val") if (losses := run.loss_per_bin(split))]
    width = max(len(row) - 2 for row in rows)
    centres = [f"t = {(i + 0.5) / width:.2f}" for i in range(width)]
    return ("## Loss per diffusion time (Figure 3)\n\nCross-entropy per bin of t, averaged over the last 20% "
            "of the values logged (the end of training).\n\n" + markdown_table(["Run", "Split", *centres], rows))


def loss_at_t_table(runs: Sequence[TrainingRun]) -> str:
    labels = run_labels(runs)
    losses = {run: run.loss_at_t() for run in runs}
    times = sorted({t for found in losses.values() for t in found})
    rows = [[labels[run], *(f"{found[t]:.3f}" if t in found else "-" for t in times)]
            for run, found in losses.items() if found]
    rows += [[f"{labels[run]} (next-token)", *[f"{loss:.3f}"] * len(times)]
             for run in runs if not run.is_l2d and (loss := run.final_val_loss()) is not None]
    return ("## Validation loss at fixed t\n\nThe last validation: cross-entropy on every validation answer "
            "position at each t (the same noise each time); t = 0 is the frozen base alone. Plain LMs: their "
            "teacher-forced loss on the same positions, at every t.\n\n"
            + markdown_table(["Run", *(f"t = {t:g}" for t in times)], rows))


def reward_table(runs: Sequence[TrainingRun]) -> str:
    """RL stages: the mean rollout reward by level count in the first and the last third of the batches."""
    labels = run_labels(runs)
    rows = []
    for run in runs:
        found = run.reward_by_levels()
        total = sum(len(points) for points in found.values())
        for levels, points in found.items():
            first = [r for batch, r in points if batch < total / 3]
            last = [r for batch, r in points if batch >= 2 * total / 3]
            cells = [f"{100 * sum(part) / len(part):.1f}" if part else "-" for part in (first, last)]
            change = f"{100 * (sum(last) / len(last) - sum(first) / len(first)):+.1f}" if first and last else "-"
            rows.append([labels[run], "plain LM" if levels == 1 else str(levels), str(len(points)), *cells, change])
    return ("## RL: rollout reward by level count\n\nThe mean verifier reward (%) of the rollout batches that drew "
            "each level count, in the first and the last third of the stage.\n\n"
            + markdown_table(["Run", "Levels", "Batches", "First third", "Last third", "Change"], rows))


def inputs_section(results: Sequence[Result], runs: Sequence[TrainingRun]) -> str:
    parts = ["## Inputs"]
    if results:
        labels = label_rows(results)
        rows = [[shown_path(r.path), task_title(r.task), labels[row_key(r)], r.protocol, percent(r.score),
                 f"`{r.command}`"] for r in sorted(results, key=lambda r: str(r.path))]
        parts.append(markdown_table(["Results file", "Task", "Model", "Protocol", "Score %", "Command"], rows))
    if runs:
        labels = run_labels(runs)
        rows = [[shown_path(run.path), labels[run], parameters(run.trainable_parameters), duration(run.wall_seconds)]
                for run in runs]
        parts.append(markdown_table(["Training run", "Name", "Params", "Wall time"], rows))
    return "\n\n".join(parts)


def report(results: Sequence[Result], runs: Sequence[TrainingRun]) -> str:
    """The whole report.md; sections without data are left out."""
    sections = ["# L2D report"]
    if results:
        sections.append(main_table(results))
    if found := nfe_curves(results):
        sections.append(nfe_table(found, base_scores(results)))
        if paired := paired_table(found):
            sections.append(paired)
    if found := adaptive_nfe(results):
        sections.append(adaptive_table(found))
    if found := guidance_curves(results):
        sections.append(guidance_table(found))
    if any(run.loss_at_t() for run in runs):
        sections.append(loss_at_t_table(runs))
    if any(run.has_loss_per_bin for run in runs):
        sections.append(loss_table(runs))
    if rl := [run for run in runs if run.reward_by_levels()]:
        sections.append(reward_table(rl))
    sections.append(inputs_section(results, runs))
    return "\n\n".join(sections) + "\n"
