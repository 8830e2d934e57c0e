"""The main path passes its KV cache under the name the installed transformers expects, without warnings."""

import warnings

import torch
from torch import nn

from l2d import L2DConfig, L2DModel
from l2d.model.family import cache_keyword
from tests.tiny import tiny_base


def test_main_path_decodes_without_deprecation_warnings(family):
    model = L2DModel(tiny_base(family), L2DConfig(dim=16, lora_rank=4))
    ids = torch.randint(0, 256, (2, 5), generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.generate(ids, max_new_tokens=3, levels=2, temperature=0.0)
    assert model.cache_keyword == "cache"  # transformers 5.24 renamed past_key_values
    assert not [str(w.message) for w in caught if "past_key_values" in str(w.message)]


def test_older_transformers_get_past_key_values():
    class OldDecoder(nn.Module):  # the signature transformers had before the rename
        def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                    use_cache=None, **kwargs):
            return past_key_values

    assert cache_keyword(OldDecoder()) == "past_key_values"
