#!/usr/bin/env bash
# Installs Debian's PostgreSQL and Redis servers for `shopflow up --executor celery` and the
# Celery tests (tests/celery/). Idempotent and non-interactive: does nothing when both are
# installed. Needs root (or sudo) and apt. Debian's postinst may start a default cluster /
# redis on their standard ports; Shopflow does not use them and stops them, so that they
# hold no port and no memory (Shopflow runs its own, on ports of its own, under
# $SHOPFLOW_HOME).
set -euo pipefail

have_postgres() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1
}

if have_postgres && command -v redis-server >/dev/null 2>&1; then
  echo "postgresql and redis-server already installed: $(ls -d /usr/lib/postgresql/*/ | head -1), $(redis-server --version | cut -d' ' -f3)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# a Debian service started by its postinst in a container with no init fails harmlessly:
# policy-rc.d 101 tells invoke-rc.d not to start anything while we install
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  ADDED_POLICY=1
fi
trap '[ -n "$ADDED_POLICY" ] && $SUDO rm -f "$POLICY"' EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql redis-server >/dev/null
echo "installed: $(ls -d /usr/lib/postgresql/*/ | head -1), redis $(redis-server --version | cut -d' ' -f3)"
