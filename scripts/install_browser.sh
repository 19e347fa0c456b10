#!/usr/bin/env bash
# Installs Debian's Chromium and its WebDriver for the browser tests (tests/browser/).
# Idempotent: does nothing when both are already installed. Needs root (or sudo) and apt.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  echo "chromium and chromedriver already installed: $(chromium --version 2>/dev/null)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
echo "installed: $(chromium --version 2>/dev/null); $(chromedriver --version 2>/dev/null)"
