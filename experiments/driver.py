"""The experiments' shared driver: train arms, score them on the short-answer test problems, compare, report.

An experiment is one module under experiments/<name>/ whose studies call an `Experiment`; each stage is one
`python -m l2d.*` command, printed as it starts, so every number can be made again by hand. Run from the
repository root with the environment active (commands run the `python` on PATH):

    python -m experiments.<name>.run STUDY [--runs experiments/runs] [--dry-run]

    from experiments.driver import Experiment, Score, main

    def sigma8(ex: Experiment, runs: Path) -> None:                 # a study: one question
        export = ex.train("sigma8", "experiment=short_answers", "sigma=8")       # <out>/sigma8/export
        scores = [Score("greedy", 2), Score("greedy", 8), Score("paper", 8, t_start="0.25")]
        ex.score("sigma8", scores, export)                              # <out>/eval/<protocol>/sigma8_levels8...
        if ex.ready(*(ex.results("sigma8", score) for score in scores)):  # once every scoring exists
            ex.compare(*(ex.results("sigma8", score) for score in scores[:2]))
            ex.report(ex.out)
        ex.finish()

    if __name__ == "__main__":
        main({"sigma8": (sigma8, "my_sigma8")}, __doc__)  # study -> (function, its folder under --runs)

Experiment(out, dry_run=False): the stages of one output folder.
  stage(name, done, command, stdout=None)  run `command` unless the path `done` exists. Resumable: a finished stage
      is skipped. Two copies of a study may run at once: a stage the other copy is running is skipped (a lock per
      stage); `after(path)` waits for what it makes. Wall time and peak memory go to <out>/stages.tsv.
  train(arm, *overrides, directory=None) -> export   python -m l2d.train into <out>/<arm> (or `directory`), resumed
      from its last checkpoint when one exists; done once its export/ exists.
  evaluate(protocol, name, *overrides) -> results.json   the short-answer scoring (task=arithmetic, 8 new tokens)
      of smollm2_short_answers and smollm2_rl under conf/protocol/<protocol>, into <out>/eval/<protocol>/<name>.
  score(arm, scores, export, *overrides)   `evaluate` of one export at each Score (protocol, levels, t_start).
  results(arm, score) -> path;  ready(*paths) -> whether all exist (comparisons wait for every scoring);
  after(path);  compare(reference, *others) (python -m l2d.report.compare);  report(*inputs);  finish() (the costs).
  run(command, stdout=None)   one command that is not a stage (always run; its output to `stdout`, written whole).
main(studies, doc, options=None): the command line above; `options(parser)` adds a driver's own flags.
--dry-run prints every command a stage would run instead of running it (finished stages are still skipped), waits
for nothing and takes every comparison as ready; a value read from a result not yet made prints as <name>.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

WAIT_S = 30  # how often `after` looks for what another copy is making
STAGES = "stages.tsv"


@dataclass(frozen=True)
class Score:
    """One decoding of an L2D export: the protocol (conf/protocol), the midpoint levels, and the t the chain starts
    from (None: t = 0; else as written on the command line, e.g. "0.25")."""

    protocol: str
    levels: int
    t_start: str | None = None

    def name(self, arm: str) -> str:
        return f"{arm}_levels{self.levels}" + (f"_from{self.t_start}" if self.t_start is not None else "")

    def overrides(self) -> list[str]:
        start = [f"solver.t_start={self.t_start}"] if self.t_start is not None else []
        return [f"solver.levels={self.levels}", *start]


class Experiment:
    """The stages of one output folder (see the module's docstring)."""

    def __init__(self, out: Path | str, dry_run: bool = False):
        self.out = Path(out)
        self.dry_run = dry_run
        if not dry_run:
            self.out.mkdir(parents=True, exist_ok=True)
            if not (self.out / STAGES).exists():
                (self.out / STAGES).write_text("stage\twall_s\tpeak_rss_mb\n")

    def run(self, command: Sequence[str], stdout: Path | None = None) -> None:
        """Print `command` and run it (a dry run only prints it); a failed command ends the study with its status.
        With `stdout`, its output goes to that file, whole or not at all."""
        print(shlex.join(command) + (f" > {stdout}" if stdout else ""), flush=True)
        if self.dry_run:
            return
        self._measured(command, stdout)

    def _measured(self, command: Sequence[str], stdout: Path | None) -> tuple[float, int]:
        """Run `command`; its wall time (s) and peak resident memory (kB, as /usr/bin/time reports it)."""
        start = time.monotonic()
        partial = stdout.with_name(f".{stdout.name}.partial") if stdout else None
        with open(partial, "w") if partial else contextlib.nullcontext() as sink:
            process = subprocess.Popen(list(command), stdout=sink)
            _, status, usage = os.wait4(process.pid, 0)  # the child's own peak memory, as /usr/bin/time reads it
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"stage failed with exit status {process.returncode}: {shlex.join(command)}")
        if partial:
            os.replace(partial, stdout)
        return time.monotonic() - start, usage.ru_maxrss

    def stage(self, name: str, done: Path, command: Sequence[str], stdout: Path | None = None) -> None:
        """Run `command` unless `done` exists or another copy holds the stage's lock; record its cost."""
        if done.exists():
            return
        if self.dry_run:
            self.run(command, stdout)
            return
        with open(self.out / f".lock.{name.replace(' ', '_')}", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # the other copy runs it
            if done.exists():  # done by the other copy between the check and the lock
                return
            print(shlex.join(command) + (f" > {stdout}" if stdout else ""), flush=True)
            wall, peak_kb = self._measured(command, stdout)
            with open(self.out / STAGES, "a") as table:
                table.write(f"{name}\t{wall:.0f}\t{peak_kb // 1024}\n")

    def after(self, path: Path) -> Path:
        """Wait until `path` exists (another copy may be making it); a dry run does not wait."""
        while not self.dry_run and not path.exists():
            time.sleep(WAIT_S)
        return path

    def ready(self, *paths: Path) -> bool:
        """Whether every path exists (a dry run takes them as made)."""
        return self.dry_run or all(path.exists() for path in paths)

    def train(self, arm: str, *overrides: str, directory: Path | None = None) -> Path:
        """python -m l2d.train into `directory` (default <out>/<arm>), resumed from its last checkpoint; its export."""
        directory = directory or self.out / arm
        last = directory / "checkpoints" / "last.ckpt"
        resume = [f"ckpt_path={last}"] if last.is_file() else []
        self.stage(f"train {arm}", directory / "export",
                   ["python", "-m", "l2d.train", *overrides, "trainer.enable_progress_bar=false", *resume,
                    f"hydra.run.dir={directory}"])
        return directory / "export"

    def evaluate(self, protocol: str, name: str, *overrides: str) -> Path:
        """The short-answer arithmetic scoring under `protocol`, into <out>/eval/<protocol>/<name>; its results.json."""
        directory = self.out / "eval" / protocol / name
        self.stage(f"evaluate {protocol} {name}", directory / "results.json",
                   ["python", "-m", "l2d.evaluate", "task=arithmetic", f"protocol={protocol}", "max_new_tokens=8",
                    "batch_size=100", "progress=false", *overrides, f"hydra.run.dir={directory}"])
        return directory / "results.json"

    def score(self, arm: str, scores: Iterable[Score], export: Path, *overrides: str) -> None:
        """Each Score of `export` (waiting for it first), named after `arm`; `overrides` go to every scoring."""
        self.after(export)
        for score in scores:
            self.evaluate(score.protocol, score.name(arm), f"checkpoint={export}", *score.overrides(), *overrides)

    def results(self, name: str, score: Score | str) -> Path:
        """The results.json of `name` scored at `score`, or under the protocol `score` when it is a plain name."""
        if isinstance(score, Score):
            return self.out / "eval" / score.protocol / score.name(name) / "results.json"
        return self.out / "eval" / score / name / "results.json"

    def compare(self, reference: Path | str, *others: Path | str) -> None:
        """Paired comparisons on the same problems (an argument A+B+... is the mean of several scorings)."""
        self.run(["python", "-m", "l2d.report.compare", str(reference), *map(str, others)])

    def report(self, *inputs: Path | str, out: Path | None = None) -> None:
        """python -m l2d.report of `inputs` into <out>/report (rebuilt every time: a later arm belongs in it)."""
        self.run(["python", "-m", "l2d.report", f"out={out or self.out / 'report'}",
                  f"inputs=[{','.join(map(str, inputs))}]"])

    def finish(self) -> None:
        """Print every stage's wall time and peak memory so far."""
        table = self.out / STAGES
        if self.dry_run or not table.exists():
            return
        rows = [line.split("\t") for line in table.read_text().splitlines()]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


Study = Callable[..., None]


def main(studies: Mapping[str, tuple[Study, str]], doc: str | None, arguments: Sequence[str] | None = None,
         options: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    """The command line of an experiment: `STUDY [--runs DIR] [--dry-run]`; each study is called as
    study(Experiment(<runs>/<its folder>), runs=<runs>, **its own flags), which `options(parser)` adds."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=list(studies), help="the question to answer (see above)")
    parser.add_argument("--runs", type=Path, default=Path("experiments/runs"),
                        help="where every study's output folder is (default: experiments/runs)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands the study would run, run none")
    if options:
        options(parser)
    parsed = vars(parser.parse_args(arguments))
    study, folder = studies[parsed.pop("study")]
    runs, dry_run = parsed.pop("runs"), parsed.pop("dry_run")
    study(Experiment(runs / folder, dry_run), runs=runs, **parsed)
