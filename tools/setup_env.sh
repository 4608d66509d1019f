#!/usr/bin/env bash
# make setup: a .venv/ with torch + torchvision, mmcv 2.1.0 (compiled ops), mmengine, mmdet, mmseg,
# mmpretrain, timm and this plugin (editable). Idempotent: a second run that finds everything in
# place takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
# mmcv wheels this script compiled, one folder per torch version (a wheel's ops only load into the
# torch they were compiled against, so pip's own cache, keyed by the sdist alone, cannot hold them)
MMCV_WHEELS=${MMCV_WHEELS:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/mmdynconv/mmcv-$MMCV_VERSION-torch-$TORCH_VERSION}
STAMP="$VENV/.mmdynconv-setup"
fingerprint=$( (cat requirements/*.txt setup.cfg; echo "$TORCH_VERSION $TORCHVISION_VERSION") \
  | sha256sum | cut -c1-16)

say() { printf '[setup] %s\n' "$*"; }

mmcv_ok() { "$PY" - <<'PY' 2>/dev/null
import mmcv, mmcv.ops  # the compiled ops, not mmcv-lite
from mmcv.ops import nms, RoIAlign, DeformConv2d  # noqa: F401
assert mmcv.__version__ == '2.1.0', mmcv.__version__
PY
}

all_ok() { "$PY" - <<'PY' 2>/dev/null
import importlib.metadata as md
import plugin, mmdet, mmseg, mmpretrain, timm, torchvision, mkdocs  # noqa: F401
assert md.version('mmengine') == '0.10.7' and md.version('mmdet') == '3.3.0'
assert md.version('mmsegmentation') == '1.2.2' and md.version('mmpretrain') == '1.2.0'
PY
}

torch_ok() { "$PY" - "$TORCH_VERSION" "$TORCHVISION_VERSION" <<'PY' 2>/dev/null
import sys
import torch, torchvision
from torchvision.ops import nms  # noqa: F401  (its compiled ops load beside this torch)
assert torch.__version__.split('+')[0] == sys.argv[1], torch.__version__
assert torchvision.__version__.split('+')[0] == sys.argv[2], torchvision.__version__
PY
}

# mmcv 2.1.0's setup.py compiles with -std=c++17; torch >= 2.10's headers need C++20.
build_mmcv_wheel() {
  local src
  src=$(mktemp -d)
  $PIP download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$src"
  tar -xzf "$src/mmcv-$MMCV_VERSION.tar.gz" -C "$src"
  sed -i "s/-std=c++17/-std=c++20/" "$src/mmcv-$MMCV_VERSION/setup.py"
  mkdir -p "$MMCV_WHEELS"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} $PIP wheel -q --no-deps --no-build-isolation \
    --no-cache-dir "$src/mmcv-$MMCV_VERSION" -w "$MMCV_WHEELS"
  rm -rf "$src"
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ] && torch_ok && mmcv_ok && all_ok; then
  say "environment in $VENV is up to date"
  exit 0
fi

if [ ! -x "$PY" ]; then
  say "creating $VENV with $(python3 --version)"
  python3 -m venv "$VENV"
fi

if torch_ok; then
  say "keeping torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  say "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  $PIP install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

if mmcv_ok; then
  say "keeping mmcv $MMCV_VERSION with compiled ops"
else
  if ! ls "$MMCV_WHEELS"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    say "installing build tools for mmcv's ops (requirements/build.txt)"
    $PIP install -q -r requirements/build.txt
    say "compiling mmcv $MMCV_VERSION's ops against torch $TORCH_VERSION (15-45 minutes on 2 cores,"
    say "once: the wheel is kept in $MMCV_WHEELS)"
    start=$(date +%s)
    build_mmcv_wheel
    say "mmcv build took $(( $(date +%s) - start )) s"
  fi
  $PIP install -q --force-reinstall --no-deps "$MMCV_WHEELS"/mmcv-"$MMCV_VERSION"-*.whl
fi
say "installing mmengine, mmdet, mmsegmentation, mmpretrain and the rest (requirements/*.txt)"
$PIP install -q -r requirements/mmcv.txt -r requirements/runtime.txt -r requirements/tests.txt \
  -r requirements/docs.txt
say "installing the plugin (editable)"
$PIP install -q --no-deps --no-build-isolation -e .
mmcv_ok || { say "ERROR: 'import mmcv.ops' fails: the ops were not compiled for this torch"; exit 1; }
torch_ok && all_ok || { say "ERROR: the environment does not import"; exit 1; }
echo "$fingerprint" > "$STAMP"
say "done: $("$PY" -c 'import torch, torchvision, mmcv, mmdet, mmseg, mmpretrain, mmengine; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}")')"
