"""Speech recognition with openai-whisper on 16 kHz float arrays: text, language, segment timestamps, and an
English translation of non-English speech.

Decoding is greedy and deterministic (temperature 0 with no sampling fallback, no conditioning on previous
text); English-only models are forced to "en", multilingual ones detect the language on the first 30-s window
and report its probability (Whisper's softmax over its language tokens only). Below
``LANGUAGE_UNCERTAIN_BELOW`` the language is marked uncertain (``Transcript.language_uncertain``) and the cue
line says so. For non-English speech a multilingual model also runs Whisper's translate task (the decoder
prompted with ``<|translate|>``): the report keeps the original transcript and adds ``translation``.

Audio is never read here (``whisper.load_audio`` shells out to ffmpeg): callers decode
media with ``affectllm.media`` and pass mono 16 kHz float32 samples.

The encoder output of the last window is memoised, so language detection and the first decoding window share
one encoder pass, and ``encoder_features`` followed by ``transcribe`` on the same clip encodes it once. The
translation decodes the same first window, so for a clip of up to 30 s the encoder runs once for language
detection, transcript and translation (longer clips: later windows may start at other offsets and re-encode).
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 16_000
# Languages written without spaces between words: speaking rate counts characters there.
_NO_SPACE_LANGS = {"zh", "ja", "th", "lo", "my", "km", "yue", "bo"}
# A detected language with a lower probability is reported as uncertain (cue line and evidence). Whisper base
# gives 0.99+ on clean speech in the corpora's languages (zh, de, en); short or noisy clips fall below this.
LANGUAGE_UNCERTAIN_BELOW = 0.5


@dataclass
class Segment:
    """One decoded stretch of speech; times in seconds from the start of the audio."""

    start: float
    end: float
    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


@dataclass
class Transcript:
    """What was said: text, the spoken language (ISO 639-1) and its probability, timed segments, rate, and the
    English translation (``None`` when the speech is English, empty, or the model is English-only)."""

    text: str
    language: str | None
    language_probability: float
    segments: list[Segment] = field(default_factory=list)
    words_per_second: float = 0.0  # words (characters for zh/ja/...) over the summed segment durations
    duration: float = 0.0  # seconds of audio given
    model: str = ""
    seconds: float = 0.0  # wall time of transcription (a timing field: not part of the content)
    translation: str | None = None  # Whisper's translate task: English rendering of non-English speech

    @property
    def language_uncertain(self) -> bool:
        """True when a language was detected with probability below ``LANGUAGE_UNCERTAIN_BELOW``."""
        return self.language is not None and self.language_probability < LANGUAGE_UNCERTAIN_BELOW

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Transcriber:
    """Greedy Whisper transcription of 16 kHz mono arrays.

    ``model_name``: "base" (multilingual, default), "tiny.en" (fast, English), anything ``load_whisper``
    accepts (folder, ``.pt``, transformers id/folder), or an already loaded ``whisper.model.Whisper`` (share it
    with the whisper tower instead of loading twice).
    """

    def __init__(self, model_name: str | Path | torch.nn.Module = "base", device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None):
        from affectllm.offline.whisper_convert import cast_whisper, load_whisper

        device = torch.device(device)
        if dtype is None:
            dtype = torch.float16 if device.type == "cuda" else torch.float32  # fp32 is fastest on CPU
        if isinstance(model_name, torch.nn.Module):
            self.model = cast_whisper(model_name, device, dtype)
            self.name = type(model_name).__name__
        else:
            self.model = load_whisper(model_name, device=device, dtype=dtype)
            self.name = str(model_name)
        self.device, self.dtype = device, dtype
        self._memo: tuple[bytes, torch.Tensor] | None = None  # (key of mel window, encoder output)

    @property
    def multilingual(self) -> bool:
        return bool(self.model.is_multilingual)

    # --------------------------------------------------------------------------------------------- public

    def transcribe(self, audio: np.ndarray, language: str | None = None, translate: bool = True) -> Transcript:
        """Transcribe ``audio`` ([S] float32, 16 kHz mono). ``language`` forces a language (ISO code or name);
        ``translate`` adds an English translation when the speech is not English (multilingual models only)."""
        import whisper

        audio = _check_audio(audio)
        t0 = time.perf_counter()
        duration = len(audio) / SAMPLE_RATE
        if len(audio) == 0:
            return Transcript("", None, 0.0, [], 0.0, 0.0, self.name, 0.0)
        lang, prob = self._language(audio, language)
        with self._memo_encoder():
            result = whisper.transcribe(
                self.model,
                audio,
                verbose=None,
                temperature=0.0,  # a single temperature: greedy, and no sampled fallback
                condition_on_previous_text=False,
                fp16=self.dtype == torch.float16,
                language=lang,
                task="transcribe",
                without_timestamps=False,
            )
        segments = [
            Segment(
                start=round(float(s["start"]), 3),
                end=round(float(s["end"]), 3),
                text=s["text"].strip(),
                avg_logprob=round(float(s["avg_logprob"]), 4),
                no_speech_prob=round(float(s["no_speech_prob"]), 4),
            )
            for s in result["segments"]
        ]
        text = " ".join(s.text for s in segments if s.text).strip()
        translation = None
        if translate and text and lang != "en" and self.multilingual:
            translation = self.translate(audio, lang)
        return Transcript(
            text=text,
            language=lang,
            language_probability=round(prob, 4),
            segments=segments,
            words_per_second=round(_speaking_rate(text, segments, lang), 3),
            duration=round(duration, 3),
            model=self.name,
            seconds=round(time.perf_counter() - t0, 3),
            translation=translation,
        )

    def translate(self, audio: np.ndarray, language: str) -> str:
        """English rendering of ``audio`` spoken in ``language`` (Whisper's translate task, greedy)."""
        import whisper

        if not self.multilingual:
            raise ValueError(f"{self.name} is English-only and cannot translate; use a multilingual model ('base')")
        with self._memo_encoder():
            result = whisper.transcribe(
                self.model, _check_audio(audio), verbose=None, temperature=0.0, condition_on_previous_text=False,
                fp16=self.dtype == torch.float16, language=language, task="translate", without_timestamps=True,
            )
        return " ".join(s["text"].strip() for s in result["segments"] if s["text"].strip()).strip()

    def detect_language(self, audio: np.ndarray) -> tuple[str, float, dict[str, float]]:
        """Most likely spoken language of the first 30 s: (code, probability, all probabilities)."""
        if not self.multilingual:
            return "en", 1.0, {"en": 1.0}
        mel = self._first_window(_check_audio(audio))
        with self._memo_encoder(), torch.no_grad():
            _, probs = self.model.detect_language(mel)
        probs = probs[0] if isinstance(probs, list) else probs
        code = max(probs, key=probs.get)
        return code, float(probs[code]), {k: float(v) for k, v in probs.items()}

    @torch.no_grad()
    def encoder_features(self, audio: np.ndarray) -> torch.Tensor:
        """Whisper encoder output for the first 30-s window of ``audio``: [1, n_audio_ctx, n_audio_state].

        The window is the one transcription decodes first (real frames, zero-padded to 3000 mel frames), so
        calling this and ``transcribe`` on the same clip runs the encoder once.
        """
        mel = self._first_window(_check_audio(audio))
        with self._memo_encoder():
            return self.model.encoder(mel.unsqueeze(0))

    # ------------------------------------------------------------------------------------------- private

    def _language(self, audio: np.ndarray, language: str | None) -> tuple[str, float]:
        from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

        if language is not None:
            code = language.lower()
            code = TO_LANGUAGE_CODE.get(code, code)
            if code not in LANGUAGES:
                raise ValueError(f"unknown language {language!r}; use an ISO 639-1 code such as 'en' or 'zh'")
            if not self.multilingual and code != "en":
                raise ValueError(f"{self.name} is English-only; use a multilingual model (e.g. 'base') for {code!r}")
            return code, 1.0
        code, prob, _ = self.detect_language(audio)
        return code, prob

    def _first_window(self, audio: np.ndarray) -> torch.Tensor:
        """Mel of the first window exactly as ``whisper.transcribe`` builds it: [n_mels, 3000]."""
        from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim

        mel = log_mel_spectrogram(torch.from_numpy(audio), self.model.dims.n_mels, padding=N_SAMPLES)
        content = mel.shape[-1] - N_FRAMES
        window = pad_or_trim(mel[:, : min(N_FRAMES, content)], N_FRAMES)
        return window.to(self.device).to(self.dtype)

    @contextmanager
    def _memo_encoder(self):
        """While active, the encoder returns the stored output for a mel window it has just seen."""
        encoder = self.model.encoder
        original = encoder.forward

        def forward(x: torch.Tensor) -> torch.Tensor:  # x: [B, n_mels, 3000]
            flat = x.detach().to("cpu", torch.float32).contiguous()
            key = hashlib.blake2b(flat.numpy().tobytes(), digest_size=16).digest() + str(tuple(x.shape)).encode()
            if self._memo is None or self._memo[0] != key:
                self._memo = (key, original(x))
            return self._memo[1]

        encoder.forward = forward
        try:
            yield
        finally:
            del encoder.forward  # back to the class method


def _check_audio(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio)
    if a.ndim != 1:
        raise ValueError(f"audio must be mono [samples] at 16 kHz, got shape {a.shape}; average the channels "
                         "(affectllm.media decodes to 16 kHz mono)")
    a = a.astype(np.float32, copy=False)
    if a.size and not np.isfinite(a).all():
        raise ValueError("audio contains NaN or infinite samples; the decoder output is corrupt")
    return np.ascontiguousarray(a)


def _speaking_rate(text: str, segments: list[Segment], language: str | None) -> float:
    spoken = sum(max(0.0, s.end - s.start) for s in segments if s.text)
    if spoken <= 0:
        return 0.0
    if language in _NO_SPACE_LANGS:
        units = sum(1 for ch in text if unicodedata.category(ch)[0] in "LN")
    else:
        units = len(re.findall(r"\w+(?:'\w+)?", text))
    return units / spoken


def normalise_text(text: str) -> str:
    """Lower-case, drop punctuation, collapse spaces: for comparing transcripts."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch if unicodedata.category(ch)[0] in "LNZ" or ch == "'" else " " for ch in text)
    return " ".join(text.split())
