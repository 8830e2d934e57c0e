"""The evaluation task interface: problems, their chat prompts, and scoring of generations."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from l2d.tasks.fewshot import Message, few_shot_messages, select_shot_indexes
from l2d.tasks.sources import HubSplit, Record, TaskDataError, load_hub_records, read_records

# One evaluation item, JSON-serialisable. Every task sets "id", "question" (the user turn),
# "answer_text" (the assistant turn when used as a shot), "target" and "guidance" (the
# classifier-free-guidance class of this problem; usually the task's guidance_name).
Problem = dict[str, Any]


class Task(ABC):
    """A benchmark: `problems()`, `messages(problem)`, `score(problem, generations)`.

    Data: `hub` is the evaluated split (the paper's), `hub_shots` the split the few-shot examples
    come from. `path` is a local copy of the evaluated split in the dataset's own schema (`schema`),
    `shots_path` likewise for the few-shot split; without them, the copies under $L2D_DATA when
    they exist (l2d.data.hub), else the hub. Given `path` but no few-shot source, the shots are
    the first records of `path` and are then not scored.
    """

    name: ClassVar[str]
    category: ClassVar[str]  # "math" | "code" | "general"
    guidance_name: ClassVar[str]  # l2d.data.classes: "math" | "coding" | "general" (paper, Table 5)
    metric: ClassVar[str] = "accuracy"
    max_new_tokens: ClassVar[int] = 256
    ks: ClassVar[tuple[int, ...]] = ()
    schema: ClassVar[str]  # one record of `path`, for error messages
    hub: ClassVar[HubSplit | None] = None
    hub_shots: ClassVar[HubSplit | None] = None
    shot_spacing: ClassVar[str] = "first"

    def __init__(self, path: str | Path | None = None, num_shots: int = 5, shots_path: str | Path | None = None):
        if num_shots < 0:
            raise ValueError(f"num_shots must be >= 0, got {num_shots}")
        self.path = path
        self.num_shots = num_shots
        self.shots_path = shots_path

    @abstractmethod
    def to_problem(self, record: Record, index: int) -> Problem:
        """Convert one record of the dataset's schema (index: its position in the loaded split)."""

    @abstractmethod
    def extract(self, completion: str, problem: Problem) -> str | None:
        """The answer in a completion, normalised for comparison; None when there is none."""

    def is_correct(self, answer: str, problem: Problem) -> bool:
        return answer == problem["target"]

    def shot_group(self, problem: Problem) -> Hashable:
        """Problems of one group share their few-shot examples (MMLU: the subject)."""
        return None

    def problems(self, limit: int | None = None) -> list[Problem]:
        problems = self._prepared[0]
        return problems if limit is None else problems[:limit]

    def messages(self, problem: Problem) -> list[Message]:
        return few_shot_messages(self._prepared[1].get(self.shot_group(problem), []), problem["question"])

    def score(self, problem: Problem, generations: Sequence[str]) -> dict[str, Any]:
        """Judge every generation: `answers` and `passed` one per generation (the problem's score is the
        fraction passed); `answer`, `extracted` and `correct` are the first generation's."""
        if not generations:
            raise ValueError("score needs at least one generation")
        answers = [self.extract(generation, problem) for generation in generations]
        passed = [answer is not None and self.is_correct(answer, problem) for answer in answers]
        return {"answer": answers[0], "target": problem["target"], "extracted": answers[0] is not None,
                "correct": passed[0], "answers": answers, "passed": passed}

    def score_all(self, problems: Sequence[Problem], generations: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
        """`score` for many problems at once (code tasks run all their programs in one pool)."""
        if len(problems) != len(generations):
            raise ValueError(f"{len(problems)} problems but {len(generations)} lists of generations")
        return [self.score(problem, samples) for problem, samples in zip(problems, generations, strict=True)]

    def load_records(self) -> tuple[list[Record], list[Record] | None]:
        """(records to evaluate, few-shot records or None to take the shots from the former)."""
        records = read_records(self.path) if self.path is not None else self.default_records()
        if self.shots_path is not None:
            return records, read_records(self.shots_path)
        if self.path is None and self.hub_shots is not None and self.num_shots > 0:
            return records, load_hub_records(self.hub_shots, self.name, self.schema, option="shots_path")
        return records, None

    def default_records(self) -> list[Record]:
        """The records evaluated when no `path` is given."""
        if self.hub is None:
            raise TaskDataError(f"task {self.name!r} has no default data; pass path=<file.jsonl>: {self.schema}")
        return load_hub_records(self.hub, self.name, self.schema)

    @functools.cached_property
    def _prepared(self) -> tuple[list[Problem], dict[Hashable, list[Problem]]]:
        """(problems to score, few-shot examples by shot group), loaded on first use."""
        records, shot_records = self.load_records()
        problems = self._convert(records)
        candidates = problems if shot_records is None else self._convert(shot_records)
        chosen = set(select_shot_indexes([self.shot_group(p) for p in candidates], self.num_shots, self.shot_spacing))
        shots: dict[Hashable, list[Problem]] = {}
        for index in sorted(chosen):
            shots.setdefault(self.shot_group(candidates[index]), []).append(candidates[index])
        if shot_records is None:  # a shot is never also scored
            problems = [problem for index, problem in enumerate(problems) if index not in chosen]
        return problems, shots

    def _convert(self, records: list[Record]) -> list[Problem]:
        problems = []
        for index, record in enumerate(records):
            try:
                problem = self.to_problem(record, index)
            except (KeyError, IndexError, TypeError, ValueError) as error:
                raise TaskDataError(f"task {self.name!r}: record {index} does not fit the schema {self.schema} "
                                    f"({type(error).__name__}: {error})") from None
            problem.setdefault("guidance", self.guidance_name)
            problems.append(problem)
        return problems
