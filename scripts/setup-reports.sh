#!/usr/bin/env bash
# Installs the tools the reports need (reports/, `bmshil report --pdf`, `bmshil allure`):
#   - Allure 2 command line, pinned, from npm into <project>/.tools (a Java tool: needs java 17+)
#   - Debian's chromium (headless PDF printing and the report's DOM test), if missing.
#   - Debian's poppler-utils (pdftotext, pdftoppm: the PDF tests read the printed report), if missing.
# Idempotent: when both are present at the pinned version it returns in well under a second.
# Usage: scripts/setup-reports.sh            (from anywhere; root needed only to install chromium)
set -euo pipefail

ALLURE_VERSION="2.46.1"
PROJECT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$PROJECT/.tools"
ALLURE_PKG="$TOOLS/node_modules/allure-commandline/package.json"

installed_allure_version() {
    [ -f "$ALLURE_PKG" ] || return 0
    sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$ALLURE_PKG" | head -n 1
}

mkdir -p "$TOOLS"
# .tools/ is machine state, never source: keep it out of git without touching .gitignore.
[ -f "$TOOLS/.gitignore" ] || printf '*\n' >"$TOOLS/.gitignore"

if [ "$(installed_allure_version)" = "$ALLURE_VERSION" ]; then
    echo "setup-reports: allure-commandline $ALLURE_VERSION already in $TOOLS"
elif command -v npm >/dev/null 2>&1; then
    echo "setup-reports: installing allure-commandline@$ALLURE_VERSION into $TOOLS"
    npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$TOOLS" \
        "allure-commandline@$ALLURE_VERSION"
else
    echo "setup-reports: npm not found: Allure HTML reports will be unavailable" >&2
fi
if ! command -v java >/dev/null 2>&1; then
    echo "setup-reports: java not found: the Allure command line needs Java 17+" >&2
fi

MISSING=()
if [ -x /usr/bin/chromium ]; then
    echo "setup-reports: chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
else
    MISSING+=(chromium)
fi
if command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1; then
    echo "setup-reports: poppler-utils present (pdftotext, pdftoppm)"
else
    MISSING+=(poppler-utils)
fi
if [ "${#MISSING[@]}" -eq 0 ]; then
    :
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-reports: installing Debian's ${MISSING[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
else
    echo "setup-reports: ${MISSING[*]} missing and cannot apt-get install (not root):" \
        "PDF printing and the report's browser test are skipped without chromium; the PDF" \
        "text tests fail without poppler-utils (pdftotext)" >&2
fi
