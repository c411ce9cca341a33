# Shared by the bench scripts: release builds, a local S3 server, timing with /usr/bin/time.
# shellcheck shell=bash

build_release() {
    echo "==> cargo build --release (haul, haul-s3d, haul-delay)" >&2
    cargo build --release -p haul -p haul-testkit --bin haul --bin haul-s3d --bin haul-delay
    local target_dir
    target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    HAUL="$target_dir/release/haul"
    S3D="$target_dir/release/haul-s3d"
    DELAY="$target_dir/release/haul-delay"
}

# start_delay WORK RTT_MS [RATE_MIB]: a delay line (haul-delay) in front of ENDPOINT: each new
# connection waits a round trip, each byte half of one each way, each direction capped at
# RATE_MIB MiB/s when given. ENDPOINT (and rclone's) then point at it; SERVER_ENDPOINT keeps
# the server's own. With TLS=1 the endpoint is https:// (a TLS front with a test CA behind the
# delay line) and every tool trusts the CA through SSL_CERT_FILE and AWS_CA_BUNDLE.
start_delay() {
    local work=$1 rtt=$2 rate=${3:-} tls=()
    SERVER_ENDPOINT=$ENDPOINT
    [ -n "${TLS:-}" ] && tls=(--tls-ca "$work/test-ca.pem")
    "$DELAY" --upstream "${ENDPOINT#http://}" --rtt-ms "$rtt" ${rate:+--rate-mib "$rate"} "${tls[@]}" >"$work/delay.log" 2>&1 &
    DELAY_PID=$!
    for _ in $(seq 100); do grep -q '^endpoint ' "$work/delay.log" && break; sleep 0.1; done
    ENDPOINT=$(sed -n 's/^endpoint //p' "$work/delay.log")
    [ -n "$ENDPOINT" ] || { cat "$work/delay.log" >&2; return 1; }
    export RCLONE_CONFIG_G_ENDPOINT=$ENDPOINT
    if [ -n "${TLS:-}" ]; then export SSL_CERT_FILE=$work/test-ca.pem AWS_CA_BUNDLE=$work/test-ca.pem; fi
    echo "==> a ${rtt} ms round trip${rate:+, ${rate} MiB/s each way}${TLS:+, over TLS} in front of the server: $ENDPOINT" >&2
}

stop_delay() {
    if [ -n "${DELAY_PID:-}" ]; then kill "$DELAY_PID" 2>/dev/null || true; wait "$DELAY_PID" 2>/dev/null || true; fi
    DELAY_PID=
}

# start_server ROOT: haul-s3d (s3s-fs, TCP_NODELAY) over ROOT on a free port; sets ENDPOINT.
start_server() {
    local root=$1
    mkdir -p "$root"
    "$S3D" --root "$root" --port 0 >"$root.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do grep -q '^endpoint ' "$root.log" && break; sleep 0.1; done
    ENDPOINT=$(sed -n 's/^endpoint //p' "$root.log")
    [ -n "$ENDPOINT" ] || { cat "$root.log" >&2; return 1; }
    export AWS_ACCESS_KEY_ID=$(sed -n 's/^access_key //p' "$root.log")
    export AWS_SECRET_ACCESS_KEY=$(sed -n 's/^secret_key //p' "$root.log")
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
}

stop_server() {
    if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    SERVER_PID=
}

# timed OUT -- COMMAND...: runs COMMAND, appends "wall_s user_s sys_s maxrss_kib exit" to OUT;
# its stdout and stderr go to OUT.stdout and OUT.stderr.
timed() {
    local out=$1; shift; [ "$1" = "--" ] && shift
    local status=0
    /usr/bin/time -o "$out.one" -f "%e %U %S %M %x" "$@" >"$out.stdout" 2>"$out.stderr" || status=$?
    cat "$out.one" >>"$out"
    return $status
}

# manifest FILE DIRECTION LOCAL [EXTRA YAML LINES]: one transfer of bucket `bench`, prefix data/.
manifest() {
    local file=$1 direction=$2 local_dir=$3 extra=${4:-}
    cat >"$file" <<YAML
version: 1
transfers:
  - name: bench
    direction: $direction
    bucket: bench
    prefix: data/
    local: $local_dir
    endpoint: $ENDPOINT
    path_style: true
    region: us-east-1
$extra
YAML
}

# start_garage WORK: a single-node Garage (installed with cargo when missing) with its data in
# WORK/garage, a bucket `bench` and a key for it; sets ENDPOINT and GARAGE_PID (Garage itself,
# whose CPU a benchmark may read) and exports the credentials for the SDK, the AWS CLI and
# rclone (remote `G:`). stop_garage stops it.
start_garage() {
    local work=$1 port rpc node key_id secret
    if ! command -v garage >/dev/null; then
        echo "==> cargo install --locked garage (once; several minutes)" >&2
        cargo install --locked garage
    fi
    GARAGE=$(command -v garage)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rpc=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$work/garage.toml" <<TOML
metadata_dir = "$work/garage/meta"
data_dir = "$work/garage/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$port"
root_domain = ".s3.garage.localhost"
TOML
    GARAGE_CONFIG=$work/garage.toml
    "$GARAGE" -c "$GARAGE_CONFIG" server >"$work/garage.log" 2>&1 &
    GARAGE_PID=$!
    for _ in $(seq 100); do garage_cli status >/dev/null 2>&1 && break; sleep 0.2; done
    node=$(garage_cli status 2>/dev/null | awk '/^[0-9a-f]{16}/ {print $1; exit}')
    garage_cli layout assign -z dc1 -c 10G "$node" >/dev/null
    garage_cli layout apply --version 1 >/dev/null
    key_id=GK$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    garage_cli key import --yes "$key_id" "$secret" -n bench >/dev/null
    garage_cli bucket create bench >/dev/null
    garage_cli bucket allow --read --write --owner bench --key bench >/dev/null
    ENDPOINT=http://127.0.0.1:$port
    export AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$secret AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
    export RCLONE_CONFIG_G_TYPE=s3 RCLONE_CONFIG_G_PROVIDER=Other RCLONE_CONFIG_G_ENDPOINT=$ENDPOINT \
        RCLONE_CONFIG_G_ACCESS_KEY_ID=$key_id RCLONE_CONFIG_G_SECRET_ACCESS_KEY=$secret \
        RCLONE_CONFIG_G_FORCE_PATH_STYLE=true RCLONE_CONFIG_G_REGION=us-east-1
    echo "==> Garage $("$GARAGE" --version 2>/dev/null | head -1 | awk '{print $2}') at $ENDPOINT" >&2
}

garage_cli() { "$GARAGE" -c "$GARAGE_CONFIG" "$@"; }

stop_garage() {
    if [ -n "${GARAGE_PID:-}" ]; then kill "$GARAGE_PID" 2>/dev/null || true; wait "$GARAGE_PID" 2>/dev/null || true; fi
    GARAGE_PID=
}

# Garage's CPU time so far, in seconds (utime + stime from /proc).
ticks=$(getconf CLK_TCK)
server_cpu() { awk -v t="$ticks" '{printf "%.2f", ($14 + $15) / t}' "/proc/$GARAGE_PID/stat"; }

# timed_run TIMESFILE -- COMMAND...: `timed`, with the server's CPU during the run appended
# to the line.
timed_run() {
    local times=$1 before status=0; shift; [ "$1" = "--" ] && shift
    before=$(server_cpu)
    timed "$times" -- "$@" || status=$?
    sed -i "\$ s/\$/ $(printf '%.2f' "$(echo "$(server_cpu) - $before" | bc -l)")/" "$times"
    return $status
}
