"""experiments/driver.py: stages skipped once done, trainings resumed, locks shared by two copies, costs recorded, dry
runs; and the drivers' studies issue their commands (with a stand-in `python` that records them)."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.driver import Experiment, Score
from experiments.smollm2_rl.run import t_start_on_validation

# A stand-in for `python` on PATH: records its arguments, one command a line, and makes what l2d.train /
# l2d.evaluate would leave in hydra.run.dir (an export; a results.json); `exit=N` among them exits with N.
FAKE_PYTHON = r"""#!/usr/bin/env bash
echo "$*" >> "$COMMANDS"
for a; do
  case $a in hydra.run.dir=*) dir=${a#*=} ;; exit=*) exit "${a#*=}" ;; esac
done
case "$2" in
  l2d.train) mkdir -p "$dir/export" ;;
  l2d.evaluate) mkdir -p "$dir" && echo '{"summary": {"score": 0.5}, "records": []}' > "$dir/results.json" ;;
  *) echo "printed by $2" ;;
esac
"""


@pytest.fixture
def commands(tmp_path, monkeypatch) -> Path:
    """The file the stand-in `python` (first on PATH) records each command it is given in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("COMMANDS", str(tmp_path / "commands.txt"))
    return tmp_path / "commands.txt"


def issued(commands: Path) -> list[str]:
    return commands.read_text().splitlines() if commands.exists() else []


def test_a_stage_runs_once_and_records_its_cost(tmp_path, commands):
    ex = Experiment(tmp_path / "out")
    results = ex.evaluate("greedy", "base", "limit=5")
    ex.evaluate("greedy", "base", "limit=5")  # done: skipped
    assert results == tmp_path / "out/eval/greedy/base/results.json" and results.is_file()
    assert issued(commands) == [f"-m l2d.evaluate task=arithmetic protocol=greedy max_new_tokens=8 batch_size=100 "
                                f"progress=false limit=5 hydra.run.dir={tmp_path}/out/eval/greedy/base"]
    header, row = (tmp_path / "out/stages.tsv").read_text().splitlines()
    name, wall_s, peak_rss_mb = row.split("\t")
    assert header == "stage\twall_s\tpeak_rss_mb" and name == "evaluate greedy base"
    assert int(wall_s) >= 0 and int(peak_rss_mb) > 0


def test_a_training_resumes_from_its_last_checkpoint(tmp_path, commands):
    ex = Experiment(tmp_path)
    last = tmp_path / "arm/checkpoints/last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")
    assert ex.train("arm", "sigma=8") == tmp_path / "arm/export"
    assert issued(commands) == [f"-m l2d.train sigma=8 trainer.enable_progress_bar=false ckpt_path={last} "
                                f"hydra.run.dir={tmp_path}/arm"]


def test_a_stage_another_copy_holds_is_left_to_it(tmp_path, commands):
    ex = Experiment(tmp_path)
    with open(tmp_path / ".lock.train_arm", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the other copy, training the arm
        ex.train("arm")
    assert issued(commands) == [] and not (tmp_path / "arm/export").exists()
    ex.train("arm")  # the other copy stopped without finishing: this one trains it
    assert len(issued(commands)) == 1


def test_a_failed_stage_ends_the_study_and_leaves_no_output(tmp_path, commands):
    ex = Experiment(tmp_path)
    out = tmp_path / "printed.txt"
    with pytest.raises(SystemExit, match="stage failed with exit status 3: python -m l2d.report exit=3"):
        ex.stage("report", out, ["python", "-m", "l2d.report", "exit=3"], stdout=out)
    assert not out.exists() and (tmp_path / "stages.tsv").read_text().count("\n") == 1
    ex.stage("report", out, ["python", "-m", "l2d.report"], stdout=out)
    assert out.read_text() == "printed by l2d.report\n"


def test_a_dry_run_prints_every_command_and_runs_none(tmp_path, commands, capsys):
    ex = Experiment(tmp_path / "out", dry_run=True)
    export = ex.train("arm", "sigma=8")
    ex.score("arm", [Score("greedy", 2), Score("paper", 8, t_start="0.25")], export)  # no wait for the export
    assert ex.ready(ex.results("arm", Score("greedy", 2)))
    ex.compare(ex.results("arm", Score("greedy", 2)), ex.results("arm", Score("paper", 8, "0.25")))
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in printed] == ["l2d.train", "l2d.evaluate", "l2d.evaluate", "l2d.report.compare"]
    assert printed[2].endswith(f"solver.levels=8 solver.t_start=0.25 hydra.run.dir={tmp_path}/out/eval/paper/"
                               "arm_levels8_from0.25")
    assert issued(commands) == [] and not (tmp_path / "out").exists()


def test_the_start_t_is_the_best_on_validation_and_the_earliest_on_a_tie(tmp_path, commands):
    ex = Experiment(tmp_path)
    (tmp_path / "sigma8/export").mkdir(parents=True)
    for tau, score in (("0.1", 0.17), ("0.25", 0.18), ("0.4", 0.18)):
        path = tmp_path / f"validation/from{tau}/results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"summary": {"score": score}}))
    assert t_start_on_validation(ex, tmp_path / "sigma8/export") == "0.25"
    assert issued(commands) == []  # every validation scoring done already


STUDIES = [("smollm2_short_answers", "arms"), ("smollm2_short_answers", "sweep"), ("smollm2_gsm8k", "gpu"),
           ("smollm2_gsm8k", "cpu"), ("baselines", "base"),
           *(("smollm2_rl", study) for study in ("rl", "rl_sweep", "sigma8", "on_lora", "three_terms", "drafts",
                                                 "anchor"))]


def test_the_study_of_a_removed_option_names_the_commit_it_needs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "experiments.smollm2_rl.run", "chain_states", "--dry-run", "--runs",
                           str(tmp_path)], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode == 1 and not done.stdout and not any(tmp_path.iterdir())
    assert done.stderr.count("\n") == 1 and "was removed" in done.stderr and "needs l2d at commit" in done.stderr


@pytest.mark.parametrize("experiment, study", STUDIES)
def test_every_study_issues_its_commands_in_a_dry_run(tmp_path, experiment, study):
    done = subprocess.run([sys.executable, "-m", f"experiments.{experiment}.run", study, "--dry-run",
                           "--runs", str(tmp_path)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parents[2])
    printed = [line for line in done.stdout.splitlines() if line.startswith("python")]
    assert printed and all(line.startswith(("python -m l2d.", "python experiments/smollm2_rl/chain_changes.py"))
                           for line in printed)
    assert len(printed) == len(set(printed))  # no stage issued twice
    assert not any(tmp_path.iterdir())  # nothing made
