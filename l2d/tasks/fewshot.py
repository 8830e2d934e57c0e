"""Fixed few-shot contexts, given to the model as past chat turns (paper, Appendix B.2)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

Message = dict[str, str]


def select_shot_indexes(groups: Sequence[Hashable], num_shots: int, spacing: str = "first") -> list[int]:
    """Indexes of the few-shot examples among records whose shot groups are `groups`.

    "first": the first `num_shots` records of each group (one group for most tasks; MMLU uses its
    subjects). "spaced": equally spaced indexes i * (N // num_shots), for data that is not i.i.d.
    (MATH's train split is ordered by topic)."""
    if spacing == "spaced":
        step = max(1, len(groups) // max(1, num_shots))
        return list(range(0, len(groups), step))[:num_shots]
    if spacing != "first":
        raise ValueError(f"unknown shot spacing {spacing!r}")
    taken: dict[Hashable, int] = {}
    indexes = []
    for index, group in enumerate(groups):
        if taken.get(group, 0) < num_shots:
            taken[group] = taken.get(group, 0) + 1
            indexes.append(index)
    return indexes


def few_shot_messages(shots: Sequence[dict[str, Any]], question: str) -> list[Message]:
    """Each shot as a user question and the assistant's worked answer, then the new question.
    No system prompt: the chat template's default applies, as in the paper."""
    messages: list[Message] = []
    for shot in shots:
        messages.append({"role": "user", "content": shot["question"]})
        messages.append({"role": "assistant", "content": shot["answer_text"]})
    messages.append({"role": "user", "content": question})
    return messages
