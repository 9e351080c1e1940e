"""Explanations that reason over every cue, composed from the measured evidence only.

The one explanation composer: the starter's training targets (``grounded_explanation`` below) and the
engine's fallback for an answer with no explanation both call ``compose_explanation``. From
``Perception.evidence()`` (face, voice, text, fused) it writes, in moves:

1. each channel that measured something, with what it measured: the face (expression, in how many frames,
   from when), the voice (prosody cues and the voice expert's reading), the words (the exact transcript, its
   translation, and what the text expert, or failing it the lexicons, read in them);
2. where the channels' readings disagree, that they do, which one weighs more and why (the fusion's
   reliability weights and reasons when present, else the experts' own confidence);
3. which channels were missing or unreliable and why (no picture, no face, no speech, an uncertain language,
   a single word), and with nothing left that no emotion can be read;
4. the conclusion with the label set.

Every move has several phrasings (templates in ``explanation_phrasings.yaml`` beside this module), and the
channel order varies; the choice is a deterministic hash of the clip's key and move (``_pick``), so a training set
is not one sentence skeleton. Faithful by construction:
quotes copy the transcript or translation verbatim, numbers and labels are the experts' own; the checker
(``affectllm.faithful``) accepts every composed explanation.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from affectllm.report import format_report
from affectllm.report.grounded import EMOTIONS, canonical
from affectllm.report.vocabulary import LOWERING_FLAGS
from affectllm.utils.script_units import speech_units

# GoEmotions label -> (how the words read, base class)
GOEMOTIONS: dict[str, tuple[str, str]] = {
    "admiration": ("admiring", "happy"), "amusement": ("amused", "happy"), "anger": ("angry", "angry"),
    "annoyance": ("annoyed", "angry"), "approval": ("approving", "happy"), "caring": ("caring", "happy"),
    "confusion": ("confused", "surprised"), "curiosity": ("curious", "surprised"), "desire": ("longing", "happy"),
    "disappointment": ("disappointed", "sad"), "disapproval": ("disapproving", "angry"),
    "disgust": ("disgusted", "disgusted"), "embarrassment": ("embarrassed", "sad"), "excitement": ("excited", "happy"),
    "fear": ("afraid", "fearful"), "gratitude": ("grateful", "happy"), "grief": ("grieving", "sad"),
    "joy": ("joyful", "happy"), "love": ("affectionate", "happy"), "nervousness": ("nervous", "fearful"),
    "optimism": ("hopeful", "happy"), "pride": ("proud", "happy"), "realization": ("struck by a realisation", "surprised"),
    "relief": ("relieved", "calm"), "remorse": ("remorseful", "sad"), "sadness": ("sad", "sad"),
    "surprise": ("surprised", "surprised"), "neutral": ("neutral", "neutral"),
}
FACE_TO_BASE = {"angry": "angry", "disgust": "disgusted", "fear": "fearful", "happy": "happy", "sad": "sad",
                "surprise": "surprised", "neutral": "neutral"}
FACE_VERB = {"happy": "smiles", "sad": "looks sad", "angry": "looks angry", "fearful": "looks afraid",
             "disgusted": "looks disgusted", "surprised": "looks surprised", "neutral": "stays neutral"}
LOW_AROUSAL = {"neutral", "calm", "bored"}  # one family: a calm voice and a neutral face do not disagree
FIRM = 0.4  # a channel's top probability from which its reading can disagree with another's
MAX_QUOTE_WORDS = 30
CHANNEL_NAME = {"face": "face", "voice": "voice", "text": "words"}


@dataclass
class Reading:
    """What one channel says, on the base classes: its top class and that class's probability."""

    channel: str  # face | voice | text
    base: str
    p: float


def _pick(key: str, move: str, options: list[str] | tuple[str, ...]) -> str:
    h = hashlib.sha256(f"{key}\x1f{move}".encode("utf-8", "surrogateescape")).digest()
    return options[int.from_bytes(h[:4], "big") % len(options)]


@lru_cache(maxsize=1)
def phrasings() -> dict[str, dict[str, tuple[str, ...]]]:
    """Every move's phrasings (``explanation_phrasings.yaml`` beside this module): move -> variant -> templates."""
    import yaml

    text = (resources.files("affectllm.instruct") / "explanation_phrasings.yaml").read_text(encoding="utf-8")
    return {move: {variant: tuple(texts) for variant, texts in variants.items()}
            for move, variants in yaml.safe_load(text).items()}


def _say(key: str, move: str, variant: str, **fields: str | int) -> str:
    """One phrasing of ``move`` (picked by ``_pick``) with its fields filled; ``{Field}`` is ``field`` capitalised."""
    template = _pick(key, move, phrasings()[move][variant])
    return template.format(**fields, **{k.capitalize(): _cap(str(v)) for k, v in fields.items()})


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _quote(text: str) -> str:
    """Verbatim words of ``text`` for a quotation (its first ``MAX_QUOTE_WORDS``; inner quote marks dropped)."""
    from affectllm.report.faithful import QUOTE_CHARS

    clean = "".join(ch for ch in " ".join(text.split()) if ch not in QUOTE_CHARS or ch in "'’")
    words = clean.split()
    return " ".join(words[:MAX_QUOTE_WORDS]) + ("…" if len(words) > MAX_QUOTE_WORDS else "")


# --- what each channel measured ------------------------------------------------------------------------------


def readings(evidence: dict[str, Any]) -> dict[str, Reading]:
    """Each channel's reading on the base classes (channels that measured no emotion are absent)."""
    out: dict[str, Reading] = {}
    face = evidence.get("face") or {}
    if face.get("mean_probs"):
        top = max(face["mean_probs"], key=face["mean_probs"].get)
        out["face"] = Reading("face", FACE_TO_BASE.get(top, top), float(face["mean_probs"][top]))
    voice = evidence.get("voice") or {}
    if voice.get("probs"):
        top = max(voice["probs"], key=voice["probs"].get)
        out["voice"] = Reading("voice", top, float(voice["probs"][top]))
    text = evidence.get("text") or {}
    expert = text.get("expert")
    if expert and expert.get("base"):
        top = max(expert["base"], key=expert["base"].get)
        out["text"] = Reading("text", top, float(expert["base"][top]))
    return {m: r for m, r in out.items() if _weight(evidence, m) != 0}


def _reliability(evidence: dict[str, Any]) -> dict[str, Any]:
    return ((evidence.get("fused") or {}).get("reliability")) or {}


def _weight(evidence: dict[str, Any], channel: str) -> float | None:
    w = (_reliability(evidence).get(channel) or {}).get("weight")
    return None if w is None else float(w)


def _reasons(evidence: dict[str, Any], channel: str) -> list[str]:
    return [r for r in (_reliability(evidence).get(channel) or {}).get("reasons") or [] if r]


def _lowering(evidence: dict[str, Any], channel: str) -> list[str]:
    """The reliability reasons that lowered the channel's weight (flagged by ``perception.reliability``: "(too
    few)", "(low)", "(small)", "(short)", "(out of domain)" ...), without the flag; the factors at full trust
    ("face in 8/8 frames") explain nothing about a doubt."""
    return [m.group(1) + f" ({m.group(2)})" for r in _reasons(evidence, channel)
            if (m := _FLAGGED.match(r))]


_FLAGGED = re.compile(r"^(.*\S)\s+\((" + "|".join(LOWERING_FLAGS) + r")\)$")


def _v(channel: str, singular: str, plural: str) -> str:
    """The verb that agrees with the channel's name ("the words are", "the voice is")."""
    return plural if CHANNEL_NAME.get(channel, channel) == "words" else singular


def _group(base: str) -> str:
    return "low" if base in LOW_AROUSAL else base


def _firm(evidence: dict[str, Any]) -> tuple[list[Reading], Reading | None]:
    """(the firm readings that can disagree, the neutral words set aside). Neutral words beside a face or a voice
    that read a feeling are no disagreement: a fixed or matter-of-fact sentence can be said in any emotion, and
    fusion counts them as no evidence (``perception.fusion.words_as_evidence``)."""
    firm = [r for r in readings(evidence).values() if r.p >= FIRM]
    words = next((r for r in firm if r.channel == "text" and r.base == "neutral"), None)
    if words is not None and any(r.channel != "text" and r.base != "neutral" for r in firm):
        return [r for r in firm if r is not words], words
    return firm, None


# what names a channel in an explanation (the face; the voice or its prosody; the words: a quotation, "words",
# "text expert"); ``bench/explanations.py`` and the engine's acceptance of a model explanation use this one rule
CHANNEL_CITES = {"face": ("face",), "voice": ("voice", "prosody"), "text": ('"', "words", "text expert")}


def uncited_channels(explanation: str, evidence: dict[str, Any]) -> list[str]:
    """The channels the fusion used (``evidence.fused.sources``) that ``explanation`` never names."""
    text = explanation.lower()
    sources = (evidence.get("fused") or {}).get("sources") or []
    return [m for m in sources if not any(k in text for k in CHANNEL_CITES.get(m, (m,)))]


def conflict(evidence: dict[str, Any]) -> bool:
    """True when two channels firmly read different emotions (the bench counts these clips)."""
    firm, _ = _firm(evidence)
    return len({_group(r.base) for r in firm}) > 1


def _face_move(face: dict[str, Any], kind: str | None, key: str) -> str | None:
    probs = face.get("mean_probs")
    if not probs:
        return None
    top = max(probs, key=probs.get)
    base = FACE_TO_BASE.get(top, top)
    verb, p = FACE_VERB.get(base, f"looks {base}"), f"{probs[top]:.2f}"
    n = int(face.get("frames") or 0)
    frames = [f for f in face.get("per_frame") or [] if f.get("top") == top]
    k = len(frames) if face.get("per_frame") else int(face.get("frames_with_face") or 0)
    if kind == "image" or n <= 1:
        return _say(key, "face", "picture", verb=verb, base=base, p=p)
    if not frames:
        return _say(key, "face", "frames", verb=verb, base=base, p=p, k=k, n=n)
    t = f"{min(f['t'] for f in frames):.1f}"
    return _say(key, "face", "from_time", verb=verb, base=base, p=p, k=k, n=n, t=t)


def _voice_move(voice: dict[str, Any], key: str) -> str | None:
    cues = [_CUE_NOUN.get(c, c) for c in voice.get("cues") or [] if c and c not in _NO_VOICE_CUES]
    probs = voice.get("probs")
    if not cues and not probs:
        return None
    c = _join(cues)
    if probs:
        top = max(probs, key=probs.get)
        p = f"{probs[top]:.2f}"
        if not c:
            return _say(key, "voice", "expert", label=top, p=p)
        return _say(key, "voice", "cues_and_expert", label=top, p=p, cues=c)
    return _say(key, "voice", "cues", cues=c)


_CUE_NOUN = {"loud": "a loud delivery", "quiet": "a quiet delivery", "even, moderate voice": "an even, moderate voice"}
_NO_VOICE_CUES = {"no voiced speech", "audio too short to analyse", "speech without clear pitch (whisper or noise)"}


def _said(text: dict[str, Any], transcript: str | None, translation: str | None, expert: dict | None) -> str:
    """The quotation of what was said: the transcript, and the translation when there is one."""
    said = f'"{_quote(transcript)}"' if transcript else ""
    if translation and translation.strip() and translation.strip() != (transcript or "").strip():
        said += f' (in English, "{_quote(translation)}")' if said else f'"{_quote(translation)}"'
    return said


def _words_move(text: dict[str, Any], transcript: str | None, translation: str | None, key: str,
                usable: bool) -> str | None:
    if not transcript:
        return None
    expert = text.get("expert") if usable else None
    said = _said(text, transcript, translation, expert)
    if expert and expert.get("top"):
        top = [(str(lab), float(p)) for lab, p in expert["top"] if p is not None][:3]
        firm = [lab for lab, p in top if p >= 0.15] or [top[0][0]]
        adj = _join([GOEMOTIONS.get(lab, (lab, ""))[0] for lab in firm[:2]])
        lab0, p0 = top[0][0], f"{top[0][1]:.2f}"
        read = "its translation" if expert.get("read") == "translation" and translation else "them"
        return _say(key, "words", "expert", said=said, adj=adj, label=lab0, p=p0, read=read)
    found = [w for w in text.get("emotion_words") or [] if isinstance(w, dict) and w.get("word")]
    if found and usable:
        w = found[0]
        feel = _join(list(w.get("emotions") or [])[:2])
        carry = f'words like "{w["word"]}" carry {feel}' if feel else f'words like "{w["word"]}" carry feeling'
        return _say(key, "words", "lexicon", said=said, carry=carry)
    return _say(key, "words", "plain", said=said)


# --- what is missing or unreliable -----------------------------------------------------------------------


def missing(evidence: dict[str, Any], kind: str | None) -> dict[str, str]:
    """Channel -> why it was missing or is not trusted here (plain words); channels that measured are absent."""
    out: dict[str, str] = {}
    face, voice, text = (evidence.get(k) or {} for k in ("face", "voice", "text"))
    if not face.get("mean_probs"):
        if kind in ("video", "image") or face.get("frames"):
            n = face.get("frames")
            out["face"] = f"no face was found in any of the {n} frames" if n else "no face was found"
        else:
            out["face"] = "there is no picture, so no face to read"
    cues = voice.get("cues") or []
    if not voice.get("probs") and not [c for c in cues if c not in _NO_VOICE_CUES]:
        if not voice and kind in ("image", "text"):
            out["voice"] = "there is no sound"
        elif not voice:
            out["voice"] = "no speech was heard"
        else:
            cue = cues[0] if cues else voice.get("note", "no voiced speech")
            out["voice"] = {"audio too short to analyse": "the audio is too short to analyse",
                            "speech without clear pitch (whisper or noise)":
                                "the audio has no clear pitch (a whisper or noise)"}.get(cue, f"the audio holds {cue}")
    transcript = text.get("transcript") or text.get("subtitle")
    lang = (text.get("language") or {}) if text.get("transcript") else {}  # a subtitle has no detected language
    expert = text.get("expert")
    if not transcript:
        out["text"] = "no words were recognised" if text.get("asr") or voice else "there is no speech to read"
    elif lang.get("uncertain"):
        out["text"] = (f"the language is uncertain (Whisper guessed {lang.get('code')}, "
                       f"p={float(lang.get('probability') or 0):.2f}), so the words count for little")
    elif (expert or {}).get("words", speech_units(transcript)[0]) <= 1:
        out["text"] = "only one word was recognised, too little to read a feeling from"
    for m in ("face", "voice", "text"):
        if m not in out and _weight(evidence, m) == 0:
            why = "; ".join(_reasons(evidence, m)) or "judged unreliable on this clip"
            out[m] = f"the {CHANNEL_NAME[m]} {'are' if m == 'text' else 'is'} left out ({why})"
    return out


def _missing_move(gone: dict[str, str], key: str) -> str | None:
    if not gone:
        return None
    parts = list(gone.values())
    if len(parts) == 1:
        return _cap(_say(key, "missing", "one", part=parts[0]))
    return _say(key, "missing", "several", joined=_join(parts), listed="; ".join(parts))


# --- conflicts ----------------------------------------------------------------------------------------------


def _why(evidence: dict[str, Any], doubted: Reading, trusted: list[Reading]) -> str:
    reasons = _lowering(evidence, doubted.channel)
    name = "voice expert" if doubted.channel == "voice" else ("face expert" if doubted.channel == "face"
                                                             else "text expert")
    if reasons:
        return f"the {name} is less reliable here ({'; '.join(reasons)})"
    wd, wt = _weight(evidence, doubted.channel), [_weight(evidence, r.channel) for r in trusted]
    if wd is not None and all(w is not None and w > wd for w in wt):
        return (f"the {CHANNEL_NAME[doubted.channel]} {_v(doubted.channel, 'carries', 'carry')} less weight "
                f"({wd:.2f} against {max(wt):.2f})")
    best = max(trusted, key=lambda r: r.p)
    if len(trusted) > 1:
        return f"the {_join([CHANNEL_NAME[r.channel] for r in trusted])} agree"
    if best.p > doubted.p:
        return f"the {CHANNEL_NAME[best.channel]} {_v(best.channel, 'is', 'are')} surer ({best.p:.2f} against {doubted.p:.2f})"
    return f"the {CHANNEL_NAME[best.channel]} {_v(best.channel, 'fits', 'fit')} the rest of the evidence better"


def _neutral_words_move(others: list[Reading], key: str) -> str:
    names = _join(sorted({CHANNEL_NAME[r.channel] for r in others if r.channel != "text"}))
    one = len({r.channel for r in others if r.channel != "text"}) == 1
    decides = "decides" if one else "decide"
    how = "said" if "voice" in names else "shown"
    return _say(key, "neutral-words", "no_counter_evidence", names=names, decides=decides, how=how)


def _conflict_move(evidence: dict[str, Any], conclusion: str | None, key: str) -> str | None:
    firm, words = _firm(evidence)
    if len({_group(r.base) for r in firm}) <= 1:
        return _neutral_words_move(firm, key) if words is not None else None
    goal = _group(conclusion) if conclusion else None
    trusted = [r for r in firm if _group(r.base) == goal]
    if not trusted:  # no channel reads the conclusion: the most reliable/surest one is trusted
        best = max(firm, key=lambda r: ((_weight(evidence, r.channel) or 1.0), r.p))
        trusted = [r for r in firm if _group(r.base) == _group(best.base)]
    doubted = [r for r in firm if r not in trusted]
    d = max(doubted, key=lambda r: r.p)
    T = _join([CHANNEL_NAME[r.channel] for r in trusted])
    D = CHANNEL_NAME[d.channel]
    verb = "weigh" if len(trusted) > 1 or trusted[0].channel == "text" else "weighs"
    dr = f"{d.base} {d.p:.2f}"
    tr = (f"{trusted[0].base} {trusted[0].p:.2f}" if len(trusted) == 1 else
          f"{trusted[0].base} (" + ", ".join(f"{CHANNEL_NAME[r.channel]} {r.p:.2f}" for r in trusted) + ")")
    why = _why(evidence, d, trusted)
    return _say(key, "conflict", "weighing", doubted=D, trusted=T, doubted_reading=dr, trusted_reading=tr,
                why=why, trusted_weigh=verb, doubted_suggests=_v(d.channel, "suggests", "suggest"),
                doubted_points=_v(d.channel, "points", "point"), doubted_weighs=_v(d.channel, "weighs", "weigh"))


# --- the explanation ----------------------------------------------------------------------------------------


def _conclusion(labels: list[str], key: str, nothing: bool) -> str:
    if nothing or not labels:
        return _say(key, "end-none", "nothing_left")
    if labels[0] == "neutral" and len(labels) > 1:  # a mostly neutral reading that leans somewhere (label_sets)
        return _say(key, "end", "neutral_lean", names=_join(labels[1:]))
    return _say(key, "end", "labels", names=_join(labels), fit="fit" if len(labels) > 1 else "fits")


def _base_of(label: str | None) -> str | None:

    if not label:
        return None
    try:
        return canonical(label)
    except ValueError:
        pass
    if label in GOEMOTIONS:
        return GOEMOTIONS[label][1]
    for base, (names, _, _) in EMOTIONS.items():
        if label in names:
            return base
    return None


def compose_explanation(evidence: dict[str, Any], labels: list[str] | None = None, *, kind: str | None = None,
                        key: str = "") -> str:
    """The explanation for one clip from ``evidence`` (``Perception.evidence()``), concluding with ``labels``
    (None: the fused label set, else the fused top class). ``kind``: video | audio | image | text (what was
    there to see or hear); ``key``: the clip's identity, which picks the phrasings."""
    face, voice, text = (evidence.get(k) or {} for k in ("face", "voice", "text"))
    fused = evidence.get("fused") or {}
    if labels is None:
        labels = [str(x[0]) for x in fused.get("labels") or []][:3] or ([fused["top"]] if fused.get("top") else [])
    key = key or hashlib.sha256(repr(sorted((k, repr(v)) for k, v in evidence.items())).encode("utf-8", "backslashreplace")).hexdigest()
    gone = missing(evidence, kind)
    # what was said: the transcript, or the subtitle a user gave when nothing was heard
    transcript, translation = text.get("transcript") or text.get("subtitle"), text.get("translation")
    channel_moves = {
        "face": None if "face" in gone else _face_move(face, kind, key),
        "voice": None if "voice" in gone else _voice_move(voice, key),
        "text": _words_move(text, transcript, translation, key, usable="text" not in gone),
    }
    order = _pick(key, "order", [("face", "voice", "text"), ("text", "face", "voice"), ("voice", "text", "face"),
                                 ("face", "text", "voice"), ("text", "voice", "face"), ("voice", "face", "text")])
    moves = [channel_moves[m] for m in order if channel_moves[m]]
    nothing = not readings(evidence) and not fused.get("probs") and not any(channel_moves.values())
    conclusion = _base_of(labels[0]) if labels else None
    conflict_s = _conflict_move(evidence, conclusion, key)
    missing_s = _missing_move(gone, key)
    if missing_s and _pick(key, "missing-first", (True, False, False)):
        moves.insert(0, missing_s)
    elif missing_s:
        moves.append(missing_s)
    if conflict_s:
        moves.append(conflict_s)
    moves.append(_conclusion(labels, key, nothing))
    return " ".join(moves)


def explain(perception: Any, labels: list[str] | None = None, key: str | None = None) -> str:
    """``compose_explanation`` for a ``Perception`` (its kind; its source names the phrasings)."""
    evidence = dict(perception.evidence())
    said = {k: v for k in ("transcript", "translation", "subtitle") if (v := getattr(perception, k, None))}
    evidence["text"] = {**(evidence.get("text") or {}), **said}  # what was said is the perception's own
    return compose_explanation(evidence, labels, kind=getattr(perception, "kind", None),
                               key=key or str(getattr(perception, "source", "") or ""))


# Grounded training targets (the starter's rows): the composed explanation for a clip whose class is known.

def grounded_explanation(perception, label: str, key: str | None = None) -> str:
    """The composed explanation (``affectllm.instruct.reasoning``): every channel that measured something, the
    conflicts between them, what was missing, then the label's names as the conclusion."""
    return explain(perception, EMOTIONS[canonical(label)][0], key=key)


def grounded_report(perception, label: str, key: str | None = None) -> str:
    """The full target text (Labels / Valence / Arousal / Explanation) for one labelled clip."""
    label = canonical(label)
    names, valence, arousal = EMOTIONS[label]
    return format_report(names, grounded_explanation(perception, label, key), valence, arousal)
