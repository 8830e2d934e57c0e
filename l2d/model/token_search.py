"""Token search (the paper's §4.3): a beam search over sequences, for the plain LM or with L2D.

Partial completions are ranked by total log-likelihood / length^alpha. Every `resample_every`
steps (0 = never) the beam is redrawn from its scores treated as logits at `temperature`, and
the final completion is drawn the same way (temperature 0 takes the best). With L2D, each
hypothesis's next-token distribution is the one its diffusion produces, so NFE per token is
paid once per live hypothesis.
"""

from __future__ import annotations

import torch

from l2d.diffusion.sampling import sample_tokens
from l2d.model.generate import Decoder, GenerationStats, prepare, token_loop


def _rank(cumulative: torch.Tensor, length: torch.Tensor, alpha: float) -> torch.Tensor:
    return cumulative / length.clamp_min(1).float() ** alpha


@torch.no_grad()
def token_search(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                 hypotheses: int = 15, alpha: float = 1.0, temperature: float = 0.0, resample_every: int = 0,
                 max_new_tokens: int = 256, class_labels=None, eos_token_id=None, pad_token_id=None,
                 generator: torch.Generator | None = None, return_stats: bool = False, **decode_options):
    """Left-padded prompts (B, P) -> (B, P + new) sequences; decode_options as `generate`."""
    if hypotheses < 1 or max_new_tokens < 1 or resample_every < 0 or temperature < 0:
        raise ValueError(f"token search needs hypotheses >= 1, max_new_tokens >= 1, resample_every >= 0 and "
                         f"temperature >= 0; got {hypotheses}, {max_new_tokens}, {resample_every}, {temperature}")
    options, attention_mask, class_labels, eos, pad = prepare(model, input_ids, attention_mask, class_labels,
                                                              eos_token_id, pad_token_id, **decode_options)
    decoder = Decoder(model, options, class_labels, generator)
    beams = Beams(decoder, input_ids, hypotheses, alpha, temperature, resample_every, eos, pad, generator)
    token_loop(decoder, input_ids, attention_mask, max_new_tokens, beams)
    final = sample_tokens(_rank(beams.cumulative, beams.length, alpha), temperature, generator)
    best = beams.tokens[torch.arange(input_ids.shape[0], device=input_ids.device), final]
    sequences = torch.cat([input_ids, best], dim=1)
    if return_stats:
        return sequences, GenerationStats(torch.stack(beams.nfe, dim=1), decoder.main_forwards)
    return sequences


class Beams:
    """token_search's choice of tokens (generate.token_loop's per-caller part): the `width` best continuations of
    each prompt's hypotheses by rank, every `resample_every` steps redrawn from their ranks at `temperature`.
    The beam starts as one hypothesis per prompt and widens after the first token; a finished hypothesis is
    carried along unchanged (pad)."""

    def __init__(self, decoder, input_ids: torch.Tensor, width: int, alpha: float, temperature: float,
                 resample_every: int, eos: torch.Tensor, pad: int, generator: torch.Generator | None):
        self.decoder, self.width, self.alpha, self.temperature = decoder, width, alpha, temperature
        self.resample_every, self.eos, self.pad, self.generator = resample_every, eos, pad, generator
        self.batch = batch = input_ids.shape[0]
        device = input_ids.device
        self.cumulative = torch.zeros(batch, 1, device=device)  # total log-likelihood of each hypothesis
        self.length = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.finished = torch.zeros(batch, 1, dtype=torch.bool, device=device)
        self.tokens = torch.empty(batch, 1, 0, dtype=torch.long, device=device)
        self.nfe: list[torch.Tensor] = []  # per step, (B,) evaluations over each prompt's live hypotheses

    def emit(self, step: int, logits: torch.Tensor, nfe: torch.Tensor) -> bool:
        batch, device = self.batch, self.cumulative.device
        current, vocab = self.cumulative.shape[1], logits.shape[-1]
        logp = torch.log_softmax(logits.float(), dim=-1).view(batch, current, vocab)
        pad_only = torch.full((vocab,), float("-inf"), device=device)
        pad_only[self.pad] = 0.0
        logp = torch.where(self.finished.unsqueeze(-1), pad_only, logp)  # finished: carried along unchanged
        candidates = self.cumulative.unsqueeze(-1) + logp
        grown = self.length + (~self.finished).long()
        scores = _rank(candidates, grown.unsqueeze(-1), self.alpha).view(batch, -1)
        chosen = scores.topk(min(self.width, scores.shape[1]), dim=-1).indices
        if self.resample_every and (step + 1) % self.resample_every == 0 and self.temperature > 0:
            top = scores.gather(1, chosen)
            picks = torch.stack([sample_tokens(top, self.temperature, self.generator) for _ in range(top.shape[1])],
                                dim=1)
            chosen = chosen.gather(1, picks)
        beam, self.token = chosen // vocab, chosen % vocab
        self.nfe.append((nfe.view(batch, current) * (~self.finished)).sum(1))
        self.cumulative = candidates.view(batch, -1).gather(1, chosen)
        self.length = grown.gather(1, beam)
        self.finished = self.finished.gather(1, beam) | (torch.isin(self.token, self.eos) if self.eos.numel()
                                                         else False)
        self.tokens = torch.cat([self.tokens.gather(1, beam.unsqueeze(-1).expand(-1, -1, self.tokens.shape[-1])),
                                 self.token.unsqueeze(-1)], dim=-1)
        self.rows = (torch.arange(batch, device=device).unsqueeze(1) * current + beam).flatten()
        return not bool(self.finished.all())

    def feed(self) -> torch.Tensor:
        self.decoder.select(self.rows)
        return self.token.flatten()
