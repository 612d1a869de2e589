#!/usr/bin/env bash
# Prints the Debian packages one command needs, one a line: scripts/apt-packages.txt's [run]
# section and, for test or bench, that section too.
#   scripts/apt-packages.sh [run|test|bench]
set -euo pipefail
section=${1:-run}
case "$section" in
  run | test | bench) ;;
  *) printf 'usage: scripts/apt-packages.sh [run|test|bench]\n' >&2; exit 2 ;;
esac
awk -v want="$section" '
  /^[[:space:]]*(#|$)/ { next }
  /^\[[a-z]+\]$/ { in_section = ($0 == "[run]" || $0 == "[" want "]"); next }
  in_section { print $1 }' "$(dirname "$0")/apt-packages.txt"
