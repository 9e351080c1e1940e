"""Voice-emotion expert: a small head on pooled middle-layer features of the frozen Whisper encoder.

No second speech model: the Transcriber's own Whisper encoder runs over the clip's real length (first 30 s,
no zero-padded window; the positional table is cut to the clip) up to its middle blocks (``encode_layers``);
each chosen block's hidden states ``[1, T, D]`` are mean- and std-pooled into ``[2D]``, the blocks' pools are
concatenated (blocks 1 and 2 in the shipped head: ``[4D]``), standardised, and a linear softmax head gives
probabilities over ``BASE_CLASSES``. Why not hook the transcription's own padded 30-s pass:
a 3-s clip costs ~10x more there (7.5 s a clip measured on the shared 2 cores), which made extracting training
features for 1,898 clips infeasible, and train and inference must compute features the same way; the
real-length pass up to block 2 costs ~0.25 s of one core for a 10-s clip. Valence and arousal are the probability-weighted circumplex
positions of the classes (``affectllm.report.grounded.EMOTIONS``, after Russell 1980).

Training (``train/train_voice_expert.py``) computes features with the same functions (``encode_layers``), so
training and inference see identical numbers. Weights: ``affectllm/assets/voice_expert/voice_head.safetensors``
(about 140 kB), with the encoder blocks and the class list in its metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from affectllm.report.grounded import EMOTIONS
from affectllm.utils.paths import asset_path

BASE_CLASSES: tuple[str, ...] = tuple(EMOTIONS)  # neutral calm happy sad angry fearful disgusted surprised bored
HOP = 160  # mel hop (samples at 16 kHz); the encoder's conv stride 2 gives 20 ms a frame
MAX_MEL_FRAMES = 3000  # the first 30 s (the encoder's positional table holds 1500 frames)
MIN_SAMPLES = 8000  # 0.5 s: below this the pooled statistics are too few frames to trust
WEIGHTS_DIR = "voice_expert"
WEIGHTS_FILE = "voice_head.safetensors"


def default_weights_path() -> Path:
    """The trained head shipped inside the package."""
    return asset_path(WEIGHTS_DIR, WEIGHTS_FILE)


def clip_mel(audio: np.ndarray, n_mels: int) -> torch.Tensor:
    """Log-mel of the clip's real length (first 30 s), no padding: ``[n_mels, F]`` with F = samples // 160."""
    from whisper.audio import log_mel_spectrogram

    a = torch.from_numpy(np.ascontiguousarray(np.asarray(audio, np.float32)[: MAX_MEL_FRAMES * HOP]))
    return log_mel_spectrogram(a, n_mels)[:, :MAX_MEL_FRAMES]


@torch.no_grad()
def encode_layers(encoder: nn.Module, audio: np.ndarray, layers: list[int]) -> dict[int, np.ndarray]:
    """Pooled hidden states ``{layer: [2D]}`` of the Whisper ``encoder`` run over the clip's real length only.

    openai-whisper's ``AudioEncoder.forward`` step by step, with the positional table cut to the clip's
    ceil(F / 2) frames instead of a zero-padded 30-s window (~10x less work for a 3-s clip), and stopping after
    the deepest block asked for. Layer ``len(encoder.blocks)`` is the final output (after ``ln_post``).
    Each layer is mean- and std-pooled over time: ``[T, D]`` -> ``[2D]``.
    """
    import torch.nn.functional as F

    dtype = encoder.conv1.weight.dtype
    mel = clip_mel(audio, encoder.conv1.in_channels).to(encoder.conv1.weight.device, dtype)  # [n_mels, F]
    x = F.gelu(encoder.conv2(F.gelu(encoder.conv1(mel.unsqueeze(0)))))  # [1, D, T], T = ceil(F / 2)
    x = x.permute(0, 2, 1)  # [1, T, D]
    x = (x + encoder.positional_embedding[: x.shape[1]]).to(x.dtype)
    n, out = len(encoder.blocks), {}
    for i, block in enumerate(encoder.blocks[: max(layers) + 1]):
        x = block(x)
        if i in layers:
            out[i] = _pool(x)
    if n in layers:
        out[n] = _pool(encoder.ln_post(x))
    return out


def _pool(hidden: torch.Tensor) -> np.ndarray:
    """Mean and std over time: ``[1, T, D]`` -> ``[2D]`` float32."""
    h = hidden[0].float()  # [T, D]
    std = h.std(0, unbiased=False)
    return torch.cat([h.mean(0), std]).cpu().numpy().astype(np.float32)


def block_features(blocks: np.ndarray, layers: tuple[int, ...] | list[int]) -> np.ndarray:
    """``[N, L, 2D]`` pooled states of every block -> ``[N, 2D * len(layers)]``: the chosen blocks side by side."""
    return np.concatenate([blocks[:, i] for i in layers], -1)


class VoiceHead(nn.Module):
    """Standardise pooled features, then a linear softmax layer: ``[N, 2D]`` -> logits ``[N, C]``."""

    def __init__(self, in_dim: int, num_classes: int = len(BASE_CLASSES)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))
        self.linear = nn.Linear(in_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, 2D] -> [N, C]
        return self.linear((x - self.mean) / self.scale)


def valence_arousal(probs: np.ndarray, classes: tuple[str, ...] = BASE_CLASSES) -> tuple[float, float]:
    """Expected circumplex position under ``probs`` ([C]): (valence, arousal), each in [-1, 1]."""
    va = np.array([EMOTIONS[c][1:] for c in classes], dtype=np.float64)  # [C, 2]
    v, a = np.asarray(probs, np.float64) @ va
    return float(v), float(a)


class VoiceExpert:
    """The trained head plus the encoder blocks it reads; numpy in, probabilities out.

    ``layers``: the Whisper blocks whose pooled states ([2D] each) are concatenated, in order, into the head's
    input ([2D * len(layers)]). A single int is one block (the format of heads written before several blocks).
    """

    def __init__(self, head: VoiceHead, layers: int | tuple[int, ...], classes: tuple[str, ...] = BASE_CLASSES,
                 info: dict[str, Any] | None = None) -> None:
        self.head = head.eval().requires_grad_(False)
        self.layers = (int(layers),) if isinstance(layers, int) else tuple(int(x) for x in layers)
        self.classes, self.info = tuple(classes), info or {}

    @property
    def layer(self) -> int | tuple[int, ...]:
        """The block read (an int) or the blocks (a tuple): what ``train/train_voice_expert.py`` records."""
        return self.layers[0] if len(self.layers) == 1 else self.layers

    def features(self, pooled: dict[int, np.ndarray]) -> np.ndarray:
        """The head's input ``[2D * len(layers)]`` from ``encode_layers``' pooled states ``{layer: [2D]}``."""
        return np.concatenate([pooled[i] for i in self.layers])

    def features_of_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """The head's inputs ``[N, 2D * len(layers)]`` from cached pooled states of every block ``[N, L, 2D]``."""
        return block_features(blocks, self.layers)

    @classmethod
    def load(cls, weights: str | Path | None = None) -> VoiceExpert:
        """Build the expert from the shipped safetensors (or ``weights``)."""
        from safetensors import safe_open

        path = Path(weights) if weights is not None else default_weights_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: voice-expert weights are missing; reinstall affectllm or run "
                                    "`python train/train_voice_expert.py` from a source checkout")
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        classes = tuple(json.loads(meta["classes"]))
        head = VoiceHead(state["mean"].shape[0], len(classes))
        head.load_state_dict(state, strict=True)
        layers = tuple(int(x) for x in meta["layer"].split(","))  # "2" or "1,2"
        return cls(head, layers, classes, json.loads(meta.get("info", "{}")))

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.head.state_dict().items()}
        save_file(state, str(path), metadata={"layer": ",".join(map(str, self.layers)), "classes": json.dumps(list(self.classes)),
                                              "info": json.dumps(self.info)})

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probabilities ``[N, C]`` (rows sum to 1) for pooled features ``[N, 2D]``."""
        x = torch.as_tensor(np.asarray(features, np.float32)).reshape(-1, self.head.mean.shape[0])
        return torch.softmax(self.head(x).double(), -1).float().numpy()

    def estimate(self, audio: np.ndarray, encoder: nn.Module, voiced: bool = True) -> dict[str, Any]:
        """Evidence for one clip from ``encoder`` (the Transcriber's Whisper encoder, the one the head was
        trained on): ``probs`` over the classes, the ``top`` class, ``valence`` and ``arousal``; or
        ``probs: None`` with a ``note`` saying why nothing was measured (``voiced=False``: prosody found no
        voiced frame, i.e. silence or noise)."""
        audio = np.asarray(audio, np.float32).reshape(-1)
        if len(audio) < MIN_SAMPLES:
            return {"probs": None, "note": f"audio shorter than {MIN_SAMPLES / 16000:.1f} s"}
        if not voiced:
            return {"probs": None, "note": "no voiced speech"}
        width, blocks = encoder.ln_post.normalized_shape[0], len(self.layers)
        if 2 * width * blocks != self.head.mean.shape[0]:
            return {"probs": None, "note": f"voice head trained on a {self.head.mean.shape[0] // (2 * blocks)}-wide "
                    f"Whisper encoder, this one is {width}-wide"}
        feats = self.features(encode_layers(encoder, audio, list(self.layers)))  # [2D * blocks]
        probs = self.predict(feats)[0]  # [C]
        v, a = valence_arousal(probs, self.classes)
        return {"probs": {c: round(float(p), 4) for c, p in zip(self.classes, probs)},
                "top": self.classes[int(probs.argmax())], "valence": round(v, 3), "arousal": round(a, 3),
                "domain_distance": round(self.domain_distance(feats), 3)}

    def domain_distance(self, features: np.ndarray) -> float:
        """How far pooled features ``[2D]`` lie from the training corpora: the RMS z-score under the head's own
        standardisation (the training features' mean and std), about 1 for a clip like the acted ones."""
        z = (torch.as_tensor(np.asarray(features, np.float32)).reshape(-1) - self.head.mean) / self.head.scale
        return float(z.pow(2).mean().sqrt())


def voice_line(voice: dict) -> str | None:
    """The cue line: ``Voice expression: angry 0.71, fearful 0.12, sad 0.08`` (None without an estimate)."""
    probs = voice.get("probs")
    if not probs:
        return None
    top3 = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
    return "Voice expression: " + ", ".join(f"{k} {v:.2f}" for k, v in top3)
