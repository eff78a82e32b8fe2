#!/usr/bin/env bash
# Sets up a working copy from nothing: a virtual environment with the project and its pinned
# dependencies (.venv), then the report tools (scripts/setup-reports.sh: the pinned Allure
# command line, Debian's chromium). Idempotent; CI and both README commands use it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
bash scripts/setup-postgres.sh # PostgreSQL for the history tests (.tools/pg/url)
bash scripts/setup-reports.sh
