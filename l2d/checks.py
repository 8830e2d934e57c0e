"""Checks of one setting's value, in the words every config error uses: `<name> must be <what is allowed>, got <value>`.

Settings dataclasses (l2d.schema, l2d.rl.settings, l2d.model.generate.Solver) call them in `__post_init__` and
raise ValueError; l2d.validation turns that into the one line a user sees, prefixed with where the setting sits.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from l2d.model.dtypes import DTYPES

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def whole(value: Any, name: str, minimum: int | None = None, optional: bool = False) -> None:
    """An integer (>= minimum; None too when optional)."""
    if value is None and optional:
        return
    if not is_whole(value) or (minimum is not None and value < minimum):
        allowed = "an integer" + (f" >= {minimum}" if minimum is not None else "") + (" or null" if optional else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def number(value: Any, name: str, above: float | None = None, minimum: float | None = None,
           optional: bool = False) -> None:
    """An int or a float (> above, >= minimum; None too when optional)."""
    if value is None and optional:
        return
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if bad or (above is not None and value <= above) or (minimum is not None and value < minimum):
        bound = f" > {above}" if above is not None else f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{name} must be a number{bound}, got {value!r}")


def flag(value: Any, name: str, meaning: str = "") -> None:
    """true or false; `meaning` says what each is, e.g. "true (...) or false (...)"."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be {meaning or 'true or false'}, got {value!r}")


def one_of(value: Any, name: str, allowed: Collection, optional: bool = False) -> None:
    if value is None and optional:
        return
    if value not in allowed:
        raise ValueError(f"{name} must be {'null or ' if optional else ''}one of {list(allowed)}, got {value!r}")


def wholes(values: Any, name: str, minimum: int) -> None:
    """A list of integers >= minimum, at least one."""
    if not isinstance(values, (list, tuple)) or not values or not all(is_whole(v) and v >= minimum for v in values):
        raise ValueError(f"{name} must be a list of integers >= {minimum}, got {values!r}")


def device(value: Any, name: str = "device") -> None:
    """auto, cpu, cuda or cuda:N (whether this machine has it is l2d.validation's to say)."""
    if not DEVICE.fullmatch(str(value)):
        raise ValueError(f"{name} must be auto, cpu, cuda or cuda:N, got {value!r}")


def dtype(value: Any, name: str = "dtype") -> None:
    if value != "auto" and value not in DTYPES:
        raise ValueError(f"{name} must be auto or one of {sorted(DTYPES)}, got {value!r}")


def part(schema: type, value: Any, name: str):
    """A nested setting given as a mapping, as its dataclass; its errors read `<name>: <the dataclass's message>`."""
    if isinstance(value, schema):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping of {schema.__name__}'s fields, got {value!r}")
    try:
        return schema(**value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: {error}") from None
