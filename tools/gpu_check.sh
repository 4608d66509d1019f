#!/usr/bin/env bash
# The first thing to run on a machine with a GPU (docs/getting_started.md):
#
#     tools/gpu_check.sh [OUT_DIR]          (default work_dirs/gpu_check; PYTHON=... to choose)
#
# 1. the CUDA tests: every test parametrised over devices on 'cuda' (layers and backbones:
#    values, gradients, fp16 autocast) and the AMP training runs of tools/train.py --amp
#    (pytest -m cuda; about 3-5 minutes on one GPU);
# 2. tools/benchmark/run_all.py --device cuda (about a minute);
# 3. one report, OUT_DIR/report.md: pass counts, failures, the benchmark table, nvidia-smi,
#    torch / CUDA / cuDNN versions.
# Exits non-zero when there is no CUDA device, a test fails or the benchmark fails.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python
OUT=${1:-work_dirs/gpu_check}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} PYTHONUNBUFFERED=1

"$PYTHON" - >"$OUT/versions.txt" 2>&1 <<'EOF'
import torch
print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, '
      f'cuDNN {torch.backends.cudnn.version()}')
print(f'CUDA available: {torch.cuda.is_available()}')
for i in range(torch.cuda.device_count()):
    print(f'cuda:{i} {torch.cuda.get_device_name(i)}, '
          f'capability {torch.cuda.get_device_capability(i)}')
EOF
(nvidia-smi || echo "nvidia-smi: not available") >"$OUT/nvidia-smi.txt" 2>&1
if ! grep -q 'CUDA available: True' "$OUT/versions.txt"; then
    printf '# GPU check: no usable CUDA device\n\n```\n%s\n```\n' "$(cat "$OUT/versions.txt")" \
        >"$OUT/report.md"
    echo "gpu_check: no usable CUDA device (torch.cuda.is_available() is not True);" \
        "see $OUT/report.md" >&2
    exit 2
fi

start=$(date +%s)
timeout 420 "$PYTHON" -m pytest tests -m cuda -q -rfE -p no:cacheprovider \
    --junitxml="$OUT/pytest.xml" >"$OUT/pytest.txt" 2>&1
tests_rc=$?
tail -n 3 "$OUT/pytest.txt"
timeout 150 "$PYTHON" tools/benchmark/run_all.py --device cuda --repeat 10 --warmup 3 \
    --out "$OUT/benchmark.md" >"$OUT/benchmark.txt" 2>&1
bench_rc=$?
seconds=$(( $(date +%s) - start ))

"$PYTHON" - "$OUT" "$tests_rc" "$bench_rc" "$seconds" <<'EOF'
import os.path as osp
import sys
import xml.etree.ElementTree as ET

out, tests_rc, bench_rc, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def read(name, default=''):
    path = osp.join(out, name)
    return open(path).read().strip() if osp.exists(path) else default


counts, failed = dict(tests=0, failures=0, errors=0, skipped=0), []
if osp.exists(osp.join(out, 'pytest.xml')):
    for suite in ET.parse(osp.join(out, 'pytest.xml')).getroot().iter('testsuite'):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
        for case in suite.iter('testcase'):
            if case.find('failure') is not None or case.find('error') is not None:
                failed.append(f"{case.get('classname')}::{case.get('name')}")
passed = counts['tests'] - counts['failures'] - counts['errors'] - counts['skipped']
ok = tests_rc == 0 and bench_rc == 0
lines = [f"# GPU check: {'PASS' if ok else 'FAIL'}", '',
         f'tools/gpu_check.sh, {seconds} s.', '', '```', read('versions.txt'), '```', '',
         f'## CUDA tests (pytest -m cuda, exit {tests_rc})', '',
         f"{passed} passed, {counts['failures']} failed, {counts['errors']} errors, "
         f"{counts['skipped']} skipped.", '']
if failed:
    lines += ['Failed:', ''] + [f'- `{name}`' for name in failed] + ['']
if tests_rc not in (0, 1):
    lines += ['pytest did not finish normally (124: timed out); its last lines:', '', '```',
              *read('pytest.txt').splitlines()[-30:], '```', '']
lines += [f'## tools/benchmark/run_all.py --device cuda (exit {bench_rc})', '',
          read('benchmark.md') or '```\n' + '\n'.join(read('benchmark.txt').splitlines()[-30:])
          + '\n```', '', '## nvidia-smi', '', '```', read('nvidia-smi.txt'), '```', '']
open(osp.join(out, 'report.md'), 'w').write('\n'.join(lines))
print('\n'.join(lines[:12]))
EOF
echo "gpu_check: report in $OUT/report.md"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
