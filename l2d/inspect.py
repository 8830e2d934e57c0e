"""python -m l2d.inspect checkpoint=<export> prompt="...": watch the diffusion path decide each token.

Every solver evaluation along t gives diffusion logits, from which the path's estimate x̂ is drawn;
their top tokens show where x̂ points, and how that moves until the answer settles. The decoder is
observed, not changed (`generate(observe=...)`): the tokens are those `python -m l2d.evaluate`
would produce with the same options and seed. Writes, under the run directory, trajectory.txt (every
evaluation of every token: t, the emitted token's probability, the top tokens; and, per token, the
listed token nearest to it in the diffusion vocabulary, with the t from which x_t can tell the two
apart), trajectory.png (a heatmap: generated tokens across, evaluations down, coloured by the emitted
token's probability, each cell naming the most likely token) and trajectory.json (the same numbers).
"""

from __future__ import annotations

import json
import logging
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

import hydra
import matplotlib
import torch
from omegaconf import DictConfig, OmegaConf

from l2d.config import config_dir, register_resolvers
from l2d.evaluate import resolve_device
from l2d.export import is_l2d, load
from l2d.files import write_atomically
from l2d.model.config import L2DConfig
from l2d.model.l2d import L2DModel
from l2d.tasks.harness import stop_ids
from l2d.validation import check_inspect, one_line

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)
register_resolvers()
CELL_TEXT_LIMIT = 1200  # cells in the heatmap up to which each names its most likely token


@dataclass
class Evaluation:
    t: float
    p_emitted: float  # probability of the token finally emitted at this position
    top: list[tuple[str, float]]  # the most likely tokens and their probabilities


@dataclass
class Rival:
    """The token, among those the path ranked in its top tokens, whose diffusion token V is closest to the
    emitted one's: x_t = t V_y + (1 - t) x0 tells the two apart (their means 2 noise stds apart) only from
    `readable_from` = 2σ / (distance + 2σ) on."""
    token: str
    token_id: int
    distance: float
    readable_from: float


@dataclass
class TokenTrace:
    token: str
    token_id: int
    evaluations: list[Evaluation]
    rival: Rival | None = None

    @property
    def settled_at(self) -> int | None:
        """1-based evaluation from which the most likely token is the emitted one to the end (None: never)."""
        settled = None
        for number, evaluation in enumerate(self.evaluations, 1):
            if evaluation.top[0][0] != self.token:
                settled = None
            elif settled is None:
                settled = number
        return settled


def show(tokenizer, token_id: int) -> str:
    return tokenizer.decode([token_id])


@torch.no_grad()
def trace(model, tokenizer, prompt_ids: list[int], top_k: int = 5, class_label: int | None = None,
          generator: torch.Generator | None = None, **generate_options) -> list[TokenTrace]:
    """Decode one prompt with `model.generate`, recording every diffusion evaluation of every token."""
    observed: list[tuple[float, torch.Tensor, torch.Tensor]] = []  # (t, top-k probs and ids, all probs)

    def observe(t, logits):
        probs = torch.softmax(logits[0, 0].float(), dim=-1)  # the one row; its conditional slot
        top = probs.topk(top_k)
        observed.append((float(t if isinstance(t, float) else t[0]), top, probs.to("cpu", torch.float16)))

    ids = torch.tensor([prompt_ids], device=model.device)
    labels = None if class_label is None else torch.tensor([class_label], device=model.device)
    sequences, stats = model.generate(ids, torch.ones_like(ids), class_labels=labels, generator=generator,
                                      return_stats=True, observe=observe, **generate_options)
    new = sequences[0, ids.shape[1]:].tolist()
    counts = stats.nfe_per_token[0].tolist()
    produced = [n for n in counts if n > 0]  # 0: after the row stopped, padding only
    if sum(produced) != len(observed):
        raise RuntimeError(f"observed {len(observed)} evaluations but the decoder counted {sum(produced)}")
    table = model.diffusion_table()
    traces, start = [], 0
    for token, count in zip(new, produced, strict=False):  # padding after the stop token has no evaluations
        window = observed[start:start + count]
        evaluations = [Evaluation(t, float(all_probs[token]),
                                  [(show(tokenizer, i), float(p))
                                   for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)])
                       for t, top, all_probs in window]
        candidates = sorted({i for _, top, _ in window for i in top.indices.tolist()} - {token})
        traces.append(TokenTrace(show(tokenizer, token), token, evaluations,
                                 nearest_rival(table, token, candidates, model.config.sigma, tokenizer)))
        start += count
    return traces


def nearest_rival(table: torch.Tensor, token: int, candidates: list[int], sigma: float, tokenizer) -> Rival | None:
    """Of the candidates, the one whose diffusion token lies closest to the emitted token's (see Rival)."""
    if not candidates:
        return None
    distances = torch.linalg.vector_norm(table[candidates] - table[token], dim=-1)
    nearest = int(distances.argmin())
    distance = float(distances[nearest])
    readable_from = 2 * sigma / (distance + 2 * sigma)
    return Rival(show(tokenizer, candidates[nearest]), candidates[nearest], distance, readable_from)


def table(traces: list[TokenTrace], header: str) -> str:
    lines = [header, ""]
    for number, token_trace in enumerate(traces, 1):
        settled = token_trace.settled_at
        where = (f"settled at evaluation {settled} (t={token_trace.evaluations[settled - 1].t:.3f})"
                 if settled else "not the most likely token at the last evaluation (sampled)")
        lines.append(f"token {number} {token_trace.token!r}: {len(token_trace.evaluations)} evaluations, {where}")
        if token_trace.rival:
            rival = token_trace.rival
            lines.append(f"  nearest rival in the diffusion vocabulary: {rival.token!r}, |V - V'| = "
                         f"{rival.distance:.1f}: x_t tells them apart from t = {rival.readable_from:.2f}")
        lines.append(f"  {'eval':>4} {'t':>7} {'p(emitted)':>10}  top tokens")
        for index, evaluation in enumerate(token_trace.evaluations, 1):
            top = " | ".join(f"{text!r} {p:.3f}" for text, p in evaluation.top)
            lines.append(f"  {index:>4} {evaluation.t:>7.4f} {evaluation.p_emitted:>10.3f}  {top}")
        lines.append("")
    return "\n".join(lines)


def heatmap(traces: list[TokenTrace], title: str):
    """Generated tokens across, evaluations down; colour: the emitted token's probability."""
    depth = max(len(tr.evaluations) for tr in traces)
    grid = torch.full((depth, len(traces)), float("nan"))
    for column, token_trace in enumerate(traces):
        for row, evaluation in enumerate(token_trace.evaluations):
            grid[row, column] = evaluation.p_emitted
    # At least wide enough for the title and the axis label of a short answer.
    figure, ax = plt.subplots(figsize=(min(40, max(7.0, 2 + 0.55 * len(traces))), min(30, 2.5 + 0.32 * depth)))
    image = ax.imshow(grid.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    figure.colorbar(image, ax=ax, label="probability of the emitted token", fraction=0.03, pad=0.01)
    if grid.numel() <= CELL_TEXT_LIMIT:
        for column, token_trace in enumerate(traces):
            for row, evaluation in enumerate(token_trace.evaluations):
                text = evaluation.top[0][0]
                label = text.strip() if text.strip().isprintable() and text.strip() else repr(text)[1:-1]
                ax.text(column, row, label[:5], ha="center", va="center", fontsize=6,
                        color="black" if evaluation.p_emitted > 0.6 else "white")
    for column, token_trace in enumerate(traces):
        if token_trace.settled_at:  # the evaluation from which the answer no longer changes
            ax.add_patch(plt.Rectangle((column - 0.5, token_trace.settled_at - 1.5), 1, 1, fill=False,
                                       edgecolor="red", linewidth=1.2))
    fixed = len({tuple(e.t for e in tr.evaluations) for tr in traces}) == 1  # one time grid for every token
    ax.set_yticks(range(depth))
    ax.set_yticklabels([f"{i + 1}  t={e.t:.2f}" for i, e in enumerate(traces[0].evaluations)] if fixed
                       else [str(i + 1) for i in range(depth)], fontsize=7)
    ax.set_ylabel("solver evaluation (t from 0 down to its end)")
    ax.set_xticks(range(len(traces)))
    ax.set_xticklabels([repr(tr.token)[1:-1] for tr in traces], rotation=90, fontsize=7)
    ax.set_xlabel("generated token\n(red box: the evaluation from which it is the most likely token to the end)")
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=9)
    figure.tight_layout()
    return figure


def load_l2d(cfg: DictConfig, dtype: torch.dtype):
    """(L2D model, tokenizer, description); checkpoint=null gives the base with a fresh, untrained path."""
    model, tokenizer, info = load(cfg.checkpoint, dtype, base_model=cfg.base_model, model=cfg.model)
    if is_l2d(model):
        return model, tokenizer, info
    if cfg.checkpoint:
        raise ValueError(f"checkpoint={cfg.checkpoint} is a {info['method']} export: a plain LM has no diffusion "
                         "to inspect (give an L2D export)")
    log.warning("checkpoint=null: the base model with a freshly initialised diffusion path (untrained)")
    torch.manual_seed(cfg.seed)
    return L2DModel(model.base, L2DConfig()), tokenizer, {**info, "method": "l2d (untrained path)"}


def inspect(cfg: DictConfig) -> list[TokenTrace]:
    check_inspect(cfg)  # before anything loads
    device, dtype = resolve_device(cfg)
    model, tokenizer, info = load_l2d(cfg, dtype)
    model.to(device).eval()
    class_label = None
    if model.num_classes > 0:
        names = list(model.config.class_names or [])
        if cfg.guidance_class is not None and cfg.guidance_class not in names:
            raise ValueError(f"guidance_class={cfg.guidance_class!r} is not a class of the model; valid: {names}")
        class_label = 0 if cfg.guidance_class is None else names.index(cfg.guidance_class) + 1
    messages = [{"role": "user", "content": str(cfg.prompt)}]
    prompt_ids = (tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"] if cfg.chat
                  else tokenizer(str(cfg.prompt))["input_ids"])
    solver = OmegaConf.to_container(cfg.solver, resolve=True)
    traces = trace(model, tokenizer, prompt_ids, top_k=cfg.top_k, class_label=class_label,
                   generator=torch.Generator(device).manual_seed(cfg.seed), max_new_tokens=cfg.max_new_tokens,
                   temperature=cfg.temperature, guidance=cfg.guidance,
                   eos_token_id=stop_ids(model, tokenizer), **solver)
    settled = [tr.settled_at for tr in traces if tr.settled_at]
    header = (f"prompt: {cfg.prompt!r}\nmodel: {cfg.checkpoint or info['base_model']} ({info['method']}); "
              f"solver {solver['solver']}, levels {solver['levels']}, t_final {solver['t_final']}, "
              f"temperature {cfg.temperature}, seed {cfg.seed}\n"
              f"answer: {''.join(tr.token for tr in traces)!r}\n"
              f"{len(traces)} tokens, {sum(len(tr.evaluations) for tr in traces) / len(traces):.1f} evaluations "
              f"per token; the answer settled after {sum(settled) / max(1, len(settled)):.1f} evaluations on average "
              f"({len(settled)} of {len(traces)} tokens were the most likely one at the end)")
    out = Path(cfg.paths.output_dir)
    text = table(traces, header)
    write_atomically(out / "trajectory.txt", lambda path: path.write_text(text))
    write_atomically(out / "trajectory.json", lambda path: path.write_text(json.dumps(
        {"prompt": cfg.prompt, "model": info, "solver": solver, "temperature": cfg.temperature, "seed": cfg.seed,
         "tokens": [{**asdict(tr), "settled_at": tr.settled_at} for tr in traces]}, indent=1, default=str)))
    figure = heatmap(traces, header.splitlines()[1] + "\n" + header.splitlines()[2][:150])
    write_atomically(out / "trajectory.png", lambda path: figure.savefig(path, format="png", dpi=130))
    plt.close(figure)
    print(text)
    print(f"wrote {out / 'trajectory.txt'}, {out / 'trajectory.png'} and {out / 'trajectory.json'}")
    return traces


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="inspect")
@one_line
def main(cfg: DictConfig) -> None:
    inspect(cfg)


if __name__ == "__main__":
    main()
