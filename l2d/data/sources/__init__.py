"""Where training examples come from; each source yields `Example`s with their guidance class."""

from l2d.data.sources.base import Loaded, Source, StreamedSource
from l2d.data.sources.gsm8k import GSM8KSource
from l2d.data.sources.jsonl import JsonlSource
from l2d.data.sources.reasoning import ReasoningGymSource
from l2d.data.sources.smoltalk import SmolTalkSource

__all__ = ["Loaded", "Source", "StreamedSource", "GSM8KSource", "JsonlSource", "ReasoningGymSource", "SmolTalkSource"]
