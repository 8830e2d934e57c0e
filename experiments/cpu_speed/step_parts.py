"""One default-job training step, timed by part and by precision, A/B interleaved in one process.

python experiments/cpu_speed/step_parts.py [--repeats 7] [--threads 1] [--variants fp32,autocast,bf16]
    [--shape BATCH,PROMPT,ANSWER] [override ...]

Builds the default job's network (L2D-LoRA on SmolLM2-135M; overrides as the training command's) and takes its
first two micro-batches (one optimizer step of 16 answers); with --shape, one micro-batch of random tokens instead,
the answer supervised (e.g. 16,100,100: long answers, as l2d.bench's second training shape).
Variants, each its own copy of the network:
  fp32      32-true, AdamW for-loop (the default job until this change)
  autocast  bf16-mixed as it was: torch.autocast (no weight cache, as Lightning's), every weight float32, for-loop
  bf16      bf16-mixed now: the frozen base stored in bfloat16, trainable float32, autocast, fused AdamW
  fp32f     32-true with fused AdamW (32-true now)
Prints median milliseconds of: the main path (no grad), forward + backward of both micro-batches, clipping and
the optimizer step; and the losses of each variant's first step (same data and noise). With --threads 1 the times are
the thread's CPU time (time.thread_time), which time spent waiting for a core shared with other work does not
inflate; with more threads, wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from l2d.config import config_dir, register_resolvers
from l2d.model.dtypes import store_frozen
from l2d.model.family import new_cache, positions_from_mask

VARIANTS = {"fp32": (False, False, False), "autocast": (True, False, False), "bf16": (True, True, True),
            "fp32f": (False, False, True)}  # (autocast, frozen base in bfloat16, fused AdamW)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", default="fp32,autocast,bf16")
    parser.add_argument("--shape", default=None, help="BATCH,PROMPT,ANSWER of random tokens")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    register_resolvers()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=args.overrides)
    base, tokenizer = instantiate(cfg.model)
    data = instantiate(cfg.data, tokenizer=tokenizer)
    data.setup("fit")
    loader = iter(data.train_dataloader())
    batches = [next(loader) for _ in range(cfg.batch_size // cfg.data.micro_batch_size)]
    if args.shape:
        batch, prompt, answer = map(int, args.shape.split(","))
        ids = torch.randint(0, base.config.vocab_size, (batch, prompt + answer),
                            generator=torch.Generator().manual_seed(0))
        labels = ids.clone()
        labels[:, :prompt] = -100
        batches = [{"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}]
    torch.manual_seed(0)
    network = instantiate(cfg.method.network, base=base).train()
    variants = args.variants.split(",")
    models, optimizers, contexts = {}, {}, {}
    for v in variants:
        autocast, frozen_bf16, fused = VARIANTS[v]
        model = copy.deepcopy(network)
        if frozen_bf16:
            store_frozen(model, torch.bfloat16)
        models[v] = model
        optimizers[v] = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3,
                                          weight_decay=0.01, fused=fused)
        contexts[v] = ((lambda: torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False)) if autocast
                       else contextlib.nullcontext)
    print(f"threads {torch.get_num_threads()}; micro-batches {[tuple(b['input_ids'].shape) for b in batches]}, "
          f"supervised {[int((b['labels'] != -100).sum()) for b in batches]}")

    def main_path(v):
        with torch.no_grad(), contexts[v]():
            for b in batches:
                models[v].run_main_path(b["input_ids"], b["attention_mask"],
                                        positions_from_mask(b["attention_mask"]), new_cache(models[v].base))

    losses = {v: [] for v in variants}

    def forward_backward(v):
        for i, b in enumerate(batches):
            with contexts[v]():
                loss = models[v](b["input_ids"], b["attention_mask"], b["labels"],
                                 generator=torch.Generator().manual_seed(i)).loss
            (loss / len(batches)).backward()
            losses[v].append(loss.item())

    def optimizer_step(v):
        torch.nn.utils.clip_grad_norm_([p for p in models[v].parameters() if p.requires_grad], 1.0)
        optimizers[v].step()
        optimizers[v].zero_grad(set_to_none=True)

    parts = {"main path": main_path, "forward + backward": forward_backward, "clip + AdamW step": optimizer_step}
    seconds = {(p, v): [] for p in parts for v in variants}
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    for _ in range(args.repeats):
        for v in variants:  # a whole step per variant, the variants in turn
            for p, run in parts.items():
                start = clock()
                run(v)
                seconds[p, v].append(clock() - start)
    print(f"{'CPU' if args.threads == 1 else 'wall'} time, median of {args.repeats}")
    print("| part | " + " | ".join(variants) + " |\n|---|" + "---|" * len(variants))
    for p in [*parts, "step (sum)"]:
        ms = [1e3 * (statistics.median(seconds[p, v]) if p in parts else
                     sum(statistics.median(seconds[q, v]) for q in list(parts)[1:])) for v in variants]
        print(f"| {p} | " + " | ".join(f"{m:.0f} ms" for m in ms) + " |")
    print("first step's micro-batch losses: " + "; ".join(f"{v} {losses[v][0]:.5f} {losses[v][1]:.5f}"
                                                           for v in variants))


if __name__ == "__main__":
    main()
