#!/usr/bin/env bash
# The GPU check in one line, for a CUDA machine (the device tool runs it in a copy of the repository):
#   bash benchmarks/gpu.sh            # full run, ≤ 8 min on one H200, killed at 9 min
#   bash benchmarks/gpu.sh --quick    # ~2 min, killed at 3 min
# Uses the first of .venv/bin/python, python3, python whose torch sees CUDA (whatever torch is there);
# featstat is taken from src/ (no install needed). Writes benchmarks/results/gpu.json (gpu-cpu.json with
# --device cpu) and, when $OUT is set, a copy into $OUT.
# FEATSTAT_COMMIT names the commit when the copy has no .git. Without CUDA it prints why and exits 0.
set -u
cd "$(dirname "$0")/.." || exit 1
PY=""  # the first interpreter whose torch sees CUDA, else the first with torch
for c in .venv/bin/python python3 python; do
  command -v "$c" >/dev/null 2>&1 || continue
  "$c" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)' 2>/dev/null; found=$?
  if [ $found -eq 0 ]; then PY=$c; break; fi
  if [ $found -eq 3 ] && [ -z "$PY" ]; then PY=$c; fi
done
[ -n "$PY" ] || { echo "no Python with torch found (tried .venv/bin/python, python3, python)"; exit 1; }
LIMIT=540; case " $* " in *" --quick "*) LIMIT=180;; esac
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}" FEATSTAT_OFFLINE=1
timeout -k 15 "$LIMIT" "$PY" benchmarks/gpu.py "$@"; rc=$?
if [ -n "${OUT:-}" ]; then cp benchmarks/results/gpu*.json "$OUT/" 2>/dev/null; fi
exit $rc
