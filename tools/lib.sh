# Shared by tools/demo, tools/test and tools/bench: installs what is missing and runs a
# throwaway PostgreSQL cluster. Source it; do not run it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages the build and the embedded cluster need, when missing.
ensure_packages() {
    local missing=()
    pkg-config --exists libzmq 2>/dev/null || missing+=(libzmq3-dev)
    pkg-config --exists libpq 2>/dev/null || missing+=(libpq-dev)
    [ -x "$PG_BIN/initdb" ] || missing+=(postgresql-15)
    [ -f /usr/share/postgresql/15/extension/postgis.control ] || missing+=(postgresql-15-postgis-3)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    [ -f /usr/include/crypt.h ] || missing+=(libcrypt-dev)  # yescrypt for liandong-console's users
    command -v python3 >/dev/null || missing+=(python3)
    command -v sipp >/dev/null || missing+=(sip-tester)  # SIPp: a real SIP client for the GB/T 28181 bridge
    /usr/bin/python3 -c 'import zmq' 2>/dev/null || missing+=(python3-zmq)  # docs/examples (Debian's python3, not a pyenv one)
    apt_install "${missing[@]}"
}

# apt-get install what is given (nothing when nothing is), as root or through sudo.
apt_install() {
    [ $# -eq 0 ] && return 0
    say "installing $*"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install: apt-get install $*"
        sudo=sudo
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Headless Chromium, its WebDriver and a CJK font, for the tests that look at the assessment report
# and drive the console as a person would (tools/test and tools/demo only: the daemon needs none).
ensure_browser() {
    local missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    fc-list 2>/dev/null | grep -qi 'wqy\|noto sans cjk' || missing+=(fonts-wqy-microhei)
    apt_install "${missing[@]}"
}

# Prometheus' promtool (its `check metrics` lints an exposition), for the tests: taken out of
# Debian's prometheus package without installing it (that would set up a service). Prints its path.
ensure_promtool() {
    if command -v promtool >/dev/null; then command -v promtool; return 0; fi
    local dir
    dir=$(state_dir)/tools
    if [ ! -x "$dir/promtool" ]; then
        say "fetching promtool (Debian's prometheus package, unpacked into $dir)"
        local sudo="" tmp
        [ "$(id -u)" -ne 0 ] && sudo=sudo
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb root) \
            || die "could not fetch Debian's prometheus package for promtool"
        mkdir -p "$dir"
        cp "$tmp/root/usr/bin/promtool" "$dir/promtool"
        rm -rf "$tmp"
    fi
    printf '%s' "$dir/promtool"
}

# GET http://127.0.0.1:PORT/PATH with bash alone (no curl on a fresh machine): prints the body.
http_get() {
    local port=$1 path=$2
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
    sed '1,/^\r$/d' <&3
    exec 3<&-
}

# Runs a command as the cluster owner: `postgres` when we are root (PostgreSQL refuses root).
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A state folder the cluster owner can write: .state/ in the project when it can reach it,
# else a folder under /tmp named after the project path.
state_dir() {
    local dir="$ROOT/.state"
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir" 2>/dev/null || true
        if ! runuser -u postgres -- test -w "$dir" 2>/dev/null; then
            dir=/tmp/liandong-state-$(printf '%s' "$ROOT" | md5sum | cut -c1-8)
            mkdir -p "$dir"
            chown postgres: "$dir"
        fi
    fi
    printf '%s' "$dir"
}

# pg_start NAME PORT: a fresh throwaway cluster on 127.0.0.1:PORT, stopped by pg_stop (EXIT trap).
# Exports PG_ADMIN_URL (conninfo of the `postgres` database as superuser).
pg_start() {
    local name=$1 port=$2
    PG_STATE=$(state_dir)/$name
    PG_DATA=$PG_STATE/data
    PG_SOCK=$PG_STATE/sock
    if [ -f "$PG_DATA/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m immediate >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_STATE"
    mkdir -p "$PG_STATE"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_STATE"
    as_pg mkdir -p "$PG_SOCK"
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
        die "port $port on 127.0.0.1 is in use; stop what listens there or set LIANDONG_PG_PORT"
    fi
    say "starting a throwaway PostgreSQL on 127.0.0.1:$port ($PG_DATA)"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$PG_STATE/initdb.log" 2>&1 \
        || { cat "$PG_STATE/initdb.log" >&2; die "initdb failed"; }
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_STATE/server.log" -w -t 60 start \
        -o "-p $port -k $PG_SOCK -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB ${PG_EXTRA_OPTS:-}" \
        >/dev/null || { cat "$PG_STATE/server.log" >&2; die "PostgreSQL did not start"; }
    PG_RUNNING=1
    export PG_ADMIN_URL="host=127.0.0.1 port=$port user=postgres dbname=postgres"
}

pg_stop() {
    if [ "${PG_RUNNING:-0}" = 1 ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m fast >/dev/null 2>&1 || true
        PG_RUNNING=0
    fi
}

# Release binaries as tools/install ships them: the Swift runtime linked statically, in their own
# scratch path (tools/bench measures the daemon built here).
STATIC_SCRATCH=$ROOT/.build-static
swift_build_static() {
    local product
    for product in "$@"; do
        swift_build -c release --static-swift-stdlib --scratch-path "$STATIC_SCRATCH" --product "$product"
    done
}

swift_build() {
    say "building (swift build $*)"
    local status
    set +e
    (cd "$ROOT" && swift build "$@" 2>&1 | grep -v -e "prohibited flag" -e "^\[[0-9]*/[0-9]*\]" >&2; exit "${PIPESTATUS[0]}")
    status=$?
    set -e
    [ "$status" -eq 0 ] || die "build failed"
}
