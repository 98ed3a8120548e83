# Shared setup of the load scripts (sourced, not run): tool checks, the release binary, a free
# loopback port, and a work folder that is removed, with the server stopped, on exit.
# Expects SCRIPT (the caller's name for messages); sets BIN, PORT, BASE, WORK, SERVER_PID.

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/hindsight-target}
BIN=${HINDSIGHT_BIN:-$CARGO_TARGET_DIR/release/hindsight}

# require_tools TOOL...: stop with the package to install when one is missing.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$SCRIPT: $tool is missing (apt-get install $tool)" >&2; exit 2; }
  done
}

# ensure_binary: build the release binary when it is not there yet.
ensure_binary() {
  if [[ ! -x $BIN ]]; then
    echo "== building the release binary"
    cargo build --release
  fi
}

# pick_port: PORT (if set) or a free one on 127.0.0.1; sets BASE.
pick_port() {
  port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  if [[ -z ${PORT:-} ]]; then
    PORT=$(( 20000 + RANDOM % 20000 ))
    while port_in_use "$PORT"; do PORT=$(( 20000 + RANDOM % 20000 )); done
  fi
  BASE=http://127.0.0.1:$PORT
}

# make_workdir NAME: a temporary folder, removed (and the server stopped) when the script exits.
make_workdir() {
  WORK=$(mktemp -d "/tmp/hindsight-$1.XXXXXX")
  SERVER_PID=
  trap cleanup EXIT
}

cleanup() {
  if [[ -n ${SERVER_PID:-} ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
