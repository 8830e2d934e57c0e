"""Guidance classes: the paper's labels, and how class names become the ids the model embeds.

Class id 0 is the null class (unlabeled examples, and classifier-free-guidance dropout during
training); named classes get ids 1..J in the order of `class_names`.
"""

from __future__ import annotations

from collections.abc import Iterable

# The guidance labels of the paper's Table 5 ("general knowledge" written as one word).
MATH = "math"
CODING = "coding"
GENERAL = "general"

NULL_CLASS = 0


def resolve_class_names(seen: Iterable[str | None], fixed: Iterable[str] | None = None) -> list[str]:
    """The ordered class names: `fixed` when given (every seen name must be in it), else sorted seen names."""
    seen_names = {name for name in seen if name is not None}
    if fixed is None:
        return sorted(seen_names)
    names = list(fixed)
    if len(set(names)) != len(names):
        raise ValueError(f"class_names has duplicates: {names}")
    unknown = sorted(seen_names - set(names))
    if unknown:
        raise ValueError(f"examples have classes {unknown} that are not in class_names {names}")
    return names


def class_ids(class_names: list[str]) -> dict[str | None, int]:
    """Name -> id: 1 + the name's index, and None -> the null class."""
    return {None: NULL_CLASS} | {name: 1 + i for i, name in enumerate(class_names)}
