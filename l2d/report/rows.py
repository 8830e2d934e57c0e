"""Rows of the report: which results belong together, in what order, and what they are called."""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, TypeVar

from l2d.diffusion.solver import ADAPTIVE
from l2d.report.records import Result, TrainingRun
from l2d.tasks.registry import TASKS

log = logging.getLogger(__name__)
K = TypeVar("K")
METHOD_NAMES = {"base": "base", "lora": "LoRA", "lora_rl": "LoRA + RL", "full": "full finetuning",
                "full_rl": "full + RL", "l2d_lora": "L2D-LoRA", "l2d_lora_rl": "L2D-LoRA + RL", "l2d_full": "L2D-full",
                "l2d_full_rl": "L2D-full + RL"}
# Decoding fields each task sets for itself (code tasks draw 10 samples): not part of a row's identity.
PER_TASK_FIELDS = ("max_new_tokens", "samples")
LATER_FIELDS = {"t_start": 0.0}  # decoding fields results files gained later, with the value they had before
DEFAULT_SOLVER, DEFAULT_LEVELS = "midpoint", 8  # the paper's main setting: 15 NFE
CATEGORY_ORDER = ("math", "code", "general")  # the paper's Table 1; other categories follow by name
PROTOCOL_ORDER = ("paper", "greedy")  # the paper's tables, then its Table 15; others follow by name
SOLVER_T_FINAL = {solver: 0.99 for solver in ("rk4", *ADAPTIVE)}  # where conf/solver ends each; others at 1


@dataclass(frozen=True)
class RowKey:
    """A model (base model, method, checkpoint, label) decoded in one way, under one scoring protocol."""

    protocol: str
    base_model: str
    method: str
    checkpoint: str | None
    label: str | None
    settings: tuple[tuple[str, str], ...]  # decoding fields as (name, JSON value), sorted

    def setting(self, name: str, default: Any = None) -> Any:
        values = dict(self.settings)
        return json.loads(values[name]) if name in values else default


def row_key(result: Result, vary: str | None = None) -> RowKey:
    """The row of a result; `vary` drops one decoding field, joining a sweep over it into one series. A field
    added later is dropped at its default, so results written before it existed share the row."""
    dropped = {*PER_TASK_FIELDS, vary}
    settings = tuple(sorted((name, json.dumps(value, sort_keys=True)) for name, value in result.decoding.items()
                            if name not in dropped and LATER_FIELDS.get(name, object()) != value))
    model = result.model
    return RowKey(protocol=result.protocol, base_model=str(model.get("base_model")), method=model["method"],
                  checkpoint=model.get("checkpoint"), label=model.get("label"), settings=settings)


def variations(key: RowKey, nfe: float | None) -> tuple[list[str], list[str]]:
    """How the decoding departs from the default: (details in parentheses, additions after a '+'). The emitted
    token's temperature is the protocol's, shown beside the name (never mixed into it)."""
    details, additions = [], []
    solver = key.setting("solver", "none")
    if solver in ADAPTIVE:
        details.append(f"{solver}, adaptive")
    elif solver != "none" and (solver, key.setting("levels", DEFAULT_LEVELS)) != (DEFAULT_SOLVER, DEFAULT_LEVELS):
        details.append(solver if nfe is None or key.setting("levels") is None else f"{solver}, {nfe:.0f} NFE")
    t_final = key.setting("t_final")
    if t_final is not None and t_final != SOLVER_T_FINAL.get(solver, 1.0):
        details.append(f"to t = {t_final:g}")
    if key.setting("t_start", 0.0):
        details.append(f"from t = {key.setting('t_start'):g}")
    if key.setting("x1_estimate", "sample") != "sample":
        details.append(f"x̂ from {key.setting('x1_estimate')}")
    if key.setting("x1_temperature", 0.0):
        details.append(f"x̂ at temperature {key.setting('x1_temperature'):g}")
    if key.setting("guidance") is not None:
        additions.append(f"guidance {key.setting('guidance'):g}")
    if key.setting("token_search"):
        additions.append("token search")
    return details, additions


def describe(key: RowKey, nfe: float | None) -> str:
    """The row name: the file's label, else the base model's name (as in the paper) or the method,
    plus the decoding when it is not the default, e.g. 'L2D-LoRA (euler, 15 NFE) + guidance 1.5'."""
    if key.label:
        return key.label
    name = key.base_model if key.method == "base" else METHOD_NAMES.get(key.method, key.method)
    details, additions = variations(key, nfe)
    return "".join([name, f" ({', '.join(details)})" if details else "", *(f" + {a}" for a in additions)])


def short_paths(paths: Sequence[str | None]) -> list[str]:
    """Each path without the prefix they all share and without a trailing 'export' (the run's folder)."""
    parts = [PurePath(p).parts if p else () for p in paths]
    common = len(os.path.commonprefix(parts)) if all(parts) else 0
    shorts = []
    for path_parts in parts:
        rest = list(path_parts[min(common, len(path_parts) - 1):]) if path_parts else ["-"]
        if len(rest) > 1 and rest[-1] == "export":
            rest.pop()
        shorts.append(str(PurePath(*rest)))  # joins after a leading '/' part without doubling it
    return shorts


def distinctions(keys: Sequence[RowKey]) -> list[str]:
    """What tells apart rows of one protocol that would get the same name: method, base model, checkpoint,
    decoding fields."""
    columns = [[k.method for k in keys], [k.base_model for k in keys], short_paths([k.checkpoint for k in keys])]
    names = sorted({name for k in keys for name, _ in k.settings})
    columns += [[f"{name}={k.setting(name)}" for k in keys] for name in names]
    differing = [column for column in columns if len(set(column)) > 1]
    return [", ".join(column[i] for column in differing) for i in range(len(keys))]


def unique(labels: dict[K, str], distinguish: Callable[[list[K]], list[str]]) -> dict[K, str]:
    """Items that share a label get what tells them apart appended: 'L2D-LoRA [run_a]'."""
    by_label: dict[str, list[K]] = defaultdict(list)
    for item, label in labels.items():
        by_label[label].append(item)
    named = dict(labels)
    for label, items in by_label.items():
        if len(items) > 1:
            named.update((item, f"{label} [{tag}]") for item, tag in zip(items, distinguish(items), strict=True))
    return named


def checkpoint_tags(keys: Sequence[RowKey]) -> dict[RowKey, str]:
    """Where one method on one base model comes from several checkpoints, every row of it names its checkpoint
    (its short path), not only the rows whose names would collide: a checkpoint's rows then read as one model.
    A row named by its file's label keeps that name."""
    groups: dict[tuple, list[RowKey]] = defaultdict(list)
    for key in keys:
        if not key.label:
            groups[key.method, key.base_model].append(key)
    tags = {}
    for group in groups.values():
        checkpoints = sorted({key.checkpoint or "" for key in group})
        if len(checkpoints) > 1:
            short = dict(zip(checkpoints, short_paths(checkpoints), strict=True))
            tags.update((key, short[key.checkpoint or ""]) for key in group)
    return tags


def protocol_rank(protocol: str) -> tuple:
    return (PROTOCOL_ORDER.index(protocol) if protocol in PROTOCOL_ORDER else len(PROTOCOL_ORDER)), protocol


def sort_key(key: RowKey, nfe: float, label: str) -> tuple:
    """Grouped by protocol and base model, in the paper's method order, the default decoding first, then by NFE."""
    methods = list(METHOD_NAMES)
    rank = methods.index(key.method) if key.method in methods else len(methods)
    is_default = variations(key, None) == ([], [])
    return protocol_rank(key.protocol), key.base_model, rank, key.checkpoint or "", not is_default, nfe, label


def label_rows(results: Iterable[Result], vary: str | None = None) -> dict[RowKey, str]:
    """Names of the rows (or, with `vary`, the series) of `results`, in display order: unique within each
    protocol, so one model keeps one name (and one colour) under every protocol."""
    members: dict[RowKey, list[Result]] = defaultdict(list)
    for result in results:
        members[row_key(result, vary)].append(result)
    nfe = {key: sum(r.nfe for r in group) / len(group) for key, group in members.items()}
    named = {key: describe(key, nfe[key]) for key in members}
    for key, tag in checkpoint_tags(list(members)).items():
        named[key] += f" [{tag}]"
    labels: dict[RowKey, str] = {}
    for protocol in {key.protocol for key in members}:
        labels.update(unique({key: named[key] for key in members if key.protocol == protocol}, distinctions))
    return dict(sorted(labels.items(), key=lambda item: sort_key(item[0], nfe[item[0]], item[1])))


def task_columns(results: Iterable[Result]) -> dict[str, list[str]]:
    """Category -> its tasks, in the paper's order (known tasks as listed in the registry, others by name)."""
    known = list(TASKS)
    categories: dict[str, set[str]] = defaultdict(set)
    for result in results:
        categories[result.category].add(result.task)
    category_rank = {name: (CATEGORY_ORDER.index(name) if name in CATEGORY_ORDER else len(CATEGORY_ORDER), name)
                     for name in categories}
    return {category: sorted(categories[category], key=lambda t: (known.index(t) if t in known else len(known), t))
            for category in sorted(categories, key=category_rank.get)}


def newest_per_row_and_task(results: Iterable[Result]) -> list[Result]:
    """One result per (row, task): a rerun replaces the older file, with a warning naming both."""
    chosen: dict[tuple[RowKey, str], Result] = {}
    for result in sorted(results, key=lambda r: r.time):
        slot = (row_key(result), result.task)
        if slot in chosen:
            log.warning("%s and %s are the same model, decoding and task: using the newer %s",
                        chosen[slot].path, result.path, result.path)
        chosen[slot] = result
    return list(chosen.values())


def common_folder(paths: Sequence[str]) -> str | None:
    """The folder the paths share, when there are several and it is more than the file system's root."""
    try:
        root = os.path.commonpath(paths) if len(paths) > 1 else ""
    except ValueError:  # absolute and relative paths mixed
        return None
    return root if root.strip("/") else None


def within(override: str, root: str | None) -> str:
    """'key=<root>/a/b' as 'key=a/b'; any other override unchanged."""
    key, separator, value = override.partition("=")
    if root and separator and value.startswith(root + "/"):
        return f"{key}={value[len(root) + 1:]}"
    return override


def run_labels(runs: Sequence[TrainingRun]) -> dict[TrainingRun, str]:
    """'<method> <overrides>' with only the overrides that not every run shares (what a sweep varies),
    else '<method> <folder>' (the method alone in a folder of its name). A path among the runs' folders is written
    from their common folder on ('finetuned=lora/export'), so labels name sibling runs, not where they lie on one
    machine."""
    shared = set.intersection(*(set(run.overrides) for run in runs)) if runs else set()
    root = common_folder([str(run.path) for run in runs])
    # A resumed run is the run it continues: where it started again is no part of its name.
    names = {run: " ".join(within(o, root) for o in run.overrides if o not in shared and not o.startswith("ckpt_path="))
             or run.path.name for run in runs}
    return unique({run: run.method if name == run.method else f"{run.method} {name}" for run, name in names.items()},
                  lambda same: short_paths([str(run.path) for run in same]))
