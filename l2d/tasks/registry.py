"""Task names -> tasks."""

from __future__ import annotations

from typing import Any

from l2d.tasks.base import Task
from l2d.tasks.code import HumanEvalTask, MBPPTask
from l2d.tasks.gsm8k import GSM8KHeldoutTask, GSM8KTask
from l2d.tasks.hendrycks_math import MathTask
from l2d.tasks.multiple_choice import ARCChallengeTask, ARCEasyTask, MMLUProTask, MMLUTask, PIQATask
from l2d.tasks.reasoning_gym_tasks import PREFIX as REASONING_GYM_PREFIX
from l2d.tasks.reasoning_gym_tasks import ReasoningGymTask

TASKS: dict[str, type[Task]] = {task.name: task for task in (
    GSM8KTask, GSM8KHeldoutTask, MathTask, HumanEvalTask, MBPPTask, MMLUTask, MMLUProTask, ARCEasyTask,
    ARCChallengeTask, PIQATask)}


def get_task(name: str, **options: Any) -> Task:
    """A task by name: one of TASKS or `reasoning_gym/<dataset>`. Options go to its constructor
    (all take path, num_shots, shots_path; see each class for the rest)."""
    if name.startswith(REASONING_GYM_PREFIX):
        return ReasoningGymTask(name[len(REASONING_GYM_PREFIX):], **options)
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}, "
                         f"or {REASONING_GYM_PREFIX}<dataset> (e.g. {REASONING_GYM_PREFIX}chain_sum)")
    return TASKS[name](**options)
