"""Scoring protocols: how the emitted token and x̂ are drawn when a model is scored.

`paper`: the paper's tables (Section 4, Appendix D.6; SakanaAI/L2D's generation defaults): the emitted
token sampled at temperature 1 from the final logits, x̂ the most likely token at every evaluation,
integrated to t = 1, several completions per problem so that a sampled score resolves a few points.
`greedy`: its Table 15, the emitted token the most likely one. The presets are `conf/protocol/`; every
results file records the values it was decoded with under `protocol`, named by `protocol_name`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The decoding fields a protocol fixes; the first two apply to every model, the others to L2D only.
PLAIN_FIELDS = ("temperature", "samples")
DIFFUSION_FIELDS = ("x1_estimate", "x1_temperature", "anneal_x1_temperature", "t_final", "t_start")
PAPER_TEMPERATURE = 1.0  # the paper's untempered sampling


def protocol_name(temperature: float) -> str:
    """`greedy` (temperature 0), `paper` (untempered sampling, temperature 1), else `T=<temperature>`.

    The x̂ settings and t_final are not part of the name: they are decoding settings of L2D that the
    report shows beside the model, so a tuned t_final stays within its protocol."""
    if temperature == 0:
        return "greedy"
    return "paper" if temperature == PAPER_TEMPERATURE else f"T={temperature:g}"


def protocol_record(decoding: Mapping[str, Any], is_l2d: bool, preset: str | None = None) -> dict[str, Any]:
    """What results.json records under `protocol`: the name, the preset chosen (`protocol=`, whose fields
    may have been overridden), and the values used; the diffusion fields are None for a plain LM."""
    record: dict[str, Any] = {"name": protocol_name(float(decoding["temperature"])), "preset": preset}
    record.update({key: decoding[key] for key in PLAIN_FIELDS})
    record.update({key: decoding.get(key) if is_l2d else None for key in DIFFUSION_FIELDS})
    return record
