"""One inference path: perception (cached), the prompt renderer, the decoder and report parsing.

Every surface (``affectllm.predict``, ``caption``, ``chat``, ``serve``, ``web``, ``eval run``) answers through
an ``Engine``; training renders its prompts with the same ``rendering`` functions.
"""

from affectllm.engine.core import Engine, latest_media
from affectllm.engine.decoding import (
           Decoded,
           GenerationCancelled,
           GenerationSettings,
           RepetitionGuard,
           decode,
)
from affectllm.engine.perceiving import PerceptionCache, experts_for, without_audio
from affectllm.engine.rendering import CUE_HEADER, Conversation, Renderer, Turn

__all__ = ["CUE_HEADER", "Conversation", "Decoded", "Engine", "GenerationCancelled", "GenerationSettings",
           "PerceptionCache", "Renderer", "RepetitionGuard", "Turn", "decode", "experts_for", "latest_media",
           "without_audio"]
