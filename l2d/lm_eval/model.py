"""The `l2d` model of lm-evaluation-harness: generation through our decoder, every decoding option
of `python -m l2d.evaluate` as a model argument.

    lm_eval.simple_evaluate(model="l2d", model_args={"checkpoint": "<export>", "levels": 8}, tasks=["gsm8k"],
                            apply_chat_template=True, fewshot_as_multiturn=True)

Requests are batched exactly as our own harness batches them (`l2d.tasks.harness.complete`:
longest first, left-padded, one seeded generator per batch, stop tokens), so the same prompts give
the same generations under both. Only `generate_until` is served: see `loglikelihood`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
from pathlib import Path
from typing import Any

import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import handle_stop_sequences, has_bos_prefix, normalize_gen_kwargs, postprocess_generated_text
from omegaconf import OmegaConf

from l2d.config import config_dir
from l2d.evaluate import resolve_device
from l2d.export import is_l2d, load
from l2d.model.generate import Solver
from l2d.tasks.harness import Decoding, complete

log = logging.getLogger(__name__)

SOLVER_OPTIONS = ("levels", "t_final", "t_start", "x1_estimate", "x1_temperature", "anneal_x1_temperature", "atol",
                  "rtol")
GENERATIVE_TASKS = ("gsm8k", "gsm8k_cot", "minerva_math", "hendrycks_math", "humaneval", "mbpp", "mmlu_generative",
                    "mmlu_pro", "arc_challenge_chat")
NO_LIKELIHOOD = ("the l2d model only generates (generate_until): L2D's probability of a token is not one forward "
                 "pass but the outcome of an ODE integration from random noise, so log-likelihood requests ({}) "
                 "are not scored. Use a generative variant of the task instead, e.g. " + ", ".join(GENERATIVE_TASKS))


def config_names(group: str) -> list[str]:
    return sorted(path.stem for path in (Path(config_dir()) / group).glob("*.yaml"))


def group_config(group: str, name: str) -> dict[str, Any]:
    """One option of a config group (conf/<group>/<name>.yaml), as the other entry points see it: its defaults
    list (other options of the same group, `_self_`) merged in order. Interpolations stay unresolved."""
    if name not in config_names(group):
        raise ValueError(f"{group}={name!r} is not a config of conf/{group}/; valid: {', '.join(config_names(group))}")
    own = OmegaConf.load(Path(config_dir()) / group / f"{name}.yaml")
    parts = [own if entry == "_self_" else OmegaConf.create(group_config(group, entry))
             for entry in own.pop("defaults", ["_self_"])]
    return OmegaConf.to_container(OmegaConf.merge(*parts))


@register_model("l2d")
class L2DLM(LM):
    """checkpoint: an export of `python -m l2d.train` (L2D, or a lora/full baseline); None scores the base
    `model` (a conf/model name) alone. base_model replaces the base an export records. protocol (a
    conf/protocol name: paper, greedy) sets the emitted token's temperature; solver picks conf/solver/<solver>.yaml
    (l2d.model.generate.Solver's defaults for what it leaves out); levels, t_final, t_start, x1_estimate,
    x1_temperature, anneal_x1_temperature, atol and rtol override it. guidance (w_g >= 1) needs guidance_class, a
    class name of the model.
    temperature (None: the protocol's, else the task's) samples the emitted token; max_new_tokens (None: the task's)
    caps each generation; token_search is a dict of `l2d.model.token_search` options
    ({"hypotheses": 15, "alpha": 1.0}). batch_size, seed, device (auto | cpu | cuda[:i]) and dtype
    (auto | float32 | bfloat16) as in `python -m l2d.evaluate`.
    """

    def __init__(self, checkpoint: str | None = None, model: str = "smollm2_135m", base_model: str | None = None,
                 protocol: str | None = None, solver: str = "midpoint", levels: int | None = None,
                 t_final: float | None = None, t_start: float | None = None, x1_estimate: str | None = None,
                 x1_temperature: float | None = None,
                 anneal_x1_temperature: bool | None = None, atol: float | None = None, rtol: float | None = None,
                 guidance: float | None = None, guidance_class: str | None = None, compile: str | None = None,
                 temperature: float | None = None, max_new_tokens: int | None = None,
                 token_search: dict | str | None = None, batch_size: int | str = 16, seed: int = 0,
                 device: str = "auto", dtype: str = "auto", **unknown):
        super().__init__()
        if unknown:
            valid = [name for name in inspect.signature(L2DLM).parameters if name != "unknown"]
            raise TypeError(f"unknown l2d model argument(s) {', '.join(sorted(unknown))}; valid: {', '.join(valid)}")
        if not str(batch_size).isdigit() or int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r} (the l2d model has no 'auto')")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            log.warning("device=%s but CUDA is not available: running on the CPU", device)
            device = "cpu"
        # the batch size too: dtype auto depends on it, as in python -m l2d.evaluate
        self._device, torch_dtype = resolve_device(OmegaConf.create({"device": device, "dtype": dtype,
                                                                     "batch_size": int(batch_size)}))
        self.model, self.tokenizer, self.info = load(checkpoint, torch_dtype, base_model=base_model,
                                                     model=OmegaConf.create(group_config("model", model)))
        self.model.to(self._device).eval()
        overrides = dict(levels=levels, t_final=t_final, t_start=t_start, x1_estimate=x1_estimate,
                         x1_temperature=x1_temperature, anneal_x1_temperature=anneal_x1_temperature, atol=atol,
                         rtol=rtol)
        scoring = group_config("protocol", protocol) if protocol is not None else {}
        if temperature is None:
            temperature = scoring.get("temperature")
        chosen = {**group_config("solver", solver), **{k: v for k, v in overrides.items() if v is not None}}
        decode = {**dataclasses.asdict(Solver(**chosen)), "compile": compile}  # Solver: every default
        l2d = is_l2d(self.model)
        if not l2d and any(v is not None for v in (*overrides.values(), guidance, compile)):
            log.warning("%s decodes as a plain LM: solver options, guidance and compile are ignored",
                        self.info["method"])
        if isinstance(token_search, str):
            token_search = json.loads(token_search)
        self.decoding = Decoding(decode=decode if l2d else {}, guidance=guidance if l2d else None,
                                 temperature=temperature, max_new_tokens=max_new_tokens, token_search=token_search)
        self.classes = self._guidance_class(guidance_class) if self.model.num_classes > 0 else None
        self.batch_size, self.seed = int(batch_size), seed

    def _guidance_class(self, name: str | None) -> int:
        """The class id every request is decoded with: `name` among the model's classes, else null (0)."""
        names = list(self.model.config.class_names or [])
        if name is None and self.decoding.guidance is not None:
            raise ValueError(f"guidance needs guidance_class=<name>; the model's classes are {names or 'unnamed'}")
        if name is not None and name not in names:
            raise ValueError(f"guidance_class={name!r} is not a class of the model; valid: {names or 'none'}")
        return 0 if name is None else names.index(name) + 1

    # ---- what lm-eval calls ----------------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Requests with equal generation settings are decoded together, in request order, then each
        text is cut at the task's stop strings (our decoder stops early at stop tokens only)."""
        groups: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(json.dumps(request.args[1], sort_keys=True, default=str), []).append(index)
        texts: list[str] = [""] * len(requests)
        for indexes in groups.values():
            settings = normalize_gen_kwargs(requests[indexes[0]].args[1], self.decoding.max_new_tokens or 256)
            until = handle_stop_sequences(settings.pop("until"), eos=self.tokenizer.eos_token)
            ignored = set(settings) - {"max_gen_toks", "do_sample", "temperature"}
            if ignored:
                log.warning("the l2d model ignores the generation settings %s", sorted(ignored))
            temperature = self.decoding.temperature
            decoding = dataclasses.replace(self.decoding, temperature=settings["temperature"] if temperature is None
                                           else temperature)
            prompts = [self.encode(requests[i].args[0]) for i in indexes]
            completions = complete(self.model, self.tokenizer, prompts, decoding,
                                   self.decoding.max_new_tokens or settings["max_gen_toks"],
                                   None if self.classes is None else [self.classes] * len(prompts),
                                   batch_size=self.batch_size, seed=self.seed, progress=not disable_tqdm,
                                   desc="l2d generate_until")
            for i, completion in zip(indexes, completions, strict=True):
                texts[i] = postprocess_generated_text(completion.text, until, None)
                self.cache_hook.add_partial("generate_until", requests[i].args, texts[i])
            log.info("l2d: %d generations, mean NFE per token %.2f", len(indexes),
                     sum(c.nfe for c in completions) / len(completions))
        return texts

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(NO_LIKELIHOOD.format("loglikelihood: multiple-choice and perplexity tasks"))

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(NO_LIKELIHOOD.format("loglikelihood_rolling: perplexity tasks"))

    def encode(self, context: str) -> list[int]:
        """Token ids of a prompt; a chat-templated prompt already carries its BOS token."""
        bos = self.tokenizer.bos_token
        return self.tokenizer(context, add_special_tokens=not has_bos_prefix(context, bos))["input_ids"]

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt,
                                                  continue_final_message=not add_generation_prompt)

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return self.tokenizer.chat_template if chat_template else None

    @property
    def tokenizer_name(self) -> str:
        return str(self.tokenizer.name_or_path or self.info["base_model"]).replace("/", "__")

    def get_model_info(self) -> dict:
        """Recorded by lm-eval under results["config"]: which model and how it decodes."""
        return {"l2d": {**self.info, "decoding": dataclasses.asdict(self.decoding), "seed": self.seed,
                        "batch_size": self.batch_size}}
