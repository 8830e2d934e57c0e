"""L2DModel: a frozen causal LM (the main path) plus a trainable diffusion path, and the paper's training step
(Algorithm 1 with the cross-entropy rectified-flow loss). Decoding is l2d/model/generate.py.

For a sequence c = x^{0..T-1}, every supervised position k predicts its next token y = x^{k+1} in one parallel pass:
  1. the main path runs once, without gradient: final hidden states h_main and each layer's keys and values;
  2. the supervised positions are gathered into slots; each draws its own t (`uniform` or `cosmap`) and noise
     x0 ~ N(0, σ² I) of width d̄;
  3. x_t = t · V_y + (1 − t) · x0, with V_y = sqrt(d̄) · W_v E_y / ||W_v E_y|| the diffusion vocabulary;
  4. the diffusion path f_d(x_t, t, c) cross-attends to the main path's keys and values of positions ≤ k;
  5. fusion after the last block, h = h_main + w_d(t) ⊙ h_diff, then the LM's final norm and head; w_d(0) = 0, so
     at t = 0 the model is exactly the base LM;
  6. the loss is plain cross-entropy, L = −E[log softmax(logits)_y], over every slot at once.
Research options (l2d/research), none by default, change step 3's (x_t, t) in training only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from l2d import research
from l2d.data.chat import IGNORE_INDEX, next_token_labels
from l2d.diffusion.guidance import NULL_CLASS
from l2d.diffusion.path import add_noise, sample_timesteps
from l2d.model.checkpoint import save_diffusion_path
from l2d.model.config import L2DConfig
from l2d.model.diffusion_path import DiffusionPath, MainPathContext
from l2d.model.family import get, new_cache, positions_from_mask
from l2d.model.groups import trainable_groups
from l2d.model.loss import cross_entropy
from l2d.model.main_path import CausalLM
from l2d.model.origin import origin_of

# losses_at scores several t in one diffusion pass up to this many logits (1 GiB in float32): all of a CPU
# validation batch's t at once, one t per pass for long answers over a large vocabulary.
LOGITS_PER_PASS = 2**28


@dataclass
class Slots:
    """The positions one training pass predicts, gathered to the front of each row: index (B, S) input
    position of each slot, valid (B, S), targets (B, S) the next token y (-100 where none), classes
    (B, S) guidance class or None, and the main path's context for them."""

    index: torch.Tensor
    valid: torch.Tensor
    targets: torch.Tensor
    classes: torch.Tensor | None
    context: MainPathContext

    def repeat(self, count: int) -> Slots:
        """The batch repeated `count` times along its rows (to score several t in one pass)."""
        if count == 1:
            return self
        rows = torch.arange(self.index.shape[0], device=self.index.device).repeat(count)
        return Slots(self.index[rows], self.valid[rows], self.targets[rows],
                     None if self.classes is None else self.classes[rows], self.context.rows(rows))


@dataclass
class L2DOutput:
    """loss: mean cross-entropy over supervised slots (None without labels).
    logits: (B, S, V) at the S query slots; without labels the slots are all T positions.
    positions: (B, S) input position of each slot (it predicts the token after it).
    valid: (B, S) which slots are real; timesteps (B, S); token_losses (B, S), 0 where not valid.
    """

    loss: torch.Tensor | None
    logits: torch.Tensor
    positions: torch.Tensor
    valid: torch.Tensor
    timesteps: torch.Tensor
    token_losses: torch.Tensor | None = None


class L2DModel(CausalLM):
    """The frozen base (main path, see CausalLM) plus the diffusion path."""

    default_levels = 8  # midpoint: 15 evaluations per token, the paper's default

    def __init__(self, base: nn.Module, config: L2DConfig | None = None):
        super().__init__(base)
        self.config = config or L2DConfig()
        if self.config.base_model is None:
            origin = origin_of(base)  # how to load this base again, as the export will record it
            self.config.base_model, self.config.finetuned = origin.name, origin.finetuned
        like = get(base, self.family.embed_tokens).weight
        self.diffusion = DiffusionPath(base, self.family, self.config).to(device=like.device, dtype=like.dtype)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    # ---- the training step (Algorithm 1) -------------------------------------------------------
    def forward(self, input_ids, attention_mask=None, labels=None, timesteps=None, class_labels=None,
                generator: torch.Generator | None = None) -> L2DOutput:
        """One parallel pass over every supervised position (label != -100; labels aligned with
        input_ids, position k predicts labels[k+1]). Without labels every position is a slot and
        carries the next input token (the last position, which has none, is held at t = 0).
        `timesteps` (a float, (B,) or (B, T) aligned with input positions) overrides sampling.
        `generator` draws t, x0 and class dropout (the global stream when None)."""
        slots = self.supervised_slots(input_ids, attention_mask, labels, class_labels)  # steps 1-2
        t = self._slot_timesteps(timesteps, *input_ids.shape, slots.index, slots.valid, generator)
        return self.diffusion_pass(slots, t, labels is not None, generator=generator)  # steps 2-6

    def supervised_slots(self, input_ids, attention_mask, labels, class_labels) -> Slots:
        """Step 1: run the frozen main path once; step 2: gather the positions the diffusion path predicts."""
        attention_mask = self.check_inputs(input_ids, attention_mask)
        batch, length = input_ids.shape
        class_labels = self.check_class_labels(class_labels, batch)
        position_ids = positions_from_mask(attention_mask)
        with torch.no_grad():
            cache = new_cache(self.base)
            hidden = self.run_main_path(input_ids, attention_mask, position_ids, cache)  # h_main (B, T, d)

        if labels is not None:
            next_tokens = next_token_labels(labels)
            supervised = next_tokens != IGNORE_INDEX
            if not supervised.any():
                raise ValueError("labels have no supervised position (every label is -100)")
        else:
            next_tokens = next_token_labels(input_ids)
            supervised = attention_mask.bool()
        # Gather supervised positions to the front of each row: (B, S) slots, S = most per row.
        index = torch.arange(length, device=input_ids.device)
        slots = torch.where(supervised, index, index + length).argsort(dim=1)[:, : int(supervised.sum(1).max())]
        slot_classes = None
        if self.config.num_classes > 0:  # each slot carries its row's class g_j (the null class g_0 when none)
            row_classes = class_labels if class_labels is not None else torch.full((batch,), NULL_CLASS,
                                                                                   device=input_ids.device)
            slot_classes = row_classes.unsqueeze(1).expand_as(slots)
        slot_hidden = hidden.gather(1, slots.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        context = self.context(cache, len(self.diffusion.blocks), slot_hidden, input_ids.gather(1, slots), slots,
                               position_ids.gather(1, slots), attention_mask)
        return Slots(index=slots, valid=supervised.gather(1, slots), targets=next_tokens.gather(1, slots),
                     classes=slot_classes, context=context)

    def diffusion_pass(self, slots: Slots, t: torch.Tensor, supervised: bool, x0=None,
                       generator: torch.Generator | None = None) -> L2DOutput:
        """Steps 3-6 for the slots at their times t (B, S): corrupt each target y (x0 ~ N(0, σ² I) unless given),
        run the path, fuse, and score y by cross-entropy when `supervised`."""
        t = torch.where(slots.targets == IGNORE_INDEX, torch.zeros_like(t), t)  # a slot without y stays at t = 0
        classes = self.dropped_classes(slots.classes, generator)
        noisy = add_noise(self.vocabulary(slots.targets.clamp_min(0)), t, self.config.sigma,  # x_t = t V_y + (1-t) x0
                          generator=generator, x0=x0)
        if supervised and self.training:
            noisy = research.apply(self.config.research, self, slots, noisy, generator)  # none: the paper's
        logits = self.diffusion_logits(noisy.x_t, noisy.t, classes, slots.context)  # h_main + w_d(t) ⊙ h_diff
        token_losses = cross_entropy(logits, slots.targets, IGNORE_INDEX) if supervised else None  # −log p(y)
        return self.output(slots, logits, noisy.t, token_losses)

    def vocabulary(self, tokens: torch.Tensor) -> torch.Tensor:
        """V_y (..., d̄) of tokens y (...): the diffusion vocabulary over the LM's frozen input embeddings E_y."""
        return self.diffusion.vocabulary(get(self.base, self.family.embed_tokens)(tokens))

    def diffusion_logits(self, x_t, t, class_labels, context: MainPathContext, conditioning=None) -> torch.Tensor:
        """Steps 4-5: logits (B, Q, V) of the fused model at Q query slots; `conditioning` may be precomputed."""
        conditioning = conditioning or self.diffusion.condition(t, class_labels)
        return self.lm_logits(self.diffusion(x_t, t, conditioning, context))

    def dropped_classes(self, classes: torch.Tensor | None, generator=None) -> torch.Tensor | None:
        """Guidance in training: each slot's class g_j replaced by the null class g_0 with probability p."""
        if classes is None or not self.training or self.config.class_dropout == 0:
            return classes
        dropped = torch.rand(classes.shape, device=classes.device, generator=generator) < self.config.class_dropout
        return torch.where(dropped, NULL_CLASS, classes)

    def _slot_timesteps(self, timesteps, batch, length, slots, valid, generator=None) -> torch.Tensor:
        """Each slot's t: drawn (`timestep_sampling`), or the given float, (B,) or (B, T) at the slots' positions."""
        if timesteps is None:
            return sample_timesteps(slots.shape, self.config.timestep_sampling, device=slots.device,
                                    generator=generator)
        t = torch.as_tensor(timesteps, dtype=torch.float32, device=slots.device)
        if t.dim() == 1:
            t = t.unsqueeze(1)
        if t.dim() > 2 or (t.dim() == 2 and (t.shape[0] not in (1, batch) or t.shape[1] not in (1, length))):
            raise ValueError(f"timesteps must be a float, (batch,) or (batch, length); got shape {tuple(t.shape)}")
        if (t < 0).any() or (t > 1).any():
            raise ValueError("timesteps must lie in [0, 1]")
        return t.expand(batch, length).gather(1, slots)

    @staticmethod
    def output(slots: Slots, logits, t, token_losses) -> L2DOutput:
        loss = token_losses.sum() / slots.valid.sum() if token_losses is not None else None
        return L2DOutput(loss=loss, logits=logits, positions=slots.index, valid=slots.valid, timesteps=t,
                         token_losses=token_losses)

    # ---- the loss against t (validation) -------------------------------------------------------
    @torch.no_grad()
    def losses_at(self, input_ids, attention_mask=None, labels=None, timesteps=(0.0, 1.0), class_labels=None,
                  generator: torch.Generator | None = None, sampled: bool = False) -> list[L2DOutput]:
        """The loss at each fixed t of `timesteps` over the same positions with the same noise x0: a
        loss-against-t curve whose points differ only in t. `sampled` puts first the loss at t drawn as in
        training (forward's, with its own x0). One main-path pass for all of them, and the diffusion passes
        batched: the slots repeated once per t, as many t per pass as LOGITS_PER_PASS allows."""
        slots = self.supervised_slots(input_ids, attention_mask, labels, class_labels)
        shape, device = slots.index.shape, input_ids.device
        times = [torch.full(shape, float(t), device=device) for t in timesteps]
        x0 = torch.randn((*shape, self.config.dim), device=device, generator=generator)
        noises = [x0] * len(times)
        if sampled:
            times.insert(0, self._slot_timesteps(None, *input_ids.shape, slots.index, slots.valid, generator))
            noises.insert(0, torch.randn((*shape, self.config.dim), device=device, generator=generator))
        per_pass = max(1, LOGITS_PER_PASS // (slots.index.numel() * self.base.config.vocab_size))
        outputs = []
        for first in range(0, len(times), per_pass):
            batch_times, batch_noises = times[first:first + per_pass], noises[first:first + per_pass]
            count = len(batch_times)
            out = self.diffusion_pass(slots.repeat(count), torch.cat(batch_times), labels is not None,
                                      x0=torch.cat(batch_noises) * self.config.sigma)
            outputs += [self.output(slots, *parts) for parts in
                        zip(out.logits.chunk(count), out.timesteps.chunk(count),
                            out.token_losses.chunk(count) if out.token_losses is not None else [None] * count,
                            strict=True)]
        return outputs

    # ---- inference and bookkeeping ---------------------------------------------------------------
    def diffusion_table(self) -> torch.Tensor:
        """The whole diffusion vocabulary V (vocab, d̄) in float32, for x̂ at inference."""
        return self.diffusion.vocabulary(get(self.base, self.family.embed_tokens).weight)

    def trainable_named_parameters(self):
        """The diffusion path's own parameters (not the LM weights it shares). The LM's are looked up at each call:
        sharding (trainer=fsdp) replaces every parameter object."""
        shared = {id(p) for p in self.base.parameters()}
        return [(n, p) for n, p in self.diffusion.named_parameters() if id(p) not in shared]

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for _, p in self.trainable_named_parameters())

    def trainable_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by the part of the path they belong to (l2d.model.groups: w_d, conditioning, ...)."""
        return trainable_groups(self.trainable_named_parameters())

    def save_pretrained(self, directory, training=None) -> None:
        """Write only the diffusion path (safetensors), a JSON config naming the base model, and a model
        card (README.md) in the Hugging Face hub's layout; `training` (l2d.model.card.TrainingRecord)
        adds the run's data, steps and final losses to the card."""
        save_diffusion_path(self, directory, training)

    @classmethod
    def from_pretrained(cls, path, base: nn.Module | None = None, dtype=None) -> L2DModel:
        """Restore a diffusion path from an export directory, or from a training checkpoint (.ckpt) of an L2D run
        (l2d.export); the base is loaded as recorded unless given, and refused when it is not the recorded one."""
        from l2d.export import load_l2d  # the export module builds on this class

        return load_l2d(path, base=base, dtype=dtype, cls=cls)
