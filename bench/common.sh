# Shared by the bench scripts: release builds, a local S3 server, timing with /usr/bin/time.
# shellcheck shell=bash

build_release() {
    echo "==> cargo build --release (haul, haul-s3d)" >&2
    cargo build --release -p haul -p haul-testkit --bin haul --bin haul-s3d
    local target_dir
    target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    HAUL="$target_dir/release/haul"
    S3D="$target_dir/release/haul-s3d"
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
