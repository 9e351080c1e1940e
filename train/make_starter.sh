#!/usr/bin/env bash
# Re-create the shipped starter adapter from scratch on 2 CPU cores (about an hour; needs espeak-ng and ../shared).
#   bash train/make_starter.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
command -v espeak-ng >/dev/null || { echo "espeak-ng is needed: apt-get install espeak-ng" >&2; exit 1; }
DATA="${AFFECTLLM_HOME:-$HOME/.cache/affectllm}/instruct/starter"
RUN=runs/starter-cpu
"$PY" instruct_data/build_starter.py --out "$DATA"
rm -rf "$RUN"
"$PY" -m affectllm train --config train/configs/starter-cpu.yaml
"$PY" train/starter_report.py --adapter "$RUN/adapter" --heldout "$DATA/heldout.jsonl" --run "$RUN" \
  --composition "$DATA/composition.json" --out "$RUN/report"
rm -rf affectllm/assets/starter && mkdir -p affectllm/assets/starter
cp "$RUN"/adapter/*.json "$RUN"/adapter/*.safetensors affectllm/assets/starter/
cp "$RUN"/report/REPORT.md "$RUN"/report/report.json "$RUN"/report/*.png affectllm/assets/starter/
echo "starter adapter written to affectllm/assets/starter"
