#!/usr/bin/env bash
# Take a fresh Raspberry Pi (64-bit Raspberry Pi OS / Debian bookworm, arm64) to a running Backroom edge worker.
#
#   sudo REDIS_URL='rediss://edge-pi1:...@redis.example:6380/0' EDGE_NODE_ID=pi1 deploy/edge/setup-pi.sh
#
# REDIS_URL is what `backroom edge credentials NODE` prints on the server (a Redis user that can only
# consume `edge`, deliver to `ingest` and heartbeat). Re-running is safe: it upgrades the code and keeps
# /etc/backroom/edge.env unless REDIS_URL / EDGE_NODE_ID are given again.
#
# Options (environment):
#   EDGE_INSTALL=lean (default)  the project without its server dependencies + the [edge] extra's list
#   EDGE_INSTALL=full            pip install '.[edge]' (also pulls the server stack: asyncpg, onnxruntime, ...)
#   PYTHON=python3.11            the interpreter (the project needs Python 3.11)
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX=/opt/backroom
ENV_FILE=/etc/backroom/edge.env
UNIT=/etc/systemd/system/backroom-edge.service
PYTHON="${PYTHON:-python3}"
EDGE_INSTALL="${EDGE_INSTALL:-lean}"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'setup-pi: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo)"
case "$(uname -m)" in
  aarch64|arm64|x86_64) ;;
  *) die "$(uname -m) is not supported: Playwright has no 32-bit ARM build; install the 64-bit OS" ;;
esac
if [ ! -f "$ENV_FILE" ] && [ -z "${REDIS_URL:-}" ]; then
  die "set REDIS_URL (from \`backroom edge credentials NODE\` on the server)"
fi

say "system packages: chromium, python3-venv"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium python3 python3-venv python3-pip ca-certificates \
  fonts-liberation rsync
command -v chromium >/dev/null || die "chromium is not on PATH after apt-get install chromium"
# The headless shell (Playwright's own default for headless) takes about half the memory of the full
# browser (bench/scrape.py); where the archive lacks it, the full chromium runs in its place.
apt-get install -y -q --no-install-recommends chromium-headless-shell \
  || say "chromium-headless-shell is not installable here: the edge worker drives the full chromium"
CHROMIUM=/usr/lib/chromium/chromium-headless-shell
[ -x "$CHROMIUM" ] || CHROMIUM=$(command -v chromium)

"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "$("$PYTHON" -V) found; Backroom needs Python 3.11 (bookworm's python3; else set PYTHON=/path/to/python3.11)"

say "user backroom, $PREFIX"
id backroom >/dev/null 2>&1 || useradd --system --home-dir /var/lib/backroom --create-home --shell /usr/sbin/nologin backroom
install -d -o backroom -g backroom -m 0750 /var/lib/backroom
install -d -m 0755 "$PREFIX"
rsync -a --delete --exclude .git --exclude .venv --exclude var --exclude '*.egg-info' --exclude __pycache__ \
  "$SRC/" "$PREFIX/src/"

say "virtualenv ($EDGE_INSTALL install)"
[ -x "$PREFIX/venv/bin/python" ] || "$PYTHON" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --upgrade pip
if [ "$EDGE_INSTALL" = full ]; then
  "$PREFIX/venv/bin/pip" install -q "$PREFIX/src[edge]"
else
  # extras add to the base dependencies, which carry the whole server (Postgres driver, ONNX Runtime,
  # embedded Postgres/Redis): install the code alone, then only what the edge worker imports
  mapfile -t EDGE_REQS < <("$PREFIX/venv/bin/python" -c '
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["edge"]))' "$PREFIX/src/pyproject.toml")
  "$PREFIX/venv/bin/pip" install -q "${EDGE_REQS[@]}"
  "$PREFIX/venv/bin/pip" install -q --no-deps --force-reinstall "$PREFIX/src"
fi
# a broken install stops here, not in a restart loop under systemd
(cd / && REDIS_URL=redis://127.0.0.1:1/0 "$PREFIX/venv/bin/python" -c 'import edge.worker') \
  || die "the edge worker does not import in $PREFIX/venv"

say "settings: $ENV_FILE"
install -d -m 0755 /etc/backroom
if [ ! -f "$ENV_FILE" ]; then
  install -m 0640 -o root -g backroom /dev/null "$ENV_FILE"
  cat >"$ENV_FILE" <<EOT
# Backroom edge worker settings (see .env.example for every name)
REDIS_URL=${REDIS_URL}
EDGE_NODE_ID=${EDGE_NODE_ID:-$(hostname)}
EDGE_CHROMIUM_PATH=${CHROMIUM}
EDGE_OUTBOX_PATH=/var/lib/backroom/edge-outbox.sqlite3
EDGE_PAGES_IN_FLIGHT=4
EDGE_CONTEXTS_IN_FLIGHT=1
WORKER_THREADS=2
LOG_FORMAT=json
METRICS_PORT=0
EOT
else
  # keep the file; update only what was given on this run
  for name in REDIS_URL EDGE_NODE_ID; do
    value="${!name:-}"
    [ -n "$value" ] || continue
    grep -v "^${name}=" "$ENV_FILE" >"$ENV_FILE.new" || true
    printf '%s=%s\n' "$name" "$value" >>"$ENV_FILE.new"
    chown root:backroom "$ENV_FILE.new" && chmod 0640 "$ENV_FILE.new" && mv "$ENV_FILE.new" "$ENV_FILE"
  done
fi

say "systemd unit backroom-edge"
install -m 0644 "$PREFIX/src/deploy/edge/backroom-edge.service" "$UNIT"
systemctl daemon-reload
systemctl enable backroom-edge >/dev/null
systemctl restart backroom-edge
sleep 3
systemctl --no-pager --lines=5 status backroom-edge || true
say "done: \`journalctl -u backroom-edge -f\` here; \`backroom edge nodes\` on the server lists this node"
