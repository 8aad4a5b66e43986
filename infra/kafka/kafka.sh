#!/usr/bin/env bash
# Local single-node Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1,
# run straight from Maven Central jars with the installed Java (>= 17). No Docker, no ZooKeeper.
#
#   infra/kafka/kafka.sh fetch                    download jars once into .cache/kafka/<version>/libs
#                                             (prints the lib dir on stdout)
#   infra/kafka/kafka.sh start <dataDir> <port>   format (first time), start, wait until the broker answers
#   infra/kafka/kafka.sh stop <dataDir>           SIGTERM the broker in <dataDir>/broker.pid, SIGKILL after a timeout
#   infra/kafka/kafka.sh status <dataDir>         exit 0 and print "running pid=.. port=.." if it runs, else exit 1
#                                                 ("exiting pid=.. port=.." while a killed or stopping broker still exits)
#   infra/kafka/kafka.sh cluster-start <dir> <nodes> <first-port>
#                                             a KRaft cluster of <nodes> combined broker+controller nodes on
#                                             127.0.0.1:<first-port>.. (controllers on <first-port>+100..), data in
#                                             <dir>/node-<id>; replication factor min(3, nodes), min ISR 2 (nodes ≥ 3);
#                                             prints "ready brokers=host:port,..."
#   infra/kafka/kafka.sh cluster-stop <dir>       stop every node of the cluster in <dir>
#   infra/kafka/kafka.sh version                  print the Kafka version used
#   infra/kafka/kafka.sh classpath                print the java classpath (after fetch), e.g. for
#                                             java -cp "$(infra/kafka/kafka.sh classpath)" org.apache.kafka.tools.ConsumerPerformance ...
#
# Environment (all optional):
#   KAFKA_OWNER_PID        start: a watchdog stops the broker once this pid is gone (tests pass their own pid); 0 or unset: none
#   KAFKA_CONTROLLER_PORT  start: controller listener port (default: the one saved in <dataDir>/controller.port
#                          if still free, else the first free port above <port>)
#   KAFKA_START_TIMEOUT    start: seconds to wait for readiness (default 90)
#   KAFKA_STOP_TIMEOUT     stop:  seconds between SIGTERM and SIGKILL (default 30)
#   KAFKA_HEAP_OPTS        default "-Xms128m -Xmx512m"
#   KAFKA_JVM_PERFORMANCE_OPTS  default G1 settings from Kafka's own kafka-run-class.sh
#   KAFKA_OPTS             extra JVM options
#   KAFKA_LOG_LEVEL        root log level of the broker (default INFO)
#   KAFKA_SERVER_PROPS_EXTRA  extra lines appended verbatim to server.properties (later keys win)
#   KAFKA_NODE_ID          start: this node's id (default 1)
#   KAFKA_QUORUM_VOTERS    start: controller.quorum.voters of a cluster (default: this node alone)
#   KAFKA_CLUSTER_ID       start: the cluster id to format a new node with (every node of a cluster shares it)
#   KAFKA_REPLICATION      start: replication factor of new topics and internal topics (default 1); min ISR is
#                          2 when it is 3 or more, else 1
#   KAFKA_VERSION          override kafka.version from infra/kafka/pom.xml
#   JAVA_HOME              java to use (default: java on PATH)
#
# Exit codes: 0 ok, 1 failure, 2 usage, 3 a broker is already running for <dataDir>.
# See docs/kafka-local.md.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
POM="$REPO_ROOT/infra/kafka/pom.xml"
CACHE_ROOT="$REPO_ROOT/.cache/kafka"

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }
usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}

now_ms() { date +%s%3N; }

kafka_version() {
  if [[ -n "${KAFKA_VERSION:-}" ]]; then
    echo "$KAFKA_VERSION"
    return
  fi
  local v
  v="$(sed -n 's:.*<kafka.version>\([^<]*\)</kafka.version>.*:\1:p' "$POM" | head -n 1)"
  [[ -n "$v" ]] || die "cannot read <kafka.version> from $POM"
  echo "$v"
}

lib_dir() { echo "$CACHE_ROOT/$1/libs"; }

java_bin() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    echo "$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    command -v java
  else
    die "java not found (install Java >= 17 or set JAVA_HOME)"
  fi
}

check_java() {
  local java="$1" spec major
  spec="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n 1)"
  major="${spec#1.}"
  major="${major%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot determine the Java version of $java"
  ((major >= 17)) || die "Kafka $(kafka_version) needs Java >= 17, $java is Java $spec"
}

# ---------------------------------------------------------------------------------------------
# process helpers (Linux /proc first, ps as fallback)

# Alive and not a zombie (a zombie answers kill -0 until it is reaped).
pid_alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    state="$(sed -E 's/^.*\) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
    [[ "$state" != "Z" && "$state" != "X" ]] && return 0
    # A main thread that shows Z while other threads are left: still exiting, and its files (the listening port, the
    # log directory's lock) are open until the last thread is gone. A killed JVM's threads tear down its memory first.
    local tasks=("/proc/$pid/task/"*)
    ((${#tasks[@]} > 1))
  else
    state="$(ps -o stat= -p "$pid" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z* ]]
  fi
}

pid_cmdline() {
  local pid="$1"
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true
  else
    ps -o args= -p "$pid" 2>/dev/null || true
  fi
}

# Start time of a process (clock ticks since boot), to detect pid reuse. Empty without /proc.
pid_start_time() {
  local pid="$1"
  [[ -r "/proc/$pid/stat" ]] || return 0
  sed -E 's/^.*\) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20 || true
}

read_pid_file() {
  local f="$1" pid
  [[ -f "$f" ]] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [[ -n "$pid" ]] || return 1
  echo "$pid"
}

# Is <pid> the Kafka broker started for <dataDir>? (guards against killing a reused pid)
is_our_broker() {
  local pid="$1" data="$2" cmdline saved
  pid_alive "$pid" || return 1
  cmdline="$(pid_cmdline "$pid")"
  [[ "$cmdline" == *"kafka.Kafka $data/server.properties"* ]] && return 0
  # A killed JVM whose other threads are still exiting (pid_alive) has no command line to read: its start time, saved
  # beside the pid at start, tells it from a reused pid. Without that proof (a pid file from before) it is not ours.
  [[ -z "$cmdline" ]] || return 1
  [[ -r "$data/broker.started" ]] || return 1
  saved="$(tr -dc '0-9' <"$data/broker.started")" || return 1
  [[ -n "$saved" && "$saved" == "$(pid_start_time "$pid")" ]]
}

# Is <pid> (our broker, by is_our_broker) exiting: killed or stopping, its other threads still holding its port?
broker_exiting() {
  [[ -z "$(pid_cmdline "$1")" ]]
}

# Wait up to <timeout> s for <pid> to be gone, without signalling it.
wait_gone() {
  local pid="$1" timeout="$2" deadline
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

is_our_watchdog() {
  local pid="$1" data="$2"
  pid_alive "$pid" || return 1
  [[ "$(pid_cmdline "$pid")" == *"kafka-watchdog"*"$data"* ]]
}

# Is something accepting TCP connections on 127.0.0.1:<port>?
port_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Does a Kafka broker answer on 127.0.0.1:<port>? Sends a raw ApiVersions v0 request
# (size=10, api_key=18, api_version=0, correlation_id=42, client_id=null) and checks that the
# response carries our correlation id. A socket that is bound but not yet serving requests
# (Kafka binds early and enables request processing only once the broker is unfenced) times out.
kafka_answers() {
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x2a\xff\xff" >&3
    resp="$(head -c 8 <&3 | od -An -tx1 | tr -d " \n")"
    [[ "${resp:8:8}" == "0000002a" ]]
  ' _ "$1" 2>/dev/null
}

pick_controller_port() {
  local data="$1" port="$2" p saved
  if saved="$(read_pid_file "$data/controller.port")" && [[ "$saved" != "$port" ]] && ! port_open "$saved"; then
    echo "$saved"
    return
  fi
  for ((p = port + 1; p < port + 200 && p <= 65535; p++)); do
    if ! port_open "$p"; then
      echo "$p"
      return
    fi
  done
  die "no free controller port found above $port (set KAFKA_CONTROLLER_PORT)"
}

log_tail() {
  local f="$1" n="${2:-60}"
  if [[ -f "$f" ]]; then
    echo "----- last $n lines of $f -----" >&2
    tail -n "$n" "$f" >&2
    echo "----- end of log -----" >&2
  fi
}

# Send SIGTERM, wait up to <timeout> s, then SIGKILL and wait up to 10 s more.
# Deadlines by the clock ($SECONDS), not by counting 0.1 s sleeps: each check forks, and on a loaded machine 300 of
# them took over 2 minutes, longer than localBroker.ts waits for the whole stop (seen in the integrity suite).
terminate() {
  local pid="$1" timeout="$2"
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait_gone "$pid" "$timeout" && return 0
  log "pid $pid still alive ${timeout}s after SIGTERM, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 10
}

# ---------------------------------------------------------------------------------------------
# fetch

cmd_fetch() {
  local v libs parent tmp t0
  v="$(kafka_version)"
  libs="$(lib_dir "$v")"
  if [[ -f "$libs/.complete" ]]; then
    echo "$libs"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn (Maven) not found on PATH; it is needed once to fetch the Kafka jars"
  parent="$(dirname "$libs")"
  mkdir -p "$parent"
  # Serialise concurrent fetches (parallel test runs) on a lock file.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$parent/.fetch.lock"
    flock 9
    if [[ -f "$libs/.complete" ]]; then
      echo "$libs"
      return 0
    fi
  fi
  t0="$(now_ms)"
  log "fetching Kafka $v jars from Maven (once; cached in $libs)"
  tmp="$(mktemp -d "$parent/libs.tmp.XXXXXX")"
  # mvn -q prints errors on stdout; keep our stdout for the result.
  if ! mvn -q -B -Dstyle.color=never -f "$POM" "-Dkafka.version=$v" dependency:copy-dependencies \
    "-DoutputDirectory=$tmp" -DincludeScope=runtime >&2; then
    rm -rf "$tmp"
    die "mvn dependency:copy-dependencies failed for Kafka $v (see output above)"
  fi
  if [[ ! -f "$tmp/kafka_2.13-$v.jar" ]]; then
    rm -rf "$tmp"
    die "mvn finished but kafka_2.13-$v.jar is missing from the copied dependencies"
  fi
  touch "$tmp/.complete"
  rm -rf "$libs" # leftovers of an interrupted older layout, never a complete one (checked above)
  mv -T "$tmp" "$libs"
  log "fetched $(find "$libs" -name '*.jar' | wc -l) jars in $(($(now_ms) - t0)) ms"
  echo "$libs"
}

require_libs() {
  local libs
  libs="$(lib_dir "$(kafka_version)")"
  if [[ ! -f "$libs/.complete" ]]; then
    cmd_fetch >/dev/null
  fi
  echo "$libs"
}

# ---------------------------------------------------------------------------------------------
# start

gen_cluster_id() {
  # Kafka cluster ids are 16 random bytes, base64url without padding (22 chars), like
  # `kafka-storage random-uuid` prints. Saves a JVM start. Avoid a leading '-' (Uuid does too).
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ ${#id} -eq 22 && "$id" != -* ]] && break
  done
  echo "$id"
}

write_configs() {
  local data="$1" port="$2" cport="$3"
  local node="${KAFKA_NODE_ID:-1}" voters="${KAFKA_QUORUM_VOTERS:-${KAFKA_NODE_ID:-1}@127.0.0.1:$cport}" rf="${KAFKA_REPLICATION:-1}" isr=1
  [[ "$node" =~ ^[0-9]+$ ]] || die "KAFKA_NODE_ID must be a number"
  [[ "$rf" =~ ^[1-9][0-9]*$ ]] || die "KAFKA_REPLICATION must be a positive number"
  ((rf >= 3)) && isr=2
  cat >"$data/server.properties" <<EOF
# Generated by infra/kafka/kafka.sh on every start; edits are overwritten (use KAFKA_SERVER_PROPS_EXTRA).
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data/kraft-logs

# replication: 1 for a single node; a cluster (KAFKA_REPLICATION=3) keeps every topic on 3 nodes, writes need 2
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true

# 2-core dev machines: fewer threads than the defaults (3 network / 8 io)
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4

# retention: a dev/test broker, keep disk use bounded (the pipeline's topics set their own retention.ms and segments)
log.retention.hours=24
log.retention.bytes=1073741824
log.segment.bytes=134217728
# checkTopicPolicy assumes <= 5 min (services/platform/kafka/topicPolicy.ts); 1 min here
log.retention.check.interval.ms=60000
offsets.retention.minutes=10080
EOF
  if [[ -n "${KAFKA_SERVER_PROPS_EXTRA:-}" ]]; then
    printf '\n# KAFKA_SERVER_PROPS_EXTRA\n%s\n' "$KAFKA_SERVER_PROPS_EXTRA" >>"$data/server.properties"
  fi

  cat >"$data/log4j2.properties" <<EOF
# Generated by infra/kafka/kafka.sh. Console output is redirected to broker.log.
status = warn
shutdownHook = disable
name = kafka-local
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d{yyyy-MM-dd'T'HH:mm:ss.SSS'Z'}{UTC}] %p %m (%c)%n
rootLogger.level = ${KAFKA_LOG_LEVEL:-INFO}
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF
}

# Fills the global array JVM_OPTS. Env values are split on whitespace (like kafka-run-class.sh).
jvm_opts() {
  local data="$1" heap perf extra
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
  read -r -a perf <<<"${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
  read -r -a extra <<<"${KAFKA_OPTS:-}"
  # UTC in the broker's log, as everywhere else (found from outside: its lines were in the machine's zone).
  JVM_OPTS=("${heap[@]}" "${perf[@]}" "-Duser.timezone=UTC" "-Dlog4j2.configurationFile=$data/log4j2.properties" "-Dkafka.logs.dir=$data" "${extra[@]}")
}

start_watchdog() {
  local owner="$1" broker="$2" data="$3"
  local owner_start broker_start
  owner_start="$(pid_start_time "$owner")"
  broker_start="$(pid_start_time "$broker")"
  # A separate bash (not a subshell of this script) with its own stdio, so callers that wait for
  # our stdout to close (e.g. Node's execFile) are not held up. "kafka-watchdog" + data dir in its
  # argv identify it for `stop`.
  setsid nohup bash -c '
    owner="$1"; owner_start="$2"; broker="$3"; broker_start="$4"; data="$5"; stop_timeout="$6"
    alive() {
      kill -0 "$1" 2>/dev/null || return 1
      [[ -r "/proc/$1/stat" ]] || return 0
      local rest; rest="$(sed -E "s/^.*\\) //" "/proc/$1/stat" 2>/dev/null)" || return 1
      [[ "${rest%% *}" != Z ]] || return 1
      [[ -z "$2" ]] || [[ "$(echo "$rest" | cut -d" " -f20)" == "$2" ]]
    }
    while alive "$broker" "$broker_start"; do
      if ! alive "$owner" "$owner_start"; then
        echo "[$(date -u -Is)] kafka-watchdog: owner pid $owner is gone, stopping broker pid $broker"
        kill -TERM "$broker" 2>/dev/null || true
        deadline=$((SECONDS + stop_timeout))
        while ((SECONDS < deadline)); do
          alive "$broker" "$broker_start" || exit 0
          sleep 0.1
        done
        echo "[$(date -u -Is)] kafka-watchdog: broker pid $broker ignored SIGTERM for ${stop_timeout}s, sending SIGKILL"
        kill -KILL "$broker" 2>/dev/null || true
        exit 0
      fi
      sleep 1
    done
  ' kafka-watchdog "$owner" "$owner_start" "$broker" "$broker_start" "$data" "${KAFKA_STOP_TIMEOUT:-30}" \
    </dev/null >>"$data/broker.log" 2>&1 &
  echo $! >"$data/watchdog.pid"
}

cmd_start() {
  [[ $# -eq 2 ]] || usage
  local data="$1" port="$2" libs java v cport pid cid t0 deadline timeout rc
  [[ "$port" =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) || die "invalid port '$port'"
  mkdir -p "$data"
  data="$(cd "$data" && pwd -P)"
  local logf="$data/broker.log"

  # Its own broker still exiting (killed a moment ago): started again once gone, as it would be a moment later.
  if pid="$(read_pid_file "$data/broker.pid")" && is_our_broker "$pid" "$data" && broker_exiting "$pid"; then
    log "the Kafka broker of $data (pid $pid) is exiting; waiting for it"
    wait_gone "$pid" "${KAFKA_STOP_TIMEOUT:-30}" || die "the Kafka broker of $data (pid $pid) was still exiting after ${KAFKA_STOP_TIMEOUT:-30}s"
  fi
  if pid="$(read_pid_file "$data/broker.pid")" && is_our_broker "$pid" "$data"; then
    log "a Kafka broker is already running for $data (pid $pid, port $(cat "$data/broker.port" 2>/dev/null || echo '?'))."
    log "Not starting a second one. Stop it first: infra/kafka/kafka.sh stop $data"
    exit 3
  fi
  rm -f "$data/broker.pid" "$data/broker.started" "$data/watchdog.pid"

  # 0 means no owner (no watchdog), as `ownerPid: 0` does for startLocalBroker.
  [[ "${KAFKA_OWNER_PID:-}" == "0" ]] && KAFKA_OWNER_PID=""
  if [[ -n "${KAFKA_OWNER_PID:-}" ]]; then
    [[ "$KAFKA_OWNER_PID" =~ ^[0-9]+$ ]] || die "KAFKA_OWNER_PID must be a pid, got '$KAFKA_OWNER_PID'"
    pid_alive "$KAFKA_OWNER_PID" || die "KAFKA_OWNER_PID $KAFKA_OWNER_PID is not a running process"
  fi

  port_open "$port" && die "port 127.0.0.1:$port is already in use"
  if [[ -n "${KAFKA_CONTROLLER_PORT:-}" ]]; then
    cport="$KAFKA_CONTROLLER_PORT"
    [[ "$cport" != "$port" ]] || die "KAFKA_CONTROLLER_PORT must differ from the broker port"
    port_open "$cport" && die "controller port 127.0.0.1:$cport is already in use"
  else
    cport="$(pick_controller_port "$data" "$port")"
  fi

  libs="$(require_libs)"
  v="$(kafka_version)"
  java="$(java_bin)"
  check_java "$java"

  t0="$(now_ms)"
  write_configs "$data" "$port" "$cport"
  echo "$port" >"$data/broker.port"
  echo "$cport" >"$data/controller.port"

  # Keep broker.log bounded across many restarts.
  if [[ -f "$logf" ]] && (($(stat -c %s "$logf" 2>/dev/null || echo 0) > 50 * 1024 * 1024)); then
    mv -f "$logf" "$logf.1"
  fi
  echo "===== [$(date -u -Is)] kafka.sh start: Kafka $v, broker 127.0.0.1:$port, controller 127.0.0.1:$cport =====" >>"$logf"

  if [[ ! -f "$data/kraft-logs/meta.properties" ]]; then
    if [[ -s "$data/cluster.id" ]]; then
      cid="$(tr -d ' \n' <"$data/cluster.id")"
    elif [[ -n "${KAFKA_CLUSTER_ID:-}" ]]; then
      cid="$KAFKA_CLUSTER_ID"
      echo "$cid" >"$data/cluster.id"
    else
      cid="$(gen_cluster_id)"
      echo "$cid" >"$data/cluster.id"
    fi
    if ! "$java" -Xmx256m -XX:TieredStopAtLevel=1 "-Dlog4j2.configurationFile=$data/log4j2.properties" \
      -cp "$libs/*" kafka.tools.StorageTool format -t "$cid" -c "$data/server.properties" --ignore-formatted \
      </dev/null >>"$logf" 2>&1; then
      log_tail "$logf" 40
      die "kafka-storage format failed for $data"
    fi
  fi

  jvm_opts "$data"
  setsid nohup "$java" "${JVM_OPTS[@]}" -cp "$libs/*" kafka.Kafka "$data/server.properties" \
    </dev/null >>"$logf" 2>&1 &
  pid=$!
  # The start time first: a pid file is never there without it.
  pid_start_time "$pid" >"$data/broker.started"
  echo "$pid" >"$data/broker.pid"

  if [[ -n "${KAFKA_OWNER_PID:-}" ]]; then
    start_watchdog "$KAFKA_OWNER_PID" "$pid" "$data"
  fi

  timeout="${KAFKA_START_TIMEOUT:-90}"
  deadline=$((SECONDS + timeout))
  while :; do
    if ! pid_alive "$pid"; then
      rc=0
      wait "$pid" 2>/dev/null || rc=$?
      rm -f "$data/broker.pid" "$data/broker.started"
      log_tail "$logf"
      die "Kafka broker (pid $pid) exited during startup with code $rc; log: $logf"
    fi
    if kafka_answers "$port"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      log "Kafka broker (pid $pid) did not answer on 127.0.0.1:$port within ${timeout}s; stopping it"
      terminate "$pid" 10 || true
      rm -f "$data/broker.pid" "$data/broker.started"
      log_tail "$logf"
      die "Kafka broker start timed out; log: $logf"
    fi
    sleep 0.2
  done
  log "Kafka $v ready on 127.0.0.1:$port (pid $pid) in $(($(now_ms) - t0)) ms"
  echo "ready brokers=127.0.0.1:$port pid=$pid controller=127.0.0.1:$cport version=$v"
}

# ---------------------------------------------------------------------------------------------
# stop / status

cmd_stop() {
  [[ $# -eq 1 ]] || usage
  local data="$1" pid wpid
  if [[ ! -d "$data" ]]; then
    log "no data dir $data; nothing to stop"
    return 0
  fi
  data="$(cd "$data" && pwd -P)"
  if wpid="$(read_pid_file "$data/watchdog.pid")" && is_our_watchdog "$wpid" "$data"; then
    kill -TERM "$wpid" 2>/dev/null || true
  fi
  rm -f "$data/watchdog.pid"
  if ! pid="$(read_pid_file "$data/broker.pid")"; then
    log "no pid file in $data; nothing to stop"
    return 0
  fi
  if ! is_our_broker "$pid" "$data"; then
    # Alive after the check, so not gone during it: a killed broker's last thread can exit while it looks (found from
    # outside, 2026-12-08: a stop run at a kill -9 called the broker a reused pid).
    if pid_alive "$pid"; then
      log "pid $pid from $data/broker.pid is not the Kafka broker of $data (pid reused?); not killing it, removing the stale pid file"
    else
      log "broker pid $pid is not running (stale pid file removed)"
    fi
    rm -f "$data/broker.pid" "$data/broker.started"
    return 0
  fi
  if ! terminate "$pid" "${KAFKA_STOP_TIMEOUT:-30}"; then
    die "broker pid $pid did not exit even after SIGKILL"
  fi
  rm -f "$data/broker.pid" "$data/broker.started"
  echo "[$(date -u -Is)] kafka.sh stop: broker pid $pid stopped" >>"$data/broker.log"
  log "stopped broker pid $pid"
}

cmd_status() {
  [[ $# -eq 1 ]] || usage
  local data="$1" pid port
  [[ -d "$data" ]] || exit 1
  data="$(cd "$data" && pwd -P)"
  pid="$(read_pid_file "$data/broker.pid")" || exit 1
  is_our_broker "$pid" "$data" || exit 1
  port="$(read_pid_file "$data/broker.port" || true)"
  if broker_exiting "$pid"; then
    echo "exiting pid=$pid port=${port:-?}"
    exit 1
  fi
  if [[ -n "$port" ]] && kafka_answers "$port"; then
    echo "running pid=$pid port=$port"
  else
    echo "starting pid=$pid port=${port:-?}"
  fi
}

# ---------------------------------------------------------------------------------------------
# cluster-start / cluster-stop

cmd_cluster_start() {
  [[ $# -eq 3 ]] || usage
  local dir="$1" nodes="$2" first="$3" i voters="" cid pids=() brokers="" rc=0
  [[ "$nodes" =~ ^[1-9]$ ]] || die "<nodes> must be 1-9"
  [[ "$first" =~ ^[0-9]+$ ]] && ((first >= 1 && first + 100 + nodes <= 65535)) || die "invalid first port '$first'"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd -P)"
  if [[ -s "$dir/cluster.id" ]]; then cid="$(tr -d ' \n' <"$dir/cluster.id")"; else cid="$(gen_cluster_id)"; echo "$cid" >"$dir/cluster.id"; fi
  for ((i = 1; i <= nodes; i++)); do voters+="${voters:+,}$i@127.0.0.1:$((first + 100 + i - 1))"; done
  # Nodes start together: none is ready before a quorum of controllers is up.
  for ((i = 1; i <= nodes; i++)); do
    KAFKA_NODE_ID="$i" KAFKA_QUORUM_VOTERS="$voters" KAFKA_CLUSTER_ID="$cid" KAFKA_REPLICATION="$((nodes < 3 ? nodes : 3))" \
      KAFKA_CONTROLLER_PORT="$((first + 100 + i - 1))" cmd_start "$dir/node-$i" "$((first + i - 1))" >"$dir/node-$i.start.out" 2>&1 &
    pids+=("$!")
    brokers+="${brokers:+,}127.0.0.1:$((first + i - 1))"
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  if ((rc != 0)); then
    for ((i = 1; i <= nodes; i++)); do cat "$dir/node-$i.start.out" >&2 || true; done
    die "cluster start failed"
  fi
  echo "$brokers" >"$dir/brokers"
  echo "ready brokers=$brokers"
}

cmd_cluster_stop() {
  [[ $# -eq 1 ]] || usage
  local dir="$1" node
  [[ -d "$dir" ]] || return 0
  for node in "$dir"/node-*/; do
    [[ -d "$node" ]] && cmd_stop "${node%/}"
  done
  return 0
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd="$1"
  shift
  case "$cmd" in
  fetch) cmd_fetch ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  cluster-start) cmd_cluster_start "$@" ;;
  cluster-stop) cmd_cluster_stop "$@" ;;
  version) kafka_version ;;
  classpath) echo "$(require_libs)/*" ;;
  -h | --help | help) usage 0 ;;
  *) usage ;;
  esac
}

# Sourced (tests read its helpers), it runs nothing.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
