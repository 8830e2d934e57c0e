"""One training example: a chat and an optional guidance class, and how raw records become one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Message = dict[str, str]


@dataclass(frozen=True)
class Example:
    """A conversation (`role`/`content` messages) and the guidance class it belongs to (None: unlabeled)."""

    messages: list[Message]
    class_name: str | None = None


def chat_messages(messages: Any) -> list[Message]:
    """Check a list of role/content messages and return it as plain dicts.

    Raises ValueError (the reason, without location: callers add file and line) when the list is
    empty, a message is not a {role: str, content: str} mapping, or no assistant turn is present
    (an example without one would train on nothing).
    """
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    clean = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise ValueError(f"message {i} must have string 'role' and 'content'")
        clean.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "assistant" for m in clean):
        raise ValueError("no assistant message")
    return clean


def question_answer(question: Any, answer: Any) -> list[Message]:
    """A single-turn chat: the user asks `question`, the assistant replies `answer`."""
    if not isinstance(question, str) or not isinstance(answer, str):
        raise ValueError("question/prompt and answer/response must be strings")
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
