"""Instruction data: the JSONL schema, its validator, prompt pools, dataset builders and the training loader.

Light to import (no torch, no datasets until `load_dataset` is called)::

    from affectllm.instruct import load_dataset, validate_row, iter_jsonl
    ds = load_dataset("train.jsonl")          # datasets.Dataset of the valid rows, media as absolute paths
"""

from __future__ import annotations

from affectllm.instruct.dataset import (
    DataError,
    FileReport,
    load_dataset,
    read_dataset,
    scan_file,
    validate_file,
)
from affectllm.instruct.io import JsonlError, iter_json_items, iter_jsonl, write_jsonl
from affectllm.instruct.schema import MEDIA_KEYS, REPORT_TASKS, TASKS, Row, RowError, check_row, validate_row

__all__ = [
    "MEDIA_KEYS", "REPORT_TASKS", "TASKS", "DataError", "FileReport", "JsonlError", "Row", "RowError", "check_row",
    "iter_json_items", "iter_jsonl", "load_dataset", "read_dataset", "scan_file", "validate_file", "validate_row",
    "write_jsonl",
]
