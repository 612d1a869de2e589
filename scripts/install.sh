#!/usr/bin/env bash
# Installs what fhirguard needs and is missing on this machine, then builds it. Both Quick
# start commands (make up, make test) and CI run this first; it is idempotent and quick when
# nothing changed. Debian packages come from scripts/apt-packages.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'fhirguard install: %s\n' "$*" >&2; }

# 20.18.1: the oldest Node undici 7 (fhirguard's HTTP client, and reply-from's) runs on.
if ! node -e 'const [a, b, c] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && (b > 18 || (b === 18 && c >= 1))) ? 0 : 1)' 2>/dev/null; then
  log "Node.js >= 20.18.1 is required (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

# Debian packages: install only the missing ones, with one `apt-get update` when needed.
mapfile -t wanted < <(grep -vE '^\s*(#|$)' scripts/apt-packages.txt | awk '{print $1}')
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages (${missing[*]}); run as root or install them: apt-get install ${missing[*]}"
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies: reinstall only when package-lock.json changed since the last install.
stamp=node_modules/.fhirguard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing npm dependencies (better-sqlite3 builds from source: about a minute)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

log "building TypeScript"
npx tsc -p tsconfig.json

if [ -f bpf/Makefile ]; then
  log "building eBPF programs"
  make -s -C bpf
fi
