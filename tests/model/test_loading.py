"""The cache of de-quantized GGUF weights: where it lives, when an entry is reused, and that a write is all
or nothing. The real GGUF round trip is in tests/model/test_smollm2.py."""

import torch

from l2d.model import loading
from l2d.model.loading import CACHE_ENV, cache_root, gguf_cache_entry, load_pretrained, save_dequantized
from l2d.model.origin import origin_of
from l2d.model.tiny import tiny_model


def test_the_cache_lives_where_the_environment_says(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.setenv(CACHE_ENV, "")
    assert cache_root() is None
    assert gguf_cache_entry(tmp_path, torch.float32) is None
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "l2d"


def test_a_changed_file_or_another_dtype_gets_its_own_entry(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    source = tmp_path / "model.Q4_1.gguf"
    source.write_bytes(b"weights")
    entry = gguf_cache_entry(source, torch.float32)
    assert entry.parent == tmp_path / "cache" / "gguf" and entry.name.startswith("model.Q4_1-")
    assert gguf_cache_entry(source, torch.float32) == entry
    assert gguf_cache_entry(source, torch.bfloat16) != entry
    source.write_bytes(b"other weights")
    assert gguf_cache_entry(source, torch.float32) != entry


def test_a_saved_entry_loads_back_the_same_model_and_tokenizer(tmp_path):
    model, tokenizer = tiny_model()
    entry = tmp_path / "gguf" / "tiny-0-float32"
    save_dequantized(model, tokenizer, entry)
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]  # no staging directory left
    loaded, loaded_tokenizer = load_pretrained(str(entry), torch.float32)
    messages = [{"role": "user", "content": "2 + 3?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert loaded_tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                return_dict=True)["input_ids"] == ids
    assert loaded_tokenizer.pad_token == tokenizer.pad_token and loaded_tokenizer.eos_token == tokenizer.eos_token
    ids = torch.tensor([ids])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)


def test_an_interrupted_write_leaves_no_entry(tmp_path, monkeypatch):
    model, tokenizer = tiny_model()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tokenizer, "save_pretrained", disk_full)
    entry = tmp_path / "gguf" / "tiny-0-float32"
    save_dequantized(model, tokenizer, entry)  # a failed write is a warning: the model in memory is fine
    assert list(entry.parent.iterdir()) == []


def test_a_second_writer_keeps_the_first_entry(tmp_path):
    model, tokenizer = tiny_model()
    entry = tmp_path / "gguf" / "tiny-0-float32"
    entry.mkdir(parents=True)
    (entry / "config.json").write_text("{}")
    save_dequantized(model, tokenizer, entry)
    assert [p.name for p in entry.iterdir()] == ["config.json"]
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name]


def test_a_gguf_file_is_de_quantized_once_then_read_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    source = tmp_path / "model.gguf"
    source.write_bytes(b"quantized")
    de_quantized = []

    def load(location, dtype, **kwargs):
        if "gguf_file" in kwargs:  # stands in for transformers' de-quantization
            de_quantized.append((location, kwargs["gguf_file"]))
            return tiny_model()
        return load_pretrained(location, dtype, **kwargs)

    monkeypatch.setattr(loading, "load_pretrained", load)
    first, _ = loading.load_base_model(str(source))
    second, _ = loading.load_base_model(str(source))
    assert de_quantized == [(str(tmp_path), "model.gguf")]
    assert all(torch.equal(a, b)
               for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True))
    assert origin_of(second).name == str(source)
    monkeypatch.setenv(CACHE_ENV, "")
    loading.load_base_model(str(source))
    assert len(de_quantized) == 2
