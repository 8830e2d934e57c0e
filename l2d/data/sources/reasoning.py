"""Procedural reasoning problems from reasoning-gym: offline, unlimited, exactly verifiable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from l2d.data.example import Example, question_answer
from l2d.data.invalid import InvalidRecords
from l2d.data.sources.base import Loaded, Source

# Easy settings: short problems that a ~100M-parameter model solves sometimes but not always.
# basic_arithmetic keeps its parentheses: reasoning-gym 0.1.25's parenthesis-free generator
# pairs expressions with wrong answers.
DEFAULT_DATASETS: dict[str, dict[str, Any]] = {
    "gsm_symbolic": {},
    "basic_arithmetic": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
    "chain_sum": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
}


def worked_answer(entry: Mapping[str, Any]) -> str:
    """The worked solution when reasoning-gym has one (`answer_cot`), else the bare answer.

    A worked solution closes with the verifier's answer in reasoning-gym's own `<answer>` tag, in
    place of its `#### value` line: verifiers such as gsm_symbolic's score the first number of what
    they are given, so evaluation reads the tag (`reasoning_gym.utils.extract_answer`), and the
    `####` line sometimes disagrees in form (`#### 8.0` for the answer `8`).
    """
    answer = str(entry["answer"])
    cot = entry.get("metadata", {}).get("answer_cot")
    if not cot:
        return answer
    lines = cot.rstrip().splitlines()
    if lines[-1].startswith("####"):
        lines = lines[:-1]
    return "\n".join(lines + [f"<answer>{answer}</answer>"])


class ReasoningGymSource(Source):
    """`size` problems from each reasoning-gym dataset; a dataset's name is its guidance class.

    datasets: dataset names, or a mapping name -> config kwargs (e.g. {"chain_sum": {"max_terms": 3}}).
    prompt_suffix: appended to every question (e.g. " Answer with the number only."), as the
    evaluation task's own `prompt_suffix`, so training and scoring ask alike.
    """

    def __init__(self, datasets: Mapping[str, Mapping[str, Any]] | list[str] | None = None,
                 size: int = 1000, seed: int = 0, prompt_suffix: str = "") -> None:
        if datasets is None:
            datasets = DEFAULT_DATASETS
        elif not isinstance(datasets, Mapping):
            datasets = {name: {} for name in datasets}
        if not datasets:
            raise ValueError("ReasoningGymSource needs at least one dataset")
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.datasets = {name: dict(config or {}) for name, config in datasets.items()}
        self.size = size
        self.seed = seed
        self.prompt_suffix = prompt_suffix

    def load(self, invalid: InvalidRecords) -> Loaded:
        import reasoning_gym

        examples = []
        for name, config in self.datasets.items():
            dataset = reasoning_gym.create_dataset(name, size=self.size, seed=self.seed, **config)
            for entry in dataset:
                messages = question_answer(entry["question"] + self.prompt_suffix, worked_answer(entry))
                examples.append(Example(messages, class_name=name))
        return Loaded(train=examples)
