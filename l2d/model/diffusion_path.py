"""The diffusion path f_d: a stack of blocks parallel to the LM's, reading the LM's keys and values.

Block l = (adaLN-modulated norm -> cross-attention -> gated residual)
        + (adaLN-modulated norm -> MLP -> gated residual).
Cross-attention queries come from the diffusion hidden state through the LM's own q_proj (+LoRA),
with RoPE at the position of the token they belong to; keys and values are the main path's
cached ones of layer l. No k_proj/v_proj runs here. The MLP is the LM's MLP of layer l (+LoRA).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from peft import LoraConfig, inject_adapter_in_model
from torch import nn
from torch.utils.checkpoint import checkpoint

from l2d.diffusion.path import x_t_std
from l2d.model.conditioning import Conditioning, FusionWeight, LiveConditioning, ModulationHead
from l2d.model.config import L2DConfig
from l2d.model.family import Family, apply_rotary, get
from l2d.model.vocabulary import DiffusionVocabulary

PROJECTIONS = ("q_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
GATES = (2, 5)  # where the residual gates sit among a block's six modulation vectors


@dataclass
class MainPathContext:
    """What the main path hands the diffusion path for Q query slots per row.

    keys/values: per layer (B, kv_heads, T, head_dim), post-RoPE, straight from the KV cache.
    hidden: h_main, the LM's pre-norm final hidden state at each slot's position (B, Q, d).
    token_embeddings: the LM's input embedding of each slot's own token (B, Q, d), where the main
    path's residual stream starts at that position.
    cos/sin: RoPE at each slot's position (B, Q, head_dim).
    mask: (B, 1, Q, T) bool, which keys each slot attends to (causal and not padding).
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    hidden: torch.Tensor
    token_embeddings: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    mask: torch.Tensor

    def rows(self, index: torch.Tensor) -> MainPathContext:
        """The context of batch rows `index` only."""
        return MainPathContext([k[index] for k in self.keys], [v[index] for v in self.values], self.hidden[index],
                               self.token_embeddings[index], self.cos[index], self.sin[index], self.mask[index])


class AttentionBias:
    """A context's key mask (B, 1, Q, T) in the form the fused attention kernels take, for queries whose heads
    that share a key/value head are folded into the query length: (B, kv_heads, groups * Q, head_dim).

    Why: SDPA's flash kernel takes no explicit mask, and its memory-efficient kernel takes one but no grouped heads
    (until pytorch#191085), so a mask with grouped heads falls back to the math kernel, which holds the attention
    probabilities of every head. Folded, q, k and v have equal head counts and k, v stay uncopied; the
    mask becomes an additive bias (0 or -inf) in the dtype SDPA computes in, repeated per group, its rows padded
    to 8 elements, so SDPA neither converts nor pads it per call. Built once per dtype and group count per pass."""

    ALIGNMENT = 8  # elements: the memory-efficient kernel's bias strides (else SDPA pads a copy per call)

    def __init__(self, mask: torch.Tensor):
        self.mask = mask
        self.biases: dict[tuple[torch.dtype, int], torch.Tensor] = {}

    def __call__(self, query: torch.Tensor, groups: int) -> torch.Tensor:
        """(B, 1, groups * Q, T): query row g * Q + i is slot i of group g, in the dtype SDPA computes `query` in
        (autocast's, which would otherwise cast the bias anew at every call)."""
        device = query.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else query.dtype
        if (dtype, groups) not in self.biases:
            batch, _, slots, keys = self.mask.shape
            padded = -(-keys // self.ALIGNMENT) * self.ALIGNMENT
            bias = torch.full((batch, groups, slots, padded), float("-inf"), dtype=dtype, device=self.mask.device)
            bias[..., :keys].masked_fill_(self.mask, 0.0)
            self.biases[dtype, groups] = bias.view(batch, 1, groups * slots, padded)[..., :keys]
        return self.biases[dtype, groups]


def modulated_norm(x: torch.Tensor, weight: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm with weight (w + scale(c)) and a shift(c), normalising in float32 as the LM does."""
    normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)
    return weight * normed.to(x.dtype) + shift


class DiffusionBlock(nn.Module):
    def __init__(self, layer: nn.Module, family: Family, lm_config, config: L2DConfig):
        super().__init__()
        attention, mlp = get(layer, family.attention), get(layer, family.mlp)
        self.input_norm = get(layer, family.input_norm)
        self.post_attention_norm = get(layer, family.post_attention_norm)
        self.eps = lm_config.rms_norm_eps
        self.num_heads = lm_config.num_attention_heads
        self.head_dim = getattr(lm_config, "head_dim", None) or lm_config.hidden_size // self.num_heads
        self.scaling = getattr(attention, "scaling", self.head_dim**-0.5)
        self.query_norm = get(attention, family.query_norm) if family.query_norm else None
        self.act_fn = get(mlp, family.act_fn)
        names = dict(q_proj=family.q_proj, o_proj=family.o_proj, gate_proj=family.gate_proj,
                     up_proj=family.up_proj, down_proj=family.down_proj)
        owners = dict(q_proj=attention, o_proj=attention, gate_proj=mlp, up_proj=mlp, down_proj=mlp)
        shared = {key: get(owners[key], path) for key, path in names.items()}
        if config.full_path:
            self.projections = nn.ModuleDict({k: copy.deepcopy(m).requires_grad_(True) for k, m in shared.items()})
        else:
            # LoRA wrappers around the LM's own (frozen, shared) projections; the LM itself is untouched.
            self.projections = nn.ModuleDict(shared)
            lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                              target_modules=list(PROJECTIONS), init_lora_weights="gaussian")
            inject_adapter_in_model(lora, self.projections)
        # (scale, shift, gate) for each of the two norms: 6 vectors of width d from c.
        self.modulation = ModulationHead(config.conditioning_dim, lm_config.hidden_size, chunks=6)
        self.merged: dict[str, nn.Linear] | None = None  # set by DiffusionPath.merged_lora, at inference only

    def attend(self, a: torch.Tensor, keys, values, cos, sin, bias: AttentionBias) -> torch.Tensor:
        batch, slots, _ = a.shape
        q = self.projection("q_proj")(a).view(batch, slots, self.num_heads, self.head_dim)
        if self.query_norm is not None:
            q = self.query_norm(q)
        q = apply_rotary(q.transpose(1, 2), cos, sin)  # (B, heads, Q, head_dim)
        # The query heads that share a key/value head attend as one head over `groups` times the slots.
        kv_heads = keys.shape[1]
        groups = self.num_heads // kv_heads
        q = q.reshape(batch, kv_heads, groups * slots, self.head_dim)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=bias(q, groups), scale=self.scaling)
        out = out.view(batch, self.num_heads, slots, self.head_dim).transpose(1, 2)
        return self.projection("o_proj")(out.reshape(batch, slots, -1))

    def mlp(self, m: torch.Tensor) -> torch.Tensor:
        gate, up, down = (self.projection(name) for name in ("gate_proj", "up_proj", "down_proj"))
        return down(self.act_fn(gate(m)) * up(m))

    def projection(self, name: str) -> nn.Module:
        return (self.merged or self.projections)[name]

    @torch.no_grad()
    def merge(self) -> dict[str, nn.Linear]:
        """Copies of the LoRA-wrapped projections with W + scaling * B A summed in float32: one matrix product each
        instead of three (the shared W itself stays untouched, the LM uses it)."""
        merged = {}
        for name, wrapped in self.projections.items():
            base = wrapped.base_layer
            delta = sum(wrapped.lora_B[a].weight.float() @ wrapped.lora_A[a].weight.float() * wrapped.scaling[a]
                        for a in wrapped.active_adapters)
            copy_ = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                              device=base.weight.device, dtype=base.weight.dtype)
            copy_.weight.copy_(base.weight.float() + delta)
            if base.bias is not None:
                copy_.bias.copy_(base.bias)
            merged[name] = copy_.requires_grad_(False)
        return merged

    def forward(self, h, modulation, keys, values, cos, sin, bias: AttentionBias) -> torch.Tensor:
        """modulation: (..., 6, d), the block's (scale, shift, gate) for each of its two norms."""
        scale1, shift1, gate1, scale2, shift2, gate2 = modulation.unbind(-2)
        a = modulated_norm(h, self.input_norm.weight + scale1, shift1, self.eps)
        h = h + gate1 * self.attend(a, keys, values, cos, sin, bias)
        m = modulated_norm(h, self.post_attention_norm.weight + scale2, shift2, self.eps)
        return h + gate2 * self.mlp(m)


class DiffusionPath(nn.Module):
    """x_t, t, class -> fused pre-norm hidden state h = h_main + w_d(t) * h_diff (B, Q, d)."""

    def __init__(self, base: nn.Module, family: Family, config: L2DConfig):
        super().__init__()
        lm_config, width = base.config, base.config.hidden_size
        self.sigma = config.sigma
        self.start = config.start
        self.gradient_checkpointing = config.gradient_checkpointing
        self.full_path = config.full_path
        self._merged = None  # (the weights' versions, each block's merged projections) of merged_lora
        self.vocabulary = DiffusionVocabulary(width, config.dim)
        self.translation = nn.Sequential(nn.Linear(config.dim, config.translation_hidden), nn.SiLU(),
                                         nn.Linear(config.translation_hidden, width))
        self.conditioning = Conditioning(config.frequency_dim, config.conditioning_dim, config.num_classes)
        self.blocks = nn.ModuleList(DiffusionBlock(layer, family, lm_config, config)
                                    for layer in get(base, family.layers))
        self.fusion = FusionWeight(config.conditioning_dim, width)
        self._init_weights()

    def _init_weights(self) -> None:
        """As the reference: xavier weights and zero biases, small timestep/class embeddings,
        zero output layers for every modulation head and for w_d (the `zero` start); then, for the
        `mirror` start, the path opened as a copy of the LM (see `_open_as_mirror`)."""
        for module in [self.vocabulary, self.translation, self.conditioning, self.fusion,
                       *(block.modulation for block in self.blocks)]:
            for sub in module.modules():
                if isinstance(sub, nn.Linear):
                    nn.init.xavier_uniform_(sub.weight)
                    if sub.bias is not None:
                        nn.init.zeros_(sub.bias)
        nn.init.normal_(self.conditioning.mlp[0].weight, std=0.02)
        nn.init.normal_(self.conditioning.mlp[-1].weight, std=0.02)
        if self.conditioning.class_embedding is not None:
            nn.init.normal_(self.conditioning.class_embedding.weight, std=0.02)
        for head in [self.fusion.head, *(block.modulation for block in self.blocks)]:
            nn.init.zeros_(head.mlp[-1].weight)
            nn.init.zeros_(head.mlp[-1].bias)
        if self.start == "mirror":
            self._open_as_mirror()

    @torch.no_grad()
    def _open_as_mirror(self) -> None:
        """Start the path as a copy of the LM's own computation at each slot, already open.

        The stream starts at the slot's token embedding, as the main path's does, and x_t enters
        through a translation whose output layer is zero; every residual gate is 1, every shift and
        scale 0 and LoRA B 0, so each block is the LM's block and h_diff = h_main. w_d(t) starts
        equal on every channel (t-shaped, 1 at t = 1), so h = (1 + w_d) h_main, which the final
        RMSNorm maps to the base's logits at every t. Unlike the zero start, where w_d, the gates
        and LoRA B multiply one another from zero, every group has a gradient from the first step.
        """
        nn.init.zeros_(self.translation[-1].weight)
        for block in self.blocks:
            block.modulation.mlp[-1].bias.view(6, -1)[list(GATES)] = 1.0
        device = self.fusion.head.mlp[-1].weight.device
        t = torch.tensor([0.0, 1.0], device=device)
        classes = (torch.zeros(2, dtype=torch.long, device=device)
                   if self.conditioning.class_embedding is not None else None)
        hidden = self.fusion.head.mlp[:-1](self.conditioning(t, classes))
        delta = hidden[1] - hidden[0]  # the last layer's input at t = 1 minus at t = 0
        self.fusion.head.mlp[-1].weight.copy_((delta / delta.pow(2).sum()).expand_as(self.fusion.head.mlp[-1].weight))

    @contextmanager
    def merged_lora(self, enabled: bool = True):
        """Within: every block computes with its LoRA factors merged into copies of its projections (inference
        only: 5 matrix products per block instead of 15). The copies are kept and made again only once a weight
        they were made from has changed (a training step in between); l2d_full's path has nothing to merge."""
        if not enabled or self.full_path:
            yield
            return
        sources = [p for block in self.blocks for p in block.projections.parameters()]
        versions = [(p._version, p.data_ptr(), p.dtype, p.device) for p in sources]
        if self._merged is None or self._merged[0] != versions:
            self._merged = (versions, [block.merge() for block in self.blocks])
        for block, merged in zip(self.blocks, self._merged[1], strict=True):
            block.merged = merged
        try:
            yield
        finally:
            for block in self.blocks:
                block.merged = None

    def condition(self, t: torch.Tensor, class_labels: torch.Tensor | None) -> LiveConditioning:
        return LiveConditioning(self, t, class_labels)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, conditioning, context: MainPathContext) -> torch.Tensor:
        """conditioning: from `condition(t, class_labels)`, or a precomputed table's slots."""
        dtype = self.translation[0].weight.dtype
        # Divide x_t by its std so the path sees unit variance at every t.
        x_in = (x_t.float() / x_t_std(t.float(), self.sigma).unsqueeze(-1)).to(dtype)
        h = self.translation(x_in)
        if self.start == "mirror":
            h = h + context.token_embeddings.to(h.dtype)
        bias = AttentionBias(context.mask)  # built once, shared by every block (and by their recomputation)
        for layer, block in enumerate(self.blocks):
            args = (h, conditioning.block(layer), context.keys[layer], context.values[layer], context.cos,
                    context.sin, bias)
            if self.gradient_checkpointing and self.training:
                h = checkpoint(block, *args, use_reentrant=False)
            else:
                h = block(*args)
        return context.hidden + conditioning.fusion() * h
