"""Run a task on a model: chat prompts -> batched, seeded generation -> scoring -> records.

Prompts are grouped by length (less padding), left-padded and decoded with the KV cache; every
batch draws from its own generator seeded by (seed, batch index), so a run is reproducible.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
from tqdm import tqdm

from l2d.model.generate import generate
from l2d.model.token_search import token_search
from l2d.tasks.base import Problem, Task
from l2d.tasks.summary import problem_score, summarize

log = logging.getLogger(__name__)


@dataclass
class Decoding:
    """How every problem is decoded. `decode` holds the solver options of `generate`."""

    decode: dict[str, Any] = field(default_factory=dict)
    guidance: float | None = None
    temperature: float = 1.0  # the paper's untempered sampling
    max_new_tokens: int | None = None  # None: the task's own
    samples: int = 1
    token_search: dict[str, Any] | None = None


class Completion(NamedTuple):
    text: str
    nfe: float  # mean evaluations per emitted token
    cut: bool  # never stopped: cut at max_new_tokens
    tokens: int  # emitted tokens, the stop token included


def stop_ids(model, tokenizer) -> list[int]:
    """EOS ids of the tokenizer and of the model's generation config (chat end-of-turn tokens)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model.base, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


def guidance_class(model, problem: Problem, guided: bool) -> int:
    """The class id of the problem's guidance name in the model's classes; 0 (null) when absent."""
    names = list(getattr(getattr(model, "config", None), "class_names", []) or [])
    name = problem.get("guidance")
    if name in names:
        return names.index(name) + 1
    if guided:
        raise ValueError(f"guidance needs the class {name!r} of problem {problem['id']}, but the model's classes "
                         f"are {names or 'none'}")
    return 0


def encode_prompts(tokenizer, problems: list[Problem], messages) -> list[list[int]]:
    return [tokenizer.apply_chat_template(messages(p), add_generation_prompt=True, tokenize=True,
                                          return_dict=True)["input_ids"] for p in problems]


def left_pad(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


def decode_batches(prompts: list[list[int]], batch_size: int, seed: int, pad_id: int, device):
    """complete's batches: (prompt indices, ids, mask, generator) per batch, longest prompts first (so batches
    hold similar lengths), batch k drawing from a generator seeded by (seed, k)."""
    order = sorted(range(len(prompts)), key=lambda k: (-len(prompts[k]), k))
    for number, start in enumerate(range(0, len(order), batch_size)):
        batch = order[start:start + batch_size]
        ids, mask = left_pad([prompts[k] for k in batch], pad_id, device)
        yield batch, ids, mask, torch.Generator(device).manual_seed(seed * 100_003 + number)


def pad_token_id(tokenizer, stops: list[int]) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]


def complete(model, tokenizer, prompts: list[list[int]], decoding: Decoding, max_new_tokens: int,
             classes: list[int] | None = None, batch_size: int = 16, seed: int = 0, progress: bool = True,
             desc: str = "generate") -> list[Completion]:
    """Decode token-id prompts through `generate` (or token search); one Completion per prompt, in
    prompt order. Longest prompts first, so batches hold similar lengths; batch k draws from a
    generator seeded by (seed, k); text ends at the first stop token. `classes`: one guidance class
    per prompt, for models trained with classes."""
    stops = stop_ids(model, tokenizer)
    pad_id = pad_token_id(tokenizer, stops)
    completions: list[Completion] = [Completion("", 0.0, False, 0)] * len(prompts)
    batches = decode_batches(prompts, batch_size, seed, pad_id, model.device)
    for batch, ids, mask, generator in tqdm(batches, desc=desc, disable=not progress,
                                            total=-(-len(prompts) // batch_size)):
        options = dict(max_new_tokens=max_new_tokens, temperature=decoding.temperature, eos_token_id=stops,
                       pad_token_id=pad_id, generator=generator, return_stats=True, guidance=decoding.guidance,
                       **decoding.decode)
        if classes is not None:
            options["class_labels"] = torch.tensor([classes[k] for k in batch], device=model.device)
        if decoding.token_search:
            sequences, stats = token_search(model, ids, mask, **decoding.token_search, **options)
        else:
            sequences, stats = generate(model, ids, mask, **options)
        for row, k in enumerate(batch):
            new = sequences[row, ids.shape[1]:].tolist()
            stop = next((i for i, token in enumerate(new) if token in stops), None)
            produced = len(new) if stop is None else stop + 1
            nfe = stats.nfe_per_token[row, :produced].float().mean().item()
            completions[k] = Completion(tokenizer.decode(new[:produced], skip_special_tokens=True), nfe,
                                        stop is None, produced)
    return completions


def run_task(model, tokenizer, task: Task, decoding: Decoding, batch_size: int = 16, limit: int | None = None,
             seed: int = 0, progress: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Generate `decoding.samples` completions per problem and score them; returns (records, summary)."""
    problems = task.problems(limit)
    if not problems:
        raise ValueError(f"task {task.name} has no problems to score")
    guided = decoding.guidance is not None
    classes = [guidance_class(model, p, guided) for p in problems] if model.num_classes > 0 else None
    prompts = encode_prompts(tokenizer, problems, task.messages)
    samples = decoding.samples
    # One job per (problem, sample): job i * samples + s.
    started = time.perf_counter()
    flat = complete(model, tokenizer, [prompts[i] for i in range(len(problems)) for _ in range(samples)], decoding,
                    decoding.max_new_tokens or task.max_new_tokens,
                    None if classes is None else [c for c in classes for _ in range(samples)],
                    batch_size=batch_size, seed=seed, progress=progress, desc=task.name)
    decoding_seconds = time.perf_counter() - started
    completions = {(i, s): flat[i * samples + s] for i in range(len(problems)) for s in range(samples)}

    generations = [[completions[(i, s)].text for s in range(samples)] for i in range(len(problems))]
    results = task.score_all(problems, generations)
    records = []
    for i, (problem, result) in enumerate(zip(problems, results, strict=True)):
        per_sample = [completions[(i, s)] for s in range(samples)]
        records.append({"id": problem["id"], "question": problem["question"], "generations": generations[i],
                        **{k: v for k, v in result.items() if k != "statuses"}, "score": problem_score(result),
                        "nfe": sum(c.nfe for c in per_sample) / len(per_sample),
                        "cut_at_max_new_tokens": [c.cut for c in per_sample],
                        "guidance_class": problem.get("guidance")})
    summary = summarize(results, task.metric, task.ks)
    summary["mean_nfe"] = sum(r["nfe"] for r in records) / len(records)
    summary["n_cut_at_max_new_tokens"] = sum(any(r["cut_at_max_new_tokens"]) for r in records)
    summary["tokens_per_s"] = sum(c.tokens for c in flat) / decoding_seconds  # emitted tokens, all samples
    log.info("%s: %s", task.name, {k: summary[k] for k in ("score", "n", "n_unextracted", "mean_nfe")})
    return records, summary


def decoding_record(decoding: Decoding, max_new_tokens: int) -> dict[str, Any]:
    record = asdict(decoding)
    decode = record.pop("decode")
    record.update(decode, max_new_tokens=max_new_tokens)
    return record
