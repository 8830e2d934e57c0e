"""The report's records: an evaluation (`Result`, from a results.json or a W&B evaluation run) and a
training run (`TrainingRun`, its logged metric columns), read by l2d.report.inputs and l2d.report.wandb_runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l2d.diffusion.solver import ADAPTIVE
from l2d.export import is_l2d
from l2d.tasks.protocol import PAPER_TEMPERATURE, protocol_name
from l2d.tasks.registry import TASKS
from l2d.tasks.summary import problem_score

RESULTS_FILE = "results.json"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
TAIL_FRACTION = 0.2  # Figure 3: average the last 20% of a column's logged values (at least one)


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, usable as a dict key
class Result:
    """One results.json: a (checkpoint, task, decoding) evaluation."""

    path: Path
    task: str
    category: str
    metric: str
    model: dict[str, Any]
    decoding: dict[str, Any]
    summary: dict[str, Any]
    command: str
    started: float | None = None  # W&B runs: when the run began (results files: their modification time)
    outcomes: dict[str, float] | None = None  # problem id -> its score (fraction of completions right); files only
    recorded_protocol: dict[str, Any] | None = None  # results.json's `protocol` (older files: none)

    @property
    def time(self) -> float:
        return self.started if self.started is not None else self.path.stat().st_mtime

    @property
    def protocol(self) -> str:
        """The scoring protocol (l2d.tasks.protocol): recorded, or named from the emitted token's temperature
        (files written before protocols were recorded; `python -m l2d.evaluate` then sampled at 1 by default)."""
        if self.recorded_protocol and self.recorded_protocol.get("name"):
            return str(self.recorded_protocol["name"])
        return protocol_name(float(self.decoding.get("temperature", PAPER_TEMPERATURE)))

    @property
    def score(self) -> float:
        return float(self.summary["score"])

    @property
    def interval(self) -> tuple[float, float] | None:
        low, high = self.summary.get("ci95_low"), self.summary.get("ci95_high")
        return None if low is None or high is None else (float(low), float(high))

    @property
    def nfe(self) -> float:
        return float(self.summary.get("mean_nfe", 1.0))

    @property
    def adaptive(self) -> bool:
        return self.decoding.get("solver") in ADAPTIVE

    @property
    def is_l2d(self) -> bool:
        return self.decoding.get("solver", "none") != "none"


@dataclass(frozen=True, eq=False)
class TrainingRun:
    """A training run directory: the logged metric columns (non-empty values only, in row order)."""

    path: Path
    method: str
    overrides: list[str]
    trainable_parameters: int | None
    wall_seconds: float | None
    columns: dict[str, list[float]] = field(repr=False)

    @property
    def has_loss_per_bin(self) -> bool:
        return bool(self.loss_per_bin("train") or self.loss_per_bin("val"))

    @property
    def is_l2d(self) -> bool:
        return is_l2d(self.method)

    def loss_at_t(self) -> dict[float, float]:
        """The last validation loss at each fixed t (`val/loss_at_t<t>`, the same positions and noise at
        every validation); empty when not logged (plain LMs, older runs)."""
        found = {float(match[1]): values[-1] for name, values in self.columns.items()
                 if values and (match := re.fullmatch(r"val/loss_at_t([0-9.]+)", name))}
        return dict(sorted(found.items()))

    def final_val_loss(self) -> float | None:
        """The last validation loss: for a plain LM, teacher-forced next-token loss on the answer positions."""
        values = self.columns.get("val/loss")
        return values[-1] if values else None

    def reward_by_levels(self) -> dict[int, list[tuple[int, float]]]:
        """An RL stage's rollout reward by the level count its batch drew: levels -> [(rollout batch, mean
        reward)]; `rl/reward` and `rl/levels` are logged together once per batch. Empty for other runs."""
        rewards, levels = self.columns.get("rl/reward", []), self.columns.get("rl/levels", [])
        found: dict[int, list[tuple[int, float]]] = {}
        if rewards and len(rewards) == len(levels):
            for batch, (reward, count) in enumerate(zip(rewards, levels, strict=True)):
                found.setdefault(int(count), []).append((batch, reward))
        return dict(sorted(found.items()))

    def loss_per_bin(self, split: str) -> list[float]:
        """Mean of the last values of `<split>/loss_t_bin<i>` for each bin i; empty when not logged."""
        bins = sorted(int(found[1]) for name in self.columns
                      if (found := re.fullmatch(rf"{split}/loss_t_bin(\d+)", name)))
        if bins != list(range(len(bins))):
            return []
        return [tail_mean(self.columns[f"{split}/loss_t_bin{i}"]) for i in bins]


def tail_mean(values: Sequence[float]) -> float:
    """Mean of the last TAIL_FRACTION of the values (at least one): the end of training, less noisy."""
    count = max(1, round(TAIL_FRACTION * len(values)))
    return sum(values[-count:]) / count


class NotUsable(ValueError):
    """A file that is not a results file or a training run; skipped with a warning."""


class NoInputs(ValueError):
    """Nothing usable under the given paths."""


NUMBER, TEXT, NULL, LIST = "a number", "a string", "null", "a list"
# The fields of a results file that the report reads, and what each may be (where present): a file that breaks one
# is skipped, naming the field, instead of failing the report where the field is used.
FIELD_KINDS = {
    "category": (TEXT, NULL), "model.method": (TEXT,), "model.base_model": (TEXT, NULL),
    "model.checkpoint": (TEXT, NULL), "model.label": (TEXT, NULL), "model.trainable_parameters": (NUMBER, NULL),
    "decoding.solver": (TEXT,),
    "decoding.temperature": (NUMBER,), "decoding.levels": (NUMBER,), "decoding.t_final": (NUMBER, NULL),
    "decoding.t_start": (NUMBER, NULL), "decoding.x1_temperature": (NUMBER, NULL), "decoding.guidance": (NUMBER, NULL),
    "summary.score": (NUMBER,), "summary.ci95_low": (NUMBER, NULL), "summary.ci95_high": (NUMBER, NULL),
    "summary.mean_nfe": (NUMBER,),
}


def kind_of(value: Any) -> str | None:
    if value is None:
        return NULL
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return NUMBER
    return TEXT if isinstance(value, str) else LIST if isinstance(value, list) else None


def shown(value: Any) -> str:
    """The value as a warning quotes it: its repr, cut to 40 characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_fields(data: dict[str, Any]) -> None:
    """Every field of FIELD_KINDS that is present has an allowed kind; else NotUsable naming the first that has not."""
    for name, allowed in FIELD_KINDS.items():
        section, _, key = name.rpartition(".")
        holder = data[section] if section else data
        if key in holder and kind_of(holder[key]) not in allowed:
            raise NotUsable(f"{name} must be {' or '.join(allowed)}, got {shown(holder[key])}")


def outcomes_of(records: Any) -> dict[str, float] | None:
    """Problem id -> its score, when every record has an id and a verdict; a record whose `passed` is not a list of
    verdicts makes the file unusable."""
    if not isinstance(records, list) or not all(isinstance(r, dict) and "id" in r and "correct" in r for r in records):
        return None
    for index, record in enumerate(records):
        if kind_of(record.get("passed")) not in (LIST, NULL):
            raise NotUsable(f"records.{index}.passed must be a list of verdicts, got {shown(record['passed'])}")
    return {str(r["id"]): problem_score(r) for r in records} or None


def parse_result(path: Path, data: Any) -> Result:
    if not isinstance(data, dict):
        raise NotUsable("not a JSON object")
    missing = [key for key, kind in (("task", str), ("model", dict), ("decoding", dict), ("summary", dict))
               if not isinstance(data.get(key), kind)]
    if missing:
        raise NotUsable(f"no {', '.join(missing)} (not a results file of python -m l2d.evaluate)")
    if "method" not in data["model"] or "score" not in data["summary"]:
        raise NotUsable("no model.method or summary.score")
    check_fields(data)
    task = data["task"]
    known = TASKS.get(task)
    category = data.get("category") or (known.category if known else "other")
    protocol = data.get("protocol")
    return Result(path=path, task=task, category=category, metric=data.get("metric", "accuracy"),
                  model=data["model"], decoding=data["decoding"], summary=data["summary"],
                  command=data.get("command", ""), outcomes=outcomes_of(data.get("records")),
                  recorded_protocol=protocol if isinstance(protocol, dict) else None)
