#!/usr/bin/env bash
# Fill a profile's ledger on a GPU machine without network, within a time budget, and return
# only the new ledger entries as one archive. Needs what remote/prepare.sh put in .remote/.
#
#   bash remote/fill.sh PROFILE BUDGET OUT_DIR      # e.g. gpu 7m "$OUT"
#
# Training stops at a run boundary before the budget runs out (the next run's time is
# estimated from the entries this machine made); a run still going when the hard limit
# (budget + 90 s) arrives is stopped and lost, its finished neighbours are kept. Back on the
# development machine: tar -xzf OUT_DIR/ledger.tar.gz (from the repository root), then
# `refinenet study run --profile PROFILE --no-train` executes the notebooks from the ledger.
set -uo pipefail
cd "$(dirname "$0")/.."
profile="${1:?profile}" budget="${2:?time budget, e.g. 7m}" out="${3:?output folder}"
python="${PYTHON:-python3}"
mkdir -p "$out"
site="$(mktemp -d)"
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
  .remote/wheels/*.whl || { echo "fill.sh: installing .remote/wheels failed" >&2; exit 1; }
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export REFINENET_CACHE="$PWD/.remote/packs"
case "$budget" in *h) hard=$(( ${budget%h} * 3600 + 90 ));; *m) hard=$(( ${budget%m} * 60 + 90 ));;
  *s) hard=$(( ${budget%s} + 90 ));; *) hard=$(( budget + 90 ));; esac
entries() {  # every ledger entry under results/, as results/<name>/runs/<id>
  find results -mindepth 3 -maxdepth 3 -path 'results/*/runs/*' -type d ! -name '.*' 2>/dev/null | sort
}
before="$(mktemp)"
entries > "$before"
timeout -s INT "$hard" "$python" -m refinenet study run --profile "$profile" --train-only \
  --time-budget "$budget" 2>&1 | tee "$out/fill.log"
status=${PIPESTATUS[0]}
new=$(entries | comm -13 "$before" - || true)
if [ -n "$new" ]; then
  tar -czf "$out/ledger.tar.gz" $new
  echo "fill.sh: $(echo "$new" | wc -l) new entries in $out/ledger.tar.gz (exit status $status)"
else
  echo "fill.sh: no new entry (exit status $status)"
fi
