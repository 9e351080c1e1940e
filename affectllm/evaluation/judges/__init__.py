"""Judges: the lexicon extractor (default), a local HF causal LM, or an OpenAI-compatible endpoint.

``make_judge("lexicon" | "hf:PATH" | "openai[:MODEL]", ...)`` builds one; LLM judges share a disk cache.
"""

from __future__ import annotations

from pathlib import Path

from affectllm.evaluation.judges.base import Judge, JudgeCache, JudgeError, PromptJudge
from affectllm.utils.paths import cache_dir

__all__ = ["Judge", "JudgeCache", "JudgeError", "PromptJudge", "make_judge", "default_cache_path"]


def default_cache_path() -> Path:
    return cache_dir("judge") / "responses.sqlite"


def make_judge(spec: str = "lexicon", *, wheel_dir: str | Path | None = None, cache_path: str | Path | None = None,
               base_url: str | None = None, model: str | None = None, api_key: str | None = None) -> Judge:
    """``lexicon`` | ``hf:/path/to/model`` | ``openai`` / ``openai:MODEL`` (URL and key from options or env)."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "lexicon":
        from affectllm.evaluation.judges.lexicon import LexiconJudge
        from affectllm.evaluation.normalise import get_tables

        return LexiconJudge(get_tables(wheel_dir))
    cache = JudgeCache(cache_path or default_cache_path())
    if kind == "hf":
        from affectllm.evaluation.judges.hf import HFJudge

        return HFJudge(arg or model, cache=cache)
    if kind == "openai":
        from affectllm.evaluation.judges.openai_compat import OpenAIJudge

        return OpenAIJudge(base_url, arg or model, api_key, cache=cache)
    raise JudgeError(f"unknown judge '{spec}'; use lexicon, hf:/path/to/model or openai[:model]")
