"""python -m l2d.bench [overrides]: decoding and training speed, side by side, in one process (docs/performance.md).

Decoding: transformers' own greedy generate() of the base, our plain decoding (levels=1), and L2D at the chosen
solvers and levels, on the fast path (static cache, compiled evaluation) where compiling is on; tokens/s, ms/token,
ms per NFE, and the first call's seconds (compilation and CUDA-graph recording) apart from the median.
Training: one optimizer step of each method at each shape, float32 master weights under autocast when the compute
dtype is lower (as l2d.train's bf16-mixed), each in its own guard so that running out of memory is a row; tokens/s,
peak memory and model FLOPs utilisation on GPU. Every part runs once per entry of `dtypes`, so float32 and bfloat16
sit side by side. Results: bench.json and bench.md in the run directory, rewritten after each part.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from l2d.config import config_dir, register_resolvers
from l2d.data.chat import IGNORE_INDEX, next_token_labels
from l2d.export import is_l2d
from l2d.files import write_atomically
from l2d.model.config import L2DConfig
from l2d.model.dtypes import device_named, resolve_dtype, store_frozen
from l2d.model.family import get
from l2d.model.finetune import Finetune
from l2d.model.l2d import L2DModel
from l2d.model.main_path import CausalLM
from l2d.validation import check_bench, one_line

log = logging.getLogger(__name__)
register_resolvers()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run, device: torch.device, warmup: int, repeats: int, label: str) -> tuple[float, float | None]:
    """(median seconds of `run()` over `repeats`, seconds of the first of `warmup` untimed calls or None). Each
    setting is logged as it starts and ends, so a run cut short (a GPU lease's limit) says which one took the time."""
    log.info("%s: first call", label)
    first = None
    for call in range(warmup):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        if call == 0:
            first = time.perf_counter() - start
            log.info("%s: first call %.1f s (compilation included)", label, first)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    log.info("%s: median %.3f s of %d", label, median, repeats)
    return median, first


def fast_path(cfg: DictConfig, device: torch.device) -> dict:
    """Decode options of the fast path, {} when off. decode.compile: auto = CUDA graphs on GPU,
    nothing on CPU (inductor's C++ build would dominate)."""
    mode = cfg.decode.compile
    if mode == "auto":
        mode = "reduce-overhead" if device.type == "cuda" else None
    return {} if mode is None else dict(compile=mode)


def batch_sizes(cfg: DictConfig, device: torch.device) -> list[int]:
    if cfg.decode.batch_sizes == "auto":
        return [1, 64] if device.type == "cuda" else [1, 8]
    return list(cfg.decode.batch_sizes)


def decoding_rows(cfg: DictConfig, base, device, dtype: str):
    """Yields, per batch size, one row per setting: seconds for prompt + new tokens, tokens/s, ms/token, ms per NFE.
    L2D settings run on the fast path when compiling is on (and also eagerly with decode.eager), else eagerly."""
    fast = fast_path(cfg, device)
    variants = ([(f" [compile={fast['compile']}]", fast)] if fast else []) + (
        [("", {})] if cfg.decode.eager or not fast else [])
    plain = CausalLM(base)
    l2d = L2DModel(base, L2DConfig(num_classes=2)).to(device=device, dtype=next(base.parameters()).dtype).eval()
    new = cfg.decode.new_tokens
    for batch in batch_sizes(cfg, device):
        prompt = torch.randint(0, base.config.vocab_size, (batch, cfg.decode.prompt_tokens), device=device)
        settings, nfe, compiled = {}, {}, set()
        if cfg.decode.transformers:
            settings["transformers generate()"] = lambda prompt=prompt: base.generate(
                prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new, min_new_tokens=new,
                do_sample=False, pad_token_id=0)
        settings["ours, plain LM (levels=1)"] = lambda prompt=prompt: plain.generate(
            prompt, max_new_tokens=new, temperature=0.0)
        for spec in cfg.decode.l2d:
            for guided in cfg.decode.guidance:
                for suffix, variant in variants:
                    for merged in cfg.decode.merge_lora:
                        name = (f"L2D {spec.solver} levels={spec.levels}" + (" + guidance" if guided else "") + suffix
                                + (" [merged LoRA]" if merged else ""))
                        options = dict(solver=spec.solver, levels=spec.levels, max_new_tokens=new, temperature=0.0,
                                       merge_lora=merged, **variant)
                        if variant:
                            compiled.add(name)
                        if guided:
                            options.update(guidance=2.0, class_labels=torch.ones(batch, dtype=torch.long,
                                                                                 device=device))
                        settings[name] = lambda prompt=prompt, options=options: l2d.generate(prompt, **options)
                        nfe[name] = (2 if spec.solver == "midpoint" else 1) * (spec.levels - 1) + 1
        seconds, first = {}, {}
        with torch.no_grad():
            for name, run in settings.items():
                if name in compiled:
                    torch._dynamo.reset()  # each setting compiles its own graph in its first call
                label = f"{name}, {dtype}, batch {batch}"
                seconds[name], first[name] = timed(run, device, cfg.warmup, cfg.repeats, label)
        reference, theirs = seconds["ours, plain LM (levels=1)"], seconds.get("transformers generate()")
        yield [{"kind": "decode", "dtype": dtype, "setting": name, "batch": batch, "nfe": nfe.get(name, 1),
                "seconds": s, "first_call_s": first[name], "tokens_per_s": batch * new / s,
                "ms_per_token": s / new * 1e3, "ms_per_nfe": (s - reference) / (new * nfe[name]) * 1e3
                if name in nfe else None, "vs_transformers": theirs / s if theirs else None}
               for name, s in seconds.items()]


def linear_flops(module: nn.Module, frozen: int) -> int:
    """FLOPs per row of every nn.Linear in `module`: 6 per weight where it trains (forward, input and weight
    gradients), `frozen` where it does not (4 in a backward pass: forward and input gradient; 2 without one)."""
    return sum((6 if m.weight.requires_grad else frozen) * m.in_features * m.out_features
               for m in module.modules() if isinstance(m, nn.Linear))


def training_flops(network, tokens: int, supervised: int) -> int:
    """Model FLOPs of one step: the weights' matrix products (attention scores left out, a few % at 2,048 tokens).
    L2D: the frozen main path forward only, at every token; the diffusion path and the LM head at the supervised
    slots. LoRA / full: the decoder at every token, the head at supervised positions (Finetune's forward)."""
    if is_l2d(network):
        head = get(network.base, network.family.lm_head)
        return (linear_flops(get(network.base, network.family.decoder), 2) * tokens
                + (linear_flops(network.diffusion, 4) + linear_flops(head, 4)) * supervised)
    lm = network.model.get_base_model() if network.method == "lora" else network.model
    return (linear_flops(get(lm, network.family.decoder), 4) * tokens
            + linear_flops(get(lm, network.family.lm_head), 4) * supervised)


def build(method: str, base, checkpointing: bool):
    return {"l2d_lora": lambda: L2DModel(base, L2DConfig(gradient_checkpointing=checkpointing)),
            "l2d_full": lambda: L2DModel(base, L2DConfig(full_path=True, gradient_checkpointing=checkpointing)),
            "lora": lambda: Finetune(base, lora_rank=4), "full": lambda: Finetune(base, lora_rank=0)}[method]()


def training_row(cfg: DictConfig, method: str, shape, load_base, device, dtype: str) -> dict:
    """One optimizer step of `method` at `shape` (batch, prompt + answer tokens, the answer supervised)."""
    base = load_base()
    network = build(method, base, cfg.train.gradient_checkpointing).to(device).train()
    if device.type == "cpu" and resolve_dtype(dtype) == torch.bfloat16:
        store_frozen(network, torch.bfloat16)  # as l2d.train's bf16-mixed on CPU (TrainingModule.frozen_in_bf16)
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-5, fused=True)
    sequence = shape.prompt + shape.answer
    ids = torch.randint(0, base.config.vocab_size, (shape.batch, sequence), device=device)
    labels = ids.clone()
    labels[:, : shape.prompt] = IGNORE_INDEX
    compute = resolve_dtype(dtype)
    autocast = torch.autocast(device.type, dtype=compute, enabled=compute != torch.float32)

    def step():
        with autocast:
            loss = network(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    label = f"training step, {method}, {dtype}, {shape.batch} x ({shape.prompt} + {shape.answer})"
    seconds, first = timed(step, device, cfg.warmup, cfg.repeats, label)
    tokens, supervised = ids.numel(), int((next_token_labels(labels) != IGNORE_INDEX).sum())
    flops = training_flops(network, tokens, supervised)
    mfu = flops / seconds / (cfg.peak_tflops * 1e12) if device.type == "cuda" and cfg.peak_tflops else None
    return {"tokens_per_s": tokens / seconds, "seconds": seconds, "first_call_s": first, "flops": flops, "mfu": mfu,
            "trainable_parameters": sum(p.numel() for p in network.parameters() if p.requires_grad),
            "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def training_rows(cfg: DictConfig, load_base, device, dtype: str):
    """Yields, per shape, one row per method (an error instead of figures where the step ran out of memory)."""
    for shape in cfg.train.shapes:
        shaped = []
        for method in cfg.train.methods:
            row = {"kind": "train", "dtype": dtype, "setting": method, "batch": shape.batch, "prompt": shape.prompt,
                   "answer": shape.answer, "checkpointing": bool(cfg.train.gradient_checkpointing)}
            try:
                row.update(training_row(cfg, method, shape, load_base, device, dtype), error=None)
            except torch.OutOfMemoryError:
                log.warning("training step, %s, %s, batch %d: out of memory", method, dtype, shape.batch)
                row.update(error="out of memory")
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            shaped.append(row)
        lora = next((r.get("tokens_per_s") for r in shaped if r["setting"] == "lora"), None)
        for row in shaped:
            row["vs_lora"] = row["tokens_per_s"] / lora if lora and row.get("tokens_per_s") else None
        yield shaped


def profile_decoding(cfg: DictConfig, base, device, path: Path) -> None:
    """torch.profiler over one L2D decode (midpoint, 8 levels, batch 1; on the fast path when
    decode.compile is set): where a token's time goes."""
    from torch.profiler import ProfilerActivity, profile

    l2d = L2DModel(base, L2DConfig()).eval()
    prompt = torch.randint(0, base.config.vocab_size, (1, cfg.decode.prompt_tokens), device=device)
    options = dict(temperature=0.0, **fast_path(cfg, device))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad():
        l2d.generate(prompt, max_new_tokens=4, **options)  # warm-up (and compilation)
    # A few tokens suffice (each is NFE alike evaluations); a whole decode's events take gigabytes.
    with torch.no_grad(), profile(activities=activities) as profiler:
        l2d.generate(prompt, max_new_tokens=min(cfg.decode.new_tokens, 8), **options)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    path.write_text(profiler.key_averages().table(sort_by=sort, row_limit=30) + "\n")


def number(value, digits: int, scale: float = 1.0, suffix: str = "") -> str:
    return "" if value is None else f"{value * scale:.{digits}f}{suffix}"


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [f"# l2d benchmark: {result['model']}", "",
             f"Device {env['device']}, torch {env['torch']}, transformers {env['transformers']}, "
             f"Python {env['python']}.", "", f"Command: `{result['command']}`", "",
             "## Decoding", "", "| dtype | setting | batch | NFE | tokens/s | ms/token | ms per NFE | first call s | "
             "× transformers |", "|---|---|---|---|---|---|---|---|---|"]
    for r in (r for r in result["rows"] if r["kind"] == "decode"):
        lines.append(f"| {r['dtype']} | {r['setting']} | {r['batch']} | {r['nfe']} | {r['tokens_per_s']:.1f} | "
                     f"{r['ms_per_token']:.2f} | {number(r['ms_per_nfe'], 3)} | {number(r['first_call_s'], 1)} | "
                     f"{number(r['vs_transformers'], 2)} |")
    lines += ["", "## Training", "", "| dtype | method | batch × (prompt + answer) | tokens/s | × lora | trainable | "
              "peak GB | MFU | first step s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in (r for r in result["rows"] if r["kind"] == "train"):
        shape = f"{r['batch']} × ({r['prompt']} + {r['answer']})" + (" ckpt" if r["checkpointing"] else "")
        if r["error"]:
            lines.append(f"| {r['dtype']} | {r['setting']} | {shape} | {r['error']} |  |  |  |  |  |")
            continue
        lines.append(f"| {r['dtype']} | {r['setting']} | {shape} | {r['tokens_per_s']:.0f} | "
                     f"{number(r['vs_lora'], 2)} | {r['trainable_parameters'] / 1e6:.1f}M | "
                     f"{number(r['peak_memory_gb'], 1)} | {number(r['mfu'], 1, 100, '%')} | "
                     f"{number(r['first_call_s'], 1)} |")
    return "\n".join(lines) + "\n"


def use_inductor_cache(path) -> None:
    """Compiled graphs persist in `path` between runs (inductor's FX graph cache), unless the environment chose."""
    if path:
        import torch._inductor.config as inductor

        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(os.path.expanduser(str(path))).resolve()))
        inductor.fx_graph_cache = True


def bench(cfg: DictConfig) -> dict:
    check_bench(cfg)  # before anything loads
    device = device_named(cfg.device)
    use_inductor_cache(cfg.inductor_cache)

    def load_base(dtype):
        base, _ = instantiate(cfg.model, dtype=dtype)
        return base.to(device).eval()

    import transformers

    result = {"model": cfg.model.get("name_or_path", cfg.model.get("_target_")), "command":
              " ".join(["python -m l2d.bench", *sys.argv[1:]]), "config": OmegaConf.to_container(cfg, resolve=True),
              "environment": {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else
                              f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
                              "torch": torch.__version__, "transformers": transformers.__version__,
                              "python": platform.python_version()},
              "rows": []}
    out = Path(cfg.paths.output_dir)
    for name in cfg.dtypes:
        dtype = ("bfloat16" if device.type == "cuda" else "float32") if name == "auto" else name
        # Written after each batch size and shape, so what was measured survives a run cut short.
        parts = [decoding_rows(cfg, load_base(dtype), device, dtype)] if cfg.decode.enabled else []
        if cfg.train.enabled:  # float32 master weights, as l2d.train keeps them
            parts.append(training_rows(cfg, lambda: load_base("float32"), device, dtype))
        for rows in (rows for part in parts for rows in part):
            result["rows"] += rows
            write_results(result, out)
    if cfg.profile:
        profile_decoding(cfg, load_base("bfloat16" if device.type == "cuda" else "float32"), device,
                         out / "profile.txt")
    print(markdown(result))
    return result


def write_results(result: dict, out: Path) -> None:
    for name, text in (("bench.json", json.dumps(result, indent=2) + "\n"), ("bench.md", markdown(result))):
        write_atomically(out / name, lambda path, text=text: path.write_text(text))


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="bench")
@one_line
def main(cfg: DictConfig) -> None:
    bench(cfg)


if __name__ == "__main__":
    main()
