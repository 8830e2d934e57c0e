"""Multiple-choice tasks (MMLU, MMLU-Pro, ARC, PIQA): answer with a single option letter."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable

from l2d.data.classes import CODING, GENERAL, MATH
from l2d.tasks.base import Problem, Task
from l2d.tasks.choices import LETTERS, extract_choice, render_choices
from l2d.tasks.sources import HubSplit, Record

# Guidance classes of MMLU subjects that are not "general" (paper, Table 5).
MMLU_SUBJECT_GUIDANCE = {
    "abstract_algebra": MATH, "college_mathematics": MATH, "elementary_mathematics": MATH,
    "high_school_mathematics": MATH, "high_school_statistics": MATH, "high_school_computer_science": CODING,
}


class MultipleChoiceTask(Task):
    """Options are lettered A, B, ... in order; the target and each shot's answer is one letter."""

    category = "general"
    guidance_name = GENERAL
    max_new_tokens = 32  # a letter is expected; room for a short preamble
    question_label = "Question"
    options_label = "Choices"

    @abstractmethod
    def read_item(self, record: Record) -> tuple[str, list[str], int]:
        """(question, options, index of the correct option)."""

    def record_id(self, record: Record, index: int) -> str:
        return f"{self.name}/{index}"

    def to_problem(self, record: Record, index: int) -> Problem:
        question, options, correct = self.read_item(record)
        if not 0 <= correct < len(options):
            raise ValueError(f"correct option {correct} is not among {len(options)} options")
        letter = LETTERS[correct]
        return {"id": self.record_id(record, index), "answer_text": letter, "target": letter,
                "question": render_choices(question, options, self.question_label, self.options_label),
                "num_options": len(options)}

    def extract(self, completion: str, problem: Problem) -> str | None:
        return extract_choice(completion, problem["num_options"])


class MMLUTask(MultipleChoiceTask):
    """MMLU (all subjects) test; 5 shots per subject from its dev split."""

    name = "mmlu"
    schema = '{"question": str, "subject": str, "choices": [4 x str], "answer": int (0-3)}'
    hub = HubSplit("cais/mmlu", "all", "test")
    hub_shots = HubSplit("cais/mmlu", "all", "dev")

    def read_item(self, record: Record) -> tuple[str, list[str], int]:
        return record["question"], list(record["choices"]), int(record["answer"])

    def to_problem(self, record: Record, index: int) -> Problem:
        problem = super().to_problem(record, index)
        problem["subject"] = record["subject"]
        problem["guidance"] = MMLU_SUBJECT_GUIDANCE.get(record["subject"], self.guidance_name)
        return problem

    def shot_group(self, problem: Problem) -> Hashable:
        return problem["subject"]


class MMLUProTask(MultipleChoiceTask):
    """MMLU-Pro test (up to 10 options); 5 shots per category from its validation split."""

    name = "mmlu_pro"
    schema = ('{"question_id": int, "question": str, "options": [str], "answer": "A".."J", '
              '"answer_index": int, "category": str}')
    hub = HubSplit("TIGER-Lab/MMLU-Pro", None, "test")
    hub_shots = HubSplit("TIGER-Lab/MMLU-Pro", None, "validation")

    def read_item(self, record: Record) -> tuple[str, list[str], int]:
        return record["question"], list(record["options"]), int(record["answer_index"])

    def record_id(self, record: Record, index: int) -> str:
        return f"{self.name}/{record['question_id']}"

    def to_problem(self, record: Record, index: int) -> Problem:
        problem = super().to_problem(record, index)
        problem["category"] = record["category"]
        problem["guidance"] = MATH if record["category"] == "math" else self.guidance_name
        return problem

    def shot_group(self, problem: Problem) -> Hashable:
        return problem["category"]


class ARCTask(MultipleChoiceTask):
    """AI2 ARC test; shots from validation. Labels '1'-'4' of some questions are shown as A-D."""

    schema = '{"id": str, "question": str, "choices": {"text": [str], "label": [str]}, "answerKey": str}'

    def read_item(self, record: Record) -> tuple[str, list[str], int]:
        choices = record["choices"]
        return record["question"], list(choices["text"]), list(choices["label"]).index(record["answerKey"])

    def record_id(self, record: Record, index: int) -> str:
        return f"{self.name}/{record['id']}"


class ARCEasyTask(ARCTask):
    name = "arc_easy"
    hub = HubSplit("allenai/ai2_arc", "ARC-Easy", "test")
    hub_shots = HubSplit("allenai/ai2_arc", "ARC-Easy", "validation")


class ARCChallengeTask(ARCTask):
    name = "arc_challenge"
    hub = HubSplit("allenai/ai2_arc", "ARC-Challenge", "test")
    hub_shots = HubSplit("allenai/ai2_arc", "ARC-Challenge", "validation")


class PIQATask(MultipleChoiceTask):
    """PIQA validation; shots from train. ybisk/piqa's main branch is a loading script, which
    `datasets` >= 4 refuses, so the hub's own parquet export of it (refs/convert/parquet) is read."""

    name = "piqa"
    schema = '{"goal": str, "sol1": str, "sol2": str, "label": 0 or 1}'
    hub = HubSplit("ybisk/piqa", "default", "validation", revision="refs/convert/parquet")
    hub_shots = HubSplit("ybisk/piqa", "default", "train", revision="refs/convert/parquet")
    question_label = "Goal"
    options_label = "Options"

    def read_item(self, record: Record) -> tuple[str, list[str], int]:
        return record["goal"], [record["sol1"], record["sol2"]], int(record["label"])
