"""Bad input fails early and says where, or is skipped and counted when asked."""

from __future__ import annotations

import pytest

from l2d.data.invalid import InvalidRecordError, InvalidRecords
from l2d.data.sources import GSM8KSource, JsonlSource, SmolTalkSource
from l2d.lightning.datamodule import L2DDataModule
from tests.data.conftest import chat, write_jsonl


def test_missing_file_names_its_path(tmp_path):
    missing = tmp_path / "nowhere" / "train.jsonl"
    for source in (JsonlSource(str(missing)), GSM8KSource(path=str(missing))):
        with pytest.raises(FileNotFoundError, match=str(missing)):
            source.load(InvalidRecords())


def bad_file(tmp_path):
    return write_jsonl(tmp_path / "bad.jsonl", [
        {"messages": chat("a", "b")},
        '{"messages": [oops',  # line 2: malformed JSON
        {"messages": [{"role": "user", "content": "no answer"}]},  # line 3: no assistant turn
        ["not", "an", "object"],  # line 4
        {"prompt": "c", "response": "d"},
    ])


def test_malformed_line_reports_file_and_line(tmp_path):
    path = bad_file(tmp_path)
    with pytest.raises(InvalidRecordError, match=f"{path}:2: malformed JSON"):
        JsonlSource(str(path)).load(InvalidRecords())


def test_invalid_records_skipped_and_counted(tmp_path, tokenizer):
    data = L2DDataModule(tokenizer, JsonlSource(str(bad_file(tmp_path))), val_size=0, skip_invalid=True)
    data.setup()
    assert (data.stats.skipped_invalid, data.stats.examples) == (3, 2)


@pytest.mark.parametrize("record, reason", [
    ({"messages": [{"role": "user", "content": "q"}]}, "no assistant message"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}, "message 0"),
    ({"prompt": "q"}, "'messages' or both 'prompt' and 'response'"),
    ({"prompt": "q", "response": "a", "class_name": 3}, "class_name"),
])
def test_schema_errors_are_located(tmp_path, record, reason):
    path = write_jsonl(tmp_path / "one.jsonl", [record])
    with pytest.raises(InvalidRecordError, match=f"{path}:1: .*{reason}"):
        JsonlSource(str(path)).load(InvalidRecords())


def not_utf8_file(tmp_path):
    """Line 3 is Latin-1 ('café' with é as the single byte 0xe9), the others UTF-8."""
    path = write_jsonl(tmp_path / "latin1.jsonl", [{"prompt": "a", "response": "b"}, {"prompt": "c", "response": "d"}])
    path.write_bytes(path.read_bytes() + b'{"prompt": "caf\xe9", "response": "e"}\n{"prompt": "f", "response": "g"}\n')
    return path


def test_a_line_that_is_not_utf8_is_named_by_file_and_line(tmp_path, tokenizer):
    path = not_utf8_file(tmp_path)
    for source in (JsonlSource(str(path)), GSM8KSource(path=str(path))):
        with pytest.raises(InvalidRecordError, match=rf"^{path}:3: not UTF-8 text \(byte 0xe9 at byte 16 of the line"):
            source.load(InvalidRecords())
    data = L2DDataModule(tokenizer, JsonlSource(str(path)), val_size=0, skip_invalid=True)
    data.setup()  # skip_invalid skips it as any other bad line, and counts it
    assert (data.stats.skipped_invalid, data.stats.examples) == (1, 3)


def test_an_empty_file_is_named(tmp_path, tokenizer):
    empty, blank = tmp_path / "empty.jsonl", tmp_path / "blank.jsonl"
    empty.write_bytes(b"")
    blank.write_text("\n  \n")
    for path in (empty, blank):
        for source in (JsonlSource(str(path)), GSM8KSource(path=str(path))):
            with pytest.raises(InvalidRecordError, match=rf"^{path}: empty, no records in it"):
                source.load(InvalidRecords(skip=True))
    train = write_jsonl(tmp_path / "train.jsonl", [{"prompt": "a", "response": "b"}])
    data = L2DDataModule(tokenizer, JsonlSource(str(train), val_path=str(empty)), val_size=0)
    with pytest.raises(InvalidRecordError, match=rf"^{empty}: empty"):
        data.setup()


def test_a_local_copy_under_l2d_data_that_is_empty_or_not_utf8_is_named(tmp_path, monkeypatch):
    from l2d.data.hub import local_copy_name

    monkeypatch.setenv("L2D_DATA", str(tmp_path))
    copy = tmp_path / local_copy_name("HuggingFaceTB/smoltalk", "self-oss-instruct", "test")
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b'{"messages": []}\n\n{"messages": [{"role": "user", "content": "\xff"}]}\n')
    source = SmolTalkSource(subsets=["self-oss-instruct"])
    with pytest.raises(InvalidRecordError, match=rf"^{copy}:3: not UTF-8 text \(byte 0xff"):
        source.validation(InvalidRecords(skip=True))  # datasets reads the copy: it cannot skip the line
    copy.write_bytes(b"")
    with pytest.raises(InvalidRecordError, match=rf"^{copy}: empty"):
        source.validation(InvalidRecords())


def test_empty_after_filtering_fails_before_training(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "long.jsonl", [{"prompt": "q" * 100, "response": "a"}] * 3)
    data = L2DDataModule(tokenizer, JsonlSource(str(path)), max_length=50, val_size=0)
    with pytest.raises(ValueError, match="no training examples left after filtering: 3 longer than max_length=50"):
        data.setup()


def test_hub_unreachable_is_one_line_naming_the_local_alternative(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.delenv("L2D_DATA", raising=False)
    with pytest.raises(ConnectionError) as failure:
        GSM8KSource().load(InvalidRecords())
    message = str(failure.value)
    assert "\n" not in message and "Couldn't reach" in message
    assert "openai/gsm8k (split train, config main)" in message and "data.sources.0.path=FILE" in message
    assert "$L2D_DATA/openai/gsm8k/main/train.jsonl" in message
    assert failure.value.__suppress_context__
    copy = r"\$L2D_DATA/HuggingFaceTB/smoltalk/self-oss-instruct/test.jsonl"
    with pytest.raises(ConnectionError, match=copy + ".*JsonlSource"):
        SmolTalkSource().validation(InvalidRecords())


def test_training_files_and_task_files_are_read_alike(tmp_path):
    """One JSONL reader (l2d.data.records.read_jsonl) for training data and task files: a gzipped training file loads
    as the plain one, and a malformed line is named alike by both, a task's refused, training's skippable."""
    import gzip

    from l2d.tasks.sources import TaskDataError, read_records

    path = write_jsonl(tmp_path / "train.jsonl", [{"messages": chat(f"q{i}", f"a{i}")} for i in range(3)])
    packed = tmp_path / "train.jsonl.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert JsonlSource(str(packed)).load(InvalidRecords()).train == JsonlSource(str(path)).load(InvalidRecords()).train
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [oops\n')
    line = rf"^{bad}:1: malformed JSON \(Expecting value at column 15\)"
    with pytest.raises(InvalidRecordError, match=line + r" \(pass skip_invalid=True"):
        JsonlSource(str(bad)).load(InvalidRecords())
    with pytest.raises(TaskDataError, match=line + "$"):
        read_records(bad)
