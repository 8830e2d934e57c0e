"""l2d: LM-to-Diffusion finetuning. A frozen causal LM plus a parallel diffusion path."""

from l2d.model import CausalLM, GenerationStats, L2DConfig, L2DModel, L2DOutput, load_base_model

__all__ = ["CausalLM", "L2DConfig", "L2DModel", "L2DOutput", "GenerationStats", "load_base_model"]
