import gzip
import sys
import types

import pytest

from l2d.tasks import TASKS, TaskDataError, get_task

EXPECTED = {  # name: (category, guidance, metric, ks)
    "gsm8k": ("math", "math", "accuracy", ()),
    "gsm8k_heldout": ("math", "math", "accuracy", ()),
    "math": ("math", "math", "accuracy", ()),
    "humaneval": ("code", "coding", "pass@k", (1, 5, 10)),
    "mbpp": ("code", "coding", "pass@k", (1, 5, 10)),
    "mmlu": ("general", "general", "accuracy", ()),
    "mmlu_pro": ("general", "general", "accuracy", ()),
    "arc_easy": ("general", "general", "accuracy", ()),
    "arc_challenge": ("general", "general", "accuracy", ()),
    "piqa": ("general", "general", "accuracy", ()),
}


def test_task_names_and_attributes():
    assert set(TASKS) == set(EXPECTED)
    for name, (category, guidance, metric, ks) in EXPECTED.items():
        task = get_task(name)
        assert (task.name, task.category, task.guidance_name) == (name, category, guidance)
        assert (task.metric, task.ks) == (metric, ks)
        assert task.max_new_tokens > 0


def test_unknown_task_lists_the_valid_names():
    with pytest.raises(ValueError) as raised:
        get_task("gsm9k")
    assert all(name in str(raised.value) for name in EXPECTED)
    assert "reasoning_gym/<dataset>" in str(raised.value)


def test_negative_shots_are_rejected():
    with pytest.raises(ValueError, match="num_shots"):
        get_task("mmlu", num_shots=-1)


def offline_datasets(monkeypatch) -> None:
    """A `datasets` stand-in that fails like the real one does without network."""
    def load_dataset(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'cais/mmlu' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))


@pytest.mark.parametrize("name, schema_key", [("mmlu", '"choices"'), ("gsm8k", '"question"'), ("mbpp", '"test_list"'),
                                              ("piqa", '"sol1"'), ("math", '"solution"'), ("arc_easy", '"answerKey"'),
                                              ("mmlu_pro", '"answer_index"'), ("gsm8k_heldout", '"question"')])
def test_offline_hub_without_path_raises_one_clear_error(monkeypatch, name, schema_key):
    offline_datasets(monkeypatch)
    monkeypatch.delenv("L2D_DATA", raising=False)
    with pytest.raises(TaskDataError) as raised:
        get_task(name).problems()
    message = str(raised.value)
    assert "task.options.path=FILE" in message and schema_key in message and "Couldn't reach" in message
    assert "$L2D_DATA/" in message and "\n" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_missing_datasets_package_names_the_extra_and_the_path_option(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    monkeypatch.delenv("L2D_DATA", raising=False)
    with pytest.raises(TaskDataError, match=r"l2d\[hub\].*path="):
        get_task("arc_challenge").problems()


def test_real_datasets_library_offline(monkeypatch):
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("L2D_DATA", raising=False)
    with pytest.raises(TaskDataError, match=r"openai/gsm8k \(split test, config main\).*task\.options\.path=FILE"):
        get_task("gsm8k").problems()


def test_local_file_errors_are_clear(tmp_path, write_jsonl):
    with pytest.raises(TaskDataError, match="cannot read"):
        get_task("gsm8k", path=tmp_path / "missing.jsonl").problems()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{not json\n')
    with pytest.raises(TaskDataError, match="bad.jsonl:2"):
        get_task("gsm8k", path=bad).problems()
    wrong_schema = write_jsonl("wrong.jsonl", [{"problem": "q"}])
    with pytest.raises(TaskDataError, match="does not fit the schema"):
        get_task("gsm8k", path=wrong_schema).problems()


def test_a_task_file_that_is_not_utf8_or_empty_is_named_with_its_line(tmp_path):
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"question": "q", "answer": "#### 1"}\n{"question": "caf\xe9", "answer": "#### 2"}\n')
    packed = tmp_path / "latin1.jsonl.gz"
    packed.write_bytes(gzip.compress(latin1.read_bytes()))
    for path in (latin1, packed):
        with pytest.raises(TaskDataError, match=rf"^{path}:2: not UTF-8 text \(byte 0xe9 at byte 18 of the line"):
            get_task("gsm8k", path=path).problems()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(TaskDataError, match=rf"^{empty}: empty, no records in it"):
        get_task("gsm8k", path=empty).problems()


def test_a_task_file_error_ends_the_evaluation_in_one_line(tmp_path, capsys, monkeypatch):
    from l2d.evaluate import evaluate
    from l2d.validation import one_line
    from tests.compose import compose_config

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cfg = compose_config("evaluate", ["model=tiny", "task=gsm8k", f"task.options.path={empty}",
                                      "task.options.num_shots=0", "progress=false"], tmp_path / "eval")
    with pytest.raises(SystemExit) as ended:
        one_line(evaluate)(cfg)
    assert ended.value.code == 1
    assert capsys.readouterr().err == f"error: {empty}: empty, no records in it (one JSON object per line)\n"
