#!/usr/bin/env bash
# PostgreSQL for fhirguard's HAPI FHIR example: a cluster of its own under a state directory
# (never the system cluster), on 127.0.0.1 and a Unix socket, with two roles:
#
#   fhir_write  owns schema "hapi": HAPI creates and migrates its tables with it; write tiers.
#   fhir_read   SELECT on every table of the schema, and INSERT/UPDATE/DELETE only on HAPI's
#               search-result cache (the tables listed in READ_ROLE_WRITABLE below); read tiers.
#
# Usage: postgres.sh [-d STATE_DIR] [-p PORT] COMMAND
#   install      apt-get install postgresql if its binaries are missing
#   init         install, create the cluster, database and roles (idempotent)
#   start|stop   start or stop the cluster (start runs init first)
#   grant-read   give fhir_read its privileges on the tables HAPI created (idempotent; run after
#                the write instance created the schema, and after every schema upgrade)
#   status       pg_ctl status
#   psql [ROLE] [ARGS...]   psql into the database as ROLE (default: the superuser)
#
# Defaults: STATE_DIR=examples/hapi/var, PORT=55432. Passwords are generated once into
# STATE_DIR/secrets/<role>.password (mode 0600), for FHIRGUARD_HAPI_DB_PASSWORD_FILE.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${FHIRGUARD_HAPI_STATE:-$HERE/var}
PORT=${FHIRGUARD_HAPI_PG_PORT:-55432}
DB=fhir
SCHEMA=hapi

# HAPI's own bookkeeping that a read instance writes while it serves reads: the search-result
# cache (docs/hapi.md says why each is here). Everything else is read-only for fhir_read.
READ_ROLE_WRITABLE=(hfj_search hfj_search_result hfj_search_include)
READ_ROLE_SEQUENCES=(seq_search seq_search_res seq_search_inc)

while getopts "d:p:" opt; do
  case $opt in
    d) STATE=$OPTARG ;;
    p) PORT=$OPTARG ;;
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
CMD=${1:-}
[ -n "$CMD" ] || { sed -n '2,22p' "$0"; exit 2; }
shift

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
PGDATA=$STATE/pg/data
PGRUN=$STATE/pg/run
PGLOG=$STATE/pg/postgresql.log
SECRETS=$STATE/secrets

log() { echo "postgres.sh: $*" >&2; }

pgbin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cmd_install() {
  if pgbin >/dev/null; then return 0; fi
  [ "$(id -u)" = 0 ] || { log "PostgreSQL is missing and installing it needs root"; exit 1; }
  log "installing PostgreSQL from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # Debian's package creates and may start a system cluster; this example never uses it.
  apt-get install -y -q --no-install-recommends postgresql >/dev/null
  pgbin >/dev/null || { log "no initdb after installing postgresql"; exit 1; }
}

password_for() {
  local f=$SECRETS/$1.password
  if [ ! -s "$f" ]; then
    mkdir -p "$SECRETS"; chmod 0700 "$SECRETS"
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$f")
  fi
  cat "$f"
}

running() { [ -f "$PGDATA/postmaster.pid" ] && as_pg "$(pgbin)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

psql_super() { as_pg "$(pgbin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGRUN" -p "$PORT" -U postgres "$@"; }

cmd_init() {
  cmd_install
  local bin; bin=$(pgbin)
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "creating cluster in $PGDATA"
    mkdir -p "$PGDATA" "$PGRUN"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$STATE/pg"
    chmod 0700 "$PGDATA"
    as_pg "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$PGDATA/postgresql.conf" <<CONF
# fhirguard HAPI example
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGRUN'
unix_socket_permissions = 0770
max_connections = 100
shared_buffers = 128MB
password_encryption = scram-sha-256
log_destination = 'stderr'
log_min_error_statement = error
log_line_prefix = '%m [%p] %u@%d %a: '
CONF
    # Local socket: the superuser by peer (the postgres OS user only); everyone else by password.
    cat > "$PGDATA/pg_hba.conf" <<HBA
local   all   postgres                  peer
local   all   all                       scram-sha-256
host    all   all        127.0.0.1/32   scram-sha-256
HBA
  fi
  cmd_start_only
  local wpw rpw
  wpw=$(password_for fhir_write); rpw=$(password_for fhir_read)
  psql_super -d postgres <<SQL
SELECT 'CREATE ROLE fhir_write LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fhir_write')\gexec
SELECT 'CREATE ROLE fhir_read LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fhir_read')\gexec
ALTER ROLE fhir_write NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$wpw';
ALTER ROLE fhir_read  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$rpw';
SELECT 'CREATE DATABASE $DB OWNER postgres' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB')\gexec
SQL
  psql_super -d "$DB" <<SQL
SET client_min_messages = warning;
REVOKE ALL ON DATABASE $DB FROM PUBLIC;
GRANT CONNECT ON DATABASE $DB TO fhir_write, fhir_read;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA IF NOT EXISTS $SCHEMA AUTHORIZATION fhir_write;
GRANT USAGE ON SCHEMA $SCHEMA TO fhir_read;
ALTER ROLE fhir_write IN DATABASE $DB SET search_path = $SCHEMA;
ALTER ROLE fhir_read  IN DATABASE $DB SET search_path = $SCHEMA;
-- Any role may create large objects by default: only the write role may here.
REVOKE EXECUTE ON FUNCTION lo_creat(integer), lo_create(oid), lo_from_bytea(oid, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lo_creat(integer), lo_create(oid), lo_from_bytea(oid, bytea) TO fhir_write;
-- Every table fhir_write creates from now on is readable by fhir_read, and nothing more.
ALTER DEFAULT PRIVILEGES FOR ROLE fhir_write IN SCHEMA $SCHEMA GRANT SELECT ON TABLES TO fhir_read;
SQL
}

cmd_start_only() {
  running && return 0
  log "starting PostgreSQL on 127.0.0.1:$PORT and $PGRUN"
  touch "$PGLOG"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGLOG"
  as_pg "$(pgbin)/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 start >/dev/null
}

cmd_start() { cmd_init; }

cmd_stop() {
  if running; then
    log "stopping PostgreSQL"
    as_pg "$(pgbin)/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  fi
}

cmd_grant_read() {
  local t s
  local sql="GRANT SELECT ON ALL TABLES IN SCHEMA $SCHEMA TO fhir_read;"
  for t in "${READ_ROLE_WRITABLE[@]}"; do
    sql+=" GRANT SELECT, INSERT, UPDATE, DELETE ON $SCHEMA.$t TO fhir_read;"
  done
  for s in "${READ_ROLE_SEQUENCES[@]}"; do
    sql+=" GRANT USAGE, SELECT ON SEQUENCE $SCHEMA.$s TO fhir_read;"
  done
  psql_super -d "$DB" -c "$sql"
}

cmd_psql() {
  local role=${1:-postgres}; [ $# -gt 0 ] && shift
  if [ "$role" = postgres ]; then
    as_pg "$(pgbin)/psql" -X -h "$PGRUN" -p "$PORT" -U postgres -d "$DB" "$@"
  else
    PGPASSWORD=$(password_for "$role") "$(pgbin)/psql" -X -h 127.0.0.1 -p "$PORT" -U "$role" -d "$DB" "$@"
  fi
}

case $CMD in
  install) cmd_install ;;
  init) cmd_init ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  grant-read) cmd_grant_read ;;
  status) as_pg "$(pgbin)/pg_ctl" -D "$PGDATA" status ;;
  psql) cmd_psql "$@" ;;
  *) log "unknown command: $CMD"; exit 2 ;;
esac
