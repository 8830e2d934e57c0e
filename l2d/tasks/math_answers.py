"""Reading and comparing final answers of math problems (GSM8K's "#### N", MATH's \\boxed{...})."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_GSM8K_ANSWER = re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_PLAIN_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_FRACTION = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}")


def canonical_number(text: str) -> str | None:
    """'1,200.50' -> '1200.5', '72.00' -> '72', '-0' -> '0'; None if it is not a number."""
    try:
        value = Decimal(text.replace(",", "").strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return "0" if value == 0 else format(value.normalize(), "f")


def extract_gsm8k_answer(text: str) -> str | None:
    """The number after the first '####' (the paper's rule; '$' and commas tolerated)."""
    match = _GSM8K_ANSWER.search(text)
    return None if match is None else canonical_number(match.group(1))


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}), braces matched; '\\boxed 5' also counts."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start + len("\\boxed" if text.startswith("\\boxed", start) else "\\fbox"):]
    if rest.startswith(" "):
        return rest.split("$")[0].strip() or None
    if not rest.startswith("{"):
        return None
    depth = 0
    for position, char in enumerate(rest):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return rest[1:position]
    return None  # unbalanced: the generation was cut off inside the box


def last_number(text: str) -> str | None:
    numbers = _NUMBER.findall(text)
    return canonical_number(numbers[-1]) if numbers else None


def normalize_math_answer(answer: str) -> str:
    """Canonical string form of a MATH answer, after Hendrycks et al.'s normaliser (which the paper's
    code uses): drop LaTeX spacing, \\left/\\right, degrees, dollars, units, percent; brace \\sqrt
    and \\frac arguments; '0.5' and 'a/b' become \\frac{a}{b}; 'x = 5' becomes '5'."""
    s = answer.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "").replace("$", "")
    s = s.split("\\text{ ")[0]  # trailing units such as "10\text{ cm}"
    s = s.replace("\\%", "").replace("%", "").replace(" .", " 0.").replace("{.", "{0.")
    s = s.replace(" ", "")
    if s.startswith("."):
        s = "0" + s
    left, equals, right = s.partition("=")
    if equals and "=" not in right and len(left) <= 2:
        s = right
    s = re.sub(r"\\sqrt([^{\\])", r"\\sqrt{\1}", s)
    s = re.sub(r"\\frac([0-9a-zA-Z])([0-9a-zA-Z])", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac([0-9a-zA-Z])\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\{([^{}]*)\}([0-9a-zA-Z])", r"\\frac{\1}{\2}", s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    s = re.sub(r"^(-?\d+)/(\d+)$", r"\\frac{\1}{\2}", s)
    return re.sub(r"(\d),(\d{3})(?!\d)", r"\1\2", s)  # thousands separators, not lists like "1,2"


def to_number(answer: str) -> float | None:
    """Value of a normalised answer that is a plain number or an integer \\frac; else None."""
    if _PLAIN_NUMBER.fullmatch(answer):
        return float(answer)
    match = _FRACTION.fullmatch(answer)
    if match and int(match.group(3)) != 0:
        sign = -1.0 if match.group(1) else 1.0
        return sign * int(match.group(2)) / int(match.group(3))
    return None


def math_answers_equal(answer: str, target: str) -> bool:
    """Equal normalised strings, or equal values (so '0.75' matches '\\frac{3}{4}')."""
    if answer == target:
        return True
    a, b = to_number(answer), to_number(target)
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
