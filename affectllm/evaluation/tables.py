"""Label-normalisation tables for the 12 OV-MER metrics, official and strict, computed once per resource folder.

Official (AffectGPT reference, ../shared/DATA.md rule 5), for a lower-cased, stripped label:
  M1                 sorted(format_map[label])[0]
  M2                 sorted(synonym_map[M1])[0]
  M3-Wk-Ll           the first w, in sorted order, of {w in synonym_map[f] for f in format_map[label]} that wheel k
                     knows, mapped to its level-l ancestor; a label unknown to format_map or the wheel is dropped.

Strict (reported beside, never instead of, the official numbers):
  * neutral is kept: "neutral" (and neutrality/neutrally) normalises to "neutral" under every metric, where the
    official resources drop it, so an all-neutral sample is scored instead of skipped;
  * format_map without negation chains: a surface form is not attached to a canonical name that negates it
    ("fear" is listed as a form of "fearless", so officially fear → fearless → brave → happy on wheel 2). A pair
    (form, name) is removed when the name carries a negation the form lacks: a "-less" word, or an un-/dis-/in-/
    im-/ir-/il-/non-/mis- prefix on the form's own stem.

Every label of the vocabulary is precomputed into a table, so scoring is dictionary lookups; the tables are also
cached on disk (keyed by the resources' sha256 and TABLES_VERSION) so a new process skips reading the xlsx files.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from affectllm.evaluation.resources import N_WHEELS, Wheel, WheelResources

TABLES_VERSION = 1
METRICS: tuple[str, ...] = ("M1", "M2") + tuple(f"M3-W{k}-L{lv}" for k in range(1, N_WHEELS + 1) for lv in (1, 2))
LEVEL1_METRICS: tuple[str, ...] = tuple(f"M3-W{k}-L1" for k in range(1, N_WHEELS + 1))
LEVEL2_METRICS: tuple[str, ...] = tuple(f"M3-W{k}-L2" for k in range(1, N_WHEELS + 1))
NEUTRAL_FORMS = ("neutral", "neutrality", "neutrally", "neutralness")

_LESS_RE = re.compile(r"less(?:ly|ness|nesses|es)?$")
_NEG_PREFIXES = ("non", "mis", "dis", "un", "in", "im", "ir", "il")


def wheel_map(wheel: Wheel, level: int) -> dict[str, str]:
    """Every word of the wheel → its level-1 root (level 1) or level-2 parent (level 2; a root → its
    alphabetically first child). Later rows overwrite earlier ones, as in the reference."""
    out: dict[str, str] = {}
    for l1, children in wheel.items():
        out[l1] = l1 if level == 1 else sorted(children)[0]
        for l2, leaves in children.items():
            out[l2] = l1 if level == 1 else l2
            for l3 in leaves:
                out[l3] = l1 if level == 1 else l2
    return out


def _negates(name: str, form: str) -> bool:
    """True when the canonical ``name`` carries a negation that the surface ``form`` lacks."""
    name_less = any(_LESS_RE.search(t) for t in re.split(r"[\s-]+", name))
    form_less = any(_LESS_RE.search(t) for t in re.split(r"[\s-]+", form))
    if name_less and not form_less:
        return True
    for p in _NEG_PREFIXES:
        stem = name[len(p):]
        if name.startswith(p) and len(stem) >= 4 and not form.startswith(p) and form[:4] == stem[:4]:
            return True
    return False


def strict_format_map(format_map: dict[str, list[str]]) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """format_map without (form → negating name) pairs, plus the removed pairs (for the report)."""
    out: dict[str, list[str]] = {}
    removed: list[tuple[str, str]] = []
    for form, names in format_map.items():
        keep = [n for n in names if n == form or not _negates(n, form)]
        removed.extend((form, n) for n in names if n not in keep)
        if keep:  # a form whose only names negate it (e.g. "aim" → aimless) is unknown in the strict map
            out[form] = keep
    return out, removed


def _normalise_all(label: str, fmap: dict[str, list[str]], smap: dict[str, list[str]],
                   wmaps: list[dict[str, str]]) -> list[str]:
    """The 12 normalised forms of one label ('' = dropped), in METRICS order."""
    names = fmap.get(label)
    if not names:
        return [""] * len(METRICS)
    m1 = names[0]  # values are sorted
    m2 = smap[m1][0] if m1 in smap else ""
    candidates = sorted({w for f in names for w in smap.get(f, ())})
    out = [m1, m2]
    for wm in wmaps:
        out.append(next((wm[w] for w in candidates if w in wm), ""))
    return out


@dataclass
class NormTables:
    """label → its normalised form under each metric, for the official and the strict rules."""

    fingerprint: str
    official: dict[str, tuple[str, ...]]
    strict: dict[str, tuple[str, ...]]
    removed_pairs: list[tuple[str, str]]

    def lookup(self, label: str, strict: bool = False) -> tuple[str, ...]:
        table = self.strict if strict else self.official
        return table.get(label, _EMPTY)


_EMPTY: tuple[str, ...] = ("",) * len(METRICS)


def build_tables(res: WheelResources) -> NormTables:
    wmaps = [wheel_map(res.wheels[k], lv) for k in range(N_WHEELS) for lv in (1, 2)]
    official = {lab: tuple(_normalise_all(lab, res.format_map, res.synonym_map, wmaps)) for lab in res.format_map}
    sfmap, removed = strict_format_map(res.format_map)
    strict = {lab: tuple(_normalise_all(lab, sfmap, res.synonym_map, wmaps)) for lab in sfmap}
    for form in NEUTRAL_FORMS:
        strict[form] = ("neutral",) * len(METRICS)
    return NormTables(res.fingerprint, official, strict, removed)


def _encode(tables: NormTables) -> dict:
    vocab: dict[str, int] = {}

    def ids(row: tuple[str, ...]) -> list[int]:
        return [vocab.setdefault(x, len(vocab)) for x in row]

    return {
        "version": TABLES_VERSION,
        "fingerprint": tables.fingerprint,
        "metrics": list(METRICS),
        "official": {k: ids(v) for k, v in tables.official.items()},
        "strict": {k: ids(v) for k, v in tables.strict.items()},
        "removed_pairs": tables.removed_pairs,
        "vocab": list(vocab),
    }


def _decode(blob: dict) -> NormTables:
    vocab = blob["vocab"]
    return NormTables(
        blob["fingerprint"],
        {k: tuple(vocab[i] for i in v) for k, v in blob["official"].items()},
        {k: tuple(vocab[i] for i in v) for k, v in blob["strict"].items()},
        [tuple(p) for p in blob["removed_pairs"]],
    )


def load_cached_tables(path: Path, fingerprint: str) -> NormTables | None:
    """Tables from the disk cache, or None when absent, stale or unreadable (they are then rebuilt)."""
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
        if blob.get("version") == TABLES_VERSION and blob.get("fingerprint") == fingerprint \
                and blob.get("metrics") == list(METRICS):
            return _decode(blob)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    return None


def save_cached_tables(path: Path, tables: NormTables) -> None:
    """Atomic write (temp file + rename) so concurrent scorers never read half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_encode(tables), f, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:  # a read-only cache is not an error: the tables are simply rebuilt next time
        pass
