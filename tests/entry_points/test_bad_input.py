"""Bad input to the entry points is refused before any work, in one line naming the field or file
and what is allowed; never a traceback of a library's internals."""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import sys

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

import l2d.inspect
import l2d.train
from l2d import L2DConfig, L2DModel
from l2d.evaluate import evaluate
from l2d.model.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from l2d.model.digest import DIGEST_FILE
from l2d.model.finetune import FINETUNE_FILE, Finetune
from l2d.model.tiny import tiny_model
from l2d.report.inputs import collect
from l2d.report.records import NoInputs
from l2d.tasks import sandbox
from l2d.validation import InputError, check_bench, check_evaluate, check_train, one_line
from tests.compose import compose_config
from tests.training.conftest import TINY_RUN

GROUPS = ("model", "method", "data", "task", "experiment")


@functools.cache
def composed(name: str, overrides: tuple[str, ...]):
    return compose_config(name, list(overrides))


def config(name: str, *overrides: str):
    """The composed config with the overrides: config groups composed (once each), values set on a copy."""
    groups = tuple(o for o in overrides if o.startswith("~") or o.split("=")[0] in GROUPS)
    cfg = copy.deepcopy(composed(name, groups))
    for override in OverridesParser.create().parse_overrides([o for o in overrides if o not in groups]):
        OmegaConf.update(cfg, override.key_or_group, override.value())
    return cfg


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "malformed.jsonl").write_text('{"messages": [oops\n')
    (root / "damaged.ckpt").write_text("not a checkpoint")
    (root / "empty_dir").mkdir()
    (root / "damaged_export").mkdir()
    (root / "damaged_export" / "l2d_config.json").write_text("{garbage")
    return root


TRAIN = [
    (["sigma=-1"], "sigma must be > 0, got -1"),
    (["sigma=abc"], "sigma must be a number, got 'abc'"),
    (["lr=0"], "lr must be a number > 0, got 0"),
    (["lora_rank=0"], r"lora_rank must be >= 1"),
    (["timestep_sampling=cosine"], "timestep_sampling must be one of"),
    (["batch_size=3"], "batch_size=3 must be a multiple of data.micro_batch_size x trainer.devices = 2 x 1"),
    (["batch_size=0"], "batch_size must be an integer >= 1, got 0"),
    (["data.micro_batch_size=0"], "data.micro_batch_size must be an integer >= 1, got 0"),
    (["seed=abc"], "seed must be an integer, got 'abc'"),
    (["batch_size=abc"], "batch_size must be an integer >= 1, got 'abc'"),  # a wrong type: the schema's line too
    (["allow_change=[sigma]"], r"allow_change=\['sigma'\] lets a resumed run change its fingerprint: give ckpt_path"),
    (["trainer.max_steps=-5"], "trainer.max_steps must be an integer >= -1, got -5"),
    (["method=lora", "lora_rank=-1"], "method.network.lora_rank must be an integer >= 0, got -1"),
    (["drafts=1.5"], r"drafts must be a probability in \[0, 1\], got 1.5"),
    (["chain_states=0.5"], r"chain_states=0.5: chain_states .* was removed: measured harmful.* needs l2d at commit"),
    (["module.lr_multipliers={{w_head:0.1}}"], "module.lr_multipliers.w_head: not a parameter group; allowed: w_d, "),
    (["module.lr_multipliers={{w_d:-1}}"], "module.lr_multipliers.w_d must be a number >= 0, got -1"),
    (["method=lora", "module.lr_multipliers={{w_d:0.1}}"], "module.lr_multipliers scales the diffusion path's "
                                                         "parameter groups; method=lora has none"),
    (["ckpt_path={root}/nope.ckpt"], r"ckpt_path=.*/nope.ckpt: no such file \(give a .ckpt file of an earlier run"),
    (["ckpt_path={root}/damaged.ckpt"], "ckpt_path=.*/damaged.ckpt: not a checkpoint, or a damaged one"),
    (["finetuned={root}/empty_dir"], r"finetuned=.*/empty_dir: no l2d_finetune.json in it \(give a lora/full run"),
    (["data=jsonl"], "data.sources.0.path is required: give a JSONL file"),
    (["data=jsonl", "data.sources.0.path={root}/nope.jsonl"], r"data.sources.0.path=.*/nope.jsonl: no such file"),
    (["model=smollm2_135m", "model.name_or_path={root}/nope"], r"model.name_or_path=.*/nope: no such file or dir"),
]


@pytest.mark.parametrize("overrides, message", TRAIN, ids=[" ".join(o) for o, _ in TRAIN])
def test_train_refuses_bad_config(files, overrides, message):
    overrides = [o.format(root=files) for o in overrides]
    replaced = {o.split("=")[0] for o in overrides}
    with pytest.raises(InputError, match=message):
        check_train(config("train", *(o for o in TINY_RUN if o.split("=")[0] not in replaced), *overrides))


def test_sigma_is_refused_before_the_model_or_data_load(tmp_path, monkeypatch):
    def nothing_loads(*args, **kwargs):
        raise AssertionError("something loaded before the config was checked")

    monkeypatch.setattr(l2d.train, "instantiate", nothing_loads)
    with pytest.raises(InputError, match="sigma must be > 0, got -1"):
        l2d.train.train(compose_config("train", [*TINY_RUN, "sigma=-1"], tmp_path))


EVALUATE = [
    (["checkpoint={root}/nope"], r"checkpoint=.*/nope: no such directory \(give a training run's export/ directory"),
    (["checkpoint={root}/empty_dir"], "no l2d_config.json or l2d_finetune.json in it"),
    (["checkpoint={root}/damaged_export"], "damaged_export/l2d_config.json: damaged, not JSON"),
    (["base_model={root}/nope"], r"base_model=.*/nope: no such file or directory"),
    (["guidance=0.5"], "guidance must be a number >= 1, got 0.5"),
    (["temperature=-1"], "temperature must be a number >= 0, got -1"),
    (["samples=0"], "samples must be an integer >= 1, got 0"),
    (["limit=0"], "limit must be an integer >= 1 or null, got 0"),
    (["max_new_tokens=0"], "max_new_tokens must be an integer >= 1 or null, got 0"),
    (["batch_size=0"], "batch_size must be an integer >= 1, got 0"),
    (["device=tpu"], "device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    (["dtype=int8"], r"dtype must be auto or one of \['bfloat16', 'float16', 'float32'\], got 'int8'"),
    (["solver.levels=0"], "solver: levels must be an integer >= 1, got 0"),
    (["solver.t_final=2"], r"solver: t_final must be in \(0, 1\], got 2"),
    (["solver.t_start=1.0"], r"solver: t_start must be in \[0, t_final=1.0\), got 1.0"),
    (["solver.levels=abc"], "solver: levels must be an integer >= 1, got 'abc'"),
    (["solver.x1_estimate=mean"], r"solver: x1_estimate must be one of \['sample', 'expectation'\]"),
    (["sandbox.allow_weak=maybe"], "sandbox: allow_weak must be true or false, got 'maybe'"),
    (["compile=bogus"], r"compile must be null or one of \['eager', 'default'"),
    (["token_search={{hypotheses:0}}"], "token_search.hypotheses must be an integer >= 1, got 0"),
    (["task=mbpp", "task.options.path={root}/nope.jsonl"], r"task.options.path=.*/nope.jsonl: no such file"),
]


@pytest.mark.parametrize("overrides, message", EVALUATE, ids=[" ".join(o) for o, _ in EVALUATE])
def test_evaluate_refuses_bad_config(files, overrides, message):
    with pytest.raises(InputError, match=message):
        check_evaluate(config("evaluate", "model=tiny", *(o.format(root=files) for o in overrides)))


def test_code_tasks_refuse_a_weak_sandbox_unless_allowed(monkeypatch):
    weak = sandbox.Isolation((), False, sys.executable, strong=False, why_weak="bwrap is not installed")
    monkeypatch.setattr(sandbox, "isolation", lambda: weak)
    with pytest.raises(sandbox.SandboxUnavailable, match="sandbox.allow_weak=true"):
        check_evaluate(config("evaluate", "model=tiny", "task=humaneval"))
    check_evaluate(config("evaluate", "model=tiny", "task=humaneval", "sandbox.allow_weak=true"))
    check_evaluate(config("evaluate", "model=tiny"))


def ends_in(capsys, monkeypatch, main, cfg) -> str:
    """What `main` under one_line printed on stderr, having ended with exit status 1."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    capsys.readouterr()  # not what came before (transformers' progress bar saving a full model)
    with pytest.raises(SystemExit) as ended:
        one_line(main)(cfg)
    assert ended.value.code == 1
    return capsys.readouterr().err


@pytest.mark.parametrize("method, weights", [("l2d_lora", WEIGHTS_FILE), ("lora", "adapter_model.safetensors"),
                                             ("full", "model.safetensors")])
def test_a_truncated_weight_file_ends_in_one_line_naming_it(tmp_path, capsys, monkeypatch, method, weights):
    base, _ = tiny_model()
    export = tmp_path / "export"
    if method == "l2d_lora":
        L2DModel(base, L2DConfig(dim=16, lora_rank=4)).save_pretrained(export)
    else:
        Finetune(base, lora_rank=4 if method == "lora" else 0).save_pretrained(export)
    cut = export / weights
    cut.write_bytes(cut.read_bytes()[:100])  # a copy or download that stopped early
    said = ends_in(capsys, monkeypatch, evaluate, config("evaluate", "model=tiny", f"checkpoint={export}"))
    assert said.startswith(f"error: {cut} is not the file this export was written with (sha256 ")  # its digest
    assert said.count("\n") == 1
    # An export from before digests (no l2d_digest.json, no format version 2): the file's own header names it.
    (export / DIGEST_FILE).unlink()
    record = export / (CONFIG_FILE if method == "l2d_lora" else FINETUNE_FILE)
    record.write_text(json.dumps({**json.loads(record.read_text()), "version": 1}))
    said = ends_in(capsys, monkeypatch, evaluate, config("evaluate", "model=tiny", f"checkpoint={export}"))
    assert said == (f"error: {cut} is not a readable safetensors file (truncated or corrupt): "
                    "Error while deserializing header: invalid header length\n")


def test_inspect_without_a_prompt_ends_in_one_line(capsys, monkeypatch):
    def nothing_loads(*args, **kwargs):
        raise AssertionError("the model loaded before the prompt was checked")

    monkeypatch.setattr(l2d.inspect, "load_l2d", nothing_loads)
    said = ends_in(capsys, monkeypatch, l2d.inspect.inspect, config("inspect", "model=tiny"))
    assert said == 'error: prompt= is required: the user turn to decode, e.g. prompt="What is 17 + 25?"\n'


BENCH = [
    (["repeats=0"], "repeats must be an integer >= 1, got 0"),
    (["warmup=-1"], "warmup must be an integer >= 0, got -1"),
    (["decode.batch_sizes=[0]"], "decode.batch_sizes.0 must be an integer >= 1, got 0"),
    (["decode.prompt_tokens=0"], "decode.prompt_tokens must be an integer >= 1, got 0"),
    (["decode.l2d=[{solver:heun,levels:2}]"], r"decode.l2d.0: solver must be one of \['euler', 'midpoint'"),
    (["decode.compile=bogus"], r"decode.compile must be null or one of"),
    (["train.methods=[adapter]"], r"train.methods must be among \['l2d_lora', 'l2d_full', 'lora', 'full'\]"),
    (["train.shapes=[{batch:4,prompt:8,answer:0}]"], "train.shapes.0.answer must be an integer >= 1, got 0"),
    (["dtypes=[float32,float64]"], r"dtypes.1 must be auto or one of \['bfloat16', 'float16', 'float32'\]"),
    (["device=cuda:x"], "device must be auto, cpu, cuda or cuda:N"),
]


@pytest.mark.parametrize("overrides, message", BENCH, ids=[" ".join(o) for o, _ in BENCH])
def test_bench_refuses_bad_config(overrides, message):
    with pytest.raises(InputError, match=message):
        check_bench(config("bench", "model=tiny", *overrides))


def test_the_shipped_configs_pass():
    check_train(config("train", *TINY_RUN))
    for experiment in ("paper_llama1b", "short_answers"):
        check_train(config("train", f"experiment={experiment}"))
    check_evaluate(config("evaluate", "model=tiny"))
    check_bench(config("bench", "model=tiny"))


def test_a_user_error_ends_in_one_line(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    @one_line
    def main(cfg):
        raise InputError("sigma must be > 0, got -1")

    with pytest.raises(SystemExit) as ended:
        main(None)
    assert ended.value.code == 1
    assert capsys.readouterr().err == "error: sigma must be > 0, got -1\n"
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(InputError):  # the traceback, when asked for
        main(None)


def test_report_skips_damaged_runs_and_results(tmp_path, caplog):
    damaged_run = tmp_path / "run"
    (damaged_run / ".hydra").mkdir(parents=True)
    (damaged_run / "metrics.csv").write_text("step,train/loss\n0,1.0\n")
    (damaged_run / ".hydra" / "config.yaml").write_text("method: [unclosed\n")
    (damaged_run / "metrics.json").write_text("{bad")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "results.json").write_bytes(bytes(range(256)))
    with pytest.raises(NoInputs, match="no results or training runs found under"):
        collect([tmp_path])
    warnings = [record.getMessage() for record in caplog.records]
    assert any("metrics.json or .hydra/ files are damaged" in w for w in warnings), warnings
    assert any("results.json: not valid JSON" in w for w in warnings), warnings


@pytest.mark.slow
@pytest.mark.parametrize("command, message", [
    (["l2d.train", "model=tiny", "sigma=-1"], "error: sigma must be > 0, got -1"),
    (["l2d.evaluate", "model=tiny", "checkpoint=nope"], "error: checkpoint=nope: no such directory"),
    (["l2d.bench", "model=tiny", "repeats=0"], "error: repeats must be an integer >= 1, got 0"),
    (["l2d.inspect", "model=tiny"], "error: prompt= is required"),
])
def test_entry_points_end_in_one_line_without_a_traceback(tmp_path, command, message):
    ran = subprocess.run([sys.executable, "-m", *command, f"hydra.run.dir={tmp_path}"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines()[-1].startswith(message) and "Traceback" not in ran.stderr, ran.stderr
    assert json.dumps(ran.stderr).count("\\n") <= 3  # the line, and at most a warning or two of the libraries
