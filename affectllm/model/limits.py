"""Plain values that command-line options and library defaults share, importable without torch or transformers
(``affectllm --help`` stays fast)."""

from __future__ import annotations

# Longest generated answer, in tokens: a report whose explanation reasons over every cue (the starter's targets:
# median 176, 90th percentile 204 SmolLM2 tokens) fits; a chat answer too.
MAX_NEW_TOKENS = 256
QUANTIZATIONS = ("none", "8bit", "4bit")  # what ``--quantization`` / ``load(quantization=)`` accept
