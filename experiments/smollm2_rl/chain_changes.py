"""When does the chain decide? python experiments/smollm2_rl/chain_changes.py MAIN RESULTS [RESULTS ...]

Each RESULTS is the results.json of a greedy `python -m l2d.evaluate` of an L2D export (the most likely emitted
token), with the scoring's composed config beside it (.hydra/config.yaml, as l2d.evaluate leaves it). Its
problems are decoded again from that config exactly as l2d.tasks.harness.run_task did (the same task prompts,
batches, order and noise streams; the generations are checked against RESULTS), watching the most
likely token of every evaluation of the diffusion path. For each generated token: the t from which that is the
emitted token to the end. At t = 0 w_d(0) = 0, so the first evaluation is the main path's own prediction: a
token settled at t = 0 is the main path's, one settled later is the chain's change of it. Steps can pay only
where the chain changes its mind while x_t is still being refined; a decision taken at the first evaluations
(x_t nearly pure noise) or only at the last is one that more evaluations merely confirm or cannot inform.
Prints the share of tokens settled at each t, and the accuracy of the problems where the chain moved after t = 0
and of the others, beside MAIN's on the same problems (MAIN: the greedy results.json of the main path alone,
e.g. the LoRA model the path was trained on): whether the chain's changes mend the main path or spoil it.
"""

import json
import sys
from itertools import pairwise
from pathlib import Path

import torch
from omegaconf import OmegaConf

from l2d.diffusion.solver import ADAPTIVE, fixed_nfe
from l2d.evaluate import resolve_device
from l2d.export import load
from l2d.model.generate import generate
from l2d.tasks import get_task
from l2d.tasks.harness import decode_batches, encode_prompts, pad_token_id, stop_ids


@torch.no_grad()
def chains(model, ids, mask, generator, options) -> tuple[list[list[int]], list[list[list[int]]], list[float]]:
    """(new tokens, each token's most likely token at every evaluation, the evaluations' t) per row, up to and
    including its stop token."""
    observed: list[tuple[float, torch.Tensor]] = []
    sequences = generate(model, ids, mask, generator=generator, **options,
                         observe=lambda t, logits: observed.append((float(t), logits[:, 0].argmax(-1))))
    per_token = fixed_nfe(options["solver"], options["levels"]) + 1  # the grid's evaluations + the final one
    times = [t for t, _ in observed[:per_token]]
    new = sequences[:, ids.shape[1]:].tolist()
    stops = set(options["eos_token_id"])
    tokens: list[list[int]] = [[] for _ in new]
    argmaxes: list[list[list[int]]] = [[] for _ in new]
    active = list(range(len(new)))
    for step in range(len(observed) // per_token):  # the decoder drops finished rows, keeping the order
        window = torch.stack([top for _, top in observed[step * per_token:(step + 1) * per_token]], dim=1).tolist()
        for row, chain in zip(active, window, strict=True):
            tokens[row].append(new[row][step])
            argmaxes[row].append(chain)
        active = [row for row in active if new[row][step] not in stops]
    return tokens, argmaxes, times


def settled(chain: list[int], token: int) -> int:
    """The first evaluation from which the most likely token is the emitted one to the end (greedily the last
    evaluation's most likely token is the emitted one, so there is one)."""
    index = len(chain)
    while index > 0 and chain[index - 1] == token:
        index -= 1
    return index


BINS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)  # settling t: at 0 (the main path's own token), then up to each bound


def main(main_results: str, results: str) -> None:
    alone = {r["id"]: r["score"] for r in json.loads(Path(main_results).read_text())["records"]}
    records = json.loads(Path(results).read_text())["records"]
    composed = Path(results).parent / ".hydra" / "config.yaml"
    if not composed.is_file():
        raise SystemExit(f"{results}: no {composed} beside it (the scoring's config, as l2d.evaluate leaves it)")
    cfg = OmegaConf.load(composed)
    if cfg.temperature != 0 or cfg.task.samples != 1 or cfg.solver.solver in ADAPTIVE or cfg.solver.levels < 2:
        raise SystemExit(f"{results}: needs a greedy fixed-grid scoring of an L2D export at levels >= 2")
    task = get_task(cfg.task.name, **OmegaConf.to_container(cfg.task.options, resolve=True))
    problems = task.problems(cfg.limit)
    if [p["id"] for p in problems] != [r["id"] for r in records]:
        raise SystemExit(f"{results}: its problems are not those of its config's task ({cfg.task.name})")
    device, dtype = resolve_device(cfg)
    model, tokenizer, _ = load(cfg.checkpoint, dtype, base_model=cfg.base_model, model=cfg.model)
    model.to(device).eval()
    if model.num_classes > 0:
        raise SystemExit(f"{results}: models with guidance classes are not handled here")
    stops = stop_ids(model, tokenizer)
    pad_id = pad_token_id(tokenizer, stops)
    options = dict(max_new_tokens=cfg.max_new_tokens or task.max_new_tokens, temperature=0.0, eos_token_id=stops,
                   pad_token_id=pad_id, compile=cfg.compile, **OmegaConf.to_container(cfg.solver, resolve=True))
    prompts = encode_prompts(tokenizer, problems, task.messages)
    settle_times: list[float] = []
    outcomes: dict[bool, list[tuple[float, float]]] = {True: [], False: []}  # moved after t = 0 -> (score, MAIN's)
    for batch, ids, mask, generator in decode_batches(prompts, cfg.batch_size, cfg.seed, pad_id, model.device):
        new, argmaxes, times = chains(model, ids, mask, generator, options)
        for k, emitted, token_chains in zip(batch, new, argmaxes, strict=True):
            text = tokenizer.decode(emitted, skip_special_tokens=True)
            if text != records[k]["generations"][0]:
                raise SystemExit(f"{records[k]['id']}: decoded {text!r}, "
                                 f"{results} has {records[k]['generations'][0]!r}")
            found = [times[settled(chain, token)] for token, chain in zip(emitted, token_chains, strict=True)]
            settle_times += found
            outcomes[any(t > 0 for t in found)].append((records[k]["score"], alone[records[k]["id"]]))
    tokens = len(settle_times)
    moved = sum(t > 0 for t in settle_times)
    print(f"{results}: levels {cfg.solver.levels}, {len(records)} problems, {tokens} tokens (stop tokens included); "
          f"the most likely token moved after t = 0 on {moved} ({100 * moved / tokens:.1f}%), in "
          f"{len(outcomes[True])} problems ({100 * len(outcomes[True]) / len(records):.1f}%)")
    shares = [sum(t == 0 for t in settle_times)] + [sum(low < t <= high for t in settle_times)
                                                     for low, high in pairwise(BINS)]
    print("  the emitted token is the most likely from t = 0: " + ", ".join(
        [f"{100 * shares[0] / tokens:.1f}%"] + [f"({low}, {high}] {100 * n / tokens:.1f}%"
                                                for (low, high), n in zip(pairwise(BINS), shares[1:], strict=True)]))
    for kind, scores in (("moved", outcomes[True]), ("did not move", outcomes[False])):
        if scores:
            print(f"  problems where it {kind}: {len(scores)}, "
                  f"accuracy {100 * sum(s for s, _ in scores) / len(scores):.1f}%"
                  f" (the main path alone: {100 * sum(m for _, m in scores) / len(scores):.1f}%)")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    for path in sys.argv[2:]:
        main(sys.argv[1], path)
