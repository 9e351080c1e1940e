"""Captioning at scale: inputs -> one JSON record per input (``affectllm caption``).

- ``inputs``: files, folders, globs, CSV/JSONL manifests -> ``CaptionInput`` rows with stable ids;
- ``captioner``: one input -> segments -> perception -> batched generation -> one record (``records``);
- ``writer``: JSONL/CSV flushed per record, ``--resume`` after a kill;
- ``sharding``: ``--num-shards/--shard-index`` and ``accelerate launch``;
- ``ray_backend``: the same captioner over Ray Data (optional ``cluster`` extra);
- ``progress``: the rich progress bar and final summary; ``run``: the whole run as the CLI does it.
"""

from affectllm.captioning.captioner import Captioner
from affectllm.captioning.inputs import CaptionInput, collect_inputs, read_manifest
from affectllm.captioning.records import RECORD_KEYS, strip_timing
from affectllm.captioning.run import CaptionOptions, run_caption

__all__ = ["RECORD_KEYS", "CaptionInput", "CaptionOptions", "Captioner", "collect_inputs", "read_manifest",
           "run_caption", "strip_timing"]
