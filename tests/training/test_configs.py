"""Every config option and every sweep composes; unknown options list the valid choices."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from l2d.config import config_dir
from l2d.model.config import L2DConfig
from l2d.model.generate import Solver
from l2d.rl.settings import Reinforce, Rollouts
from l2d.schema import Evaluate, Inspect, Train, defaults
from tests.compose import compose_config

CONF = Path(config_dir())
GROUPS = ["model", "method", "data", "solver", "trainer", "logger", "callbacks", "experiment"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_resolves(group, option, tmp_path):
    overrides = [f"{group}={option}"]
    if group == "data" and option == "jsonl":
        overrides.append("data.sources.0.path=x.jsonl")
    cfg = compose_config("train", overrides, tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["trainer"]["accumulate_grad_batches"] >= 1


def test_shorthands_reach_the_objects(tmp_path):
    cfg = compose_config("train", ["model=llama1b", "sigma=32", "lr=3e-4", "lora_rank=8", "timestep_sampling=cosmap",
                                   "solver=euler", "seed=7"], tmp_path)
    assert cfg.model.name_or_path == "meta-llama/Llama-3.2-1B-Instruct"
    assert cfg.method.network.config.sigma == 32 and cfg.method.network.config.lora_rank == 8
    assert cfg.method.network.config.timestep_sampling == "cosmap"
    assert cfg.optimizer.lr == 3e-4 and cfg.solver.solver == "euler" and cfg.data.seed == 7


def test_methods_carry_the_paper_learning_rates(tmp_path):
    rates = {m: compose_config("train", ["~experiment", f"method={m}"], tmp_path).optimizer.lr
             for m in options("method")}
    assert rates == {"l2d_lora": 1e-4, "l2d_full": 1e-4, "lora": 1e-5, "full": 1e-5, "l2d_rl": 1e-4, "lora_rl": 1e-4}


def test_the_default_job_is_the_short_answer_experiment(tmp_path):
    """python -m l2d.train with no overrides: 200 steps of 16 short answers, mirror start, the tuned rates;
    a preset's values win over train.yaml's own (its defaults list puts _self_ first)."""
    cfg = compose_config("train", [], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["data"]["sources"][0]["datasets"] == {"basic_arithmetic": {
        "min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}}
    assert resolved["batch_size"] == 16 and resolved["scheduler"]["warmup_steps"] == 10
    assert resolved["method"]["network"]["config"]["start"] == "mirror"
    supervised = [m for m in options("method") if not m.endswith("_rl")]  # RL stages keep their method's rate
    rates = {m: compose_config("train", [f"method={m}"], tmp_path).optimizer.lr for m in supervised}
    assert rates == OmegaConf.to_container(cfg.tuned_lr)
    assert compose_config("train", ["lr=5e-4"], tmp_path).optimizer.lr == 5e-4  # the command line still wins


@pytest.mark.parametrize("sweep", [p.stem for p in (CONF / "sweeps").glob("*.yaml")])
def test_every_sweep_composes_with_its_entry_point(sweep, tmp_path):
    text = (CONF / "sweeps" / f"{sweep}.yaml").read_text()
    entry = "evaluate" if "l2d.evaluate" in text else "train"
    cfg = compose_config(entry, [f"sweeps={sweep}"], tmp_path)
    assert cfg.hydra.mode.name == "MULTIRUN"
    for key in cfg.hydra.sweeper.params:  # every swept key exists in the config it sweeps
        assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>" or key in GROUPS, key


def test_unknown_option_lists_valid_choices(tmp_path):
    with pytest.raises(ConfigCompositionException) as error:
        compose_config("train", ["method=l2d_lorra"], tmp_path)
    message = str(error.value)
    assert "l2d_lorra" in message and "l2d_lora" in message and "l2d_full" in message


def test_batch_size_that_micro_batches_cannot_make_is_named(tmp_path):
    cfg = compose_config("train", ["batch_size=30", "data.micro_batch_size=8"], tmp_path)
    with pytest.raises(Exception, match=r"batch_size=30 must be a multiple of data.micro_batch_size x trainer.devices"):
        OmegaConf.to_container(cfg.trainer, resolve=True)


# Each YAML file that composes onto a schema (l2d.schema), and the part of it that does: none may restate a default.
ONTO_SCHEMAS = [("train", Train, None), ("evaluate", Evaluate, None), ("inspect", Inspect, None),
                ("method/l2d_rl", Reinforce, "reinforce"), ("method/lora_rl", Reinforce, "reinforce"),
                *((f"solver/{o}", Solver, None) for o in options("solver")),
                *((f"protocol/{o}", Solver, "solver") for o in options("protocol"))]


@pytest.mark.parametrize("path, schema, key", ONTO_SCHEMAS, ids=[path for path, _, _ in ONTO_SCHEMAS])
def test_a_yaml_file_restates_no_default_of_its_schema(path, schema, key):
    own = OmegaConf.to_container(OmegaConf.load(CONF / f"{path}.yaml")) or {}
    own = own.get(key) or {} if key else own
    stored = defaults(schema)
    assert {name: value for name, value in own.items() if name in stored and stored[name] == value} == {}


def test_the_schemas_defaults_reach_the_composed_configs(tmp_path):
    rl = OmegaConf.to_container(compose_config("train", ["method=l2d_rl"], tmp_path).method.reinforce)
    assert {name: rl[name] for name in defaults(Rollouts)} == defaults(Rollouts) and rl["steps"] == Reinforce.steps
    assert rl["task"]["name"] == "reasoning_gym/basic_arithmetic"  # what the YAML file chooses
    evaluation = compose_config("evaluate", ["solver=dopri5"], tmp_path)
    assert OmegaConf.to_container(evaluation.solver) == {**defaults(Solver), "solver": "dopri5", "t_final": 0.99}
    assert (evaluation.batch_size, evaluation.protocol, evaluation.temperature) == (Evaluate.batch_size, "paper", 1.0)
    train = compose_config("train", ["~experiment"], tmp_path)
    assert (train.sigma, train.start, train.batch_size) == (L2DConfig.sigma, L2DConfig.start, Train.batch_size)
