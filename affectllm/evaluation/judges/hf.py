"""A local Hugging Face causal LM as judge: greedy decoding, chat template when the tokenizer has one.

torch / transformers are imported only when the first prompt is answered, so selecting this judge is cheap
and scoring without it never imports them. The fingerprint hashes the model folder's config and file list,
so a different checkpoint never reuses another model's cached answers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from affectllm.evaluation.judges.base import JudgeCache, JudgeError, PromptJudge


def folder_fingerprint(path: Path) -> str:
    """sha256 over config.json / generation_config.json contents and (name, size) of every file."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        h.update(f"{rel}:{f.stat().st_size};".encode())
        if f.name in ("config.json", "generation_config.json", "tokenizer_config.json"):
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


class HFJudge(PromptJudge):
    """``HFJudge("path/to/model")``, or ``HFJudge(model=m, tokenizer=t, fingerprint="...")`` for a loaded model."""

    def __init__(self, model_path: str | Path | None = None, *, model: Any = None, tokenizer: Any = None,
                 fingerprint: str | None = None, max_new_tokens: int = 96, device: str = "cpu",
                 cache: JudgeCache | None = None) -> None:
        super().__init__(cache)
        if model_path is None and (model is None or tokenizer is None):
            raise JudgeError("HFJudge needs a model folder (--judge hf:PATH) or both model= and tokenizer=")
        self.model_path = Path(model_path) if model_path is not None else None
        if self.model_path is not None and not self.model_path.is_dir():
            raise JudgeError(f"{self.model_path}: no such model folder; pass a local folder saved with "
                             "save_pretrained (the hub is not contacted)")
        self._model, self._tok = model, tokenizer
        self.max_new_tokens = max_new_tokens
        self.device = device
        if fingerprint is None:
            if self.model_path is not None:
                fingerprint = f"hf:{self.model_path.name}:{folder_fingerprint(self.model_path)}"
            else:
                cfg = getattr(model, "config", None)
                blob = json.dumps(cfg.to_dict() if cfg is not None else {}, sort_keys=True, default=str)
                fingerprint = f"hf:{type(model).__name__}:{hashlib.sha256(blob.encode()).hexdigest()[:16]}"
        self.fingerprint = f"{fingerprint}:greedy:{max_new_tokens}"

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.model_path)
        self._model = AutoModelForCausalLM.from_pretrained(self.model_path).to(self.device).eval()

    def _complete(self, prompt: str) -> str:
        import torch

        self._load()
        tok, model = self._tok, self._model
        if getattr(tok, "chat_template", None):
            enc = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)
        else:
            enc = tok(prompt, return_tensors="pt")
        input_ids = enc["input_ids"].to(model.device)  # [1, L]
        attention = enc.get("attention_mask")
        attention = attention.to(model.device) if attention is not None else torch.ones_like(input_ids)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=attention, do_sample=False,
                                 max_new_tokens=self.max_new_tokens, pad_token_id=pad)  # [1, L + new]
        return tok.decode(out[0, input_ids.shape[1]:], skip_special_tokens=True).strip()
