"""Fusion of the experts' class probabilities into one calibrated estimate over ``BASE_CLASSES``.

Rule (weighted log-linear pooling, the product-of-experts form of a logarithmic opinion pool):

    log p(c) = sum_m w_m * log q_m(c) - log Z,    q_m = (1 - EPS) * p_m + EPS / C

over the experts m that measured something on this clip; the weight w_m acts as an inverse temperature.
The weights are ``reliability.PRIORS`` x an input-dependent reliability in [0, 1]; both, and every factor,
are defined and documented in ONE place: ``affectllm.perception.reliability`` (face: share of frames with a
face, detection confidence, face size; voice: speech duration and share, distance from the acted corpora;
text: words read, language probability). Called without evidence (``fuse(voice=..., face=...)``) every
reliability is 1, so an expert alone keeps its calibrated distribution.
- voice: its probabilities are temperature-scaled on held-out speakers, so alone it is calibrated.
- face: its 7 classes map onto the base classes (disgust -> disgusted, fear -> fearful, surprise ->
  surprised); it cannot tell calm or bored from neutral, so those get its neutral probability (the face
  says nothing about them), and the row is renormalised. (A face weight of 0.5 let a voice expert that is out
  of its domain — espeak-ng speech in the shipped example clip, "angry" 0.86 — overrule a unanimous smiling
  face and the words "happy", "perfect".)
- text: the text expert's ``base`` distribution (``evidence.text.expert``) when it ran; it may stand alone.
  Beside a face or a voice its neutral mass is spread evenly over the classes (``words_as_evidence``: neutral
  words are absence of evidence, so acted corpora's neutral sentences do not pull an angry voice to neutral),
  and its emotional mass is divided by the expert's own prior (its corpora's class mix is no evidence).
  Otherwise the fallback: the emotion words the lexicons found (NRC EmoLex / DUTIR: joy, like -> happy;
  sadness -> sad; anger -> angry; fear -> fearful; disgust -> disgusted; surprise -> surprised; anticipation
  and trust say nothing here) as add-``TEXT_ALPHA`` counts over the base classes at weight 0.5, so one word is
  a gentle nudge; lexicon words alone are no estimate (a few keyword hits only refine what was seen or heard).
The fused base distribution is then spread over fine labels and cut into a label set by probability mass
(``affectllm.perception.label_sets``): ``labels = [[adjective, p], ...]``.
An expert that measured nothing (no face in any frame, no speech, a clip too short) is left out; with no
expert left the result says so and holds no distribution. Valence and arousal are the expected circumplex
positions under the fused distribution (same map as the voice expert).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from affectllm.perception.voice import BASE_CLASSES, valence_arousal
from affectllm.report.grounded import canonical

FACE_WEIGHT = 1.0  # = reliability.PRIORS["face"] (kept as a name for train/train_voice_expert.py)
TEXT_ALPHA = 0.5
TEXT_MIN_PRIOR = 0.01  # a class the text expert gives less than this on average is one it cannot say
LEXICON_TO_BASE = {"joy": "happy", "like": "happy", "happiness": "happy", "sadness": "sad", "anger": "angry",
                   "fear": "fearful", "disgust": "disgusted", "surprise": "surprised"}
EPS = 1e-3  # floor mixed into each expert's distribution, so no single expert can veto a class outright
CONFIDENT = 0.5  # top-1 probability above which the fused estimate counts as confident (bench/quality.py)


def words_as_evidence(row: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """The text expert's base distribution as evidence beside a face or a voice ([C] -> [C], sums to 1).

    - "Neutral words" means the words carry no feeling, not that the person feels none: an angry voice saying
      "the kids are talking by the door" is angry. So the expert's neutral mass is spread evenly over every
      class (a flat, uninformative factor in the pool) and only its emotional mass moves the estimate.
    - Its emotional mass is read against its own prior (``prior`` [C]: the head's mean base reading on its dev
      corpora, ``evidence.text.expert.prior``): pooling posteriors counts each expert's class prior once per
      expert, and the text corpora's mix (a third happy) is not evidence about this clip. So the emotional
      classes get ``p(c | words) / prior(c)``, renormalised to the emotional mass; the classes the expert
      cannot say (prior < ``TEXT_MIN_PRIOR``: calm and bored are in none of its corpora) get the mean level,
      i.e. no vote, instead of a veto.
    Measured (``bench/quality.py``, fused + words on the acted sentences): macro 0.679 without the prior, 0.692
    with it (voice alone 0.698). Alone, the text keeps its own distribution (then neutral words do mean
    "nothing else shows a feeling")."""
    k = BASE_CLASSES.index("neutral")
    p = row / row.sum()
    prior = np.ones_like(p) / len(p) if prior is None else np.asarray(prior, np.float64)
    says = prior >= TEXT_MIN_PRIOR  # [C] classes the expert can say
    says[k] = False
    level = np.ones_like(p)  # [C] the emotional evidence: flat (no vote) until the expert says something
    ratio = np.where(says, p / np.maximum(prior, TEXT_MIN_PRIOR), 0.0)
    if ratio.sum() > 0:
        level = np.where(says, ratio * says.sum() / ratio.sum(), 1.0)  # mean 1 over the classes it can say
    return (1.0 - p[k]) * level / level.sum() + p[k] / len(p)


def face_to_base(face_probs: dict[str, float]) -> np.ndarray:
    """The face expert's 7 probabilities as a distribution over ``BASE_CLASSES`` ([C], sums to 1)."""
    out = np.zeros(len(BASE_CLASSES))
    for name, p in face_probs.items():
        out[BASE_CLASSES.index(canonical(name))] += p
    neutral = out[BASE_CLASSES.index("neutral")]
    for shade in ("calm", "bored"):  # indistinguishable from neutral on a face
        out[BASE_CLASSES.index(shade)] = neutral
    return out / out.sum()


def text_to_base(emotion_words: list[Any] | None) -> dict[str, float] | None:
    """The text cues' emotion words as a distribution over ``BASE_CLASSES`` (None: no emotion word found).

    ``emotion_words``: ``evidence.text.emotion_words`` (dicts with ``emotions``, or plain words, which count
    for nothing here)."""
    counts = dict.fromkeys(BASE_CLASSES, 0.0)
    for w in emotion_words or []:
        names = {LEXICON_TO_BASE[e] for e in (w.get("emotions") or []) if e in LEXICON_TO_BASE} if isinstance(w, dict) else set()
        for name in names:
            counts[name] += 1.0 / len(names)  # a word counts once, split over the classes it evokes
    total = sum(counts.values())
    if total == 0:
        return None
    return {c: (n + TEXT_ALPHA) / (total + TEXT_ALPHA * len(BASE_CLASSES)) for c, n in counts.items()}


def fuse(voice: dict[str, float] | None = None, face: dict[str, float] | None = None,
         weights: dict[str, float] | None = None, text: dict[str, float] | None = None, *,
         text_expert: dict[str, Any] | None = None,
         reliability: dict[str, tuple[float, list[str]]] | None = None) -> dict[str, Any]:
    """Pool the available experts' probabilities (dicts class -> p; None = not measured) into ``evidence.fused``.

    ``text``: the lexicon fallback over the base classes (``text_to_base``); ``text_expert``: the text
    expert's output (``evidence.text.expert``), which replaces it when given. ``reliability``: per modality
    ``(r, reasons)`` from ``affectllm.perception.reliability`` (missing: r = 1). ``weights`` overrides the
    final weights. Returns ``{"probs", "top", "confidence", "valence", "arousal", "sources", "weights",
    "reliability", "labels"}``, or ``{"probs": None, "sources": [], "note", "reliability", "labels": []}`` when
    no expert measured anything.
    """
    from affectllm.perception import reliability as rel
    from affectllm.perception.label_sets import label_set

    given = reliability or {}
    expert_base = (text_expert or {}).get("base") or None
    text_row, text_prior = (expert_base, rel.PRIORS["text"]) if expert_base else (text, rel.PRIORS["lexicon"])
    rows: dict[str, np.ndarray] = {}
    if voice:
        rows["voice"] = np.array([voice.get(c, 0.0) for c in BASE_CLASSES], np.float64)
    if face:
        rows["face"] = face_to_base(face)
    if text_row and (rows or expert_base):  # the expert may stand alone; lexicon words only refine
        row = np.array([text_row.get(c, 0.0) for c in BASE_CLASSES], np.float64)
        if expert_base and rows:
            prior = (text_expert or {}).get("prior")
            row = words_as_evidence(row, np.array([prior.get(c, 0.0) for c in BASE_CLASSES]) if prior else None)
        rows["text"] = row
    prior = {"voice": rel.PRIORS["voice"], "face": rel.PRIORS["face"], "text": text_prior}
    w = {m: prior[m] * float(given.get(m, (1.0, []))[0]) for m in rows}
    w.update({m: v for m, v in (weights or {}).items() if m in rows})
    report = {}
    for m in rel.MODALITIES:
        reasons = list(given.get(m, (1.0, []))[1])
        if m not in rows:
            reasons = reasons or [{"face": "no face measured", "voice": "no voice measured",
                                   "text": "no text estimate"}[m]]
            if m == "text" and text_row and not rows:
                reasons.append("lexicon words alone are no estimate")
        elif w[m] <= 0:
            reasons.append("left out: reliability 0")
        report[m] = {"weight": round(w.get(m, 0.0), 4) if m in rows else 0.0, "reasons": reasons}
    rows = {m: r for m, r in rows.items() if w[m] > 0}
    if not rows:
        return {"probs": None, "sources": [], "note": "no face seen and no voiced speech heard",
                "reliability": report, "labels": []}
    c = len(BASE_CLASSES)
    log_p = sum(w[m] * np.log((1 - EPS) * r / r.sum() + EPS / c) for m, r in rows.items())  # [C]
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    v, a = valence_arousal(p, BASE_CLASSES)
    top = int(p.argmax())
    probs = {k: round(float(x), 4) for k, x in zip(BASE_CLASSES, p)}
    rho = w["text"] / rel.PRIORS["text"] if expert_base and "text" in rows else 0.0
    return {"probs": probs, "top": BASE_CLASSES[top],
            "confidence": round(float(p[top]), 4), "valence": round(v, 3), "arousal": round(a, 3),
            "sources": sorted(rows), "weights": {m: round(w[m], 4) for m in sorted(rows)},
            "reliability": report,
            "labels": label_set(probs, (text_expert or {}).get("fine") if expert_base else None, rho)}


def fuse_evidence(face: dict[str, Any] | None, voice: dict[str, Any] | None,
                  text: dict[str, Any] | None) -> dict[str, Any]:
    """``evidence.fused`` from the experts' evidence dicts, each expert weighted by its reliability on them."""
    from affectllm.perception.reliability import face_reliability, text_reliability, voice_reliability

    face, voice, text = face or {}, voice or {}, text or {}
    r_text, source, text_reasons = text_reliability(text)
    return fuse(voice=voice.get("probs"), face=face.get("mean_probs"),
                text=text_to_base(text.get("emotion_words")) if source == "lexicon" else None,
                text_expert=text.get("expert") if source == "expert" else None,
                reliability={"face": face_reliability(face), "voice": voice_reliability(voice),
                             "text": (r_text, text_reasons)})


def fused_line(fused: dict[str, Any]) -> str | None:
    """The cue line: ``Fused estimate (face + voice): angry 0.62, fearful 0.15, sad 0.09``."""
    if not fused:
        return None
    if not fused.get("probs"):
        return f"Fused estimate: none ({fused.get('note', 'no evidence')})"
    top3 = sorted(fused["probs"].items(), key=lambda kv: -kv[1])[:3]
    return (f"Fused estimate ({' + '.join(fused['sources'])}): " + ", ".join(f"{k} {v:.2f}" for k, v in top3))


def reliability_bins(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Top-1 confidence vs accuracy in ``n_bins`` equal-width bins: probs ``[N, C]``, labels ``[N]``."""
    conf, correct = probs.max(1), (probs.argmax(1) == y)
    edges = np.linspace(0, 1, n_bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        out.append({"lo": float(lo), "hi": float(hi), "n": int(m.sum()),
                    "confidence": float(conf[m].mean()) if m.any() else 0.0,
                    "accuracy": float(correct[m].mean()) if m.any() else 0.0})
    return out


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """ECE: bin-size-weighted mean |accuracy - confidence| of the top-1 prediction."""
    bins = reliability_bins(np.asarray(probs), np.asarray(y), n_bins)
    n = sum(b["n"] for b in bins)
    return float(sum(b["n"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / max(n, 1))
