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
from l2d.model.generate import Decoder, GenerationStats, prepare


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
    batch, width, device = input_ids.shape[0], hypotheses, input_ids.device
    decoder = Decoder(model, options, class_labels, generator)
    logits, nfe = decoder.start(input_ids, attention_mask, max_new_tokens)

    # The beam starts as one hypothesis per prompt and widens after the first token.
    cumulative = torch.zeros(batch, 1, device=device)
    length = torch.zeros(batch, 1, dtype=torch.long, device=device)
    finished = torch.zeros(batch, 1, dtype=torch.bool, device=device)
    tokens = torch.empty(batch, 1, 0, dtype=torch.long, device=device)
    nfe_columns = []
    for step in range(max_new_tokens):
        current, vocab = cumulative.shape[1], logits.shape[-1]
        logp = torch.log_softmax(logits.float(), dim=-1).view(batch, current, vocab)
        pad_only = torch.full((vocab,), float("-inf"), device=device)
        pad_only[pad] = 0.0
        logp = torch.where(finished.unsqueeze(-1), pad_only, logp)  # finished: carried along unchanged
        candidates = cumulative.unsqueeze(-1) + logp
        grown = length + (~finished).long()
        scores = _rank(candidates, grown.unsqueeze(-1), alpha).view(batch, -1)
        chosen = scores.topk(min(width, scores.shape[1]), dim=-1).indices
        if resample_every and (step + 1) % resample_every == 0 and temperature > 0:
            top = scores.gather(1, chosen)
            picks = torch.stack([sample_tokens(top, temperature, generator) for _ in range(top.shape[1])], dim=1)
            chosen = chosen.gather(1, picks)
        beam, token = chosen // vocab, chosen % vocab
        nfe_columns.append((nfe.view(batch, current) * (~finished)).sum(1))
        cumulative = candidates.view(batch, -1).gather(1, chosen)
        length = grown.gather(1, beam)
        finished = finished.gather(1, beam) | (torch.isin(token, eos) if eos.numel() else False)
        tokens = torch.cat([tokens.gather(1, beam.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])),
                            token.unsqueeze(-1)], dim=-1)
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        decoder.select((torch.arange(batch, device=device).unsqueeze(1) * current + beam).flatten())
        logits, nfe = decoder.advance(token.flatten())

    final = sample_tokens(_rank(cumulative, length, alpha), temperature, generator)
    best = tokens[torch.arange(batch, device=device), final]
    sequences = torch.cat([input_ids, best], dim=1)
    if return_stats:
        return sequences, GenerationStats(torch.stack(nfe_columns, dim=1), decoder.main_forwards)
    return sequences
