"""lm-evaluation-harness integration: the `l2d` model, and `python -m l2d.lm_eval` (lm-eval's own
command line with that model registered). Needs the optional extra: pip install 'l2d[lm_eval]'."""

try:
    import lm_eval  # noqa: F401  (the top-level package, not this one)
except ImportError:
    raise ImportError("l2d.lm_eval needs lm-evaluation-harness: pip install 'l2d[lm_eval]' (PyPI: lm-eval)") from None

from l2d.lm_eval.model import L2DLM

__all__ = ["L2DLM"]
