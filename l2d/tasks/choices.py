"""Multiple-choice prompts with lettered options, and reading the chosen letter back."""

from __future__ import annotations

import re
import string

LETTERS = string.ascii_uppercase


def render_choices(question: str, options: list[str], question_label: str = "Question",
                   options_label: str = "Choices") -> str:
    """The paper's layout: 'Question:\\n...\\nChoices:\\nA. ...\\nB. ...\\n\\nAnswer:'."""
    if not 2 <= len(options) <= len(LETTERS):
        raise ValueError(f"need 2 to {len(LETTERS)} options, got {len(options)}")
    lines = [f"{question_label}:", question, f"{options_label}:"]
    lines += [f"{letter}. {option}" for letter, option in zip(LETTERS, options, strict=False)]
    return "\n".join(lines) + "\n\nAnswer:"


def extract_choice(completion: str, num_options: int) -> str | None:
    """The chosen option letter: after 'answer is'/'answer:' if stated, else the first letter that
    stands alone (the paper's rule, with word boundaries so 'CB' or 'Apple' do not count)."""
    letters = LETTERS[:num_options]
    stated = re.search(rf"(?i:answer)\s*(?i:is)?\s*:?\s*\(?([{letters}])(?![A-Za-z0-9])", completion)
    if stated:
        return stated.group(1)
    alone = re.search(rf"(?<![A-Za-z0-9])([{letters}])(?![A-Za-z0-9])", completion)
    return alone.group(1) if alone else None
