"""Decoding speed in float32 against bfloat16 weights, by batch rows, A/B interleaved.

python experiments/cpu_speed/decode_dtypes.py [--rows 1,2,4,8,16,64] [--levels 1,8] [--repeats 5] [--threads 1]

SmolLM2-135M with an L2D path at the default configuration (its values do not change the speed), prompts of
45 random tokens (a short-answer prompt's length), 4 new tokens (no stop token), midpoint. Prints the median
seconds per call in each dtype and the float32 / bfloat16 ratio (> 1: bfloat16 faster). With --threads 1 the
seconds are the thread's CPU time (time.thread_time), which waiting for a core shared with other work does not
inflate; with more threads, wall time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from l2d import L2DConfig, L2DModel
from l2d.model.loading import load_base_model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="1,2,4,8,16,64")
    parser.add_argument("--levels", default="1,8")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompt", type=int, default=45)
    parser.add_argument("--new", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {}
    for dtype in (torch.float32, torch.bfloat16):
        base, _ = load_base_model("smollm2-135m", dtype=dtype)
        torch.manual_seed(0)
        models[dtype] = L2DModel(base, L2DConfig()).eval()
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    print(f"{'CPU' if args.threads == 1 else 'wall'} time, median of {args.repeats}; "
          f"threads {torch.get_num_threads()}, prompt {args.prompt} tokens, {args.new} new tokens, midpoint")
    print("| rows | levels | float32 s | bfloat16 s | float32 / bfloat16 |\n|---|---|---|---|---|")
    for levels in map(int, args.levels.split(",")):
        for rows in map(int, args.rows.split(",")):
            prompt = torch.randint(0, 49152, (rows, args.prompt), generator=torch.Generator().manual_seed(rows))
            seconds = {dtype: [] for dtype in models}
            for repeat in range(args.repeats + 1):  # the first round warms up
                for dtype, model in models.items():
                    start = clock()
                    with torch.no_grad():
                        model.generate(prompt, max_new_tokens=args.new, levels=levels, temperature=0.0)
                    if repeat:
                        seconds[dtype].append(clock() - start)
            fp32, bf16 = (statistics.median(seconds[d]) for d in models)
            print(f"| {rows} | {levels} | {fp32:.3f} | {bf16:.3f} | {fp32 / bf16:.2f} |", flush=True)


if __name__ == "__main__":
    main()
