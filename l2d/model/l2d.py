"""L2DModel: a frozen causal LM (the main path) plus a trainable diffusion path.

Training: the main path runs once without gradient; every supervised position k draws its own
t and x0, its diffusion token x_t carries the next token y = x^{k+1}, and all positions go
through the diffusion path in one parallel pass. The loss is plain cross-entropy on y.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from l2d.diffusion.guidance import NULL_CLASS
from l2d.diffusion.path import add_noise, sample_timesteps
from l2d.model.config import L2DConfig
from l2d.model.diffusion_path import DiffusionPath, MainPathContext
from l2d.model.checkpoint import load_diffusion_path, save_diffusion_path
from l2d.model.family import family_of, get, layer_kv, new_cache, positions_from_mask, rotary_cos_sin
from l2d.model.generate import generate

IGNORE_INDEX = -100


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


class L2DModel(nn.Module):
    def __init__(self, base: nn.Module, config: L2DConfig | None = None):
        super().__init__()
        self.config = config or L2DConfig()
        self.family = family_of(base)
        self.base = base.requires_grad_(False).eval()
        if self.config.base_model is None:
            self.config.base_model = getattr(base.config, "l2d_name_or_path", None) or base.config._name_or_path
        dtype = get(base, self.family.embed_tokens).weight.dtype
        self.diffusion = DiffusionPath(base, self.family, self.config).to(dtype)
        self._frozen_ids = {id(p) for p in self.base.parameters()}

    # ---- bookkeeping -------------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.base.eval()  # frozen: always in inference mode
        return self

    def trainable_named_parameters(self):
        """The diffusion path's own parameters (not the LM weights it shares)."""
        return [(n, p) for n, p in self.diffusion.named_parameters() if id(p) not in self._frozen_ids]

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for _, p in self.trainable_named_parameters())

    @property
    def device(self) -> torch.device:
        return get(self.base, self.family.embed_tokens).weight.device

    # ---- the main path -------------------------------------------------------------------------
    def run_main_path(self, input_ids, attention_mask, position_ids, cache) -> torch.Tensor:
        """Run the frozen LM, filling `cache`; returns its pre-norm final hidden states (B, T, d)."""
        captured = []
        hook = get(self.base, self.family.final_norm).register_forward_pre_hook(
            lambda module, args: captured.append(args[0]))
        try:
            get(self.base, self.family.decoder)(input_ids=input_ids, attention_mask=attention_mask,
                                                position_ids=position_ids, past_key_values=cache, use_cache=True)
        finally:
            hook.remove()
        return captured[-1]

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The LM's own head: final norm, then the vocabulary projection."""
        return get(self.base, self.family.lm_head)(get(self.base, self.family.final_norm)(hidden))

    def context(self, cache, hidden, query_index, query_position, key_mask) -> MainPathContext:
        """Context for Q query slots: query_index (B, Q) cache index of each slot's own token,
        query_position (B, Q) its RoPE position, key_mask (B, T) which cached keys are real."""
        num_layers = len(self.diffusion.blocks)
        keys, values = zip(*(layer_kv(cache, layer) for layer in range(num_layers)))
        cos, sin = rotary_cos_sin(get(self.base, self.family.rotary), hidden, query_position)
        key_index = torch.arange(key_mask.shape[1], device=key_mask.device)
        own = key_index == query_index.unsqueeze(-1)  # (B, Q, T); keeps padding slots finite
        mask = (key_index <= query_index.unsqueeze(-1)) & (key_mask.bool().unsqueeze(1) | own)
        return MainPathContext(list(keys), list(values), hidden, cos, sin, mask.unsqueeze(1))

    def diffusion_logits(self, x_t, t, class_labels, context: MainPathContext) -> torch.Tensor:
        return self.lm_logits(self.diffusion(x_t, t, class_labels, context))

    def diffusion_table(self) -> torch.Tensor:
        """The whole diffusion vocabulary V (vocab, d̄) in float32, for x̂ at inference."""
        return self.diffusion.vocabulary(get(self.base, self.family.embed_tokens).weight)

    # ---- checks --------------------------------------------------------------------------------
    def check_class_labels(self, class_labels: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if class_labels is None:
            return None
        if self.config.num_classes == 0:
            raise ValueError("class_labels were given but the model has no guidance classes "
                             "(L2DConfig.num_classes = 0)")
        class_labels = torch.as_tensor(class_labels, device=self.device).long().reshape(-1)
        if class_labels.numel() != batch:
            raise ValueError(f"class_labels must hold one class per sequence ({batch}), got {class_labels.numel()}")
        if class_labels.min() < 0 or class_labels.max() > self.config.num_classes:
            raise ValueError(f"class_labels must be in 0..{self.config.num_classes} (0 = null class), "
                             f"got {class_labels.tolist()}")
        return class_labels

    @staticmethod
    def check_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if input_ids.dim() != 2 or input_ids.shape[1] == 0:
            raise ValueError(f"input_ids must be (batch, length) with length >= 1, got shape {tuple(input_ids.shape)}")
        if attention_mask is None:
            return torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} must equal input_ids shape "
                             f"{tuple(input_ids.shape)}")
        if not attention_mask.bool().any(dim=1).all():
            raise ValueError("attention_mask has a row with no real token (empty prompt)")
        return attention_mask

    # ---- training forward ----------------------------------------------------------------------
    def forward(self, input_ids, attention_mask=None, labels=None, timesteps=None, class_labels=None) -> L2DOutput:
        """One parallel pass over every supervised position (label != -100; labels aligned with
        input_ids, position k predicts labels[k+1]). Without labels every position is a slot and
        carries the next input token (the last position, which has none, is held at t = 0).
        `timesteps` (a float, (B,) or (B, T) aligned with input positions) overrides sampling."""
        attention_mask = self.check_inputs(input_ids, attention_mask)
        batch, length = input_ids.shape
        class_labels = self.check_class_labels(class_labels, batch)
        position_ids = positions_from_mask(attention_mask)
        with torch.no_grad():
            cache = new_cache(self.base)
            hidden = self.run_main_path(input_ids, attention_mask, position_ids, cache)

        if labels is not None:
            next_tokens = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
            supervised = next_tokens != IGNORE_INDEX
            if not supervised.any():
                raise ValueError("labels have no supervised position (every label is -100)")
        else:
            next_tokens = F.pad(input_ids[:, 1:], (0, 1), value=IGNORE_INDEX)
            supervised = attention_mask.bool()
        # Gather supervised positions to the front of each row: (B, S) slots, S = most per row.
        index = torch.arange(length, device=input_ids.device)
        slots = torch.where(supervised, index, index + length).argsort(dim=1)[:, : int(supervised.sum(1).max())]
        valid = supervised.gather(1, slots)
        targets = next_tokens.gather(1, slots)

        t = self._slot_timesteps(timesteps, batch, length, slots, valid)
        t = torch.where(targets == IGNORE_INDEX, torch.zeros_like(t), t)
        slot_classes = None
        if self.config.num_classes > 0:
            slot_classes = (class_labels if class_labels is not None
                            else torch.full((batch,), NULL_CLASS, device=input_ids.device)).unsqueeze(1).expand_as(slots)
            if self.training and self.config.class_dropout > 0:
                dropped = torch.rand(slots.shape, device=slots.device) < self.config.class_dropout
                slot_classes = torch.where(dropped, NULL_CLASS, slot_classes)

        embed = get(self.base, self.family.embed_tokens)
        x1 = self.diffusion.vocabulary(embed(targets.clamp_min(0)))
        x_t = add_noise(x1, t, self.config.sigma).x_t
        slot_hidden = hidden.gather(1, slots.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        context = self.context(cache, slot_hidden, slots, position_ids.gather(1, slots), attention_mask)
        logits = self.diffusion_logits(x_t, t, slot_classes, context)

        loss = token_losses = None
        if labels is not None:
            token_losses = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(),
                                           ignore_index=IGNORE_INDEX, reduction="none").view_as(targets)
            loss = token_losses.sum() / valid.sum()
        return L2DOutput(loss=loss, logits=logits, positions=slots, valid=valid, timesteps=t,
                         token_losses=token_losses)

    def _slot_timesteps(self, timesteps, batch, length, slots, valid) -> torch.Tensor:
        if timesteps is None:
            return sample_timesteps(slots.shape, self.config.timestep_sampling, device=slots.device)
        t = torch.as_tensor(timesteps, dtype=torch.float32, device=slots.device)
        if t.dim() == 1:
            t = t.unsqueeze(1)
        if t.dim() > 2 or (t.dim() == 2 and t.shape[0] not in (1, batch)) or (t.dim() == 2 and t.shape[1] not in (1, length)):
            raise ValueError(f"timesteps must be a float, (batch,) or (batch, length); got shape {tuple(t.shape)}")
        if (t < 0).any() or (t > 1).any():
            raise ValueError("timesteps must lie in [0, 1]")
        return t.expand(batch, length).gather(1, slots)

    # ---- inference -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, **kwargs):
        """Batched decoding with the KV cache; see `l2d.model.generate.generate` for the options."""
        return generate(self, input_ids, attention_mask, **kwargs)

    # ---- persistence ---------------------------------------------------------------------------
    def save_pretrained(self, directory) -> None:
        """Write only the diffusion path (safetensors) and a JSON config naming the base model."""
        save_diffusion_path(self, directory)

    @classmethod
    def from_pretrained(cls, directory, base: nn.Module | None = None, dtype=None) -> "L2DModel":
        """Restore a diffusion path; the base is loaded from the recorded name unless given."""
        return load_diffusion_path(cls, directory, base=base, dtype=dtype)
