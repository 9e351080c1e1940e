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
# "auto" on the CPU for a shipped starter, where the CPU computes bf16 natively (AVX512-BF16 / AMX; see
# loading.native_cpu_bf16): "bfloat16" or "float32". bfloat16, measured with the retrained SmolLM2 starter on
# 2 AMD EPYC cores (one run each): the 54 held-out reports (train/starter_report.py --dtype) keep float32's
# macro top-1 (0.639 both; 53 of 54 anchored label sets identical); decode 22.1 vs 12.8 tok/s
# (bench/decode_speed.py, engine); prefill of 500 tokens 0.69 vs 1.10 s; a 10-s caption 7.3 vs 7.5 s
# (bench/caption_latency.py). A CPU without native bf16 emulates it, slower than float32: it stays float32.
AUTO_CPU_DTYPE: str = "bfloat16"
