"""Chat tokenisation with the base model's own template, and labels only on what the assistant says.

Works with any template, also those without `{% generation %}` markers (SmolLM2's, Llama's): the
conversation is rendered prefix by prefix, which gives the character span of every assistant
turn, and the tokens of the full rendering that overlap a span are supervised, up to and including
the template's end-of-turn token (the last special token of the turn; a newline the template
writes after it is not something the model has to generate).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from l2d.data.example import Message

IGNORE_INDEX = -100  # the label that HF (and torch's cross-entropy) skip


def next_token_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels (B, T) aligned with input_ids -> the token each position predicts, labels[k + 1] (B, T);
    IGNORE_INDEX at the last position, which has no successor."""
    return F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


def render(tokenizer: Any, messages: list[Message], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the [start, end) character span of each assistant turn.

    A turn starts where the rendering of the messages before it, with the generation prompt, ends,
    and ends where the rendering up to and including it ends.
    """
    text = render(tokenizer, messages)

    def end_of(prefix: str) -> int:
        if not text.startswith(prefix):
            raise ValueError("the chat template does not render a conversation's prefixes as prefixes of "
                             "the whole, so assistant turns cannot be located")
        return len(prefix)

    spans = [(end_of(render(tokenizer, messages[:i], add_generation_prompt=True)),
              end_of(render(tokenizer, messages[:i + 1])))
             for i, message in enumerate(messages) if message["role"] == "assistant"]
    return text, spans


def special_token_ids(tokenizer: Any) -> set[int]:
    added = tokenizer.added_tokens_decoder
    return set(tokenizer.all_special_ids) | {i for i, token in added.items() if token.special}


def tokenize_chat(tokenizer: Any, messages: list[Message], max_length: int = 2048) -> dict[str, list[int]] | None:
    """`input_ids` of the templated chat and `labels` aligned with them (the model shifts them).

    Labels are IGNORE_INDEX except on assistant turns (content and end-of-turn token). Returns None
    when the chat is longer than `max_length` tokens: callers drop and count it, never truncate.
    """
    if not tokenizer.is_fast:
        raise TypeError("tokenize_chat needs a fast tokenizer (it maps tokens to characters)")
    text, spans = assistant_spans(tokenizer, messages)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids, offsets = encoding["input_ids"], encoding["offset_mapping"]
    if len(input_ids) > max_length:
        return None
    specials = special_token_ids(tokenizer)
    labels = [IGNORE_INDEX] * len(input_ids)
    for start, end in spans:
        turn = [i for i, (first, last) in enumerate(offsets) if first < end and last > start]
        turn_ends = [i for i in turn if input_ids[i] in specials]
        for i in turn:
            if turn_ends and i > turn_ends[-1]:
                break
            labels[i] = input_ids[i]
    return {"input_ids": input_ids, "labels": labels}
