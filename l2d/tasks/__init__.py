"""Evaluation tasks of `l2d.evaluate`: data, chat prompts, answer extraction and scoring.

    task = get_task("gsm8k", path=None, num_shots=5)   # GSM8K test, from the hub
    problems = task.problems(limit=100)
    messages = task.messages(problems[0])          # chat turns for the model
    result = task.score(problems[0], generations)   # n samples per problem
    summary = summarize(results, task.metric, task.ks)
"""

from l2d.tasks.base import Problem, Task
from l2d.tasks.passk import pass_at_k
from l2d.tasks.registry import TASKS, get_task
from l2d.tasks.sandbox import ExecutionResult, SandboxLimits, run_program, run_programs
from l2d.tasks.sources import TaskDataError
from l2d.tasks.summary import summarize, wilson_interval

__all__ = ["TASKS", "ExecutionResult", "Problem", "SandboxLimits", "Task", "TaskDataError", "get_task",
           "pass_at_k", "run_program", "run_programs", "summarize", "wilson_interval"]
