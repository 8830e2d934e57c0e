import sys
import types

import pytest

from l2d.data.hub import local_copy
from l2d.data.splits import GSM8K_HELDOUT_SIZE
from l2d.tasks import TaskDataError, get_task
from l2d.tasks.math_answers import extract_gsm8k_answer
from l2d.tasks.sources import read_records
from tests.data_files import GSM8K_20, gsm8k_problems, write_local_copy


def gsm8k_record(i: int) -> dict:
    return {"question": f"Tom has {i} apples and buys 2 more. How many now?",
            "answer": f"He has {i} + 2 = <<{i}+2={i + 2}>>{i + 2} apples.\n#### {i + 2:,}"}


@pytest.fixture
def train_file(write_jsonl):
    return write_jsonl("train.jsonl", [gsm8k_record(i) for i in range(GSM8K_HELDOUT_SIZE + 20)])


@pytest.fixture
def hub(monkeypatch):
    """A `datasets` stand-in serving GSM8K's two splits from fixture rows; records what was loaded."""
    loaded = []
    splits = {"test": [gsm8k_record(1000 + i) for i in range(12)],
              "train": [gsm8k_record(i) for i in range(GSM8K_HELDOUT_SIZE + 20)]}

    def load_dataset(repo, config, split, revision=None, streaming=False):
        loaded.append((repo, config, split))
        return splits[split]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.delenv("L2D_DATA", raising=False)
    return loaded


def test_gsm8k_scores_the_official_test_split_with_shots_from_train(hub):
    task = get_task("gsm8k")
    problems = task.problems()
    assert hub == [("openai/gsm8k", "main", "test"), ("openai/gsm8k", "main", "train")]
    assert [p["question"] for p in problems] == [gsm8k_record(1000 + i)["question"] for i in range(12)]
    assert problems[0]["id"] == "gsm8k/0" and problems[0]["target"] == "1002"
    messages = task.messages(problems[0])
    assert [m["role"] for m in messages] == ["user", "assistant"] * 5 + ["user"]
    assert [m["content"] for m in messages[0:10:2]] == [gsm8k_record(i)["question"] for i in range(5)]


def test_gsm8k_heldout_is_the_last_500_train_problems_with_shots_from_the_rest(hub):
    task = get_task("gsm8k_heldout")
    problems = task.problems()
    assert hub == [("openai/gsm8k", "main", "train")]
    assert len(problems) == GSM8K_HELDOUT_SIZE
    assert problems[0]["question"] == gsm8k_record(20)["question"] and problems[0]["id"] == "gsm8k_heldout/0"
    assert [m["content"] for m in task.messages(problems[0])[0:10:2]] == [gsm8k_record(i)["question"] for i in range(5)]


def test_heldout_slice_of_a_local_train_file(train_file):
    task = get_task("gsm8k_heldout", path=train_file)
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


def test_local_test_file_is_scored_whole_with_shots_from_shots_path(write_jsonl):
    test = write_jsonl("test.jsonl", [gsm8k_record(i) for i in range(8)])
    shots = write_jsonl("shots.jsonl", [gsm8k_record(100 + i) for i in range(6)])
    task = get_task("gsm8k", path=test, shots_path=shots, num_shots=2)
    assert len(task.problems()) == 8
    assert [m["content"] for m in task.messages(task.problems()[0])[:3:2]] == [
        gsm8k_record(100)["question"], gsm8k_record(101)["question"]]


def test_shots_taken_from_the_evaluated_file_are_not_scored(write_jsonl):
    task = get_task("gsm8k", path=write_jsonl("test.jsonl", [gsm8k_record(i) for i in range(8)]))
    assert [p["id"] for p in task.problems()] == ["gsm8k/5", "gsm8k/6", "gsm8k/7"]


def test_the_committed_fixture_reads_in_the_datasets_schema():
    problems = get_task("gsm8k", path=GSM8K_20, num_shots=0).problems()
    assert len(problems) == 20
    assert [p["target"] for p in problems[:3]] == ["72", "10", "5"]
    assert [p["answer_text"] for p in problems] == [r["answer"] for r in gsm8k_problems()]


def test_local_copies_under_L2D_DATA_replace_the_hub(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # the hub is not touched (import would fail)
    problems = gsm8k_problems()
    write_local_copy(tmp_path, "openai/gsm8k", "main", "test", problems[10:])
    write_local_copy(tmp_path, "openai/gsm8k", "main", "train", problems[:10])
    monkeypatch.setenv("L2D_DATA", str(tmp_path))
    task = get_task("gsm8k", num_shots=2)
    assert [p["question"] for p in task.problems()] == [r["question"] for r in problems[10:]]
    assert task.messages(task.problems()[0])[0]["content"] == problems[0]["question"]


def test_offline_without_a_copy_names_the_dataset_the_option_and_the_copy(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)
    monkeypatch.setenv("L2D_DATA", str(tmp_path))  # set, but holds no copy
    with pytest.raises(TaskDataError) as raised:
        get_task("gsm8k").problems()
    message = str(raised.value)
    assert "openai/gsm8k (split test, config main)" in message and "task.options.path=FILE" in message
    assert "$L2D_DATA/openai/gsm8k/main/test.jsonl" in message and "\n" not in message


def test_zero_shots_give_a_single_user_turn(train_file):
    task = get_task("gsm8k_heldout", path=train_file, num_shots=0)
    assert task.messages(task.problems()[0]) == [{"role": "user", "content": task.problems()[0]["question"]}]


def test_a_train_file_too_short_for_the_heldout_slice_is_refused(write_jsonl):
    with pytest.raises(ValueError, match="held-out size must be between 1 and 19 for 20 records"):
        get_task("gsm8k_heldout", path=GSM8K_20).problems()


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


def test_score_every_generation_and_count_unextracted(train_file):
    task = get_task("gsm8k_heldout", path=train_file)
    problem = task.problems()[0]  # target 22
    assert task.score(problem, ["So #### 22.0", "#### 1"]) == {
        "answer": "22", "target": "22", "extracted": True, "correct": True, "answers": ["22", "1"],
        "passed": [True, False]}
    wrong = task.score(problem, ["#### 21", "#### 22"])
    assert (wrong["correct"], wrong["extracted"], wrong["passed"]) == (False, True, [False, True])
    missing = task.score(problem, ["twenty-two"])
    assert (missing["correct"], missing["extracted"], missing["answer"]) == (False, False, None)


TRAIN_COPY = local_copy("openai/gsm8k", "main", "train")


@pytest.mark.skipif(TRAIN_COPY is None, reason="no copy of GSM8K train under $L2D_DATA")
def test_real_heldout_slice_matches_the_train_file_tail():
    records = read_records(TRAIN_COPY)
    task = get_task("gsm8k_heldout")
    problems = task.problems()
    assert len(records) == 7473 and len(problems) == GSM8K_HELDOUT_SIZE
    assert all(p["target"] is not None for p in problems)
    assert problems[-1]["answer_text"] == records[-1]["answer"]
    assert problems[0]["answer_text"] == records[-GSM8K_HELDOUT_SIZE]["answer"]
    shot_questions = {m["content"] for m in task.messages(problems[0])[:-1:2]}
    assert shot_questions.isdisjoint(p["question"] for p in problems)
