#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install the
# pinned dependencies. Sourced by scripts/demo and scripts/test; safe to re-run:
# it reinstalls only when pyproject.toml or constraints.txt changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GRAPHREC_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.graphrec-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  LOG="$VENV/setup.log"
  echo "[setup] installing pinned dependencies (first run takes a few minutes; log: $LOG)" >&2
  # constraints.txt pins every transitive version; torch==2.13.0 is the CPU build. pip's chatter (index
  # warnings, build-backend notices) goes to the log, shown only when the install fails.
  if ! { "$VENV/bin/python" -m pip install -q --upgrade pip \
         && "$VENV/bin/python" -m pip install -q -c "$ROOT/constraints.txt" -e "$ROOT[dev]"; } >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    echo "[setup] dependency install failed (full log: $LOG)" >&2
    exit 1
  fi
  echo "[setup] done" >&2
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Local MLflow store (SQLite under ./mlruns) by default; override with MLFLOW_TRACKING_URI.
mkdir -p "$ROOT/mlruns"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-sqlite:///$ROOT/mlruns/mlflow.db}"
export RAY_USAGE_STATS_ENABLED=0
