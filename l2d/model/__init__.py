from l2d.model.config import L2DConfig
from l2d.model.generate import GenerationStats
from l2d.model.l2d import L2DModel, L2DOutput
from l2d.model.loading import load_base_model
from l2d.model.main_path import CausalLM

__all__ = ["CausalLM", "L2DConfig", "L2DModel", "L2DOutput", "GenerationStats", "load_base_model"]
