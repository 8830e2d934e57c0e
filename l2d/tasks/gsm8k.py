"""GSM8K: grade-school math word problems; the answer is the number after '####'."""

from __future__ import annotations

from pathlib import Path

from l2d.data.classes import MATH
from l2d.data.splits import GSM8K_HELDOUT_SIZE, split_heldout
from l2d.tasks.base import Problem, Task
from l2d.tasks.math_answers import extract_gsm8k_answer
from l2d.tasks.sources import HubSplit, Record, read_jsonl

SPLITS = ("heldout", "all")


class GSM8KTask(Task):
    """GSM8K, 5-shot with the first train examples (paper). Default: hub `openai/gsm8k` main/test.

    With a local train file, the default split="heldout" scores exactly the project's held-out
    slice (l2d.data.splits: the last 500 lines, which training never sees) and takes the shots from
    the first lines of the rest:

        get_task("gsm8k", path="/work/shared/data/gsm8k/train.jsonl")              # held-out slice
        get_task("gsm8k", path="test.jsonl", split="all", shots_path="train.jsonl")  # a whole file
    """

    name = "gsm8k"
    category = "math"
    guidance_name = MATH
    max_new_tokens = 256
    schema = '{"question": str, "answer": "worked solution ending in #### <number>"}'
    hub = HubSplit("openai/gsm8k", "main", "test")
    hub_shots = HubSplit("openai/gsm8k", "main", "train")

    def __init__(self, path: str | Path | None = None, num_shots: int = 5, shots_path: str | Path | None = None,
                 split: str | None = None):
        super().__init__(path, num_shots, shots_path)
        if split is not None and path is None:
            raise ValueError("split applies to a local path; the hub data is always openai/gsm8k test")
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split or "heldout"

    def load_records(self) -> tuple[list[Record], list[Record] | None]:
        if self.path is None or self.split == "all":
            return super().load_records()
        train, heldout = split_heldout(read_jsonl(self.path), GSM8K_HELDOUT_SIZE)
        return heldout, read_jsonl(self.shots_path) if self.shots_path is not None else train

    def to_problem(self, record: Record, index: int) -> Problem:
        return {"id": f"{self.name}/{index}", "question": record["question"], "answer_text": record["answer"],
                "target": extract_gsm8k_answer(record["answer"])}

    def extract(self, completion: str, problem: Problem) -> str | None:
        return extract_gsm8k_answer(completion)
