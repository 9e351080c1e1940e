#!/usr/bin/env bash
# Re-create the starter adapter from scratch on 2 CPU cores, one command (needs ../shared/corpora and espeak-ng):
#   bash train/make_starter.sh                      # SmolLM2-135M-Instruct (the default backbone); installs into
#                                                   # affectllm/assets/starter-smollm2
#   BACKBONE=gemma bash train/make_starter.sh       # Gemma-3-270M, same data; installs into
#                                                   # affectllm/assets/starter (`--model gemma`)
#   SMOKE=1 bash train/make_starter.sh              # every stage end to end on ~8 rows and 2 steps (proves the recipe)
# Stages (wall times written to RUN/timings.json and the report):
#   1. Whisper-encoder features of every corpus clip, cached once ($AFFECTLLM_HOME/voice_expert; ~12 min the first time)
#   2. the voice head that never hears the held-out speakers (fold 0), from the cached features (seconds; kept)
#   3. the instruction set: corpus rows split by speaker, balanced cap, faces, a few synthetic rows; cues measured
#      with that fold head (reused when it exists: REBUILD=1 to redo; both backbones train on the same file)
#   4. the LLM stage (train/configs/starter-cpu[-smollm2].yaml)
#   5. the report on the held-out speakers (train/starter_report.py), then the install (INSTALL=1; the default
#      for a full run, INSTALL=0 keeps the shipped adapter)
# Measured on 2 idle cores (Gemma, features already cached): build 460 s, train 1401 s, report 800 s: 45 min.
# SmolLM2 with the text expert and the reasoning targets (features cached): build 614 s, train 1136 s, report ~800 s;
# with the block 1+2+3 voice head and the e5+MiniLM text head (a shared machine): build 842 s, train 1397 s, report 899 s.
# Env: BACKBONE=smollm2|gemma, SMOKE=1, REBUILD=1, INSTALL=0|1, PY=python, AFFECTLLM_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-.venv/bin/python}
BACKBONE=${BACKBONE:-smollm2}
SMOKE=${SMOKE:-0}
HOME_DIR="${AFFECTLLM_HOME:-$HOME/.cache/affectllm}"
CORPORA=${CORPORA:-../shared/corpora}
case "$BACKBONE" in
  gemma) CONFIG=train/configs/starter-cpu.yaml; RUN=runs/starter-cpu; DEST=affectllm/assets/starter ;;
  smollm2) CONFIG=train/configs/starter-cpu-smollm2.yaml; RUN=runs/starter-cpu-smollm2
    DEST=affectllm/assets/starter-smollm2 ;;
  *) echo "BACKBONE=$BACKBONE: use gemma or smollm2" >&2; exit 2 ;;
esac
[ -f "$CORPORA/labels.csv" ] || { echo "$CORPORA/labels.csv: missing; set CORPORA=path/to/shared/corpora" >&2; exit 1; }
CORPORA=$(cd "$CORPORA" && pwd)
if [ "$SMOKE" = 1 ]; then
  DATA="$HOME_DIR/instruct/starter-smoke"; RUN="runs/starter-smoke-$BACKBONE"
  BUILD_ARGS=(--limit 8); TRAIN_ARGS=(train.max_steps=2 train.save_every=1000 optim.warmup_steps=0); INSTALL=${INSTALL:-0}
else
  DATA="$HOME_DIR/instruct/starter"; BUILD_ARGS=(); TRAIN_ARGS=(); INSTALL=${INSTALL:-1}
fi
HEAD="$DATA/voice_head_fold0.safetensors"
command -v espeak-ng >/dev/null || { echo "espeak-ng is needed for the synthetic rows: apt-get install espeak-ng" >&2; exit 1; }
rm -rf "$RUN" && mkdir -p "$DATA" "$RUN"
TIMES="$RUN/timings.json"; echo "{}" > "$TIMES"
stage() {  # stage NAME CMD...: run it, add its wall and CPU seconds to RUN/timings.json
  local name=$1; shift; local t0 c0 c1; t0=$(date +%s)
  echo "== [$name] $*"
  times > "$RUN/.times"; c0=$(cpu_s)
  "$@"
  times > "$RUN/.times"; c1=$(cpu_s)
  "$PY" - "$TIMES" "$name" "$(( $(date +%s) - t0 ))" "$c0" "$c1" <<'EOF'
import json, sys
p, k, wall, c0, c1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
d = json.load(open(p)); d[k] = {"wall": wall, "cpu": round(c1 - c0)}; json.dump(d, open(p, "w"), indent=1)
EOF
}
cpu_s() {  # user + system CPU seconds of the shell's finished children (`times` run in the shell itself)
  local t; t=$(tail -1 "$RUN/.times")
  "$PY" -c "import re,sys; print(sum(float(m)*60+float(s) for m, s in re.findall(r'(\d+)m([\d.]+)s', sys.argv[1])))" "$t"
}
T0=$(date +%s)
stage features "$PY" train/voice_features.py "$CORPORA" "$HOME_DIR/voice_expert"
if [ "${REBUILD:-0}" = 1 ] || [ ! -s "$HEAD" ]; then  # kept once made: the rows and the feature cache key on it
  stage fold_head "$PY" train/train_voice_expert.py --corpora "$CORPORA" --cache "$HOME_DIR/voice_expert" \
    --fold-head 0 --head-out "$HEAD"
fi
if [ "${REBUILD:-0}" = 1 ] || [ ! -s "$DATA/train.jsonl" ] || ! cmp -s "$HEAD" "$HEAD.built"; then
  stage build "$PY" instruct_data/build_starter.py --corpora "$CORPORA" --voice-head "$HEAD" --out "$DATA" "${BUILD_ARGS[@]}"
  cp "$HEAD" "$HEAD.built"  # the head the rows were perceived with (a new head rebuilds them)
else
  echo "== [build] $DATA/train.jsonl exists (built with this fold head): reused; REBUILD=1 to redo"
fi
stage train "$PY" -m affectllm train --config "$CONFIG" "data.train=$DATA/train.jsonl" \
  "data.voice_head=$HEAD" "output_dir=$RUN" "${TRAIN_ARGS[@]}"
stage report "$PY" train/starter_report.py --adapter "$RUN/adapter" --heldout "$DATA/heldout.jsonl" \
  --voice-head "$HEAD" --run "$RUN" --composition "$DATA/composition.json" --out "$RUN/report" --timings "$TIMES"
echo "== total $(( $(date +%s) - T0 )) s; report: $RUN/report/REPORT.md"
if [ "$INSTALL" = 1 ]; then
  rm -rf "$DEST" && mkdir -p "$DEST"
  cp "$RUN"/adapter/*.json "$RUN"/adapter/*.safetensors "$RUN"/adapter/README.md "$DEST"/
  cp "$RUN"/report/REPORT.md "$RUN"/report/report.json "$RUN"/report/*.png "$DEST"/
  echo "starter adapter written to $DEST"
else
  echo "not installed (INSTALL=1 copies $RUN/adapter into $DEST)"
fi
