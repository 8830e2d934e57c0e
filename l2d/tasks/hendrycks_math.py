"""MATH (Hendrycks et al. 2021): competition problems; the answer is the last \\boxed{...}."""

from __future__ import annotations

from l2d.data.classes import MATH
from l2d.tasks.base import Problem, Task
from l2d.tasks.math_answers import last_boxed, last_number, math_answers_equal, normalize_math_answer
from l2d.tasks.sources import HubSplit, Record


class MathTask(Task):
    """MATH test, 5-shot with equally spaced train examples (the train split is ordered by topic).
    lighteval/MATH, the paper's source, was withdrawn; DigitalLearningGmbH/MATH-lighteval mirrors it."""

    name = "math"
    category = "math"
    guidance_name = MATH
    max_new_tokens = 256  # the paper's generation length for all non-code tasks
    schema = '{"problem": str, "solution": "worked solution with \\\\boxed{answer}", "level": str, "type": str}'
    hub = HubSplit("DigitalLearningGmbH/MATH-lighteval", "default", "test")
    hub_shots = HubSplit("DigitalLearningGmbH/MATH-lighteval", "default", "train")
    shot_spacing = "spaced"

    def to_problem(self, record: Record, index: int) -> Problem:
        boxed = last_boxed(record["solution"])
        return {"id": f"{self.name}/{index}", "question": record["problem"], "answer_text": record["solution"],
                "target": None if boxed is None else normalize_math_answer(boxed),
                "level": record.get("level"), "type": record.get("type")}

    def extract(self, completion: str, problem: Problem) -> str | None:
        """The last boxed answer, else the last number (paper), normalised."""
        answer = last_boxed(completion)
        if answer is None:
            answer = last_number(completion)
        answer = None if answer is None else normalize_math_answer(answer)
        return answer or None

    def is_correct(self, answer: str, problem: Problem) -> bool:
        return problem["target"] is not None and math_answers_equal(answer, problem["target"])
