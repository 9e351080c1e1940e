"""The caption record: one JSON object per input, built from the reports of its segments.

Every record has the same keys (``RECORD_KEYS``) so JSONL and CSV agree. Everything except ``timing`` is a
function of the input, the model and the options: the same input gives byte-identical JSON apart from
``timing`` (``strip_timing`` removes it for comparisons). Inputs cut into several segments keep one entry per
segment in ``segments`` and a summary at the top level: labels ordered by how many segments name them,
duration-weighted valence/arousal, the transcripts joined, the face evidence pooled over frames with a face.
The summary only combines what the model said per segment; it never invents labels.

File names that are not valid UTF-8 (Python holds their bytes as lone surrogates, ``os.fsdecode``) are stored
losslessly as text: ``escape_name`` writes each undecodable byte as ``\\xNN`` and doubles backslashes, and the
record's ``name_encoding`` is then ``ESCAPED_BYTES`` (``None`` when ``id`` and ``source`` are plain UTF-8);
``unescape_name`` gives the original path back. Every record is therefore valid UTF-8 in JSONL and CSV alike.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

RECORD_KEYS = ("id", "source", "status", "labels", "explanation", "valence", "arousal", "transcript", "language",
               "translation", "faithful", "faithfulness_problems", "explanation_source", "explanation_replaced", "evidence", "segments", "model", "error", "subtitle", "raw", "name_encoding", "timing")
TIMING_KEYS = ("timing",)
ESCAPED_BYTES = "utf-8; undecodable bytes as \\xNN, backslashes doubled"  # the name_encoding of escaped names
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPE = re.compile(r"\\\\|\\x([0-9a-f]{2})")
UNTRAINED_NOTE = ("untrained: the projector and LoRA are freshly initialised (no starter adapter is installed), "
                  "so labels and explanation are not yet meaningful; transcript and evidence are real")


def model_info(model: Any) -> dict[str, Any]:
    """What produced a record: model name, weight fingerprint, and whether its trainable parts were trained."""
    trained = bool(getattr(model, "trained", False))
    info: dict[str, Any] = {"name": str(getattr(model, "source_name", type(model).__name__)),
                            "fingerprint": str(model.fingerprint), "trained": trained}
    if not trained:
        info["note"] = UNTRAINED_NOTE
    return info


def empty_record(rid: str, source: str, model: dict[str, Any], subtitle: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    rec.update(id=rid, source=source, status="error", labels=[], explanation="", evidence={}, segments=[],
               model=model, subtitle=subtitle, raw="", timing={})
    return rec


def error_record(rid: str, source: str, model: dict[str, Any], message: str,
                 subtitle: str | None = None) -> dict[str, Any]:
    rec = empty_record(rid, source, model, subtitle)
    rec["error"] = message
    return rec


def segment_entry(start: float, end: float, kind: str, report: Any | None, error: str | None) -> dict[str, Any]:
    """One segment's report (or its error), times in seconds."""
    entry: dict[str, Any] = {"start": round(float(start), 3), "end": round(float(end), 3), "kind": kind,
                             "status": "ok" if report is not None else "error"}
    if report is not None:
        entry.update(labels=list(report.labels), explanation=report.explanation, valence=report.valence,
                     arousal=report.arousal, transcript=report.transcript, language=report.language,
                     translation=report.translation, faithful=report.faithful,
                     faithfulness_problems=list(report.faithfulness_problems), evidence=report.evidence,
                     explanation_source=report.explanation_source,
                     explanation_replaced=list(report.explanation_replaced), raw=report.raw)
    else:
        entry["error"] = error
    return entry


def fill_record(rec: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Set the top-level fields from the segment entries (one entry: copied; several: summarised)."""
    ok = [e for e in entries if e["status"] == "ok"]
    if not ok:
        rec["status"] = "error"
        rec["error"] = entries[0]["error"] if len(entries) == 1 else (
            f"{rec['source']}: all {len(entries)} segments failed; first: {entries[0]['error']}")
        rec["segments"] = entries if len(entries) > 1 else []
        return rec
    rec["status"], rec["error"] = "ok", None
    if len(entries) == 1:
        e = ok[0]
        for k in ("labels", "explanation", "valence", "arousal", "transcript", "language", "translation",
                  "faithful", "faithfulness_problems", "explanation_source", "explanation_replaced", "evidence", "raw"):
            rec[k] = e.get(k)
        rec["segments"] = []
        return rec
    weights = [max(e["end"] - e["start"], 1e-3) for e in ok]
    counts = Counter(lab for e in ok for lab in e["labels"])
    first = {lab: i for i, lab in reversed(list(enumerate(lab for e in ok for lab in e["labels"])))}
    rec["labels"] = sorted(counts, key=lambda lab: (-counts[lab], first[lab]))
    rec["explanation"] = " ".join(f"[{e['start']:.1f}-{e['end']:.1f} s] {e['explanation']}".strip() for e in ok)
    rec["valence"] = _weighted([e["valence"] for e in ok], weights)
    rec["arousal"] = _weighted([e["arousal"] for e in ok], weights)
    rec["transcript"] = " ".join(e["transcript"] for e in ok if e["transcript"]) or None
    langs = Counter(e["language"] for e in ok if e["language"])
    rec["language"] = langs.most_common(1)[0][0] if langs else None
    rec["translation"] = " ".join(e["translation"] for e in ok if e.get("translation")) or None
    rec["faithful"] = all(e.get("faithful") is not False for e in ok)  # every segment's explanation checked
    rec["faithfulness_problems"] = [f"[{e['start']:.1f}-{e['end']:.1f} s] {x}" for e in ok
                                    for x in e.get("faithfulness_problems") or []]
    sources = {e.get("explanation_source") for e in ok} - {None}
    rec["explanation_source"] = "composed" if "composed" in sources else (sources.pop() if sources else None)
    rec["explanation_replaced"] = [f"[{e['start']:.1f}-{e['end']:.1f} s] {x}" for e in ok
                                   for x in e.get("explanation_replaced") or []]
    rec["evidence"] = pool_evidence([e["evidence"] for e in ok], weights)
    rec["raw"] = ""
    rec["segments"] = entries
    return rec


def _weighted(values: list[float | None], weights: list[float]) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None]
    if not pairs:
        return None
    return round(sum(v * w for v, w in pairs) / sum(w for _, w in pairs), 4)


def pool_evidence(evidence: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
    """Evidence of several segments as one: face probabilities averaged over frames with a face, numeric voice
    features and voice-expert probabilities duration-weighted, cues and emotion words in first-seen order, counts
    summed; the fused estimate recomputed from the pooled face, voice and words."""
    faces = [e.get("face") or {} for e in evidence]
    face: dict[str, Any] = {"frames": sum(int(f.get("frames", 0)) for f in faces),
                            "frames_with_face": sum(int(f.get("frames_with_face", 0)) for f in faces)}
    with_probs = [f for f in faces if f.get("mean_probs")]
    if with_probs:
        n = [max(int(f.get("frames_with_face", 1)), 1) for f in with_probs]
        classes = list(with_probs[0]["mean_probs"])
        mean = {c: round(sum(f["mean_probs"][c] * k for f, k in zip(with_probs, n, strict=True)) / sum(n), 4)
                for c in classes}
        face["mean_probs"] = mean
        face["top"] = max(mean, key=lambda c: mean[c])
    voices = [(e.get("voice") or {}, w) for e, w in zip(evidence, weights, strict=True)]
    voice: dict[str, Any] = {}
    numeric = sorted({k for v, _ in voices for k, x in v.items() if isinstance(x, (int, float)) and not isinstance(x, bool)})
    for k in numeric:
        voice[k] = _weighted([v.get(k) if isinstance(v.get(k), (int, float)) else None for v, _ in voices],
                             [w for _, w in voices])
    voice["cues"] = _ordered_union(v.get("cues") or [] for v, _ in voices)
    heard = [(v["probs"], w) for v, w in voices if v.get("probs")]  # voice-expert probabilities, duration-weighted
    if heard:
        total = sum(w for _, w in heard)
        voice["probs"] = {c: round(sum(p[c] * w for p, w in heard) / total, 4) for c in heard[0][0]}
        voice["top"] = max(voice["probs"], key=voice["probs"].get)
    texts = [e.get("text") or {} for e in evidence]
    text: dict[str, Any] = {}
    for key in dict.fromkeys(k for t in texts for k in t):  # lists: union; flags: any; counts: sum
        values = [t[key] for t in texts if key in t]
        if all(isinstance(v, bool) for v in values):
            text[key] = any(values)
        elif all(isinstance(v, (int, float)) for v in values):
            text[key] = sum(values)
        elif all(isinstance(v, list) for v in values):
            text[key] = _ordered_union(values)
        else:
            text[key] = values[0]
    from affectllm.perception.fusion import fuse_evidence

    return {"face": face, "voice": voice, "text": text, "fused": fuse_evidence(face, voice, text)}


def _ordered_union(lists: Any) -> list[Any]:
    out: list[Any] = []
    for items in lists:
        for x in items:
            if x not in out:
                out.append(x)
    return out


def strip_timing(rec: dict[str, Any]) -> dict[str, Any]:
    """The record without its timing fields: what must be identical for identical input."""
    return {k: v for k, v in rec.items() if k not in TIMING_KEYS}


def has_raw_bytes(text: str) -> bool:
    """True when ``text`` holds lone surrogates (undecodable file-name bytes) and cannot be written as UTF-8."""
    return _SURROGATE.search(text) is not None


def escape_name(name: str) -> str:
    """``name`` as valid UTF-8 text: unchanged when it is, else backslashes doubled and bad bytes as ``\\xNN``."""
    if not has_raw_bytes(name):
        return name
    raw = name.replace("\\", "\\\\").encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "backslashreplace")


def unescape_name(text: str) -> str:
    """The inverse of ``escape_name`` for a name whose record says ``name_encoding == ESCAPED_BYTES``."""
    out, pos = bytearray(), 0
    for m in _ESCAPE.finditer(text):
        out += text[pos:m.start()].encode("utf-8")
        out += bytes([int(m.group(1), 16)]) if m.group(1) else b"\\"
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return out.decode("utf-8", "surrogateescape")


def portable_record(rec: dict[str, Any]) -> dict[str, Any]:
    """The record with every string writable as UTF-8: ``id``/``source`` escaped losslessly (and flagged in
    ``name_encoding``), raw bytes inside messages shown as ``\\xNN``. Records without such bytes are returned
    as they are."""
    if not any(has_raw_bytes(x) for x in _strings(rec)):
        return rec
    out = {k: _escape_text(v) for k, v in rec.items()}
    if any(isinstance(rec.get(k), str) and has_raw_bytes(rec[k]) for k in ("id", "source")):
        out["id"], out["source"] = escape_name(str(rec["id"])), escape_name(str(rec["source"]))
        out["name_encoding"] = ESCAPED_BYTES
    return out


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _escape_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
            if has_raw_bytes(value) else value
    if isinstance(value, dict):
        return {_escape_text(k): _escape_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_escape_text(v) for v in value]
    return value
