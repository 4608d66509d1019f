#!/usr/bin/env bash
# make setup: a .venv/ with torch, mmcv 2.1.0 (compiled ops), mmengine, mmdet, mmseg and this
# plugin (editable). Idempotent: a second run that finds everything in place takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check"
TORCH_VERSION=2.13.0
STAMP="$VENV/.mmdynconv-setup"
fingerprint=$(cat requirements/*.txt setup.cfg | sha256sum | cut -c1-16)

say() { printf '[setup] %s\n' "$*"; }

mmcv_ok() { "$PY" - <<'PY' 2>/dev/null
import mmcv, mmcv.ops  # the compiled ops, not mmcv-lite
from mmcv.ops import nms, RoIAlign, DeformConv2d  # noqa: F401
assert mmcv.__version__ == '2.1.0', mmcv.__version__
PY
}

all_ok() { "$PY" - <<'PY' 2>/dev/null
import importlib.metadata as md
import plugin, mmdet, mmseg, mkdocs  # noqa: F401
assert md.version('mmengine') == '0.10.7' and md.version('mmdet') == '3.3.0'
assert md.version('mmsegmentation') == '1.2.2'
PY
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ] && mmcv_ok && all_ok; then
  say "environment in $VENV is up to date"
  exit 0
fi

if [ ! -x "$PY" ]; then
  say "creating $VENV with $(python3 --version)"
  python3 -m venv "$VENV"
fi

if "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  say "keeping torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  say "installing torch==$TORCH_VERSION"
  $PIP install -q "torch==$TORCH_VERSION"
fi

say "installing build tools for mmcv's ops (requirements/build.txt)"
$PIP install -q -r requirements/build.txt

reqs=(-r requirements/runtime.txt -r requirements/tests.txt -r requirements/docs.txt)
if mmcv_ok; then
  say "keeping mmcv 2.1.0 with compiled ops"
  say "installing mmengine, mmdet, mmsegmentation and the rest (requirements/runtime.txt, tests.txt, docs.txt)"
  $PIP install -q "${reqs[@]}"
else
  say "building mmcv 2.1.0 with its ops from the sdist (15-30 minutes on 2 cores; pip caches the wheel),"
  say "together with mmengine, mmdet, mmsegmentation and the rest (requirements/*.txt)"
  start=$(date +%s)
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} $PIP install --no-build-isolation \
    -r requirements/mmcv.txt "${reqs[@]}"
  say "mmcv build and install took $(( $(date +%s) - start )) s"
  mmcv_ok || { say "ERROR: mmcv installed but 'import mmcv.ops' fails: the ops were not compiled"; exit 1; }
fi
say "installing the plugin (editable)"
$PIP install -q --no-deps --no-build-isolation -e .
mmcv_ok && all_ok || { say "ERROR: the environment does not import"; exit 1; }
echo "$fingerprint" > "$STAMP"
say "done: $("$PY" -c 'import torch, mmcv, mmdet, mmseg, mmengine; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}")')"
