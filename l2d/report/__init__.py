"""python -m l2d.report: evaluation results and training runs -> the paper's tables and figures."""

from l2d.report.cli import build, main, run

__all__ = ["build", "main", "run"]
