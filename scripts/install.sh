#!/usr/bin/env bash
# Installs what fhirguard needs and is missing on this machine, then builds it. Both Quick
# start commands (make up, make test) and CI run this first; it is idempotent and quick when
# nothing changed. Debian packages come from scripts/apt-packages.txt: its [run] section, plus
# the section the argument names (make test: test, make bench: bench).
#   scripts/install.sh [run|test|bench]
set -euo pipefail
cd "$(dirname "$0")/.."

section=${1:-run}

log() { printf 'fhirguard install: %s\n' "$*" >&2; }

# The oldest Node fhirguard runs on is package.json's engines.node (">=x.y.z": undici 7's).
node_min=$(sed -n 's/.*"node": *">=\([0-9.]*\)".*/\1/p' package.json)
if ! node -e 'const want = process.argv[1].split(".").map(Number), have = process.versions.node.split(".").map(Number); const i = [0, 1, 2].find((k) => have[k] !== want[k]); process.exit(i === undefined || have[i] > want[i] ? 0 : 1)' "$node_min" 2>/dev/null; then
  log "Node.js >= $node_min is required (found: $(node --version 2>/dev/null || echo none))"
  exit 1
fi

# Debian packages: install only the missing ones, with one `apt-get update` when needed.
packages=$(scripts/apt-packages.sh "$section")
mapfile -t wanted <<<"$packages"
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

log "building TypeScript and the R4 model the validator reads"
npx tsc -p tsconfig.json
node dist/src/fhir/validate/model/generate.js >/dev/null

if [ -f bpf/Makefile ]; then
  log "building eBPF programs"
  make -s -C bpf
fi
