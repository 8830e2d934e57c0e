"""Each source turns its records into labelled chats; all offline."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from l2d.data.hub import local_copy
from l2d.data.invalid import InvalidRecords
from l2d.data.sources import GSM8KSource, JsonlSource, ReasoningGymSource, SmolTalkSource, smoltalk
from l2d.data.sources.reasoning import worked_answer
from l2d.data.splits import GSM8K_HELDOUT_SIZE
from tests.data.conftest import chat, write_jsonl
from tests.data_files import GSM8K_20, gsm8k_problems, write_local_copy

GSM8K_TRAIN_COPY = local_copy("openai/gsm8k", "main", "train")


def test_reasoning_gym_offline_mix_with_worked_answers():
    loaded = ReasoningGymSource(size=4, seed=3).load(InvalidRecords())
    assert loaded.validation is None
    assert [e.class_name for e in loaded.train] == ["gsm_symbolic"] * 4 + ["basic_arithmetic"] * 4 + ["chain_sum"] * 4
    for example in loaded.train:
        assert [m["role"] for m in example.messages] == ["user", "assistant"]
    gsm = loaded.train[0].messages[1]["content"]
    assert "\n" in gsm and gsm.splitlines()[-1].startswith("<answer>")  # a worked solution, then its answer
    assert loaded.train[4].messages[1]["content"].lstrip("-").isdigit()  # arithmetic: the bare answer
    again = ReasoningGymSource(size=4, seed=3).load(InvalidRecords())
    assert again.train == loaded.train


def test_reasoning_gym_config_kwargs_reach_the_generator():
    two_digits = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}
    source = ReasoningGymSource({"chain_sum": two_digits}, size=20)
    for example in source.load(InvalidRecords()).train:
        expression = example.messages[0]["content"].split(":")[-1].rstrip("= ")
        assert len(expression.split()) == 3 and int(example.messages[1]["content"]) == eval(expression)


def test_worked_answer_closes_with_the_verified_answer():
    import reasoning_gym
    from reasoning_gym.utils import extract_answer

    entry = {"answer": "8", "metadata": {"answer_cot": "4 * 2 = 8 grams\n#### 8.0"}}
    assert worked_answer(entry) == "4 * 2 = 8 grams\n<answer>8</answer>"
    assert worked_answer({"answer": "-3", "metadata": {}}) == "-3"
    dataset = reasoning_gym.create_dataset("gsm_symbolic", size=5, seed=0)
    for entry in dataset:  # the answer evaluation extracts is the one the verifier accepts
        assert dataset.score_answer(extract_answer(worked_answer(entry)), entry) == 1.0


def gsm8k_file(path: Path, count: int) -> Path:
    return write_jsonl(path, [{"question": f"q{i}?", "answer": f"step\n#### {i}"} for i in range(count)])


def test_gsm8k_local_file_trains_without_its_heldout_slice(tmp_path):
    loaded = GSM8KSource(path=str(gsm8k_file(tmp_path / "train.jsonl", 600))).load(InvalidRecords())
    train_questions = [e.messages[0]["content"] for e in loaded.train]
    val_questions = [e.messages[0]["content"] for e in loaded.validation]
    assert train_questions == [f"q{i}?" for i in range(100)]
    assert val_questions == [f"q{i}?" for i in range(100, 600)]  # the last 500, in file order
    assert {e.class_name for e in loaded.train + loaded.validation} == {"math"}
    assert loaded.validation[0].messages[1]["content"] == "step\n#### 100"


def test_gsm8k_fixture_in_the_datasets_schema(tmp_path, monkeypatch):
    loaded = GSM8KSource(path=str(GSM8K_20), heldout_size=5).load(InvalidRecords())
    problems = gsm8k_problems()
    assert [e.messages for e in loaded.train + loaded.validation] == [
        chat(r["question"], r["answer"]) for r in problems]
    assert len(loaded.validation) == 5
    # the same file as a local copy of the hub split under $L2D_DATA: read without the hub
    write_local_copy(tmp_path, "openai/gsm8k", "main", "train", problems)
    monkeypatch.setenv("L2D_DATA", str(tmp_path))
    assert GSM8KSource(heldout_size=5).load(InvalidRecords()) == loaded


@pytest.mark.skipif(GSM8K_TRAIN_COPY is None, reason="no copy of GSM8K train under $L2D_DATA")
def test_gsm8k_real_train_split():
    loaded = GSM8KSource().load(InvalidRecords())
    assert (len(loaded.train), len(loaded.validation)) == (7473 - GSM8K_HELDOUT_SIZE, GSM8K_HELDOUT_SIZE)
    train, val = ({e.messages[0]["content"] for e in part} for part in (loaded.train, loaded.validation))
    assert not train & val


def test_jsonl_source_reads_messages_and_prompt_response(tmp_path):
    path = write_jsonl(tmp_path / "chats.jsonl", [
        {"messages": chat("hi", "hello"), "class_name": "greeting"},
        {"prompt": "2+2?", "response": "4"},
        "",  # blank lines are allowed
        {"prompt": "3+3?", "response": "6", "class_name": None},
    ])
    loaded = JsonlSource(str(path), class_name="default").load(InvalidRecords())
    assert [e.class_name for e in loaded.train] == ["greeting", "default", None]
    assert loaded.train[1].messages == chat("2+2?", "4")
    assert loaded.validation is None


# Rows in the hub's schema: `messages` of {content, role}; smol-magpie-ultra adds category and scores.
def magpie_row(category: str, text: str) -> dict:
    return {"messages": [{"content": text, "role": "user"}, {"content": f"re: {text}", "role": "assistant"}],
            "category": category, "difficulty": "easy", "quality": "good", "reward_model_score": 0.1,
            "conversation_tokens": 42}


def plain_row(text: str) -> dict:
    return {"messages": [{"content": "Be exact.", "role": "system"}, {"content": text, "role": "user"},
                         {"content": f"re: {text}", "role": "assistant"}]}


def test_smoltalk_labels_follow_the_paper():
    assert smoltalk.smoltalk_example("self-oss-instruct", plain_row("x")).class_name == "coding"
    assert smoltalk.smoltalk_example("metamathqa-50k", plain_row("x")).class_name == "math"
    assert smoltalk.smoltalk_example("numina-cot-100k", plain_row("x")).class_name == "math"
    assert smoltalk.smoltalk_example("openhermes-100k", plain_row("x")).class_name == "general"
    labels = {c: smoltalk.smoltalk_example("smol-magpie-ultra", magpie_row(c, "x")) for c in (
        "coding", "data-analysis", "information-seeking", "math", "reasoning", "advice-seeking",
        "brainstorming", "creative-writing", "editing", "planning", "role-playing")}
    assert {c: e.class_name for c, e in labels.items() if e is not None} == {
        "coding": "coding", "data-analysis": "general", "information-seeking": "general", "math": "math",
        "reasoning": "general"}
    assert SmolTalkSource().class_names == ("coding", "general", "math")
    assert SmolTalkSource(["metamathqa-50k"]).class_names == ("math",)


@pytest.fixture
def fake_hub(monkeypatch):
    """SmolTalk subsets served from fixture rows; records what was opened."""
    opened = []
    rows = {
        ("smol-magpie-ultra", "train"): [magpie_row("editing", "m0"), magpie_row("math", "m1"),
                                         magpie_row("planning", "m2"), magpie_row("coding", "m3")],
        ("openhermes-100k", "train"): [plain_row("h0"), plain_row("h1"), plain_row("h2")],
        ("smol-magpie-ultra", "test"): [magpie_row("reasoning", f"mt{i}") for i in range(5)],
        ("openhermes-100k", "test"): [plain_row(f"ht{i}") for i in range(5)],
    }

    def open_subset(subset, split, shuffle_seed=None, buffer_size=10_000):
        opened.append((subset, split, shuffle_seed))
        return rows[subset, split]

    monkeypatch.setattr(smoltalk, "open_subset", open_subset)
    return opened


def test_smoltalk_stream_filters_labels_and_interleaves(fake_hub):
    source = SmolTalkSource(["smol-magpie-ultra", "openhermes-100k"], seed=7, val_per_subset=2)
    examples = list(source.stream(epoch=2, invalid=InvalidRecords()))
    assert [(e.messages[-2]["content"], e.class_name) for e in examples] == [
        ("m1", "math"), ("h0", "general"), ("m3", "coding"), ("h1", "general"), ("h2", "general")]
    assert ("smol-magpie-ultra", "train", 9) in fake_hub  # shuffled with seed + epoch
    validation = source.validation(InvalidRecords())
    assert [e.messages[-2]["content"] for e in validation] == ["mt0", "mt1", "ht0", "ht1"]


def test_smoltalk_rejects_unknown_subsets():
    with pytest.raises(ValueError, match="smol-rewrite"):
        SmolTalkSource(["smol-rewrite"])


def test_smoltalk_bad_rows_are_located(monkeypatch):
    monkeypatch.setattr(smoltalk, "open_subset", lambda subset, split, *args: [{"messages": []}])
    invalid = InvalidRecords(skip=True)
    assert list(islice(SmolTalkSource(["openhermes-100k"]).stream(0, invalid), 1)) == []
    assert invalid.count == 1
    with pytest.raises(ValueError, match=r"openhermes-100k\[train\]\[0\]"):
        list(SmolTalkSource(["openhermes-100k"]).stream(0, InvalidRecords()))


def test_smoltalk_local_copies_under_L2D_DATA_stream_without_the_hub(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    train = [plain_row(f"h{i}") for i in range(6)]
    write_local_copy(tmp_path, "HuggingFaceTB/smoltalk", "openhermes-100k", "train", train)
    write_local_copy(tmp_path, "HuggingFaceTB/smoltalk", "openhermes-100k", "test", [plain_row("v0"), plain_row("v1")])
    monkeypatch.setenv("L2D_DATA", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = SmolTalkSource(["openhermes-100k"], val_per_subset=1)
    assert [e.messages[-2]["content"] for e in source.validation(InvalidRecords())] == ["v0"]
    streamed = [e.messages[-2]["content"] for e in source.stream(0, InvalidRecords())]
    assert sorted(streamed) == [f"h{i}" for i in range(6)]
    assert {e.class_name for e in source.stream(1, InvalidRecords())} == {"general"}
