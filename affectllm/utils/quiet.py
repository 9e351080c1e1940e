"""Keep the chatter of dependencies out of normal command-line output; ``affectllm --verbose`` lets it through.

Normal mode silences Python warnings raised by libraries (transformers' FutureWarnings, whisper's FP16 note ...),
their INFO/WARNING logs (named loggers and the root logger; ``affectllm.*`` loggers still warn) and their
progress bars (transformers' "Loading weights", datasets bars, any other tqdm bar), except the hub's download
bars: a first run that fetches gigabytes (AffectGPT's checkpoint) shows its progress, as the README promises.
AffectLLM's own output (records, errors, its rich progress display) is unaffected. The environment variables
are set with ``setdefault``, so a user's explicit setting wins, and an explicit ``PYTHONWARNINGS`` / ``-W`` keeps
its warnings. ``HF_HUB_DISABLE_PROGRESS_BARS`` is never set: it would hide the download bars too (it overrides
the per-group switches below).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "DATASETS_VERBOSITY": "error",
    "TQDM_DISABLE": "1",  # tqdm >= 4.66 reads its defaults from TQDM_* variables
}
DOWNLOAD_BARS = ("huggingface_hub.http_get", "huggingface_hub.xet_get")  # the hub's file-download bar groups
NOISY_LOGGERS = ("transformers", "huggingface_hub", "datasets", "accelerate", "peft", "httpx", "urllib3", "filelock")


def configure_output(verbose: bool = False) -> None:
    """Quiet (default) or verbose dependency output; call before heavy imports, safe to call again after them."""
    if verbose:
        if not sys.warnoptions:
            warnings.simplefilter("default")  # show each library warning once per location
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if not sys.warnoptions:
        warnings.simplefilter("ignore")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    own = logging.getLogger("affectllm")
    if own.level == logging.NOTSET:
        own.setLevel(logging.WARNING)  # our own warnings keep showing ...
    logging.getLogger().setLevel(logging.ERROR)  # ... libraries that log on the root logger (open_clip) do not
    _only_download_bars()
    # libraries imported already read their settings at import time: tell them directly
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()


def _only_download_bars() -> None:
    """The hub's bars off but its download bars on (transformers reads this state when it is imported, so its
    "Loading weights" bar stays off too). Kept as the user's when they set HF_HUB_DISABLE_PROGRESS_BARS."""
    if "HF_HUB_DISABLE_PROGRESS_BARS" in os.environ:
        return
    try:
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    except ImportError:
        return
    disable_progress_bars()
    for group in DOWNLOAD_BARS:
        enable_progress_bars(group)
