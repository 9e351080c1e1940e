"""Plain values that command-line options and library defaults share, importable without torch or transformers
(``affectllm --help`` stays fast)."""

from __future__ import annotations

# Longest generated answer, in tokens: a report whose explanation reasons over every cue (the starter's targets:
# median 176, 90th percentile 204 SmolLM2 tokens) fits; a chat answer too.
MAX_NEW_TOKENS = 256
# what ``--quantization`` / ``load(quantization=)`` accept: bitsandbytes 8-bit / 4-bit NF4 (CUDA), or torch's
# dynamic int8 quantisation of the LLM's linear layers (CPU: int8 weights, activations quantised per call)
QUANTIZATIONS = ("auto", "none", "8bit", "4bit", "dynamic-int8")
CPU_QUANTIZATIONS = ("dynamic-int8",)  # applied after loading, to the merged LLM
# "auto": what an embedded default (a shipped starter) gets on the CPU in float32; anything else loads unquantised.
# None: measured on the first 8 held-out clips with the retrained SmolLM2 starter (train/starter_report.py
# --quantization dynamic-int8 --limit 8 beside the float32 report), dynamic int8 decodes 2.7x faster but breaks
# the report format on 2 of 8 anchored reports ("Labels: calm 0 87, ...") and gets 4/8 first labels right
# against float32's 6/8 with 8/8 well formed; so it stays opt-in (--quantization dynamic-int8).
AUTO_CPU_QUANTIZATION: str | None = None
