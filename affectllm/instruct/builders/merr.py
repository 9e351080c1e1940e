"""MERR (Emotion-LLaMA) annotation JSON: ``MERR_coarse_grained.json`` / ``MERR_fine_grained.json``.

Layout of the public release (ZebangCheng/Emotion-LLaMA; keys checked against its loaders): one JSON object
``{name: {...}}`` whose entries hold ``caption`` (coarse: AU and tone descriptions joined), ``smp_reason_caption``
(fine: the LLM-synthesised reasoning), ``pseu_emotion`` (pseudo label), ``AU_list``, ``visual_prior_list``,
``audio_prior_list``, ``peak_index``. The labels also come as ``MERR_*_grained.txt`` lines ``name frames label``
(or ``name label``); transcripts as ``transcription_en_all.csv`` (``name, sentence``). The JSON is streamed entry
by entry, never loaded whole. A top-level list of entries with a ``name`` key is accepted too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from affectllm.instruct.builders._index import KeyTable, iter_csv
from affectllm.instruct.builders.base import AnnotationFileBuilder, BuildContext
from affectllm.instruct.compose import SourceSample
from affectllm.instruct.io import iter_json_items
from affectllm.instruct.labels import MERR_LABELS, canonical_label

_DESCRIPTION_KEYS = ("smp_reason_caption", "reason_caption", "caption", "description")
_LABEL_KEYS = ("pseu_emotion", "emotion", "label")
_TEXT_KEYS = ("text", "sentence", "subtitle")


def _first_str(entry: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _label_table(ctx: BuildContext, path: Path | None) -> KeyTable | None:
    """``name frames label`` / ``name label`` lines (the annotation .txt beside the JSON)."""
    if path is None:
        return None

    def items() -> Iterator[tuple[str, int, dict[str, Any]]]:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line_no, line in enumerate(f, start=1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) < 2:
                    ctx.skip("malformed row", f"{path.name}:{line_no}", parts[0], "expected 'name [frames] label'")
                    continue
                yield parts[0], line_no, {"label": parts[1] if len(parts) == 2 else parts[2]}

    return KeyTable(ctx.scratch, "merr_labels", items())


class MerrBuilder(AnnotationFileBuilder):
    name = "merr"
    summary = "MERR coarse/fine-grained JSON (Emotion-LLaMA): pseudo-labels + multimodal descriptions"
    layout = ("MERR_fine_grained.json or MERR_coarse_grained.json (fine preferred; or give the JSON as --root), "
              "optional MERR_*.txt labels and transcription_en_all.csv beside it, clips under the same folder")
    main_files = ("MERR_fine_grained.json", "MERR_coarse_grained.json")

    def samples_from(self, ctx: BuildContext, path: Path) -> Iterator[SourceSample]:
        granularity = "coarse" if "coarse" in path.name.lower() else "fine"
        labels = _label_table(ctx, ctx.locate([path.with_suffix(".txt").name], required=False))
        transcripts_path = ctx.locate(["transcription_en_all.csv"], required=False)
        transcripts = None
        if transcripts_path is not None:
            rows = ((r["name"], line, r) for line, r in iter_csv(transcripts_path, [["name"], ["sentence"]]))
            transcripts = KeyTable(ctx.scratch, "merr_text", rows)

        for key, entry in iter_json_items(path):
            where = f"{path.name}[{key!r}]"
            if isinstance(key, int) and isinstance(entry, dict):
                key = str(entry.get("name") or entry.get("video_name") or "")
            if not isinstance(entry, dict) or not key:
                ctx.skip("malformed row", where, None, "expected an object per sample (with a name)")
                continue
            name = str(key)
            label = _first_str(entry, _LABEL_KEYS)
            if label is None and labels is not None and (hit := labels.get(name)):
                label = hit[1]["label"]
            subtitle = _first_str(entry, _TEXT_KEYS)
            if subtitle is None and transcripts is not None and (hit := transcripts.get(name)):
                subtitle = hit[1]["sentence"] or None
            canon = canonical_label(label) if label else None
            video = ctx.find_media(name, "video")
            yield SourceSample(
                key=name, source=self.name, where=where, video=video, audio=video, subtitle=subtitle,
                labels=[canon] if canon else None,
                label_set=list(MERR_LABELS) if canon in MERR_LABELS else None,
                description=_first_str(entry, _DESCRIPTION_KEYS),
                meta={"granularity": granularity, **({"original_label": label} if label else {})},
            )
