"""Decoding: the main path once per token, the diffusion path NFE times on the last position only.

For each new token: start from x ~ N(0, sigma^2 I) in the diffusion space, integrate
dx/dt = (x̂ - x) / (1 - t) from t=0 to t_final with the chosen solver, evaluate the model once
more at (x(t_final), t_final) and sample the token from those logits. `levels=1` is the plain LM:
its single evaluation at t=0 is the LM's own logits (w_d(0) = 0), so the diffusion path is skipped.

Fast path: `static_cache` preallocates the KV cache (bucketed lengths), once per shape and model, and
resets it in place for the next call, so one diffusion evaluation sees the same shapes, strides and
tensor addresses at every step of every token and of every generate() call; `compile` then hands that
evaluation to torch.compile ("reduce-overhead" replays it as a CUDA graph): one graph per (batch,
guidance, cache bucket), whatever the prompt length. Sampling and the solver's arithmetic stay outside
the compiled region, so the random streams are the plain path's.
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import torch

from l2d.checks import flag, number, one_of, whole
from l2d.diffusion.guidance import NULL_CLASS, combine, guidance_slots
from l2d.diffusion.path import velocity as flow_velocity
from l2d.diffusion.sampling import X1_ESTIMATES, annealed_temperature, estimate_x1, sample_tokens
from l2d.diffusion.solver import ADAPTIVE, check_solver, fixed_nfe, integrate_adaptive, integrate_fixed, time_grid
from l2d.model.conditioning import ConditioningTable
from l2d.model.family import copy_rows, new_cache, positions_from_mask, reorder_cache

COMPILE_MODES = ("eager", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")
CACHE_BUCKET = 128  # static caches round their length up to this, so many prompt lengths share a compiled shape
STATIC_CACHES = 4  # static caches a model keeps for reuse (the most recently used shapes)


@dataclass
class GenerationStats:
    """nfe_per_token: (B, N) model evaluations spent on each new token (0 once a row has finished).
    main_forwards: main-path forwards, 1 prefill + 1 per new token after the first, whatever the NFE."""

    nfe_per_token: torch.Tensor
    main_forwards: int


@dataclass
class Solver:
    """How each token's diffusion is integrated and x̂ drawn: what an evaluation is scored with and records.

    The schema of the `solver` config group (l2d.schema): conf/solver/<name>.yaml chooses the solver and its levels
    (t_final for those that end before 1), conf/protocol the emitted token; every other field keeps its default here.
    levels: grid points of fixed-step solvers (midpoint 8 = 15 evaluations per token), unused by adaptive ones.
    t_start: > 0 skips the first evaluation, the frozen LM's (w_d(0) = 0); x starts as pure noise.
    x1_estimate: x̂ = V_ŷ with ŷ drawn from the diffusion logits (`sample`, the paper's) or their `expectation`.
    x1_temperature: ŷ's temperature (0: the most likely token), falling linearly to 0 along t when annealed.
    atol / rtol: the adaptive solvers' step-size control.
    """

    solver: str = "midpoint"
    levels: int = 8
    t_final: float = 1.0
    t_start: float = 0.0
    x1_estimate: str = "sample"
    x1_temperature: float = 0.0
    anneal_x1_temperature: bool = True
    atol: float = 1e-3
    rtol: float = 1e-3

    def __post_init__(self) -> None:
        check_solver(self.solver)
        whole(self.levels, "levels", minimum=1)
        number(self.t_final, "t_final")
        number(self.t_start, "t_start")
        if not 0.0 < self.t_final <= 1.0:
            raise ValueError(f"t_final must be in (0, 1], got {self.t_final}")
        if not 0.0 <= self.t_start < self.t_final:
            raise ValueError(f"t_start must be in [0, t_final={self.t_final}), got {self.t_start}")
        one_of(self.x1_estimate, "x1_estimate", X1_ESTIMATES)
        number(self.x1_temperature, "x1_temperature", minimum=0)
        flag(self.anneal_x1_temperature, "anneal_x1_temperature")
        if self.atol <= 0 or self.rtol <= 0:
            raise ValueError(f"atol and rtol must be > 0, got atol={self.atol}, rtol={self.rtol}")


@dataclass
class DecodeOptions(Solver):
    """A Solver and how the decoding runs: guidance, and the fast path's switches (same tokens, less time)."""

    guidance: float | None = None
    conditioning_tables: bool = True  # fixed grids: look conditioning up per time instead of recomputing it
    static_cache: bool = False  # preallocated KV cache; compile turns it on
    compile: str | None = None  # torch.compile mode of one evaluation on fixed grids; "eager" = capture only
    # evaluate with the path's LoRA factors merged into copies of its projections; None: where measured faster,
    # on CPU (1.1-1.2x per evaluation, docs/performance.md), not on CUDA until measured there
    merge_lora: bool | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of(self.compile, "compile", COMPILE_MODES, optional=True)
        self.static_cache = self.static_cache or self.compile is not None  # compiled shapes must not change
        if self.guidance is not None and self.guidance < 1.0:
            raise ValueError(f"guidance must be None or a weight >= 1 (1 = plain conditional), got {self.guidance}")


class TokenDiffusion:
    """Integrates one token's diffusion for a batch, given the main path's state at its last position."""

    def __init__(self, model, options: DecodeOptions, class_labels: torch.Tensor | None,
                 generator: torch.Generator | None, observe=None):
        if not hasattr(model, "diffusion"):
            raise ValueError(f"solver={options.solver!r} with levels={options.levels} needs an L2D model; "
                             "the plain LM decodes with levels=1")
        self.model, self.options, self.generator, self.observe = model, options, generator, observe
        # record(t, x (B, d̄), logits (B, V), token (B,) or None): RL rollouts (l2d.rl.rollout) keep every
        # evaluation's state and the x̂ token it sampled; the final evaluation comes with token None.
        self.record = None
        self.table = model.diffusion_table()  # (vocab, d̄), float32, computed once per call
        guided = options.guidance is not None and options.guidance != 1.0  # w=1 is plain conditional
        self.guidance = options.guidance if guided else None
        self.slot_classes = None if class_labels is None else guidance_slots(class_labels, guided)
        self.slots = 1 if self.slot_classes is None else self.slot_classes.shape[1]
        self.tables: dict[float, ConditioningTable] = {}
        # Adaptive steps sync with the host at every step anyway; compiling them would buy nothing.
        self.evaluate = compiled_evaluation(model, None if options.solver in ADAPTIVE else options.compile)

    def logits(self, context, t: float | torch.Tensor, x: torch.Tensor, slot_classes: torch.Tensor | None
               ) -> torch.Tensor:
        """Diffusion logits (B, Q, V) for state x (B, d̄) at time t (a float, or per row (B,)); context and
        slot_classes hold the same B rows as x."""
        batch = x.shape[0]
        x_slots = x.unsqueeze(1).expand(batch, self.slots, x.shape[-1])
        t_rows = torch.full((batch,), t, device=x.device) if isinstance(t, float) else t.float()
        t_slots = t_rows.unsqueeze(1).expand(batch, self.slots)
        conditioning = None
        if isinstance(t, float) and self.options.conditioning_tables:
            if t not in self.tables:
                self.tables[t] = ConditioningTable(self.model.diffusion, t, self.model.num_classes)
            conditioning = self.tables[t].for_slots(slot_classes, (batch, self.slots))
        logits = self.evaluate(x_slots, t_slots, slot_classes, context, conditioning)
        if self.observe is not None:
            self.observe(t, logits)
        return logits

    def next_token_logits(self, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        merge = self.options.merge_lora
        with self.model.diffusion.merged_lora(self.model.device.type == "cpu" if merge is None else merge):
            return self.integrate(*args, **kwargs)

    def integrate(self, cache, h_last, token, index, position, key_mask, noise_rows: torch.Tensor | None = None,
                  noise_batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (logits (B, V) to sample the token from, evaluations per row (B,)); `token` (B,) is
        each row's last input token, the one whose successor is being decided. The starting noise is drawn
        for `noise_batch` rows and row i takes draw `noise_rows[i]` (None: one draw per row), so rows that
        leave the batch early change no other row's noise."""
        options, batch = self.options, h_last.shape[0]
        slot = lambda v: v.unsqueeze(1).expand(batch, self.slots, *v.shape[1:])  # noqa: E731
        context = self.model.context(cache, len(self.model.diffusion.blocks), slot(h_last), slot(token), slot(index),
                                     slot(position), key_mask)
        times = lambda t: torch.full((batch,), t, device=h_last.device) if isinstance(t, float) else t  # noqa: E731

        # (context, classes) per number of rows: adaptive solvers ask for fewer rows as rows arrive, and rows
        # only ever leave, so the count names the set and each narrowing happens once per token.
        narrowed = {batch: (context, self.slot_classes)}

        def velocity(t, x, rows=None):
            temperature = annealed_temperature(options.x1_temperature, t, options.anneal_x1_temperature)
            if isinstance(temperature, torch.Tensor):
                temperature = temperature.view(-1, 1, 1)
            count = batch if rows is None else len(rows)
            if count not in narrowed:
                narrowed[count] = (context.rows(rows),
                                   None if self.slot_classes is None else self.slot_classes[rows])
            rows_context, rows_classes = narrowed[count]
            logits = self.logits(rows_context, t, x, rows_classes)
            if self.record is None:
                x1_slots = estimate_x1(logits, self.table, options.x1_estimate, temperature, self.generator)
            else:  # estimate_x1's `sample`, keeping the token: the same draw from the same stream
                tokens = sample_tokens(logits, temperature, self.generator)
                self.record(t, x, logits[:, 0], tokens[:, 0])
                x1_slots = self.table[tokens]
            return flow_velocity(combine(x1_slots, self.guidance), x, times(t))

        # x_t at t_start with the unknown t_start * V_y left out: the noise part, (1 - t_start) sigma x0.
        x = torch.randn(noise_batch or batch, self.table.shape[1], device=h_last.device, generator=self.generator)
        x = (x if noise_rows is None else x[noise_rows]) * (self.model.config.sigma * (1.0 - options.t_start))
        if options.solver in ADAPTIVE:
            x, nfe = integrate_adaptive(velocity, x, options.solver, options.t_final, options.atol, options.rtol,
                                        t_start=options.t_start)
        else:
            grid = time_grid(options.levels, options.t_final, options.t_start)
            x = integrate_fixed(velocity, x, options.solver, grid)
            nfe = torch.full((batch,), fixed_nfe(options.solver, options.levels), device=h_last.device)
        final = self.logits(context, float(options.t_final), x, self.slot_classes)[:, 0]  # the conditional slot
        if self.record is not None:
            self.record(float(options.t_final), x, final, None)
        return final, nfe + 1


def compiled_evaluation(model, mode: str | None):
    """model.diffusion_logits, compiled once per model and mode (dynamo caches per shape)."""
    if mode is None:
        return model.diffusion_logits
    cache = model.__dict__.setdefault("_compiled_evaluations", {})
    if mode not in cache:
        options = dict(backend="eager") if mode == "eager" else dict(mode=mode)
        graph = torch.compile(model.diffusion_logits, dynamic=False, **options)

        def replay(*args):
            torch.compiler.cudagraph_mark_step_begin()  # the previous replay's logits are consumed by now
            return graph(*args)

        cache[mode] = replay if mode in CUDA_GRAPH_MODES else graph
    return cache[mode]


class Decoder:
    """The state of one batched decode: KV cache, masks, positions, and the last hidden state.

    `start` prefills the prompts; `advance` feeds one token per row. Both return the logits of the
    next token and the evaluations each row spent on them. `select` keeps or repeats rows (beams);
    `retire` drops finished rows for good, leaving the others' noise draws as they were.
    """

    def __init__(self, model, options: DecodeOptions, class_labels, generator: torch.Generator | None, observe=None):
        self.model, self.options = model, options
        plain = options.levels == 1 and options.solver not in ADAPTIVE
        self.diffusion = None if plain else TokenDiffusion(model, options, class_labels, generator, observe)
        self.main_forwards = 0
        self.noise_rows, self.noise_batch = None, None  # set once rows retire

    def start(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int):
        position = positions_from_mask(attention_mask)
        if self.options.static_cache:
            # The mask covers the whole preallocated cache from the start: keys past the current
            # token are excluded by causality, so it never changes shape or contents.
            self.length = math.ceil((input_ids.shape[1] + max_new_tokens) / CACHE_BUCKET) * CACHE_BUCKET
            self.cache = static_cache(self.model, input_ids.shape[0], self.length, self)
            future = attention_mask.new_ones(attention_mask.shape[0], self.length - input_ids.shape[1])
            self.attention_mask = torch.cat([attention_mask, future], dim=1)
        else:
            self.cache = new_cache(self.model.base)
            self.attention_mask = attention_mask
        # contiguous: the last position of the prefill is a view strided by the prompt length, and compiled
        # graphs guard on strides (a graph of its own per prompt length otherwise)
        self.h_last = self.model.run_main_path(input_ids, self.attention_mask, position, self.cache)[:, -1].contiguous()
        self.main_forwards += 1
        self.token = input_ids[:, -1]
        self.position = position[:, -1]
        self.index = torch.full_like(self.position, input_ids.shape[1] - 1)
        return self.next_token_logits()

    def advance(self, tokens: torch.Tensor):
        if not self.options.static_cache:
            self.attention_mask = torch.cat([self.attention_mask, self.attention_mask.new_ones(len(tokens), 1)], 1)
        self.position, self.index, self.token = self.position + 1, self.index + 1, tokens
        self.h_last = self.model.run_main_path(tokens.unsqueeze(1), self.attention_mask, self.position.unsqueeze(1),
                                               self.cache)[:, -1]
        self.main_forwards += 1
        return self.next_token_logits()

    def next_token_logits(self):
        if self.diffusion is None:  # the plain LM: its one evaluation at t=0 is the main path's logits
            batch = self.h_last.shape[0]
            return self.model.lm_logits(self.h_last), torch.ones(batch, dtype=torch.long, device=self.h_last.device)
        return self.diffusion.next_token_logits(self.cache, self.h_last, self.token, self.index, self.position,
                                                self.attention_mask, self.noise_rows, self.noise_batch)

    def retire(self, keep: torch.Tensor) -> None:
        """Decode only rows `keep` (indices into the current batch, in order) from now on: finished rows
        stop costing evaluations. Each kept row goes on drawing the starting noise it would have drawn in
        the full batch, so greedy decoding emits the same tokens as without retiring."""
        if self.noise_rows is None:
            self.noise_rows, self.noise_batch = torch.arange(len(self.token), device=keep.device), len(self.token)
        self.noise_rows = self.noise_rows[keep]
        self.select(keep)

    def select(self, rows: torch.Tensor) -> None:
        """Continue with rows `rows` of the current batch (in that order, repeats allowed)."""
        if self.options.static_cache and len(rows) != len(self.token):
            cache = static_cache(self.model, len(rows), self.length, self)
            copy_rows(self.cache, cache, rows)
            self.cache = cache
        else:
            reorder_cache(self.cache, rows)
        self.attention_mask, self.h_last, self.token = self.attention_mask[rows], self.h_last[rows], self.token[rows]
        self.position, self.index = self.position[rows], self.index[rows]
        if self.diffusion is not None and self.diffusion.slot_classes is not None:
            self.diffusion.slot_classes = self.diffusion.slot_classes[rows]


def static_cache(model, batch: int, length: int, owner):
    """An empty static KV cache of `batch` rows and `length` positions for `owner` (a decoder). Allocated once per
    shape and kept on the model (its STATIC_CACHES most recent shapes), then reset in place for the next decoder:
    its tensors keep their addresses across generate() calls, so CUDA graphs that read them record once. A cache
    whose decoder is still alive is never handed out again."""
    weight = next(model.base.parameters())
    device = weight.device
    autocast = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else None
    key = (batch, length, weight.dtype, autocast, device)  # the cached keys' layout
    caches = model.__dict__.setdefault("_static_caches", OrderedDict())
    cache, user = caches.pop(key, (None, None))
    if cache is not None and user() is None:
        cache.reset()
    else:
        cache = new_cache(model.base, length)
    caches[key] = (cache, weakref.ref(owner))
    while len(caches) > STATIC_CACHES:
        caches.popitem(last=False)
    return cache


def prepare(model, input_ids, attention_mask, class_labels, eos_token_id, pad_token_id, **decode_options):
    """Checks shared by every decoding strategy; returns (options, mask, class labels, eos ids, pad id)."""
    options = DecodeOptions(**{"levels": model.default_levels, **decode_options})
    attention_mask = model.check_inputs(input_ids, attention_mask)
    batch = input_ids.shape[0]
    class_labels = model.check_class_labels(class_labels, batch)
    if options.guidance is not None and class_labels is None:
        raise ValueError("guidance needs class_labels (and a model trained with num_classes > 0)")
    if class_labels is None and model.num_classes > 0:
        class_labels = torch.full((batch,), NULL_CLASS, device=input_ids.device)
    eos = torch.as_tensor([] if eos_token_id is None else eos_token_id, device=input_ids.device).reshape(-1)
    pad = pad_token_id if pad_token_id is not None else (int(eos[0]) if eos.numel() else 0)
    return options, attention_mask, class_labels, eos, pad


@torch.no_grad()
def generate(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
             max_new_tokens: int = 256, temperature: float = 1.0, class_labels=None,
             eos_token_id: int | list[int] | None = None, pad_token_id: int | None = None,
             generator: torch.Generator | None = None, return_stats: bool = False, observe=None, **decode_options):
    """Left-padded prompts (B, P) -> sequences (B, P + new); with return_stats, (sequences, stats).

    decode_options: solver (euler, midpoint, rk4, adaptive_heun, bosh3, fehlberg2, dopri5), levels,
    t_final, t_start, x1_estimate (sample | expectation), x1_temperature (0 = most likely token) with
    anneal_x1_temperature, guidance (w_g >= 1, needs class_labels), atol/rtol (adaptive solvers),
    static_cache and compile (the fast path: same tokens, fewer launches), merge_lora (the path's LoRA factors
    merged into copies of its projections, equal within float rounding; None: on CPU only).
    temperature samples the emitted token (0 = greedy).
    observe(t, logits), if given, sees every diffusion evaluation in order (t a float, or (B,) on
    adaptive solvers; logits (B, Q, V), overwritten by the next evaluation on the compiled path) and
    must not draw from `generator`: l2d.inspect watches the decoding with it, leaving it unchanged.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    options, attention_mask, class_labels, eos, pad = prepare(model, input_ids, attention_mask, class_labels,
                                                              eos_token_id, pad_token_id, **decode_options)
    decoder = Decoder(model, options, class_labels, generator, observe)
    sampling = Sampling(decoder, input_ids, temperature, eos, pad, generator)
    token_loop(decoder, input_ids, attention_mask, max_new_tokens, sampling)
    sequences = torch.cat([input_ids, torch.stack(sampling.tokens, dim=1)], dim=1)
    if return_stats:
        return sequences, GenerationStats(torch.stack(sampling.nfe, dim=1), decoder.main_forwards)
    return sequences


def token_loop(decoder: Decoder, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
               choice) -> None:
    """The loop of every decoding strategy (generate, token_search, l2d.rl.rollout): the prompts prefilled, then
    one new token per step. The per-caller part, `choice`, picks each step's tokens from the logits (B', V) and
    evaluations (B',) of the decoder's rows, `choice.emit(step, logits, nfe)` (False once every row is done), and
    hands back the tokens to feed, one per row it keeps, `choice.feed()` (it may retire or select rows first)."""
    logits, nfe = decoder.start(input_ids, attention_mask, max_new_tokens)
    for step in range(max_new_tokens):
        if not choice.emit(step, logits, nfe) or step == max_new_tokens - 1:
            return
        logits, nfe = decoder.advance(choice.feed())


class Sampling:
    """generate's choice of tokens: each row's token sampled from its logits at `temperature` (0: the most likely),
    `pad` once the row has emitted an `eos` token. Finished rows leave the decoder (their noise draws kept for the
    others, Decoder.retire), unless static shapes keep them. tokens, nfe: per step, (B,) tokens and evaluations."""

    def __init__(self, decoder: Decoder, input_ids: torch.Tensor, temperature: float, eos: torch.Tensor, pad: int,
                 generator: torch.Generator | None):
        self.decoder, self.temperature, self.eos, self.pad, self.generator = decoder, temperature, eos, pad, generator
        batch, self.dtype, self.device = input_ids.shape[0], input_ids.dtype, input_ids.device
        self.finished = torch.zeros(batch, dtype=torch.bool, device=self.device)
        self.rows = torch.arange(batch, device=input_ids.device)  # the rows the decoder still runs
        self.tokens: list[torch.Tensor] = []
        self.nfe: list[torch.Tensor] = []

    def emit(self, step: int, logits: torch.Tensor, nfe: torch.Tensor) -> bool:
        rows, live = self.rows, ~self.finished[self.rows]
        token = torch.full(self.finished.shape, self.pad, dtype=self.dtype, device=self.device)
        token[rows] = torch.where(live, sample_tokens(logits.float(), self.temperature, self.generator), self.pad)
        self.tokens.append(token)
        column = torch.zeros(self.finished.shape, dtype=nfe.dtype, device=self.device)
        column[rows] = torch.where(live, nfe, 0)
        self.nfe.append(column)
        if self.eos.numel():
            self.finished = self.finished | torch.isin(token, self.eos)
        return not (self.eos.numel() and bool(self.finished.all()))

    def feed(self) -> torch.Tensor:
        if not self.decoder.options.static_cache and bool(self.finished[self.rows].any()):  # static: keep every row
            keep = (~self.finished[self.rows]).nonzero().squeeze(1)
            self.decoder.retire(keep)
            self.rows = self.rows[keep]
        return self.tokens[-1][self.rows]
