"""The package's import graph: each folder is one layer, imports only point down, and nothing imports in a circle.

``LAYERS`` (top to bottom) is the one place the order is declared; docs/architecture.md explains it. A module may
import a module of a lower layer or of its own folder; a folder that is not listed fails the test, so a new one
gets a place on purpose. Imports inside functions count (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

from affectllm.utils.moved import MOVED

ROOT = Path(__file__).resolve().parents[2] / "affectllm"

LAYERS: list[tuple[str, ...]] = [
    ("affectllm", "affectllm.__main__"),  # the package's face: lazy public names, ``python -m affectllm``
    ("affectllm.cli",),  # commands: parse arguments, call one surface
    ("affectllm.api", "affectllm.chat", "affectllm.web"),  # surfaces over the ones below
    ("affectllm.serving", "affectllm.captioning", "affectllm.evaluation", "affectllm.training"),
    ("affectllm.testing",),  # tiny random models of the real architecture (tests, ``source: tiny`` recipes)
    ("affectllm.loading",),  # a name or folder -> model + processor (starters, registry, converted checkpoints)
    ("affectllm.engine", "affectllm.compat"),  # perceive -> render -> decode -> report; AffectGPT download+convert
    ("affectllm.model",),  # config, modeling, processing, projector, towers, LM, checkpoint
    ("affectllm.perception",),  # frozen experts: ASR, faces, expression, voice, prosody, text cues, fusion
    ("affectllm.instruct",),  # instruction-data schema, prompts and builders
    ("affectllm.report",),  # report schema, parsing, faithfulness, quote guard, grounded reports
    ("affectllm.media",),  # one decode policy: frames, audio, segments, the MediaItem
    ("affectllm.offline",),  # registry weights assembled offline
    ("affectllm.utils",),  # paths, hashing, quiet logging, moved-module aliases
]


def modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = ["affectllm", *f.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in the file), resolved to the deepest existing one."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        names: list[str] = []
        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Import):
                names += [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - n.level + 1] + ([base] if base else []))
                names += [base] + [f"{base}.{a.name}" for a in n.names]
        targets = {resolve(x) for x in names if x.split(".")[0] == "affectllm"}
        # a package's __init__ importing its own children is not a dependency on itself
        edges[m] = {t for t in targets if t and t != m and not (f.name == "__init__.py" and t.startswith(m + "."))}
        edges[m] |= {f"old:{x}" for x in names if x in MOVED}
    return edges


def layer_of(module: str) -> int | None:
    best = None
    for i, entries in enumerate(LAYERS):
        for e in entries:
            if module == e or (e != "affectllm" and module.startswith(e + ".")):
                if best is None or len(e) > best[1]:
                    best = (i, len(e))
    return None if best is None else best[0]


def home(module: str) -> str:
    """The listed folder or root module a module belongs to."""
    return max((e for es in LAYERS for e in es if module == e or module.startswith(e + ".")), key=len,
               default=module)


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


MODS = modules()
EDGES = imports(MODS)


def test_every_module_has_a_layer():
    assert [m for m in MODS if layer_of(m) is None] == []


def test_no_import_circles():
    assert circles({m: {t for t in ts if t in MODS} for m, ts in EDGES.items()}) == []


def test_imports_only_point_down():
    upward = [f"{m} -> {t}" for m, ts in sorted(EDGES.items()) for t in sorted(ts) if t in MODS
              and home(m) != home(t) and not layer_of(t) > layer_of(m)]
    assert upward == []


def test_library_code_never_imports_the_testing_helpers():
    # ``source: tiny`` recipes build from affectllm.model.tiny; affectllm.testing only serves tests
    assert [f"{m} -> {t}" for m, ts in sorted(EDGES.items()) for t in sorted(ts)
            if home(t) == "affectllm.testing" and home(m) != "affectllm.testing"] == []


def test_package_code_uses_the_new_module_paths():
    assert [f"{m} imports {t[4:]}" for m, ts in sorted(EDGES.items()) for t in sorted(ts) if t.startswith("old:")] == []


def test_at_most_three_modules_at_the_root():
    loose = sorted(f.name for f in ROOT.glob("*.py") if f.name not in ("__init__.py", "__main__.py"))
    assert len(loose) <= 3, loose


def test_the_walker_sees_lazy_imports_and_a_planted_circle():
    # the walk itself is checked: a function-level import is an edge, and a two-module loop is found
    assert "affectllm.model.media_inputs" in EDGES["affectllm.model.processing_affectllm"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("affectllm.model.towers.vision") == layer_of("affectllm.model") > layer_of("affectllm.engine")
