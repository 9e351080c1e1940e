"""How much each expert is trusted on THIS clip: the one place where the fusion weights are defined.

Each expert m that measured something gets the weight (an inverse temperature in ``fusion.fuse``'s
log-linear pool)

    w_m = prior_m * r_m(input),   r_m in [0, 1]

- **prior_m** (``PRIORS``) is what validation says about the expert in general:
  - voice ``1.0``: its head is temperature-scaled on held-out acted speakers (``train/train_voice_expert.py``),
    so alone it is calibrated in its own domain (0.74 macro top-1 on speakers it never heard).
  - face ``1.0``: not fitted (the labelled corpora are audio only); equal weights are the neutral product of
    experts.
  - text (the text expert, ``evidence.text.expert``) ``1.0``: calibrated on held-out text by its own trainer,
    and the strongest single channel in the wild (AffectGPT's single-input ablation on MER-UniBench: text 67.4,
    audio 60.1, face 60.5); so it stands beside the others at full weight, and may stand alone.
  - lexicon (fallback when no text expert ran) ``0.5``: a few NRC / DUTIR keyword hits; it only refines what
    was seen or heard, never stands alone.
- **r_m** multiplies factors measured on the input, each with a short human reason:
  - face: the share of sampled frames with the main face (``frames_with_face / frames``); the detector's mean
    confidence on them (``detection_score``, 1 for Haar which gives none); the face's height as a share of the
    frame (``face_size``), full trust from ``FACE_MIN_SIZE`` up, linear below.
  - voice: speech duration (``speech_s``), full trust from ``VOICE_MIN_SPEECH_S`` up, linear below; the share of
    the clip that is speech (VAD span without pauses / duration), full trust from ``VOICE_MIN_SHARE``; and the
    distance of the clip's pooled Whisper features from the acted corpora the head was trained on
    (``domain_distance``: the RMS z-score under the head's own standardisation statistics, i.e. the training
    features' mean and std, over the head's blocks 1-3). Measured on every acted clip (the head's training data,
    ``bench/voice_domain.py``): RAVDESS median 0.83 (p95 0.99), EmoDB 1.09 (1.20), CASIA 1.16 (1.33; 8 % of its
    clips lie above the bound and lose at most a third of the weight); the 8 TV clips 0.98-1.20 (their audio looks
    acted-like to this measure); the espeak-ng example clip 1.38; JFK's 1961 recording 1.84. Full trust up to
    ``VOICE_IN_DOMAIN`` (above the acted corpora's p95 and every TV clip, below the synthetic voice), then
    ``(VOICE_IN_DOMAIN / d) ** 4``.
  - text: words in what the expert read (a one-word transcript says little), full trust from
    ``TEXT_MIN_WORDS``; Whisper's language probability when the text is the transcript or its translation
    (a mis-identified language garbles both), full trust from ``TEXT_MIN_LANGUAGE_P``, linear below.
An expert that measured nothing gets weight 0 and a reason ("no face in any frame", "no voiced speech").
Every factor is stated as a reason; a factor that lowers the weight noticeably ends with a flag in parentheses
(``LOWERING_FLAGS``: "2 words (too few)", "speech 0.8 s (short)"), which explanations cite when they say why a
channel is trusted less; factors at (near) full trust carry no flag.
``evidence.fused.reliability`` holds ``{modality: {"weight": w_m, "reasons": [...]}}`` for all three.
"""

from __future__ import annotations

import re
from typing import Any

from affectllm.report.vocabulary import LOWERING_FLAGS  # noqa: F401 - the flags written here

PRIORS = {"voice": 1.0, "face": 1.0, "text": 1.0, "lexicon": 0.5}
MODALITIES = ("face", "voice", "text")
FACE_MIN_SIZE = 0.12  # face height / frame height from which the expression models see enough pixels
VOICE_MIN_SPEECH_S = 1.5  # pooled Whisper statistics of shorter speech are noisy
VOICE_MIN_SHARE = 0.3  # speech share of the clip below which music / noise dominate the pooled features
VOICE_IN_DOMAIN = 1.3  # domain_distance up to which a clip counts as acted-corpus-like (measured, see above)
TEXT_MIN_WORDS = 4
TEXT_MIN_LANGUAGE_P = 0.8
FLAG_BELOW = 0.8  # a factor under this is flagged as lowering the weight
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def _ramp(x: float, full: float) -> float:
    return max(0.0, min(1.0, x / full)) if full > 0 else 1.0


def face_reliability(face: dict[str, Any] | None) -> tuple[float, list[str]]:
    """r_face and its reasons from ``evidence.face`` (``frames``, ``frames_with_face``, ``detection_score``,
    ``face_size``)."""
    face = face or {}
    n, k = int(face.get("frames") or 0), int(face.get("frames_with_face") or 0)
    if not face.get("mean_probs"):
        return 0.0, ["no frames" if n == 0 else "no face in any frame"]
    r, reasons = 1.0, []
    if n:
        r *= k / n
        reasons.append(f"face in {k}/{n} frames" + (" (partial)" if k / n < FLAG_BELOW else ""))
    score = face.get("detection_score")
    if score is not None:  # a confidence in [0, 1]; a detector's raw score above 1 (Haar's level weight) is full trust
        conf = min(max(float(score), 0.0), 1.0)
        r *= conf
        reasons.append(f"detection confidence {conf:.2f}" + (" (weak)" if conf < FLAG_BELOW else ""))
    size = face.get("face_size")
    if size is not None:
        r *= _ramp(float(size), FACE_MIN_SIZE)
        reasons.append(f"face {100 * float(size):.0f} % of the frame height"
                       + (" (small)" if float(size) < FACE_MIN_SIZE else ""))
    return r, reasons


def voice_reliability(voice: dict[str, Any] | None) -> tuple[float, list[str]]:
    """r_voice and its reasons from ``evidence.voice`` (prosody's ``duration_s``, ``speech_s``,
    ``pause_total_s`` and the voice expert's ``probs`` and ``domain_distance``)."""
    voice = voice or {}
    if not voice.get("probs"):
        return 0.0, [voice.get("note") or ("no speech" if not voice else "no voice-expert estimate")]
    r, reasons = 1.0, []
    speech = voice.get("speech_s")
    if speech is not None:
        talk = max(0.0, float(speech) - float(voice.get("pause_total_s") or 0.0))
        r *= _ramp(talk, VOICE_MIN_SPEECH_S)
        reasons.append(f"speech {talk:.1f} s" + (" (short)" if talk < VOICE_MIN_SPEECH_S else ""))
        dur = float(voice.get("duration_s") or 0.0)
        if dur > 0:
            share = min(1.0, talk / dur)
            r *= _ramp(share, VOICE_MIN_SHARE)
            reasons.append(f"speech share {100 * share:.0f} %" + (" (low)" if share < VOICE_MIN_SHARE else ""))
    d = voice.get("domain_distance")
    if d is not None:
        d = float(d)
        f = 1.0 if d <= VOICE_IN_DOMAIN else (VOICE_IN_DOMAIN / d) ** 4
        r *= f
        reasons.append(f"audio distance from the acted corpora {d:.2f}"
                       + (" (out of domain)" if f < 1 else " (in domain)"))
    return r, reasons


def words_read(expert: dict[str, Any]) -> int:
    """Words the text expert read: its ``words``, or half the CJK characters for unspaced scripts."""
    text = str(expert.get("text") or "")
    return max(int(expert.get("words") or 0), len(_CJK.findall(text)) // 2, 0)


def text_reliability(text: dict[str, Any] | None) -> tuple[float, str | None, list[str]]:
    """(r_text, source, reasons) from ``evidence.text``; source is "expert", "lexicon" or None (nothing read)."""
    text = text or {}
    expert = text.get("expert")
    if expert and expert.get("base"):
        r, reasons = 1.0, [f"text expert {expert.get('model', '?')} read the {expert.get('read', 'text')}"]
        n = words_read(expert)
        r *= _ramp(n, TEXT_MIN_WORDS)
        reasons.append(f"{n} word{'s' if n != 1 else ''}" + (" (too few)" if n < TEXT_MIN_WORDS else ""))
        lang = text.get("language") or {}
        p = lang.get("probability")
        if expert.get("read") in ("transcript", "translation") and p is not None:
            r *= _ramp(float(p), TEXT_MIN_LANGUAGE_P)
            reasons.append(f"language probability {float(p):.2f}" + (" (low)" if float(p) < TEXT_MIN_LANGUAGE_P else ""))
        return r, "expert", reasons
    hits = [w for w in text.get("emotion_words") or [] if isinstance(w, dict) and w.get("emotions")]
    if hits:
        return 1.0, "lexicon", [f"no text expert; {len(hits)} lexicon emotion word{'s' if len(hits) != 1 else ''}"]
    return 0.0, None, ["no transcript or subtitle" if not (text.get("transcript") or text.get("subtitle"))
                       else "no text expert and no emotion word in the text"]
