"""A tiny random Llama with a byte-level chat tokenizer: the offline model of the test suite.

`model=tiny` trains and evaluates end to end in seconds, with nothing downloaded.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from l2d.model.dtypes import resolve_dtype
from l2d.model.origin import set_origin

SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<|pad|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """256 byte tokens plus ChatML's special tokens; any text round-trips."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: index for index, symbol in enumerate(sorted(alphabet))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|pad|>",
                                      additional_special_tokens=["<|im_start|>"])
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def tiny_model(layers: int = 2, width: int = 64, heads: int = 4, kv_heads: int = 2, seed: int = 0,
               initializer_range: float = 0.2, dtype="float32"):
    """(model, tokenizer): a random Llama sized for tests. initializer_range 0.2 lets its frozen head
    reach low losses (a 0.02 head caps cross-entropy near 4 whatever the diffusion path does)."""
    tokenizer = byte_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=4096, initializer_range=initializer_range,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config).to(resolve_dtype(dtype)).eval()
    # Recorded in exports so `load_base_model` can rebuild exactly this model.
    return set_origin(model, f"tiny:layers={layers},width={width},heads={heads},kv_heads={kv_heads},seed={seed},"
                             f"initializer_range={initializer_range}"), tokenizer


def tiny_from_name(name: str, dtype="float32"):
    """Rebuild a tiny model from its recorded name, e.g. `tiny` or `tiny:layers=2,width=64,seed=0`."""
    _, _, spec = name.partition(":")
    kwargs = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        kwargs[key] = float(value) if key == "initializer_range" else int(value)
    return tiny_model(dtype=dtype, **kwargs)
