"""python -m l2d.evaluate [overrides]: score the base, a finetuned baseline or an L2D checkpoint on a task."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from l2d import tracking
from l2d.config import config_dir, evaluation_dtype, register_resolvers
from l2d.export import is_l2d, load
from l2d.files import write_atomically
from l2d.model.dtypes import device_named
from l2d.tasks import get_task
from l2d.tasks.harness import Decoding, decoding_record, run_task
from l2d.tasks.protocol import protocol_record
from l2d.validation import check_evaluate, one_line

log = logging.getLogger(__name__)
register_resolvers()
PLAIN_DECODING = {"solver": "none", "levels": 1}


def resolve_device(cfg: DictConfig) -> tuple[torch.device, torch.dtype]:
    """(device, dtype); dtype auto follows `evaluation_dtype` at cfg.batch_size (1 where there is none)."""
    device = device_named(cfg.device)
    if cfg.dtype == "auto":
        return device, evaluation_dtype(device.type, int(OmegaConf.select(cfg, "batch_size", default=1)))
    return device, getattr(torch, cfg.dtype)


def print_table(result: dict) -> None:
    """The summary as a header and one row; each column as wide as its header or value, two spaces apart,
    so a long task name never runs into the method."""
    s = result["summary"]
    columns = [("task", result["task"], "<"), ("method", result["model"]["method"], "<"),
               ("score %", f"{100 * s['score']:.2f}", ">"),
               ("95% CI", f"{100 * s['ci95_low']:.1f}-{100 * s['ci95_high']:.1f}", ">"),
               ("n", str(s["n"]), ">"), ("no answer", str(s["n_unextracted"]), ">"),
               ("NFE", f"{s['mean_nfe']:.1f}", ">"),
               *((k, f"{100 * v:.1f}", ">") for k, v in s.items() if k.startswith("pass@"))]
    widths = [max(len(head), len(value)) for head, value, _ in columns]
    header, row = ("  ".join(f"{column[part]:{column[2]}{width}}"
                             for column, width in zip(columns, widths, strict=True))
                   for part in (0, 1))
    print(f"\n{header}\n{row}\n")


def evaluate(cfg: DictConfig) -> dict:
    check_evaluate(cfg)  # before anything loads
    started = time.time()
    task = get_task(cfg.task.name, **OmegaConf.to_container(cfg.task.options, resolve=True))
    device, dtype = resolve_device(cfg)
    model, tokenizer, info = load(cfg.checkpoint, dtype, base_model=cfg.base_model, model=cfg.model)
    model.to(device).eval()
    l2d = is_l2d(model)
    solver = {**OmegaConf.to_container(cfg.solver, resolve=True), "compile": cfg.compile}
    decoding = Decoding(decode=solver if l2d else {}, guidance=cfg.guidance, temperature=cfg.temperature,
                        max_new_tokens=cfg.max_new_tokens, samples=cfg.samples,
                        token_search=OmegaConf.to_container(cfg.token_search) if cfg.token_search else None)
    records, summary = run_task(model, tokenizer, task, decoding, batch_size=cfg.batch_size, limit=cfg.limit,
                                seed=cfg.seed, progress=cfg.progress)
    described = decoding_record(decoding, decoding.max_new_tokens or task.max_new_tokens)
    if not l2d:
        described.update(PLAIN_DECODING)
    result = {"task": task.name, "category": task.category, "metric": task.metric,
              "model": {**info, "checkpoint": cfg.checkpoint, "label": cfg.label},
              "protocol": protocol_record(described, l2d, preset=cfg.protocol), "decoding": described,
              "summary": summary, "command": " ".join(["python -m l2d.evaluate", *sys.argv[1:]]), "seed": cfg.seed,
              "device": str(device), "dtype": str(dtype).removeprefix("torch."), "torch": torch.__version__,
              "wall_seconds": time.time() - started, "records": records}
    write_atomically(Path(cfg.paths.output_dir) / "results.json",
                     lambda path: path.write_text(json.dumps(result, indent=1)))
    tracking.log_evaluation(cfg, result)  # the `logger` group; W&B: one run, in its training run's group
    print_table(result)
    return result


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
@one_line
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["summary"]["score"]


if __name__ == "__main__":
    main()
