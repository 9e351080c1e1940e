"""Perception of one input: decode it, run the cue experts, and describe what they found.

``perceive`` turns a path (or arrays) into a ``Perception``: sampled frames with timestamps, the 16 kHz
audio track, the main face's expression probabilities, prosody, and the Whisper transcript with its
language. ``cue_lines`` renders that as short text lines the language model reads in its prompt; ``evidence``
is the same information as numbers for the report. Experts load once per process (``Experts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectllm.media.item import MediaItem


@dataclass
class Perception:
    source: str | None
    kind: str  # video | audio | image | text
    duration: float = 0.0
    frames: np.ndarray | None = None  # [T, H, W, 3] uint8
    timestamps: np.ndarray | None = None  # [T] s
    audio: np.ndarray | None = None  # [S] float32 16 kHz
    face: dict[str, Any] = field(default_factory=dict)
    voice: dict[str, Any] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=dict)
    fused: dict[str, Any] = field(default_factory=dict)  # perception.fusion.fuse of the experts' probabilities
    transcript: str | None = None
    language: str | None = None
    translation: str | None = None  # English rendering of non-English speech (Whisper translate)
    subtitle: str | None = None
    face_crops: np.ndarray | None = None  # [T', 48, 48, 3] main-face crops
    face_times: np.ndarray | None = None

    def media_item(self) -> MediaItem | None:
        """The decoded media as the processor's MediaItem (face crops already made where available)."""
        if self.kind == "text":
            return None
        kind = "audio" if self.frames is None else ("image" if self.kind == "image" else "video")
        return MediaItem(kind, vision=self.frames, timestamps=self.timestamps, audio=self.audio, source=self.source)

    def evidence(self) -> dict[str, Any]:
        return {"face": self.face, "voice": self.voice, "text": self.text, "fused": self.fused}


class Experts:
    """The cue experts, loaded lazily and kept for the process: Whisper ASR, face expression, prosody, voice
    expression (a head on the ASR's Whisper encoder: no Whisper, no voice expert), and the text-emotion expert
    (``perception.text_expert``: reads the subtitle, transcript or translation; None when its files are missing)."""

    def __init__(self, whisper: str | None = "base", device: str = "cpu", faces: bool = True,
                 voice: bool = True, text: bool = True) -> None:
        self.whisper_name = whisper
        self.device = device
        self.faces = faces
        self.use_voice = voice
        self.use_text = text
        self._asr = None
        self._expr = None
        self._voice = None

    @property
    def text_expert(self):
        if not self.use_text:
            return None
        from affectllm.perception.text_expert import shipped_expert

        return shipped_expert()

    @property
    def asr(self):
        if self._asr is None and self.whisper_name:
            from affectllm.perception.asr import Transcriber

            self._asr = Transcriber(self.whisper_name, device=self.device)
        return self._asr

    @property
    def expression(self):
        if self._expr is None and self.faces:
            from affectllm.perception.expression import FaceExperts

            self._expr = FaceExperts.load(device=self.device)
        return self._expr

    @property
    def voice(self):
        if self._voice is None and self.use_voice and self.whisper_name:
            from affectllm.perception.voice import VoiceExpert

            self._voice = VoiceExpert.load()
        return self._voice


def perceive(source: str | Path | None = None, *, video: Any = None, audio: Any = None, image: Any = None,
             subtitle: str | None = None, experts: Experts | None = None, num_frames: int = 8,
             start: float | None = None, end: float | None = None, frame_sampling: str = "uniform") -> Perception:
    """Decode one input and run every available expert on it. Raises ``MediaError`` for unreadable input.

    ``num_frames`` / ``frame_sampling``: the model's vision-tower options (``VisionTowerSpec``), so the frames
    perceived are the frames the model's processor would pick from the same input."""
    from affectllm.media import MediaError, load_audio, load_image, probe
    from affectllm.media.sampling import load_video_frames, select_frames

    sampling = {"num_frames": num_frames, "frame_sampling": frame_sampling}

    experts = experts or Experts()
    path = source or next((x for x in (video, audio, image) if isinstance(x, (str, Path))), None)
    p = Perception(source=str(path) if path is not None else None, kind="text", subtitle=subtitle)
    if path is not None:
        info = probe(path)
        p.kind, p.duration = info.kind, float(info.duration_s or 0.0)
        if info.kind == "image":
            p.frames, p.timestamps = load_image(path)[None], np.zeros(1, np.float32)
        elif info.has_video:
            frames, ts = load_video_frames(path, sampling, start=start, end=end, max_side=1280)
            p.frames, p.timestamps = select_frames(frames, ts, sampling)
        if info.has_audio:
            try:
                p.audio = load_audio(path, sr=16000, start=start, end=end)
            except MediaError:
                p.audio = None
        if start is not None or end is not None:
            p.duration = float((end or p.duration) - (start or 0.0))
    else:  # arrays given directly
        if image is not None:
            from affectllm.media.item import _load_image

            p.kind, p.frames, p.timestamps = "image", _load_image(image)[None], np.zeros(1, np.float32)
        if video is not None:
            frames = np.asarray(video["frames"])
            ts = np.asarray(video.get("timestamps", np.arange(len(frames))), np.float32)
            p.kind, (p.frames, p.timestamps) = "video", select_frames(frames, ts, sampling)
            audio = video.get("audio", audio)
        if audio is not None:
            p.audio = np.asarray(audio, np.float32).reshape(-1)
            p.kind = "audio" if p.frames is None else p.kind
            p.duration = max(p.duration, len(p.audio) / 16000)
    _run_experts(p, experts)
    return p


def _run_experts(p: Perception, experts: Experts) -> None:
    if p.frames is not None and experts.faces:
        _faces(p, experts)
    if p.audio is not None and len(p.audio) >= 1600:
        from affectllm.perception.prosody import analyse_prosody, describe_prosody

        if experts.asr is not None:
            tr = experts.asr.transcribe(p.audio)
            p.transcript, p.language, p.translation = tr.text.strip(), tr.language, tr.translation
            p.text["language"] = {"code": tr.language, "probability": tr.language_probability,
                                  "uncertain": tr.language_uncertain}
        pro = analyse_prosody(p.audio, sr=16000, text=p.transcript or None)  # words, or syllables of unspaced scripts
        p.voice = {**_as_dict(pro), "cues": describe_prosody(pro)}
        if experts.voice is not None and experts.asr is not None:
            p.voice.update(experts.voice.estimate(p.audio, experts.asr.model.encoder, pro.f0_mean_hz is not None))
    elif p.audio is not None:
        p.voice = {"cues": ["audio too short to analyse"]}
    from affectllm.perception.lexicon import text_cues

    words = (p.transcript or "") + " " + (p.subtitle or "")
    p.text = {"asr": p.transcript is not None, "transcript": p.transcript, "translation": p.translation,
              "language": p.text.get("language"),
              **text_cues(p.transcript, p.language, p.translation, p.subtitle),
              "exclamations": words.count("!") + words.count("！"), "questions": words.count("?") + words.count("？")}
    reader = experts.text_expert
    expert = reader.read(p.transcript, p.language, p.translation, p.subtitle) if reader is not None else None
    if expert is not None:
        p.text["expert"] = expert
    if p.audio is not None or p.frames is not None or p.text.get("expert"):  # the text expert may stand alone
        from affectllm.perception.fusion import fuse_evidence

        p.fused = fuse_evidence(p.face, p.voice, p.text)


def _faces(p: Perception, experts: Experts) -> None:
    from affectllm.media import Frames
    from affectllm.perception.expression import EXPRESSION_CLASSES
    from affectllm.perception.faces import default_detector, track_main_face

    frames = Frames(images=p.frames, timestamps=p.timestamps)
    detector = default_detector()  # face-api's Tiny Face Detector when shipped, else Haar
    track = track_main_face(frames, detector)
    crops, kept = experts.expression.crops(frames, track)  # [T', 48, 48, 3]: the expert's own crop recipe
    p.face = {"frames": int(len(p.frames)), "frames_with_face": int(len(crops))}
    if len(crops) == 0:
        return
    p.face_crops, p.face_times = crops, np.asarray(p.timestamps)[np.asarray(kept)]
    probs, per_expert, _ = experts.expression.predict_track(frames, track)  # pooled [T', 7], {name: [T', 7]}
    mean = probs.mean(0)
    boxes = [b for b in track.boxes if b is not None]
    heights = [b.h / float(p.frames[i].shape[0]) for i, b in enumerate(track.boxes) if b is not None]
    p.face["detector"] = type(detector).__name__
    # tiny detector: its mean confidence on the main face, in (0, 1]; Haar: a level weight > 1 (fusion caps it at 1)
    p.face["detection_score"] = round(float(np.mean([b.score for b in boxes])), 3)
    p.face["face_size"] = round(float(np.mean(heights)), 3)  # face height / frame height
    p.face["mean_probs"] = {c: round(float(v), 4) for c, v in zip(EXPRESSION_CLASSES, mean)}
    p.face["experts"] = {name: {c: round(float(v), 4) for c, v in zip(EXPRESSION_CLASSES, pr.mean(0))}
                         for name, pr in per_expert.items()}
    p.face["top"] = EXPRESSION_CLASSES[int(mean.argmax())]
    p.face["per_frame"] = [{"t": round(float(t), 3), "top": EXPRESSION_CLASSES[int(row.argmax())],
                            "p": round(float(row.max()), 3)} for t, row in zip(p.face_times, probs)]


def _as_dict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    d = asdict(obj) if is_dataclass(obj) else dict(obj)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def cue_lines(p: Perception) -> list[str]:
    """Short text cues the language model reads: what was said, what the face did, how the voice sounded."""
    lines = []
    if p.transcript:
        lang = (p.text.get("language") or {}) if p.language else {}
        if lang.get("uncertain"):
            tag = f" (language uncertain: {p.language}? p={lang['probability']:.2f})"
        else:
            tag = f" ({p.language}, p={lang['probability']:.2f})" if lang else (f" ({p.language})" if p.language else "")
        lines.append(f'Speech{tag}: "{p.transcript}"')
        if p.translation:
            lines.append(f'Translation (en): "{p.translation}"')
    elif p.audio is not None and p.text.get("asr"):
        lines.append("Speech: none recognised")
    if p.subtitle:
        lines.append(f'Subtitle: "{p.subtitle}"')
    if p.frames is not None:
        if p.face.get("mean_probs"):
            top3 = sorted(p.face["mean_probs"].items(), key=lambda kv: -kv[1])[:3]
            probs = ", ".join(f"{k} {v:.2f}" for k, v in top3)
            lines.append(f"Face: {probs} (main face in {p.face['frames_with_face']}/{p.face['frames']} frames)")
        else:
            lines.append("Face: no face visible")
    if p.voice.get("cues"):
        lines.append("Voice: " + "; ".join(p.voice["cues"]))
    from affectllm.perception.fusion import fused_line
    from affectllm.perception.lexicon import text_cue_lines
    from affectllm.perception.text_expert import expert_line
    from affectllm.perception.voice import voice_line

    lines += [x for x in (voice_line(p.voice), expert_line(p.text), fused_line(p.fused)) if x]
    lines += text_cue_lines(p.text)
    return lines
