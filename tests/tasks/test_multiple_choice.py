import pytest

from l2d.tasks import TaskDataError, get_task
from l2d.tasks.choices import extract_choice, render_choices


def mmlu_record(subject: str, i: int, answer: int = 1) -> dict:
    return {"question": f"{subject} question {i}?", "subject": subject,
            "choices": ["w", "x", "y", "z"], "answer": answer}


@pytest.fixture
def mmlu(write_jsonl):
    test = write_jsonl("test.jsonl", [mmlu_record("college_mathematics", 0), mmlu_record("anatomy", 1, 3),
                                      mmlu_record("high_school_computer_science", 2, 0)])
    dev = write_jsonl("dev.jsonl", [mmlu_record(s, 10 + i, i % 4) for s in ("anatomy", "college_mathematics")
                                    for i in range(6)])
    return get_task("mmlu", path=test, shots_path=dev)


def test_mmlu_prompt_layout_and_target(mmlu):
    problem = mmlu.problems()[1]
    assert problem["question"] == "Question:\nanatomy question 1?\nChoices:\nA. w\nB. x\nC. y\nD. z\n\nAnswer:"
    assert problem["target"] == "D" and problem["id"] == "mmlu/1"


def test_mmlu_shots_come_from_the_same_subject(mmlu):
    messages = mmlu.messages(mmlu.problems()[1])
    assert len(messages) == 11
    assert all("anatomy question" in m["content"] for m in messages[:-1:2])
    assert [m["content"] for m in messages[1:-1:2]] == ["A", "B", "C", "D", "A"]
    assert mmlu.messages(mmlu.problems()[2]) == [{"role": "user", "content": mmlu.problems()[2]["question"]}]


def test_mmlu_guidance_follows_the_subject(mmlu):
    assert [p["guidance"] for p in mmlu.problems()] == ["math", "general", "coding"]


def test_mmlu_pro_ten_options_ids_and_guidance(write_jsonl):
    record = {"question_id": 70, "question": "Which?", "options": [f"opt{i}" for i in range(10)], "answer": "I",
              "answer_index": 8, "cot_content": "", "category": "math", "src": "ori_mmlu-x"}
    task = get_task("mmlu_pro", path=write_jsonl("test.jsonl", [record]), num_shots=0)
    (problem,) = task.problems()
    assert (problem["id"], problem["target"], problem["num_options"]) == ("mmlu_pro/70", "I", 10)
    assert problem["guidance"] == "math"
    assert "J. opt9\n\nAnswer:" in problem["question"]
    assert task.score(problem, ["I"])["correct"]
    assert task.score(problem, ["I think the answer is I."])["correct"]
    assert task.score(problem, ["I think the answer is (B)."])["answer"] == "B"


def test_arc_numeric_labels_become_letters(write_jsonl):
    record = {"id": "Mercury_7", "question": "Which is a planet?",
              "choices": {"text": ["Sun", "Moon", "Mars", "Comet"], "label": ["1", "2", "3", "4"]}, "answerKey": "3"}
    task = get_task("arc_challenge", path=write_jsonl("test.jsonl", [record]), num_shots=0)
    (problem,) = task.problems()
    assert (problem["id"], problem["target"]) == ("arc_challenge/Mercury_7", "C")
    assert "C. Mars" in problem["question"]
    assert task.score(problem, ["C"])["correct"] and not task.score(problem, ["3"])["extracted"]


def test_arc_easy_five_options(write_jsonl):
    record = {"id": "q1", "question": "Pick E", "choices": {"text": list("abcde"), "label": list("ABCDE")},
              "answerKey": "E"}
    task = get_task("arc_easy", path=write_jsonl("test.jsonl", [record]), num_shots=0)
    assert task.score(task.problems()[0], ["E."])["correct"]


def test_piqa_layout_and_shots(write_jsonl):
    records = [{"goal": f"goal {i}", "sol1": "do a", "sol2": "do b", "label": i % 2} for i in range(7)]
    task = get_task("piqa", path=write_jsonl("valid.jsonl", records))
    problems = task.problems()
    assert [p["id"] for p in problems] == ["piqa/5", "piqa/6"]
    assert problems[0]["question"] == "Goal:\ngoal 5\nOptions:\nA. do a\nB. do b\n\nAnswer:"
    assert problems[0]["target"] == "B" and task.messages(problems[0])[1]["content"] == "A"
    assert task.score(problems[0], ["B"])["correct"] and not task.score(problems[0], ["A"])["correct"]


def test_unlabelled_records_are_rejected_clearly(write_jsonl):
    path = write_jsonl("test.jsonl", [{"goal": "g", "sol1": "a", "sol2": "b", "label": -1}])
    with pytest.raises(TaskDataError, match="record 0 does not fit the schema"):
        get_task("piqa", path=path, num_shots=0).problems()


@pytest.mark.parametrize("completion, letter", [
    ("B", "B"), (" (C) because", "C"), ("D. zebra", "D"), ("Answer: A", "A"), ("The answer is (B)", "B"),
    ("A good guess is C", "A"),  # no stated answer: the first standalone letter (paper's rule)
    ("CB", None), ("Apple", None), ("E", None), ("", None),
])
def test_extract_choice(completion, letter):
    assert extract_choice(completion, 4) == letter


def test_render_choices_needs_at_least_two_options():
    with pytest.raises(ValueError):
        render_choices("q", ["only"])
