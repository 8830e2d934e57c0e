"""Token search on a model whose next-token probabilities are fixed by a table."""

import math

import pytest
import torch

from l2d import L2DConfig, L2DModel
from l2d.model.token_search import token_search
from tests.tiny import tiny_base


class TableLM:
    """p(next | last token) from a table: run_main_path returns the last token as a one-hot
    'hidden state' and lm_logits reads the table, so every sequence's likelihood is known."""

    num_classes = 0
    default_levels = 1

    def __init__(self, table):
        self.table = torch.log(torch.tensor(table))
        self.base = tiny_base()  # only for the cache layout

    check_inputs = staticmethod(L2DModel.check_inputs)

    def check_class_labels(self, labels, batch):
        return None

    def run_main_path(self, input_ids, attention_mask, position_ids, cache):
        from l2d.model.family import layer_kv  # noqa: F401  (the cache is unused but must exist)

        config = self.base.config
        shape = (input_ids.shape[0], config.num_key_value_heads, input_ids.shape[1], 16)
        for layer in range(config.num_hidden_layers):
            cache.update(torch.zeros(shape), torch.zeros(shape), layer)
        return torch.nn.functional.one_hot(input_ids, self.table.shape[0]).float()

    def lm_logits(self, hidden):
        return self.table[hidden.argmax(-1)]


# From token 0 (the prompt): token 1 is likely (0.6) but leads to a flat continuation; token 2
# (0.4) leads to a sure one. Greedy takes 0->1->x (0.6 * 0.34); the best pair is 0->2->3 (0.4 * 0.97).
TABLE = [[0.0001, 0.6, 0.3999, 0.0001],
         [0.33, 0.33, 0.3399, 0.0001],
         [0.01, 0.01, 0.01, 0.97],
         [0.25, 0.25, 0.25, 0.25]]


def test_beam_search_returns_the_highest_scoring_sequence():
    model = TableLM(TABLE)
    prompt = torch.zeros(1, 1, dtype=torch.long)
    greedy = model_generate_greedy(model, prompt)
    searched, stats = token_search(model, prompt, hypotheses=3, alpha=0.0, max_new_tokens=2, return_stats=True)
    assert greedy[0, 1:].tolist() == [1, 2]
    assert searched[0, 1:].tolist() == [2, 3]
    assert math.log(0.4 * 0.97) > math.log(0.6 * 0.34)
    assert stats.nfe_per_token.tolist() == [[1, 3]]  # one live hypothesis, then three


def model_generate_greedy(model, prompt):
    from l2d.model.generate import generate

    return generate(model, prompt, max_new_tokens=2, temperature=0.0, levels=1)


def test_finished_hypotheses_keep_their_score_and_are_padded():
    model = TableLM(TABLE)
    prompt = torch.zeros(2, 1, dtype=torch.long)
    out = token_search(model, prompt, hypotheses=4, alpha=0.0, max_new_tokens=4, eos_token_id=3, pad_token_id=0)
    assert out[:, 1:].tolist() == [[2, 3, 0, 0]] * 2  # ended at EOS (0.4 * 0.97) beats any longer path


def test_token_search_combines_with_l2d():
    model = L2DModel(tiny_base(), L2DConfig(dim=16, lora_rank=4)).eval()
    ids = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(0))
    out, stats = token_search(model, ids, hypotheses=3, max_new_tokens=3, levels=4, return_stats=True,
                              generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 9)
    assert (stats.nfe_per_token[:, 1:] == 3 * 7).all()  # 3 hypotheses x (3 intervals x 2 + 1)
    with pytest.raises(ValueError, match="hypotheses >= 1"):
        token_search(model, ids, hypotheses=0)
