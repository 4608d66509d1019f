#!/usr/bin/env bash
# make demo: train the demo detector through tools/train.py, test it, and report AP per
# occlusion bucket with a plot. Usage: tools/run_demo.sh PYTHON CONFIG DATA_ROOT WORK_DIR
set -euo pipefail
PY=$1 CFG=$2 DATA=$3 WORK=$4
MAX_EPOCHS=${DEMO_EPOCHS:-}
opts=()
[ -n "$MAX_EPOCHS" ] && opts=(--cfg-options "train_cfg.max_epochs=$MAX_EPOCHS" "train_cfg.val_interval=$MAX_EPOCHS")

t0=$(date +%s)
echo "[demo] training $(basename "$CFG") on $DATA (CPU) -> $WORK"
"$PY" tools/train.py "$CFG" --work-dir "$WORK" "${opts[@]}"
t1=$(date +%s)
ckpt=$(cat "$WORK/last_checkpoint")
echo "[demo] testing $ckpt"
"$PY" tools/test.py "$CFG" "$ckpt" --work-dir "$WORK" --out "$WORK/results.pkl"
echo "[demo] AP by occlusion bucket"
"$PY" tools/analysis/occlusion_eval.py "$DATA/annotations/instances_val.json" "$WORK/results.pkl" \
  --iou-type bbox --out "$WORK/occlusion_report.json" --plot "$WORK/occlusion_ap.png" \
  --title "$(basename "$CFG" .py) on $(basename "$DATA")"
t2=$(date +%s)
echo "[demo] done: training $((t1 - t0)) s, test + occlusion report $((t2 - t1)) s"
echo "[demo] plot: $WORK/occlusion_ap.png   per-epoch plots: $WORK/occlusion/"
