#!/usr/bin/env bash
# `make hapi`: fhirguard in front of and around HAPI FHIR. Installs what is missing (Java,
# Maven, PostgreSQL), builds the jar, puts it and the database passwords in the example's
# state directory, starts PostgreSQL, then runs `fhirguard up` on policy.yaml: the agent runs
# HAPI in the read and write tiers, each in its container under the profiles recorded from
# HAPI (profiles/), and the front door in front. Ctrl-C stops fhirguard, then PostgreSQL.
#
#   examples/hapi/up.sh [fhirguard up options...]     e.g. --listen 0.0.0.0:8080
#
# The state directory is /var/lib/fhirguard-hapi, the one policy.yaml names (edit both to
# move it); PostgreSQL listens on 127.0.0.1:55432, the tiers' egress allow-list.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export FHIRGUARD_HAPI_STATE=/var/lib/fhirguard-hapi
export FHIRGUARD_HAPI_PG_PORT=55432

if [ "$(id -u)" -ne 0 ]; then
  echo "up.sh: run as root: the agent runs HAPI in runc containers under seccomp and eBPF" >&2
  exit 1
fi
mkdir -p "$FHIRGUARD_HAPI_STATE"
# PostgreSQL's user and the tiers' identities pass through it to what is theirs.
chmod 0711 "$FHIRGUARD_HAPI_STATE"
"$HERE/run.sh" prepare
trap '"$HERE/postgres.sh" stop' EXIT
"$REPO/bin/fhirguard" up --policy "$HERE/policy.yaml" --profiles "$HERE/profiles" "$@"
