#!/usr/bin/env bash
# Runs Regain's whole test suite on a fresh Debian machine with the Rust toolchain:
# it finds or starts PostgreSQL (installing Debian's package where none runs), makes sure the
# tools the tests drive are present (curl; pyotp, aiosmtpd, standardwebhooks and scim2-server in
# a virtualenv; chromium with playwright-core and axe-core), then runs formatting, lints and
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "need root to apt-get install $*; install them and re-run" >&2
        exit 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v curl >/dev/null || { log "installing curl"; apt_install curl; }
command -v psql >/dev/null || { log "installing the PostgreSQL client"; apt_install postgresql-client; }

# PostgreSQL for the conformance suite and the server's PostgreSQL tests.
if [ -z "${REGAIN_TEST_POSTGRES_URL:-}" ]; then
    if psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1 </dev/null; then
        export REGAIN_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
    else
        log "no PostgreSQL answers on 127.0.0.1:5432 without a password; setting one up"
        if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
            apt_install postgresql
        fi
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
            || pg_ctlcluster "$version" main start 2>/dev/null || true
        for _ in $(seq 1 30); do
            pg_isready -h 127.0.0.1 -p 5432 -q && break
            sleep 1
        done
        su postgres -c "psql -q -d postgres" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'regain_test') THEN
    CREATE ROLE regain_test LOGIN CREATEDB PASSWORD 'regain_test';
  END IF;
END $$;
SQL
        export REGAIN_TEST_POSTGRES_URL="postgres://regain_test:regain_test@127.0.0.1:5432/postgres"
    fi
fi

# Each test makes its own database; drop what earlier runs left behind.
stale=$(psql "$REGAIN_TEST_POSTGRES_URL" -tAc "select datname from pg_database where datname like 'regain\_t\_%'" </dev/null || true)
for db in $stale; do
    psql "$REGAIN_TEST_POSTGRES_URL" -qc "drop database if exists \"$db\" with (force)" </dev/null >/dev/null 2>&1 || true
done

# Python tools the cross-checks drive (pyotp reads our otpauth URIs; aiosmtpd is the SMTP
# server our email goes to; standardwebhooks verifies our webhook signatures; scim2-server is
# the SCIM peer the connector changes users in; schemathesis tests the API against its OpenAPI
# document), in a virtualenv under target/.
venv=target/test-venv
if ! "$venv/bin/python" -c 'import pyotp, aiosmtpd, standardwebhooks, scim2_server, schemathesis' >/dev/null 2>&1; then
    log "installing pyotp, aiosmtpd, standardwebhooks, scim2-server and schemathesis into $venv"
    command -v python3 >/dev/null || apt_install python3
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" >/dev/null 2>&1 || { apt_install python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check 'pyotp>=2.9,<3' 'aiosmtpd>=1.4,<2' 'standardwebhooks>=1.0,<2' \
        'scim2-server>=0.8,<0.9' 'schemathesis>=4.32,<5'
fi
export REGAIN_TEST_PYTHON="$PWD/$venv/bin/python"

# A real browser for the customer's pages: Debian's chromium, driven by playwright-core from
# npm, with axe-core checking each page's accessibility (versions pinned in package-lock.json).
command -v chromium >/dev/null || { log "installing chromium"; apt_install chromium; }
command -v npm >/dev/null || { log "installing Node.js and npm"; apt_install nodejs npm; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' \
    || { echo "the browser tests need Node.js 18 or later (found $(node --version))" >&2; exit 1; }
browser=crates/server/tests/browser
if [ ! -d "$browser/node_modules/playwright-core" ] || [ ! -d "$browser/node_modules/axe-core" ] \
    || [ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
    log "installing playwright-core and axe-core into $browser/node_modules"
    npm ci --prefix "$browser" --no-audit --no-fund --loglevel=error
fi
export REGAIN_TEST_BROWSER="$PWD/$browser"

log "formatting"
cargo fmt --all -- --check

log "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests (PostgreSQL at ${REGAIN_TEST_POSTGRES_URL##*@})"
cargo test --workspace --locked --no-fail-fast
