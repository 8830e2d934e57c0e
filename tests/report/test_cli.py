"""python -m l2d.report: what it writes, and how it treats missing paths and files that are not results."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from l2d.report import run
from tests.compose import compose_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = ["accuracy_vs_nfe.png", "loss_vs_t.png", "nfe_per_task.png", "accuracy_vs_guidance.png"]


def main(*inputs, out=None):
    """The entry point's config composed from the same overrides as its command line, then run."""
    overrides = [f"inputs=[{','.join(map(str, inputs))}]"] + ([] if out is None else [f"out={out}"])
    return run(compose_config("report", overrides))


@pytest.fixture
def everything(tmp_path, write_result, training_run):
    """Results for every figure (a level sweep, an adaptive solver, guidance) and a training run."""
    for task, base in (("gsm8k", 0.1), ("humaneval", 0.2), ("mmlu", 0.4)):
        write_result(f"base-{task}", task, "base", base)
        for levels in (1, 2, 4, 8, 16):
            write_result(f"l2d-{task}-{levels}", task, "l2d_lora", base + 0.02 * levels, levels=levels)
        write_result(f"adaptive-{task}", task, "l2d_lora", base + 0.3, solver="fehlberg2", nfe=30 + 20 * base)
        for guidance in (1.5, 2.0, 3.0):
            write_result(f"guided-{task}-{guidance}", task, "l2d_lora", base + 0.05 * guidance, guidance=guidance)
    return [tmp_path / "evals", training_run]


def test_writes_the_report_and_every_plot_with_data(tmp_path, everything, capsys):
    out = tmp_path / "out"
    main(*everything, out=out)
    assert sorted(p.name for p in out.iterdir()) == sorted(["report.md", *PLOTS])  # no temporary files left
    for name in PLOTS:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, name
    printed = capsys.readouterr().out
    assert all(f"wrote {out / name}" in printed for name in ["report.md", *PLOTS])


def test_plots_without_data_are_not_written(tmp_path, write_result):
    write_result("base", "gsm8k", "base", 0.1)
    out = tmp_path / "out"
    main(tmp_path / "evals", out=out)
    assert [p.name for p in out.iterdir()] == ["report.md"]


def test_missing_path_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "no_such_run"
    with pytest.raises(SystemExit) as exit_info:  # the message is what the interpreter prints on exit, status 1
        main(missing)
    assert exit_info.value.code == f"python -m l2d.report: error: {missing}: no such file or directory"


def test_json_that_is_not_a_results_file_is_skipped_with_a_warning(tmp_path, write_result, caplog):
    write_result("base", "gsm8k", "base", 0.1)
    stray = tmp_path / "evals" / "decode.json"
    stray.write_text(json.dumps({"solver": "midpoint", "levels": 8}))
    broken = tmp_path / "evals" / "base" / "copy" / "results.json"
    broken.parent.mkdir()
    broken.write_text("{not json")
    out = tmp_path / "out"
    main(tmp_path / "evals", stray, out=out)
    assert f"skipped {stray}: no task, model, decoding, summary" in caplog.text
    assert f"skipped {broken}: not valid JSON" in caplog.text
    assert "| smollm2-135m | paper | 10.00" in (out / "report.md").read_text()


def set_field(data: dict, field: str, value) -> None:
    *path, key = field.split(".")
    for part in path:
        data = data[int(part)] if isinstance(data, list) else data[part]
    data[key] = value


@pytest.mark.parametrize("field, value, message", [
    ("decoding.temperature", "hot", "decoding.temperature must be a number, got 'hot'"),
    ("decoding.levels", None, "decoding.levels must be a number, got None"),
    ("summary.ci95_low", True, "summary.ci95_low must be a number or null, got True"),
    ("model.label", ["a", "b"], "model.label must be a string or null, got ['a', 'b']"),
    ("records.0.passed", 1, "records.0.passed must be a list of verdicts, got 1"),
    ("decoding.solver", "x" * 50, None),  # an unknown solver is only a name: the file is used
])
def test_a_results_file_with_a_bad_field_is_skipped_naming_it_while_the_report_is_written(
        tmp_path, write_result, caplog, field, value, message):
    write_result("good", "gsm8k", "l2d_lora", 0.3)
    bad = write_result("bad", "gsm8k", "lora", 0.2)
    data = json.loads(bad.read_text())
    set_field(data, field, value)
    bad.write_text(json.dumps(data))
    broken = tmp_path / "evals" / "broken" / "results.json"
    broken.parent.mkdir()
    broken.write_text('{"task": "gsm8k", ')
    out = tmp_path / "out"
    main(tmp_path / "evals", out=out)
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(w.startswith(f"skipped {broken}: not valid JSON") for w in warnings), warnings
    report = (out / "report.md").read_text()
    assert "| L2D-LoRA | paper | 30.00" in report
    if message is None:
        assert not any(str(bad) in w for w in warnings) and "| LoRA " in report
    else:
        assert f"skipped {bad}: {message}" in warnings and "| LoRA " not in report


def test_nothing_usable_is_an_error(tmp_path):
    stray = tmp_path / "config.json"
    stray.write_text("[1, 2]")
    with pytest.raises(SystemExit) as exit_info:
        main(stray, tmp_path, out=tmp_path / "out")
    assert f"no results or training runs found under {stray}, {tmp_path}" in exit_info.value.code
    assert not (tmp_path / "out").exists()


def test_runs_as_a_module_writing_only_its_output(tmp_path, training_run):
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, "-m", "l2d.report", f"inputs={training_run}", "out=report"],
                          cwd=work, capture_output=True, text=True, check=True)
    assert "wrote report/loss_vs_t.png" in done.stdout
    assert [p.name for p in work.iterdir()] == ["report"]  # no run directory, .hydra/ or log file


def test_module_errors_are_one_line(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "l2d.report", f"inputs=[{tmp_path / 'none'}]"], cwd=tmp_path,
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"python -m l2d.report: error: {tmp_path / 'none'}: no such file or directory"
    unnamed = subprocess.run([sys.executable, "-m", "l2d.report"], cwd=tmp_path, capture_output=True, text=True)
    assert unnamed.returncode != 0 and "inputs=[experiments/runs,experiments/multiruns]" in unnamed.stderr
