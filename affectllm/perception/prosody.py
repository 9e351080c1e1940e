"""Prosody of one speech segment: pitch (YIN), loudness, speaking rate and pauses, as numbers and short cues.

Everything is plain numpy/scipy on 16 kHz mono float32 and runs in milliseconds per second of audio.
- f0: YIN (de Cheveigné & Kawahara 2002) with the cumulative-mean-normalised difference, absolute threshold
  and parabolic interpolation, on 10-ms hops, restricted to frames loud enough to be speech.
- energy: frame RMS in dBFS; speech activity is an adaptive gate between the noise floor and the peak.
- rate: syllable nuclei = voiced peaks of the smoothed energy contour (de Jong & Wempe 2009 style), or the
  units of the transcript (``speech_units``: words of spaced scripts; Han characters and Hangul blocks, which
  are syllables, and kana, which are morae, for unspaced scripts), per second of the speaking span (first to
  last active frame), judged fast or slow against that unit's own thresholds (``RATE_THRESHOLDS``).
- pauses: inactive stretches of at least ``MIN_PAUSE_S`` inside the speaking span.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from affectllm.utils.script_units import speech_units

HOP_S = 0.010
WINDOW_S = 0.025
F0_MIN, F0_MAX = 60.0, 500.0
YIN_THRESHOLD = 0.2
NUCLEUS_APERIODICITY = 0.4  # a syllable nucleus must be this periodic (YIN dip depth)
MIN_PAUSE_S = 0.25
SILENCE_DB = -70.0  # frames below this are never speech (dBFS)
# unit -> (slow below, fast above) per second. Words: English read speech ~2.5 words/s. Syllables (Han
# characters, Hangul blocks, energy nuclei): conversational Mandarin ~4-5 syllables/s, Korean ~5-6. Morae
# (kana): Japanese ~7 morae/s. A Mandarin clip counted by spaces gave ~0.5 "words"/s: always "slow".
RATE_THRESHOLDS: dict[str, tuple[float, float]] = {"word": (1.7, 3.3), "syllable": (2.5, 6.0), "mora": (4.0, 9.0),
                                                   "nucleus": (2.5, 5.5)}


@dataclass
class Prosody:
    """Prosodic summary of a stretch of audio. f0 fields are None when nothing is voiced."""

    duration_s: float
    speech_s: float  # speaking span: first to last active frame
    voiced_fraction: float  # of active frames
    f0_mean_hz: float | None
    f0_std_hz: float | None
    f0_min_hz: float | None  # 5th percentile
    f0_max_hz: float | None  # 95th percentile
    f0_range_semitones: float | None
    energy_mean_db: float  # dBFS over active frames (all frames when none is active)
    energy_std_db: float
    syllables_per_s: float
    words_per_s: float | None  # when a word count was given
    pause_count: int
    pause_total_s: float
    longest_pause_s: float
    rate_unit: str = "nucleus"  # what ``rate_per_s`` counts: word | syllable | mora (transcript) or nucleus
    rate_per_s: float = 0.0  # the speaking rate in that unit (``RATE_THRESHOLDS`` judge it)

    @property
    def f0_range_hz(self) -> float | None:
        return None if self.f0_min_hz is None or self.f0_max_hz is None else self.f0_max_hz - self.f0_min_hz

    def to_dict(self, digits: int = 3) -> dict[str, float | int | None]:
        """JSON-ready values, rounded."""
        return {k: (round(v, digits) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def frame_signal(audio: np.ndarray, length: int, hop: int) -> np.ndarray:
    """``[S]`` -> ``[F, length]`` overlapping frames (zero-padded at the end), a view where possible."""
    if audio.size < length:
        audio = np.pad(audio, (0, length - audio.size))
    n = 1 + (audio.size - length) // hop
    return np.lib.stride_tricks.sliding_window_view(audio, length)[::hop][:n]


def yin(audio: np.ndarray, sr: int = 16000, fmin: float = F0_MIN, fmax: float = F0_MAX,
        hop_s: float = HOP_S, threshold: float = YIN_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """YIN pitch per hop: (f0 Hz ``[F]`` with NaN where unvoiced, aperiodicity ``[F]`` in [0, 1+])."""
    hop = int(round(hop_s * sr))
    tau_min, tau_max = int(sr // fmax), int(np.ceil(sr / fmin))
    w = max(tau_max, int(WINDOW_S * sr))  # integration window
    frames = frame_signal(audio.astype(np.float64), w + tau_max, hop)  # [F, W + tau_max]
    n_fft = 1 << int(np.ceil(np.log2(2 * (w + tau_max))))
    spec_a = np.fft.rfft(frames[:, :w], n_fft)
    spec_b = np.fft.rfft(frames, n_fft)
    cross = np.fft.irfft(np.conj(spec_a) * spec_b, n_fft)[:, : tau_max + 1]  # [F, tau_max+1] sum a_j b_{j+tau}
    csum = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    energy_lag = csum[:, taus + w] - csum[:, taus]  # [F, tau_max+1] sum of x_{j+tau}^2
    diff = np.maximum(csum[:, [w]] + energy_lag - 2.0 * cross, 0.0)  # [F, tau_max+1]
    cum = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
    f0 = np.full(frames.shape[0], np.nan)
    aperiodicity = cmnd[:, tau_min:].min(axis=1)
    search = cmnd[:, tau_min:tau_max]  # [F, L]
    below = search < threshold
    for i in np.flatnonzero(below.any(axis=1)):
        t = int(np.argmax(below[i]))
        while t + 1 < search.shape[1] and search[i, t + 1] < search[i, t]:
            t += 1  # descend to the local minimum of the dip
        tau = t + tau_min
        if 1 <= tau < tau_max:  # parabolic interpolation of the minimum
            a, b, c = cmnd[i, tau - 1], cmnd[i, tau], cmnd[i, tau + 1]
            denom = a - 2 * b + c
            shift = 0.5 * (a - c) / denom if abs(denom) > 1e-12 else 0.0
            tau_f = tau + float(np.clip(shift, -1.0, 1.0))
        else:
            tau_f = float(tau)
        f0[i] = sr / tau_f
    return f0, aperiodicity


def frame_energy_db(audio: np.ndarray, sr: int = 16000, hop_s: float = HOP_S) -> np.ndarray:
    """RMS level per hop in dBFS over ``WINDOW_S`` windows. [F]"""
    frames = frame_signal(audio.astype(np.float64), int(WINDOW_S * sr), int(round(hop_s * sr)))
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def activity_gate(energy_db: np.ndarray) -> np.ndarray:
    """Speech-active frames: above the noise floor + 6 dB (capped at peak - 10 dB, so steady sounds count) and
    within 35 dB of the peak and above ``SILENCE_DB``. [F] bool"""
    floor, peak = np.percentile(energy_db, 10), np.percentile(energy_db, 99)
    threshold = max(SILENCE_DB, min(floor + 6.0, peak - 10.0), peak - 35.0)
    return energy_db > threshold


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``mask`` is True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def count_syllables(energy_db: np.ndarray, periodic: np.ndarray, hop_s: float = HOP_S) -> int:
    """Syllable nuclei: peaks of the 30-ms-smoothed energy, >= 2 dB prominent, >= 100 ms apart, at periodic
    (vowel-like) frames. 7.2 ± 0.4 nuclei on RAVDESS's 7-syllable "Kids are talking by the door"."""
    from scipy.signal import find_peaks

    if energy_db.size < 3:
        return 0
    smooth = np.convolve(np.pad(energy_db, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    peaks, _ = find_peaks(smooth, prominence=2.0, distance=max(1, int(round(0.1 / hop_s))))
    return int(np.sum(periodic[peaks]))


def analyse_prosody(audio: np.ndarray, sr: int = 16000, words: int | None = None, text: str | None = None) -> Prosody:
    """Prosodic features of ``audio`` (``[S]`` float mono at ``sr``); ``words`` = word count if known, or
    ``text`` = the transcript, counted in its script's unit (``speech_units``)."""
    unit = "word" if words is not None else "nucleus"
    if text is not None and words is None:
        words, unit = speech_units(text)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    duration = audio.size / sr if sr else 0.0
    energy = frame_energy_db(audio, sr)  # [F]
    f0, aperiodicity = yin(audio, sr)  # [F'] (same hop and frame starts; F' <= F)
    n = min(energy.size, f0.size)
    energy, f0, aperiodicity = energy[:n], f0[:n], aperiodicity[:n]
    active = activity_gate(energy) if n else np.zeros(0, dtype=bool)
    voiced = active & np.isfinite(f0)
    active_idx = np.flatnonzero(active)
    if active_idx.size:
        first, last = int(active_idx[0]), int(active_idx[-1]) + 1
        speech_s = (last - first) * HOP_S
        pauses = [(b - a) * HOP_S for a, b in _runs(~active[first:last]) if (b - a) * HOP_S >= MIN_PAUSE_S]
        level = energy[active]
    else:
        speech_s, pauses, level = 0.0, [], energy
    f0_voiced = f0[voiced]
    if f0_voiced.size:
        lo, hi = np.percentile(f0_voiced, [5, 95])
        f0_stats = (float(f0_voiced.mean()), float(f0_voiced.std()), float(lo), float(hi), float(12 * np.log2(hi / lo)))
    else:
        f0_stats = (None, None, None, None, None)
    syllables = count_syllables(energy, active & (aperiodicity < NUCLEUS_APERIODICITY))
    rate = (words if words is not None else syllables) / speech_s if speech_s > 0 else 0.0
    return Prosody(
        duration_s=duration,
        speech_s=speech_s,
        voiced_fraction=float(voiced.sum() / max(1, active.sum())),
        f0_mean_hz=f0_stats[0],
        f0_std_hz=f0_stats[1],
        f0_min_hz=f0_stats[2],
        f0_max_hz=f0_stats[3],
        f0_range_semitones=f0_stats[4],
        energy_mean_db=float(level.mean()) if level.size else SILENCE_DB,
        energy_std_db=float(level.std()) if level.size else 0.0,
        syllables_per_s=syllables / speech_s if speech_s > 0 else 0.0,
        words_per_s=(words / speech_s if speech_s > 0 else 0.0) if unit == "word" else None,
        pause_count=len(pauses),
        pause_total_s=float(sum(pauses)),
        longest_pause_s=float(max(pauses, default=0.0)),
        rate_unit=unit,
        rate_per_s=float(rate),
    )


def describe_prosody(p: Prosody) -> list[str]:
    """Short text cues for the language model, e.g. ["high, variable pitch", "loud", "fast speech"]."""
    if p.speech_s <= 0 or p.f0_mean_hz is None:
        return ["no voiced speech"] if p.speech_s <= 0 else ["speech without clear pitch (whisper or noise)"]
    cues: list[str] = []
    height = "high" if p.f0_mean_hz > 230 else "low" if p.f0_mean_hz < 110 else ""
    spread = p.f0_range_semitones or 0.0
    shape = "variable" if spread > 10 else "flat" if spread < 4 else ""
    if height or shape:
        cues.append(f"{', '.join(x for x in (height, shape) if x)} pitch")
    if p.energy_mean_db > -20:
        cues.append("loud")
    elif p.energy_mean_db < -38:
        cues.append("quiet")
    if p.energy_std_db > 9:
        cues.append("strongly varying loudness")
    slow, fast = RATE_THRESHOLDS.get(p.rate_unit, RATE_THRESHOLDS["nucleus"])
    per_s = p.rate_per_s if p.rate_unit != "nucleus" or p.rate_per_s else p.syllables_per_s
    rate = "fast speech" if per_s > fast else "slow speech" if per_s < slow else ""
    if rate:
        cues.append(rate)
    if p.longest_pause_s >= 1.0 or (p.speech_s > 0 and p.pause_total_s / p.speech_s > 0.3):
        cues.append("long pauses")
    elif p.pause_count >= 4 and p.pause_count / max(p.speech_s, 1e-6) > 0.4:
        cues.append("many short pauses")
    return cues or ["even, moderate voice"]
