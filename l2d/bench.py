"""python -m l2d.bench [overrides]: decoding and training speed, side by side, in one process.

Decoding: transformers' own greedy generate() of the base, our plain decoding (levels=1), and L2D
at several solvers and levels, with guidance off and on; tokens/s, ms/token and ms per NFE.
Training: tokens/s and peak memory of l2d_lora, l2d_full, lora and full on one batch shape, and
model FLOPs utilisation on GPU. Results: bench.json and bench.md in the run directory.
"""

from __future__ import annotations

import json
import logging
import platform
import statistics
import sys
import time
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from l2d.config import config_dir, register_resolvers
from l2d.data.chat import IGNORE_INDEX, next_token_labels
from l2d.files import write_atomically
from l2d.model.config import L2DConfig
from l2d.model.finetune import Finetune
from l2d.model.l2d import L2DModel
from l2d.model.main_path import CausalLM
from l2d.validation import check_bench, one_line

log = logging.getLogger(__name__)
register_resolvers()
H100_BF16_PEAK = 989e12  # dense bf16 FLOP/s of an H100 SXM


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run, device: torch.device, warmup: int, repeats: int, label: str) -> float:
    """Median seconds of `run()` after `warmup` untimed calls. Each setting is logged as it starts and ends,
    so a run cut short (a GPU lease's limit) still says which setting took the time."""
    log.info("%s: warm-up", label)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(warmup):
        run()
    synchronize(device)
    log.info("%s: warm-up %.1f s (compilation included)", label, time.perf_counter() - start)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    log.info("%s: median %.3f s of %d", label, median, repeats)
    return median


def fast_path(cfg: DictConfig, device: torch.device) -> dict:
    """Decode options of the fast path, {} when off. decode.compile: auto = CUDA graphs on GPU,
    nothing on CPU (inductor's C++ build would dominate)."""
    mode = cfg.decode.compile
    if mode == "auto":
        mode = "reduce-overhead" if device.type == "cuda" else None
    return {} if mode is None else dict(compile=mode)


def decoding_rows(cfg: DictConfig, base, device) -> list[dict]:
    """One row per (setting, batch size): seconds for prompt + new tokens, tokens/s, ms/token, ms/NFE.
    With decode.compile, every L2D setting also runs on the fast path (static cache, compiled evaluation)."""
    rows, fast = [], fast_path(cfg, device)
    variants = [("", {})] + ([(f" [compile={fast['compile']}]", fast)] if fast else [])
    compiled = set()
    plain = CausalLM(base)
    l2d = L2DModel(base, L2DConfig(num_classes=2)).to(device=device, dtype=next(base.parameters()).dtype).eval()
    for batch in cfg.decode.batch_sizes:
        prompt = torch.randint(0, base.config.vocab_size, (batch, cfg.decode.prompt_tokens), device=device)
        new = cfg.decode.new_tokens
        settings = {"transformers generate()": lambda: base.generate(
                        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new, min_new_tokens=new,
                        do_sample=False, pad_token_id=0),
                    "ours, plain LM (levels=1)": lambda: plain.generate(prompt, max_new_tokens=new, temperature=0.0)}
        nfe = {"transformers generate()": 1, "ours, plain LM (levels=1)": 1}
        for spec in cfg.decode.l2d:
            for guided in cfg.decode.guidance:
                for suffix, variant in variants:
                    name = f"L2D {spec.solver} levels={spec.levels}" + (" + guidance" if guided else "") + suffix
                    options = dict(solver=spec.solver, levels=spec.levels, max_new_tokens=new, temperature=0.0,
                                   **variant)
                    if variant:
                        compiled.add(name)
                    if guided:
                        options.update(guidance=2.0, class_labels=torch.ones(batch, dtype=torch.long, device=device))
                    settings[name] = lambda options=options: l2d.generate(prompt, **options)
                    nfe[name] = (2 if spec.solver == "midpoint" else 1) * (spec.levels - 1) + 1
        seconds = {}
        with torch.no_grad():
            for name, run in settings.items():
                if name in compiled:
                    torch._dynamo.reset()  # each shape compiles afresh in its warm-up, never past dynamo's limit
                seconds[name] = timed(run, device, cfg.warmup, cfg.repeats, f"{name}, batch {batch}")
        reference = seconds["ours, plain LM (levels=1)"]
        for name, s in seconds.items():
            extra = (s - reference) / (new * nfe[name]) * 1e3 if name.startswith("L2D") else None
            rows.append({"kind": "decode", "setting": name, "batch": batch, "nfe": nfe[name], "seconds": s,
                         "tokens_per_s": batch * new / s, "ms_per_token": s / new * 1e3, "ms_per_nfe": extra,
                         "vs_transformers": seconds["transformers generate()"] / s})
    return rows


def training_flops(method: str, base, network, tokens: int, supervised: int) -> float:
    """Model FLOPs of one step (6 per parameter per token trained, 2 for a forward only)."""
    base_params = sum(p.numel() for p in base.parameters())
    if method in ("lora", "full"):
        return 6 * base_params * tokens
    path_params = sum(p.numel() for n, p in network.diffusion.named_parameters() if "lora_" not in n)
    return 2 * base_params * tokens + 6 * path_params * supervised  # main path once, no gradient


def training_rows(cfg: DictConfig, load_base, device) -> list[dict]:
    rows = []
    for method in cfg.train.methods:
        base = load_base()
        network = {"l2d_lora": lambda: L2DModel(base, L2DConfig()), "l2d_full": lambda: L2DModel(
                   base, L2DConfig(full_path=True)), "lora": lambda: Finetune(base, lora_rank=4),
                   "full": lambda: Finetune(base, lora_rank=0)}[method]().to(device).train()
        optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-5)
        ids = torch.randint(0, base.config.vocab_size, (cfg.train.batch, cfg.train.sequence), device=device)
        labels = ids.clone()
        labels[:, : cfg.train.sequence // 2] = IGNORE_INDEX  # half prompt, half answer, as chat data
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

        def step():
            with autocast:
                loss = network(input_ids=ids, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = timed(step, device, cfg.warmup, cfg.repeats, f"training step, {method}")
        tokens = ids.numel()
        flops = training_flops(method, base, network, tokens, int((next_token_labels(labels) != IGNORE_INDEX).sum()))
        rows.append({"kind": "train", "setting": method, "batch": cfg.train.batch, "sequence": cfg.train.sequence,
                     "seconds": seconds, "tokens_per_s": tokens / seconds,
                     "trainable_parameters": sum(p.numel() for p in network.parameters() if p.requires_grad),
                     "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda"
                     else None, "mfu": flops / seconds / H100_BF16_PEAK if device.type == "cuda" else None})
        del network, optimizer, base
    lora = next((r["tokens_per_s"] for r in rows if r["setting"] == "lora"), None)
    for row in rows:
        row["vs_lora"] = row["tokens_per_s"] / lora if lora else None
    return rows


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


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [f"# l2d benchmark: {result['model']}", "",
             f"Device {env['device']}, dtype {env['dtype']}, torch {env['torch']}, transformers "
             f"{env['transformers']}, Python {env['python']}.", "", f"Command: `{result['command']}`", "",
             "## Decoding", "", "| setting | batch | NFE | tokens/s | ms/token | ms per NFE | × transformers |",
             "|---|---|---|---|---|---|---|"]
    for r in (r for r in result["rows"] if r["kind"] == "decode"):
        per_nfe = "" if r["ms_per_nfe"] is None else f"{r['ms_per_nfe']:.3f}"
        lines.append(f"| {r['setting']} | {r['batch']} | {r['nfe']} | {r['tokens_per_s']:.1f} | "
                     f"{r['ms_per_token']:.2f} | {per_nfe} | {r['vs_transformers']:.2f} |")
    lines += ["", "## Training", "", "| method | batch × seq | tokens/s | × lora | trainable | peak GB | MFU |",
              "|---|---|---|---|---|---|---|"]
    for r in (r for r in result["rows"] if r["kind"] == "train"):
        memory = "" if r["peak_memory_gb"] is None else f"{r['peak_memory_gb']:.1f}"
        mfu = "" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        ratio = "" if r["vs_lora"] is None else f"{r['vs_lora']:.2f}"
        lines.append(f"| {r['setting']} | {r['batch']} × {r['sequence']} | {r['tokens_per_s']:.0f} | {ratio} | "
                     f"{r['trainable_parameters'] / 1e6:.1f}M | {memory} | {mfu} |")
    return "\n".join(lines) + "\n"


def bench(cfg: DictConfig) -> dict:
    check_bench(cfg)  # before anything loads
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          "cpu" if cfg.device == "auto" else cfg.device)
    dtype = torch.bfloat16 if cfg.dtype == "auto" and device.type == "cuda" else (
        torch.float32 if cfg.dtype == "auto" else getattr(torch, cfg.dtype))

    def load_base():
        base, _ = instantiate(cfg.model, dtype=dtype)
        return base.to(device).eval()

    import transformers

    result = {"model": cfg.model.get("name_or_path", cfg.model.get("_target_")), "command":
              " ".join(["python -m l2d.bench", *sys.argv[1:]]), "config": OmegaConf.to_container(cfg, resolve=True),
              "environment": {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else
                              f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
                              "dtype": str(dtype).removeprefix("torch."), "torch": torch.__version__,
                              "transformers": transformers.__version__, "python": platform.python_version()},
              "rows": []}
    out = Path(cfg.paths.output_dir)
    # Written after each part, so an hour of decoding survives a later part that fails.
    if cfg.decode.enabled:
        result["rows"] += decoding_rows(cfg, load_base(), device)
        write_results(result, out)
    if cfg.train.enabled:
        result["rows"] += training_rows(cfg, load_base, device)
        write_results(result, out)
    if cfg.profile:
        profile_decoding(cfg, load_base(), device, out / "profile.txt")
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
