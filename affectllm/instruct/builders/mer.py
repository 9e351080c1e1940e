"""MER-family CSV layouts: MER-Caption+ and OV-MERD (MER2025 tracks 2/3), EMER-V1 and EMER-V2.

Column names follow the public releases (zeroQiaoba/MERTools MER2025, zeroQiaoba/AffectGPT EMER):

- ``track2_train_{mercaptionplus,ovmerd}.csv``: ``name, openset`` (a list-string of open-vocabulary labels);
- ``track3_train_{mercaptionplus,ovmerd}.csv``: ``name, reason`` (the English description);
- ``subtitle_chieng.csv``: ``name, chinese, english`` (subtitles; English used, Chinese as a fallback);
- EMER-V1 ``gt-eng.csv``: ``names, emotions, subtitles, reasons`` (one MER2023 label per clip);
- EMER-V2 ``final-EMER-reason.csv``: ``name, chinese, english`` (descriptions only; labels are joined from an OV
  label file beside it, ``check-openset.csv`` or ``track2_train_ovmerd.csv``, when one is there).

Clips are found under ROOT by name with any video extension (``video/<name>.mp4``); a pre-extracted
``audio/<name>.wav`` is used for the audio when present, else the video's own audio track.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from affectllm.instruct.builders._index import KeyTable, iter_csv
from affectllm.instruct.builders.base import AnnotationFileBuilder, BuildContext, Builder
from affectllm.instruct.compose import SourceSample
from affectllm.instruct.labels import MER2023_LABELS, canonical_label, parse_list_string

SUBTITLE_FILES = ("subtitle_chieng.csv",)


def _clip_media(ctx: BuildContext, name: str) -> dict[str, Path | None]:
    video = ctx.find_media(name, "video", hint="video")
    audio = ctx.find_media(name, "audio", hint="audio")
    return {"video": video, "audio": audio or video}


def _table(ctx: BuildContext, path: Path | None, label: str, need: list[list[str]],
           optional: list[list[str]] | None = None) -> KeyTable | None:
    """A side table keyed by the ``name`` column (rows without a name are skipped and counted)."""
    if path is None:
        return None

    def items() -> Iterator[tuple[str, int, dict[str, Any]]]:
        for line, row in iter_csv(path, need, optional or []):
            if not row["name"]:
                ctx.skip("malformed row", f"{path.name}:{line}", None, "empty name")
                continue
            yield row["name"], line, row

    table = KeyTable(ctx.scratch, label, items())
    for key, line in table.duplicates:
        ctx.skip("duplicate name", f"{path.name}:{line}", key, "the first row with this name wins")
    return table


def _subtitle(table: KeyTable | None, name: str) -> str | None:
    hit = table.get(name) if table else None
    if hit is None:
        return None
    row = hit[1]
    return row.get("english") or row.get("chinese") or None


class _Mer2025Builder(Builder):
    """A MER2025 track2 (labels) + track3 (reasons) CSV pair: ``track{2,3}_train_<corpus>.csv``."""

    corpus: str  # the CSVs' name stem
    labels_file: str
    reasons_file: str

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.labels_file = f"track2_train_{cls.corpus}.csv"
        cls.reasons_file = f"track3_train_{cls.corpus}.csv"
        cls.layout = (f"mer2025-dataset/ with {cls.labels_file}, {cls.reasons_file}, subtitle_chieng.csv, video/, "
                      "audio/ (either CSV may be absent)")

    def samples(self, ctx: BuildContext) -> Iterator[SourceSample]:
        labels_path = ctx.locate([self.labels_file], required=False)
        reasons_path = ctx.locate([self.reasons_file], required=False)
        if labels_path is None and reasons_path is None:
            raise FileNotFoundError(f"{ctx.root}: found neither {self.labels_file} nor {self.reasons_file}; "
                                    "point --root at the MER2025 dataset folder")
        labels = _table(ctx, labels_path, "labels", [["name"], ["openset"]])
        reasons = _table(ctx, reasons_path, "reasons", [["name"], ["reason", "english", "description"]])
        subtitles = _table(ctx, ctx.locate(SUBTITLE_FILES, required=False), "subtitles", [["name"]],
                           [["english"], ["chinese"]])

        def keys() -> Iterator[tuple[str, str, int]]:
            for table, path in ((labels, labels_path), (reasons, reasons_path)):
                if table is None or path is None:
                    continue
                for key, line in table.keys():
                    if table is labels or labels is None or key not in labels:
                        yield key, path.name, line

        for name, file_name, line in keys():
            hit_l = labels.get(name) if labels else None
            hit_r = reasons.get(name) if reasons else None
            ov = parse_list_string(hit_l[1]["openset"]) if hit_l else None
            meta: dict[str, Any] = {}
            if hit_l and not ov:
                ov = ["neutral"]  # as AffectGPT's loader: an empty open set means neutral
                meta["empty_openset"] = True
            yield SourceSample(
                key=name, source=self.name, where=f"{file_name}:{line}", **_clip_media(ctx, name),
                subtitle=_subtitle(subtitles, name), labels=ov,
                description=(hit_r[1]["reason"] or None) if hit_r else None, split="train", meta=meta,
            )


class MerCaptionPlusBuilder(_Mer2025Builder):
    name = "mer-caption-plus"
    summary = "MER-Caption+ (MER2025 track2/track3 CSVs: open-vocabulary labels + descriptions)"
    corpus = "mercaptionplus"


class OvMerdBuilder(_Mer2025Builder):
    name = "ov-merd"
    summary = "OV-MERD (MER2025 track2/track3 CSVs: human open-vocabulary labels + descriptions)"
    corpus = "ovmerd"


class EmerV1Builder(AnnotationFileBuilder):
    name = "emer-v1"
    summary = "EMER-V1 gt-eng.csv (names, emotions, subtitles, reasons): one MER2023 label + reasoning"
    layout = "gt-eng.csv (or any CSV with those columns, given as --root) and the clips under the same folder"
    main_files = ("gt-eng.csv",)

    def samples_from(self, ctx: BuildContext, path: Path) -> Iterator[SourceSample]:
        cols = [["names", "name"], ["emotions", "emotion"], ["subtitles", "subtitle"], ["reasons", "reason"]]
        for line, row in iter_csv(path, cols):
            name, where = row["names"], f"{path.name}:{line}"
            if not name or not row["emotions"]:
                ctx.skip("malformed row", where, name or None, "empty name or emotion")
                continue
            label = canonical_label(row["emotions"])
            yield SourceSample(
                key=name, source=self.name, where=where, **_clip_media(ctx, name),
                subtitle=row["subtitles"] or None, labels=[label], label_set=list(MER2023_LABELS),
                description=row["reasons"] or None, meta={"original_label": row["emotions"]},
            )


class EmerV2Builder(AnnotationFileBuilder):
    name = "emer-v2"
    summary = "EMER-V2 final-EMER-reason.csv (name, chinese, english) + OV labels from a check-openset CSV"
    layout = ("final-EMER-reason.csv, optionally check-openset.csv or track2_train_ovmerd.csv (name, openset) "
              "and subtitle_chieng.csv beside it; clips under the same folder")
    main_files = ("final-EMER-reason.csv",)

    def samples_from(self, ctx: BuildContext, path: Path) -> Iterator[SourceSample]:
        labels = _table(ctx, ctx.locate(["check-openset.csv", "track2_train_ovmerd.csv"], required=False),
                        "labels", [["name"], ["openset"]])
        subtitles = _table(ctx, ctx.locate(SUBTITLE_FILES, required=False), "subtitles", [["name"]],
                           [["english"], ["chinese"]])
        for line, row in iter_csv(path, [["name", "names"], ["english", "reasons", "reason"]]):
            name, where = row["name"], f"{path.name}:{line}"
            if not name or not row["english"]:
                ctx.skip("malformed row", where, name or None, "empty name or English description")
                continue
            hit = labels.get(name) if labels else None
            yield SourceSample(
                key=name, source=self.name, where=where, **_clip_media(ctx, name),
                subtitle=_subtitle(subtitles, name),
                labels=(parse_list_string(hit[1]["openset"]) or None) if hit else None,
                description=row["english"],
            )
