"""Tiny byte-level tokenizers with chat templates, and small data files, for fast data tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from l2d.data.example import Example
from l2d.data.sources import StreamedSource

# ChatML with a default system prompt, like SmolLM2's: a newline follows each end-of-turn token.
CHATML = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are helpful.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Llama-3-like: a bos in the template, trimmed content, nothing after the end-of-turn token.
LLAMA_LIKE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
TEMPLATES = {"chatml": CHATML, "llama_like": LLAMA_LIKE}


def byte_tokenizer(chat_template: str = CHATML, pad: bool = True) -> PreTrainedTokenizerFast:
    """One token per byte plus the special tokens, so any text round-trips exactly."""
    vocab = {char: i for i, char in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|begin_of_text|>",
                                        eos_token="<|im_end|>", chat_template=chat_template,
                                        **({"pad_token": "<pad>"} if pad else {}))
    tokenizer.add_special_tokens({"additional_special_tokens": [
        "<|im_start|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]})
    return tokenizer


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return byte_tokenizer()


@pytest.fixture(scope="session", params=sorted(TEMPLATES))
def any_template_tokenizer(request) -> PreTrainedTokenizerFast:
    return byte_tokenizer(TEMPLATES[request.param])


def write_jsonl(path: Path, rows: list) -> Path:
    """Rows are written as JSON, except strings, which are written verbatim (to make bad lines)."""
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def chat(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


class NumberStream(StreamedSource):
    """A stream of numbered chats in a seeded order per epoch; two of them too long for max_length=64."""

    class_names = ("numbers",)

    def __init__(self, size: int = 21) -> None:
        self.size = size

    def stream(self, epoch, invalid):
        order = random.Random(epoch).sample(range(self.size), self.size)
        return (Example(chat(f"q{i}", "a" * (60 if i in (3, 7) else 1)), "numbers") for i in order)

    def validation(self, invalid):
        return [Example(chat("v", "w"))]
