#!/usr/bin/env bash
# Prepare what a GPU machine without network needs to fill a profile's ledger (remote/fill.sh):
# the wheels of remote/requirements.txt for Python 3.12 on x86-64 in .remote/wheels/, and the
# CamVid packs at the profile's image size in .remote/packs/ (the runs' data fingerprint is the
# pack's, so the entries made there are found here). .remote/ is git-ignored; send it along with
# the working tree (about 45 MB for the gpu profile's 360 x 480 JPEG packs and the wheels; the working tree travels too).
#
#   bash remote/prepare.sh [PROFILE]        # default: gpu
#
# REMOTE_PYTHON (default 3.12) is the remote machine's Python version, whose wheels are fetched
# (3.11 for a dry run on this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-gpu}"
python="${PYTHON:-.venv/bin/python}"
remote_python="${REMOTE_PYTHON:-3.12}"
mkdir -p .remote/wheels .remote/packs
grep -v '^#' remote/requirements.txt | grep -v '^$' | while read -r req; do
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$remote_python" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .remote/wheels "$req"
done
REFINENET_CACHE=.remote/packs "$python" - "$profile" <<'PY'
import sys
from refinenet.study.profiles import load_profile
from refinenet.data import pack_camvid

profile = load_profile(sys.argv[1])
if profile.common.get("dataset") == "synthetic":
    print(f"profile {profile.name} trains on the synthetic generator: no pack to send")
    sys.exit(0)
size = profile.study.base("camvid", "cpu").data.size
for path in pack_camvid(size, out=".remote/packs", progress=False):
    print(f"packed {path} ({path.stat().st_size / 2**20:.1f} MiB)")
PY
du -sh .remote
