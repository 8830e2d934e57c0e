"""A resume goes on with the same run: a checkpoint of another (σ, LoRA rank, model width) is refused in one line
naming the field and both values, before anything is loaded or written; a change asked for is recorded in the
run and its export; a run that reached its max_steps goes on to a higher one as if it had been one run."""

from __future__ import annotations

import json

import pytest
import torch

from l2d.lightning.run_guard import RunGuard
from l2d.train import train
from l2d.validation import InputError
from tests.training.conftest import logged

SHORT = "trainer.max_steps=3"


@pytest.fixture
def run_dir(tiny_train, tmp_path):
    """A run that ended at its max_steps (3 of an epoch of 10)."""
    train(tiny_train(SHORT, output_dir=tmp_path / "run"))
    return tmp_path / "run"


def contents(directory):
    return {path.relative_to(directory): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("override, field, there, here", [("sigma=8", "sigma", "64.0", "8"),
                                                          ("lora_rank=8", "lora_rank", "32", "8"),
                                                          ("model.width=32", "model.width", "64", "32")])
def test_a_resume_that_changes_the_fingerprint_is_refused(override, field, there, here, run_dir, tiny_train):
    before = contents(run_dir)
    with pytest.raises(InputError, match=rf"ckpt_path=.*last.ckpt is another run: {field} {there} there, {here} "
                                         rf"here.*cannot change on resume: .* allow_change=\[{field}"):
        train(tiny_train(f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "trainer.max_steps=5", override,
                         output_dir=run_dir))
    assert contents(run_dir) == before  # nothing loaded into the run, nothing written


def test_an_allowed_change_is_made_and_recorded(run_dir, tiny_train):
    metrics = train(tiny_train(f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "trainer.max_steps=5", "sigma=32",
                               "allow_change=[sigma]", output_dir=run_dir))
    assert metrics["global_step"] == 5
    meta = json.loads((run_dir / "export" / "l2d_config.json").read_text())
    assert meta["config"]["sigma"] == 32
    assert meta["run"]["changes"] == [{"step": 3, "field": "sigma", "from": 64.0, "to": 32}]
    assert "| changed on resume | at step 3: `sigma` 64.0 → 32 |" in (run_dir / "export" / "README.md").read_text()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["callbacks"]["RunGuard"]["fingerprint"]["sigma"] == 32  # later resumes compare with 32


def test_allow_change_is_checked(run_dir, tiny_train):
    with pytest.raises(InputError, match=r"allow_change=\['sigma'\] lets a resumed run change .*: give ckpt_path"):
        train(tiny_train("allow_change=[sigma]", output_dir=run_dir / "new"))
    with pytest.raises(InputError, match=r"allow_change=\['sigmaa'\]: not a field of the run's fingerprint"):
        train(tiny_train(f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "allow_change=[sigmaa]",
                         output_dir=run_dir))


def test_a_checkpoint_without_a_fingerprint_resumes_with_a_warning(run_dir, tiny_train, caplog):
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    del checkpoint["callbacks"][RunGuard.__qualname__]
    torch.save(checkpoint, run_dir / "checkpoints" / "last.ckpt")
    metrics = train(tiny_train(f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "trainer.max_steps=4",
                               output_dir=run_dir))
    assert metrics["global_step"] == 4 and "has no run fingerprint" in caplog.text


@pytest.mark.parametrize("chain_states", [0.0, 0.5])
def test_a_checkpoint_from_before_research_options_resumes_unless_it_trained_a_removed_one(chain_states, run_dir,
                                                                                           tiny_train):
    """Fingerprints written before l2d.research held `drafts`, `chain_states` and `chain_levels` at the top level:
    read as research options, the paper's training resumes, and a run that trained chain states (removed) does not."""
    path = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, weights_only=False)
    fingerprint = checkpoint["callbacks"][RunGuard.__qualname__]["fingerprint"]
    assert fingerprint.pop("research") == {}
    fingerprint.update(drafts=0.0, chain_states=chain_states, chain_levels=[2, 4, 8])
    torch.save(checkpoint, path)
    resume = tiny_train(f"ckpt_path={path}", "trainer.max_steps=4", output_dir=run_dir)
    if chain_states:
        with pytest.raises(InputError, match=r"is another run: research \{'chain_states': 0.5\} there, \{\} here"):
            train(resume)
    else:
        assert train(resume)["global_step"] == 4


def test_a_resume_with_nothing_to_train_says_which_limit(run_dir, tiny_train):
    with pytest.raises(InputError, match=r"is at step 3 and trainer.max_steps=3: nothing to train; raise "
                                         r"trainer.max_steps"):
        train(tiny_train(f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", SHORT, output_dir=run_dir))


CONSTANT = "scheduler=null"  # with the schedule, the steps of a shorter and a longer run differ in learning rate


def test_extending_a_finished_run_continues_it_as_one_run(tiny_train, tmp_path):
    """3 steps, then on to 5 from its last.ckpt, give the losses of 5 steps in one go, to the bit, every step once."""
    train(tiny_train(CONSTANT, SHORT, output_dir=tmp_path / "extended"))
    metrics = train(tiny_train(CONSTANT, "trainer.max_steps=5",
                               f"ckpt_path={tmp_path / 'extended' / 'checkpoints' / 'last.ckpt'}",
                               output_dir=tmp_path / "extended"))
    train(tiny_train(CONSTANT, "trainer.max_steps=5", output_dir=tmp_path / "one_go"))
    assert metrics["global_step"] == 5
    extended = logged(tmp_path / "extended" / "metrics.csv", "train/loss")
    assert sorted(extended) == list(range(5))
    assert extended == logged(tmp_path / "one_go" / "metrics.csv", "train/loss")


@pytest.fixture
def whole_epoch(tiny_train, tmp_path):
    """A run that read all its data: one epoch of 10 steps."""
    train(tiny_train(CONSTANT, "export=false", output_dir=tmp_path / "whole"))
    return tmp_path / "whole"


def test_a_run_that_read_all_its_data_needs_more_epochs(whole_epoch, tiny_train):
    with pytest.raises(InputError, match=r"has read all its data 1 time\(s\) \(trainer.max_epochs=1\) by step 10: "
                                         r"nothing to train; raise trainer.max_epochs"):
        train(tiny_train(CONSTANT, f"ckpt_path={whole_epoch / 'checkpoints' / 'last.ckpt'}", "trainer.max_steps=12",
                         output_dir=whole_epoch))


def test_a_run_that_read_all_its_data_goes_on_into_the_next_epoch(whole_epoch, tiny_train, tmp_path):
    longer = (CONSTANT, "trainer.max_steps=12", "trainer.max_epochs=2", "export=false")
    metrics = train(tiny_train(f"ckpt_path={whole_epoch / 'checkpoints' / 'last.ckpt'}", *longer,
                               output_dir=whole_epoch))
    train(tiny_train(*longer, output_dir=tmp_path / "one_go"))
    resumed = logged(whole_epoch / "metrics.csv", "train/loss")
    assert metrics["global_step"] == 12 and sorted(resumed) == list(range(12))
    assert resumed == logged(tmp_path / "one_go" / "metrics.csv", "train/loss")
