"""AffectLLMProcessor: chat messages + media -> model inputs, with placeholders expanded to the token counts.

Messages use the HF multimodal shape::

    [{"role": "user", "content": [{"type": "video", "video": "clip.mp4"}, {"type": "text", "text": "..."}]}]

Media parts may be paths (decoded with ``affectllm.media``) or already-decoded objects: a video as
``{"frames": [T, H, W, 3] uint8, "timestamps": [T], "audio": [S] float32 | None}``, an image as a PIL image or
``[H, W, 3]`` array, audio as a ``[S]`` float32 array at 16 kHz. Each vision item becomes
``num_tokens("vision")`` placeholder tokens and each audio track ``num_tokens("audio")`` +
``num_tokens("whisper")``, so lengths and attention masks are right by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import AutoProcessor, BatchFeature, ProcessorMixin

from affectllm.model.configuration_affectllm import AffectLLMConfig
from affectllm.model.media_inputs import MediaItem, prepare_audio_batch, prepare_vision_batch, to_media_item

# Used when the tokenizer has no chat template of its own (base models, tiny test tokenizers).
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] | trim }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
MARKER = "\x00media{}\x00"  # stands in for the i-th media item while the chat template renders


@dataclass
class Rendered:
    """One rendered conversation: text with markers, its media items in order, assistant spans."""

    text: str
    media: list[MediaItem] = field(default_factory=list)
    answer_spans: list[tuple[int, int]] = field(default_factory=list)  # char spans of assistant replies


class AffectLLMProcessor(ProcessorMixin):
    """Tokenizer + media preprocessing for each tower; owns the chat template."""

    tokenizer_class = "AutoTokenizer"

    def __init__(self, tokenizer=None, chat_template: str | None = None, num_tokens: dict[str, int] | None = None,
                 placeholder_tokens: dict[str, str] | None = None, vision: dict[str, Any] | None = None,
                 sample_rate: int = 16000, max_audio_seconds: float = 120.0, media_template: str | None = None,
                 **kwargs: Any) -> None:
        self.num_tokens = dict(num_tokens or {})
        # optional text around one video's placeholders, with {vision} {audio} ... fields (converted checkpoints)
        self.media_template = media_template
        self.placeholder_tokens = dict(placeholder_tokens or {})
        self.vision = dict(vision) if vision else None  # image_size, mean, std, grayscale, num_frames, input
        self.sample_rate = sample_rate
        self.max_audio_seconds = max_audio_seconds
        if chat_template is None and tokenizer is not None and getattr(tokenizer, "chat_template", None) is None:
            chat_template = DEFAULT_CHAT_TEMPLATE
        super().__init__(tokenizer, chat_template=chat_template)
        if tokenizer is not None:
            missing = [t for t in self.placeholder_tokens.values() if t not in tokenizer.get_vocab()]
            if missing:
                tokenizer.add_special_tokens({"additional_special_tokens": missing},
                                             replace_extra_special_tokens=False)

    # --- ids --------------------------------------------------------------------------------------
    @property
    def placeholder_ids(self) -> dict[str, int]:
        return {m: self.tokenizer.convert_tokens_to_ids(t) for m, t in self.placeholder_tokens.items()
                if m in self.num_tokens}

    def _template(self) -> str:
        return self.chat_template or self.tokenizer.chat_template or DEFAULT_CHAT_TEMPLATE

    # --- rendering --------------------------------------------------------------------------------
    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> Rendered:
        """Flatten content parts to text with media markers, render the chat template, find answer spans."""
        flat, media = [], []
        for msg in messages:
            content = msg["content"]
            if isinstance(content, str):
                flat.append({"role": msg["role"], "content": content})
                continue
            pieces = []
            for part in content:
                if part.get("type") == "text":
                    pieces.append(part["text"])
                else:
                    media.append(to_media_item(part, self))
                    pieces.append(MARKER.format(len(media) - 1))
            flat.append({"role": msg["role"], "content": "\n".join(p for p in pieces if p)})
        text = self._apply(flat, add_generation_prompt)
        spans: list[tuple[int, int]] = []
        for i, msg in enumerate(flat):
            if msg["role"] == "assistant":
                start = len(self._apply(flat[:i], True)) if i else 0  # a leading assistant turn: no prefix
                end = len(self._apply(flat[: i + 1], False))
                spans.append((start, end))
        return Rendered(text, media, spans)

    def _apply(self, flat: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(flat, chat_template=self._template(), tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def expand(self, rendered: Rendered) -> str:
        """Replace each media marker by its modalities' placeholder tokens."""
        text = rendered.text
        for i, item in enumerate(rendered.media):
            text = text.replace(MARKER.format(i), self._placeholders(item), 1)
        return text

    def _placeholders(self, item: MediaItem) -> str:
        if self.media_template and item.vision is not None:
            if item.audio is None:  # a silent video: 2 s of silence keeps the template's audio and fused tokens
                item.audio = np.zeros(2 * self.sample_rate, np.float32)
            return self.media_template.format(**{m: self.placeholder_tokens[m] * n for m, n in self.num_tokens.items()})
        out = []
        if item.vision is not None and "vision" in self.num_tokens:
            out.append(self.placeholder_tokens["vision"] * self.num_tokens["vision"])
        if item.audio is not None:
            for m in ("audio", "whisper"):
                if m in self.num_tokens:
                    out.append(self.placeholder_tokens[m] * self.num_tokens[m])
        return "".join(out)

    # --- main entry points ------------------------------------------------------------------------
    def __call__(self, conversations: list[list[dict]] | list[dict], add_generation_prompt: bool = True,
                 train: bool = False, padding_side: str | None = None, max_length: int | None = None,
                 return_tensors: str = "pt") -> BatchFeature:
        """A batch of conversations -> input_ids, attention_mask, media tensors (and labels when ``train``)."""
        if conversations and isinstance(conversations[0], dict):
            conversations = [conversations]  # one conversation
        rendered = [self.render(c, add_generation_prompt=add_generation_prompt and not train) for c in conversations]
        return self.encode(rendered, train=train, padding_side=padding_side, max_length=max_length)

    def encode(self, rendered: list[Rendered], train: bool = False, padding_side: str | None = None,
               max_length: int | None = None) -> BatchFeature:
        tok = self.tokenizer
        rows, labels = [], []
        for r in rendered:
            ids, lab = self._tokenize_with_labels(r, train)
            if max_length is not None and len(ids) > max_length:
                ids, lab = _truncate_keep_placeholders(ids, lab, max_length, set(self.placeholder_ids.values()))
            rows.append(ids)
            labels.append(lab)
        side = padding_side or ("right" if train else "left")
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        label_t = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, (ids, lab) in enumerate(zip(rows, labels)):
            sl = slice(width - len(ids), width) if side == "left" else slice(0, len(ids))
            input_ids[i, sl] = torch.tensor(ids)
            attention[i, sl] = 1
            label_t[i, sl] = torch.tensor(lab)
        data: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention}
        if train:
            data["labels"] = label_t
        items = [m for r in rendered for m in r.media]
        if self.vision is not None and "vision" in self.num_tokens:
            data.update(prepare_vision_batch([m for m in items if m.vision is not None], self.vision))
        if "audio" in self.num_tokens or "whisper" in self.num_tokens:
            data.update(prepare_audio_batch([m for m in items if m.audio is not None],
                                            int(self.max_audio_seconds * self.sample_rate)))
        return BatchFeature(data=data)

    def _tokenize_with_labels(self, r: Rendered, train: bool) -> tuple[list[int], list[int]]:
        """Tokenise segment by segment so answer spans map exactly onto token labels."""
        cuts = sorted({0, len(r.text), *[p for s in r.answer_spans for p in s]})
        answers = set(r.answer_spans)
        ids: list[int] = []
        labels: list[int] = []
        for a, b in zip(cuts, cuts[1:]):
            seg = self.expand(Rendered(r.text[a:b], r.media))
            seg_ids = self.tokenizer(seg, add_special_tokens=False)["input_ids"]
            ids.extend(seg_ids)
            is_answer = train and any(s <= a and b <= e for s, e in answers)
            labels.extend(seg_ids if is_answer else [-100] * len(seg_ids))
        bos = self.tokenizer.bos_token_id
        if bos is not None and getattr(self.tokenizer, "add_bos_token", True) and (not ids or ids[0] != bos):
            ids, labels = [bos, *ids], [-100, *labels]
        return ids, labels

    def decode(self, ids, **kwargs: Any) -> str:
        kwargs.setdefault("skip_special_tokens", True)
        return self.tokenizer.decode(ids, **kwargs)

    def batch_decode(self, ids, **kwargs: Any) -> list[str]:
        kwargs.setdefault("skip_special_tokens", True)
        return self.tokenizer.batch_decode(ids, **kwargs)


def _truncate_keep_placeholders(ids: list[int], labels: list[int], max_length: int, ph: set[int]):
    """Drop text tokens from the left of the prompt (never placeholders or answers) to fit ``max_length``."""
    excess = len(ids) - max_length
    keep_ids, keep_lab = [], []
    for t, lab in zip(ids, labels):
        if excess > 0 and t not in ph and lab == -100:
            excess -= 1
            continue
        keep_ids.append(t)
        keep_lab.append(lab)
    return keep_ids, keep_lab


AutoProcessor.register(AffectLLMConfig, AffectLLMProcessor, exist_ok=True)
