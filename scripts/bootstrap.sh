# Sourced by scripts/demo and scripts/test: make .venv with reelscale installed in it.
# Usage: bootstrap "" | bootstrap "[dev]"
set -euo pipefail

bootstrap() {
  local extras="$1"
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  cd "$root"
  local python="${PYTHON:-python3}"
  if ! command -v "$python" >/dev/null; then
    echo "reelscale needs Python 3.11 or newer: install python3 first." >&2
    exit 1
  fi
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "reelscale needs Python 3.11 or newer; $("$python" --version) found." >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      # Debian and Ubuntu ship venv separately.
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv .venv
      else
        echo "Python's venv module is missing: run 'sudo apt-get install python3-venv' and retry." >&2
        exit 1
      fi
    fi
  fi
  # Reinstall only when the project's dependencies changed.
  local stamp=".venv/.installed${extras}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "Installing reelscale${extras} into .venv ..." >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
    touch "$stamp"
  fi
  vendor_web
}

# The web UI serves hls.js itself (no CDN at run time); npm fetches and copies it.
vendor_web() {
  local target=src/reelscale/web/static/vendor/hls.min.js
  if [ -f "$target" ] && [ "$target" -nt package.json ]; then
    return
  fi
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
      echo "The web UI needs Node.js and npm once, to fetch hls.js: run 'sudo apt-get install nodejs npm' and retry." >&2
      exit 1
    fi
  fi
  echo "Fetching the web player (hls.js) with npm ..." >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  npm run -s vendor >/dev/null
}
