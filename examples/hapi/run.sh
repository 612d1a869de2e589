#!/usr/bin/env bash
# fhirguard's HAPI FHIR example, whole: PostgreSQL (a cluster of its own), a write instance and a
# read instance of HAPI FHIR JPA (R4) on two loopback ports, each with its own database role.
#
#   ./run.sh           install what is missing, build, start everything, wait until both
#                      instances answer /metadata, then run until Ctrl-C or SIGTERM
#   ./run.sh verify    the same, then check writes go through the write instance only and reads
#                      and paged searches work on the read instance; stop; exit 0 if all passed
#   ./run.sh build     install what is missing and build target/fhirguard-hapi.jar when its
#                      sources are newer; nothing started
#   ./run.sh prepare   build, put the jar in the state directory and start PostgreSQL, then
#                      exit: what fhirguard needs before it runs HAPI in its tiers (up.sh)
#
# Environment: FHIRGUARD_HAPI_STATE (default ./var), FHIRGUARD_HAPI_PG_PORT (55432),
# WRITE_PORT (8091), READ_PORT (8092), HAPI_JAVA_OPTS, HEALTH_TIMEOUT (seconds, 300).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export FHIRGUARD_HAPI_STATE=${FHIRGUARD_HAPI_STATE:-$HERE/var}
export FHIRGUARD_HAPI_PG_PORT=${FHIRGUARD_HAPI_PG_PORT:-55432}
STATE=$FHIRGUARD_HAPI_STATE
WRITE_PORT=${WRITE_PORT:-8091}
READ_PORT=${READ_PORT:-8092}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-300}
# IPv4 sockets only: the JVM's default is AF_INET6 with v4-mapped addresses, so its connect to
# PostgreSQL would meet cgroup/connect6, not connect4.
# No perf-data file under /tmp (-XX:-UsePerfData): nothing written outside java.io.tmpdir.
# A fixed number of JIT compiler threads (-XX:-UseDynamicNumberOfCompilerThreads): the JVM does
# not ask for free memory (its cgroup's memory files) every time it would add or remove one.
# Exit at the first OutOfMemoryError (whoever runs it restarts it) instead of limping on.
JAVA_OPTS=${HAPI_JAVA_OPTS:--Xms64m -Xmx512m -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -XX:-UsePerfData -XX:-UseDynamicNumberOfCompilerThreads -Djava.net.preferIPv4Stack=true}
MODE=${1:-up}
JAR_SRC=$HERE/target/fhirguard-hapi.jar

log() { echo "run.sh: $*" >&2; }
PIDS=()

stop_all() {
  local pid
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  "$HERE/postgres.sh" stop || true
  log "stopped"
}

install_missing() {
  local need=()
  command -v java >/dev/null || need+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || need+=(maven openjdk-17-jdk-headless)
  command -v curl >/dev/null || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  fi
  "$HERE/postgres.sh" install
}

build_jar() {
  local newest
  # One build at a time (tests run in parallel may each ask for the jar).
  mkdir -p "$HERE/target"
  exec 9>"$HERE/target/.build.lock"
  flock 9
  newest=$(find "$HERE/pom.xml" "$HERE/src" -type f -newer "$JAR_SRC" 2>/dev/null | head -1 || true)
  if [ ! -f "$JAR_SRC" ] || [ -n "$newest" ]; then
    log "building the jar (the first build downloads HAPI and its dependencies from Maven Central)"
    local t0=$SECONDS
    (cd "$HERE" && mvn -B -q package -DskipTests)
    log "built in $((SECONDS - t0)) s"
  fi
  flock -u 9
}

build() {
  build_jar
  # The instances run a copy: rebuilding never changes the jar under a running JVM.
  mkdir -p "$STATE/app"
  cp "$JAR_SRC" "$STATE/app/fhirguard-hapi.jar.new" && mv "$STATE/app/fhirguard-hapi.jar.new" "$STATE/app/fhirguard-hapi.jar"
}

# start_instance NAME ROLE PORT READ_ONLY
start_instance() {
  local name=$1 role=$2 port=$3 ro=$4
  mkdir -p "$STATE/$name/tmp" "$STATE/log"
  log "starting $name instance on 127.0.0.1:$port as $role"
  FHIRGUARD_HAPI_JDBC_URL="jdbc:postgresql://127.0.0.1:$FHIRGUARD_HAPI_PG_PORT/fhir" \
  FHIRGUARD_HAPI_DB_USER=$role \
  FHIRGUARD_HAPI_DB_PASSWORD_FILE=$STATE/secrets/$role.password \
  FHIRGUARD_HAPI_LISTEN=127.0.0.1:$port \
  FHIRGUARD_HAPI_READ_ONLY=$ro \
    java $JAVA_OPTS -Djava.io.tmpdir="$STATE/$name/tmp" -jar "$STATE/app/fhirguard-hapi.jar" \
    > "$STATE/log/$name.log" 2>&1 < /dev/null &
  PIDS+=($!)
  echo $! > "$STATE/$name.pid"
}

# wait_healthy NAME PORT: until /metadata answers 200; fails on death or timeout
wait_healthy() {
  local name=$1 port=$2 pid t0=$SECONDS
  pid=$(cat "$STATE/$name.pid")
  while :; do
    if curl -sf -m 5 -o /dev/null "http://127.0.0.1:$port/fhir/metadata"; then
      log "$name instance healthy after $((SECONDS - t0)) s (pid $pid, RSS $(($(ps -o rss= -p "$pid") / 1024)) MiB)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name instance died before it was healthy; end of $STATE/log/$name.log:"
      tail -20 "$STATE/log/$name.log" >&2
      return 1
    fi
    if [ $((SECONDS - t0)) -ge "$HEALTH_TIMEOUT" ]; then
      log "$name instance not healthy after $HEALTH_TIMEOUT s; end of its log:"
      tail -20 "$STATE/log/$name.log" >&2
      return 1
    fi
    sleep 0.5
  done
}

FAILED=0 PASSED=0
check() { # check DESCRIPTION EXPECTED_STATUS ACTUAL_STATUS
  if [ "$2" = "$3" ]; then echo "ok    $1 ($3)"; PASSED=$((PASSED + 1)); else echo "FAIL  $1: expected $2, got $3"; FAILED=$((FAILED + 1)); fi
}

verify() {
  local W=http://127.0.0.1:$WRITE_PORT/fhir R=http://127.0.0.1:$READ_PORT/fhir id code body next family
  family="Verify$(date +%s)"
  body=$(curl -s -m 30 -w '\n%{http_code}' -X POST -H 'Content-Type: application/fhir+json' \
    -d "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"$family\"}],\"gender\":\"other\"}" "$W/Patient")
  check "POST Patient to the write instance" 201 "$(tail -1 <<<"$body")"
  id=$(head -1 <<<"$body" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
  for i in 1 2 3 4 5 6; do
    curl -s -m 30 -o /dev/null -X POST -H 'Content-Type: application/fhir+json' \
      -d "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"$family\",\"given\":[\"G$i\"]}]}" "$W/Patient"
  done
  check "read it on the read instance" 200 "$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$R/Patient/$id")"
  body=$(curl -s -m 30 "$R/Patient?family=$family&_count=3")
  check "search on the read instance finds 3 of 7 on page 1" 3 "$(grep -o '"fullUrl"' <<<"$body" | wc -l)"
  next=$(sed -n 's/.*"relation":"next","url":"\([^"]*\)".*/\1/p' <<<"$body")
  check "page 2 of the search on the read instance" 200 "$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$next")"
  code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/fhir+json' \
    -d '{"resourceType":"Patient","name":[{"family":"Refused"}]}' "$R/Patient")
  check "POST Patient to the read instance is refused" 405 "$code"
  code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -X DELETE "$R/Patient/$id")
  check "DELETE on the read instance is refused" 405 "$code"
  code=$("$HERE/postgres.sh" psql fhir_read -Atc "UPDATE hfj_resource SET res_ver = res_ver WHERE false" >/dev/null 2>&1 && echo allowed || echo refused)
  check "the database refuses UPDATE of hfj_resource by fhir_read" refused "$code"
  code=$("$HERE/postgres.sh" psql fhir_read -Atc "SELECT count(*) FROM hfj_resource" >/dev/null 2>&1 && echo allowed || echo refused)
  check "the database lets fhir_read SELECT hfj_resource" allowed "$code"
  echo "$PASSED passed, $FAILED failed"
}

case $MODE in
  build)
    install_missing
    build_jar
    exit 0
    ;;
  prepare)
    install_missing
    build
    "$HERE/postgres.sh" start
    exit 0
    ;;
  up | verify) ;;
  *)
    sed -n '2,17p' "$0" >&2
    exit 2
    ;;
esac

trap stop_all EXIT
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
install_missing
build
"$HERE/postgres.sh" start
start_instance write fhir_write "$WRITE_PORT" false
wait_healthy write "$WRITE_PORT"
# The write instance created or upgraded the schema: give the read role its privileges on it.
"$HERE/postgres.sh" grant-read >/dev/null
start_instance read fhir_read "$READ_PORT" true
wait_healthy read "$READ_PORT"
log "write: http://127.0.0.1:$WRITE_PORT/fhir  read: http://127.0.0.1:$READ_PORT/fhir  logs: $STATE/log"

if [ "$MODE" = verify ]; then
  verify
  [ "$FAILED" = 0 ]
  exit $?
fi
log "running; Ctrl-C or SIGTERM stops everything"
wait -n "${PIDS[@]}" || true
log "an instance exited; stopping everything"
