#!/usr/bin/env bash
# Make sure the test services run on this machine: PostgreSQL on 127.0.0.1:5432
# (trust auth, user postgres) and Redis on 127.0.0.1:6379. Starts each one that is
# down (Debian's packages, as on our dev and CI machines), waits until it answers,
# then creates the database `glasshouse` if it is missing. Safe to run repeatedly.
set -euo pipefail

PGHOST=127.0.0.1
PGUSER=postgres
DB=${GLASSHOUSE_TEST_DB:-glasshouse}

wait_for() {  # wait_for NAME SECONDS COMMAND...
    local name=$1 secs=$2; shift 2
    for _ in $(seq "$secs"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "services.sh: $name did not come up within ${secs}s" >&2
    return 1
}

if ! pg_isready -q -h "$PGHOST"; then
    echo "Starting PostgreSQL ..."
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for PostgreSQL 60 pg_isready -q -h "$PGHOST"
fi
echo "PostgreSQL: $(pg_isready -h "$PGHOST")"

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "Starting Redis ..."
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for Redis 30 redis-cli -h 127.0.0.1 -p 6379 ping
fi
echo "Redis: $(redis-cli -h 127.0.0.1 -p 6379 ping)"

if ! psql -h "$PGHOST" -U "$PGUSER" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" postgres | grep -q 1; then
    createdb -h "$PGHOST" -U "$PGUSER" "$DB"
    echo "Created database $DB"
fi
