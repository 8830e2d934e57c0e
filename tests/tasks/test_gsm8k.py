import json
from pathlib import Path

import pytest

from l2d.data.splits import GSM8K_HELDOUT_SIZE
from l2d.tasks import get_task
from l2d.tasks.math_answers import extract_gsm8k_answer

SHARED_TRAIN = Path("/work/shared/data/gsm8k/train.jsonl")


def gsm8k_record(i: int) -> dict:
    return {"question": f"Tom has {i} apples and buys 2 more. How many now?",
            "answer": f"He has {i} + 2 = <<{i}+2={i + 2}>>{i + 2} apples.\n#### {i + 2:,}"}


@pytest.fixture
def train_file(write_jsonl):
    return write_jsonl("train.jsonl", [gsm8k_record(i) for i in range(GSM8K_HELDOUT_SIZE + 20)])


def test_heldout_is_the_last_500_lines_with_shots_from_the_first_lines(train_file):
    task = get_task("gsm8k", path=train_file)
    problems = task.problems()
    assert len(problems) == GSM8K_HELDOUT_SIZE
    assert problems[0]["question"] == gsm8k_record(20)["question"]
    assert problems[-1]["target"] == str(GSM8K_HELDOUT_SIZE + 21)
    messages = task.messages(problems[0])
    assert [m["role"] for m in messages] == ["user", "assistant"] * 5 + ["user"]
    assert [m["content"] for m in messages[0:10:2]] == [gsm8k_record(i)["question"] for i in range(5)]
    assert messages[1]["content"] == gsm8k_record(0)["answer"]
    assert messages[-1]["content"] == problems[0]["question"]
    assert task.problems(limit=7) == problems[:7]


def test_split_all_scores_every_line_and_takes_shots_from_shots_path(write_jsonl):
    test = write_jsonl("test.jsonl", [gsm8k_record(i) for i in range(8)])
    shots = write_jsonl("shots.jsonl", [gsm8k_record(100 + i) for i in range(6)])
    task = get_task("gsm8k", path=test, split="all", shots_path=shots, num_shots=2)
    assert len(task.problems()) == 8
    assert [m["content"] for m in task.messages(task.problems()[0])[:3:2]] == [
        gsm8k_record(100)["question"], gsm8k_record(101)["question"]]


def test_shots_taken_from_the_evaluated_file_are_not_scored(write_jsonl):
    task = get_task("gsm8k", path=write_jsonl("test.jsonl", [gsm8k_record(i) for i in range(8)]), split="all")
    assert [p["id"] for p in task.problems()] == ["gsm8k/5", "gsm8k/6", "gsm8k/7"]


def test_zero_shots_give_a_single_user_turn(train_file):
    task = get_task("gsm8k", path=train_file, num_shots=0)
    assert task.messages(task.problems()[0]) == [{"role": "user", "content": task.problems()[0]["question"]}]


def test_split_needs_a_path_and_a_known_name(train_file):
    with pytest.raises(ValueError, match="local path"):
        get_task("gsm8k", split="heldout")
    with pytest.raises(ValueError, match="heldout"):
        get_task("gsm8k", path=train_file, split="test")


@pytest.mark.parametrize("completion, answer", [
    ("3 + 4 = 7\n#### 7", "7"),
    ("#### 1,234", "1234"),
    ("####$72.00", "72"),
    ("#### -3.5 dollars", "-3.5"),
    ("first #### 5 then #### 6", "5"),  # the first answer counts, as in the paper
    ("The answer is 7.", None),
    ("", None),
])
def test_extract_gsm8k_answer(completion, answer):
    assert extract_gsm8k_answer(completion) == answer


def test_score_first_generation_and_count_unextracted(train_file):
    task = get_task("gsm8k", path=train_file)
    problem = task.problems()[0]  # target 22
    assert task.score(problem, ["So #### 22.0", "#### 1"]) == {
        "answer": "22", "target": "22", "extracted": True, "correct": True}
    wrong = task.score(problem, ["#### 21", "#### 22"])
    assert (wrong["correct"], wrong["extracted"]) == (False, True)
    missing = task.score(problem, ["twenty-two"])
    assert (missing["correct"], missing["extracted"], missing["answer"]) == (False, False, None)


@pytest.mark.skipif(not SHARED_TRAIN.exists(), reason="the project's GSM8K train file is not on this machine")
def test_project_heldout_slice_matches_the_train_file_tail():
    lines = SHARED_TRAIN.read_text().splitlines()
    task = get_task("gsm8k", path=SHARED_TRAIN)
    problems = task.problems()
    assert len(problems) == GSM8K_HELDOUT_SIZE
    assert all(p["target"] is not None for p in problems)
    assert problems[-1]["answer_text"] == json.loads(lines[-1])["answer"]
    assert problems[0]["answer_text"] == json.loads(lines[-GSM8K_HELDOUT_SIZE])["answer"]
    shot_questions = {m["content"] for m in task.messages(problems[0])[:-1:2]}
    assert shot_questions.isdisjoint(p["question"] for p in problems)
