"""GSM8K: grade-school math word problems; the answer is the number after '####'.

Two tasks under two names, so a report never mixes them: `gsm8k` scores the official test split
(1,319 problems), like the paper and every published number; `gsm8k_heldout` scores the project's
fixed held-out slice of the training split (its last 500 problems, which training keeps out as
validation), for validation and model selection.
"""

from __future__ import annotations

from l2d.data.classes import MATH
from l2d.data.splits import GSM8K_HELDOUT_SIZE, split_heldout
from l2d.tasks.base import Problem, Task
from l2d.tasks.math_answers import extract_gsm8k_answer
from l2d.tasks.sources import HubSplit, Record, read_records

TRAIN = HubSplit("openai/gsm8k", "main", "train")


class GSM8KTask(Task):
    """GSM8K test (openai/gsm8k main), 5-shot with the first train problems (paper).
    Offline: path=<copy of the test split>, shots_path=<copy of the train split>."""

    name = "gsm8k"
    category = "math"
    guidance_name = MATH
    max_new_tokens = 256
    schema = '{"question": str, "answer": "worked solution ending in #### <number>"}'
    hub = HubSplit("openai/gsm8k", "main", "test")
    hub_shots = TRAIN

    def to_problem(self, record: Record, index: int) -> Problem:
        return {"id": f"{self.name}/{index}", "question": record["question"], "answer_text": record["answer"],
                "target": extract_gsm8k_answer(record["answer"])}

    def extract(self, completion: str, problem: Problem) -> str | None:
        return extract_gsm8k_answer(completion)


class GSM8KHeldoutTask(GSM8KTask):
    """The held-out slice of GSM8K train (l2d.data.splits: its last 500 problems in order, which
    GSM8KSource keeps out of training); the shots are the first problems of the rest.
    path: a copy of the train split (the same file training reads)."""

    name = "gsm8k_heldout"
    hub = TRAIN
    hub_shots = None

    def load_records(self) -> tuple[list[Record], list[Record] | None]:
        records = read_records(self.path) if self.path is not None else self.default_records()
        train, heldout = split_heldout(records, GSM8K_HELDOUT_SIZE)
        return heldout, read_records(self.shots_path) if self.shots_path is not None else train
