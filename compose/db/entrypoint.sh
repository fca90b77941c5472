#!/bin/sh
# Entrypoint of the Compose database: Heroku Postgres takes TLS connections
# only, so this one serves TLS too. Its self-signed certificate is made on the
# first start and kept in the tls volume, and so is the router's (this image
# has openssl, HAProxy's has not); then the image's own entrypoint runs.
# Keys are EC P-256: made in milliseconds, where RSA 2048 takes 0.1-0.5 s.
set -eu
# Another command (docker compose run db bash) runs as given: what follows
# readies the server, and would start one on the volume a running db uses.
case "${1-}" in
postgres | -*) ;;
*) exec docker-entrypoint.sh "$@" ;;
esac
# No leading zero: sh would read 020 as octal 16, and 08 not at all.
case "${DB_MAX_CONNECTIONS:-}" in
'' | *[!0-9]* | 0*)
	echo "db: error: DB_MAX_CONNECTIONS must be a whole number of 1 or more (20 as Heroku's Essential plans), got '${DB_MAX_CONNECTIONS:-}': fix it in .env" >&2
	exit 1
	;;
esac
# A volume initialised by another Postgres major cannot be opened by this
# server: say so in one line, with the ways out, rather than Postgres's FATAL.
if [ -s "$PGDATA/PG_VERSION" ]; then
	had="$(cat "$PGDATA/PG_VERSION")"
	runs="$(postgres -V | sed -n 's/^postgres (PostgreSQL) \([0-9]*\).*/\1/p')"
	if [ -n "$runs" ] && [ "$had" != "$runs" ]; then
		upgrade=""
		if [ "${had%%.*}" -lt "$runs" ]; then
			upgrade="make db-upgrade carries it over to $runs (as heroku pg:upgrade), "
		fi
		echo "db: error: the database volume holds Postgres $had data, which this Postgres $runs server cannot open:" \
			"${upgrade}make db-reset replaces it with an empty one (its data and snapshots are deleted)," \
			"or set .postgres-version back to $had" >&2
		exit 1
	fi
fi
tls=/var/lib/postgresql/tls
if [ ! -s "$tls/server.key" ]; then
	echo "db: making the database's self-signed TLS certificate"
	mkdir -p "$tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj /CN=db \
		-keyout "$tls/server.key.new" -out "$tls/server.crt" 2> /dev/null
	chown -R postgres:postgres "$tls"
	chmod 600 "$tls/server.key.new"
	mv "$tls/server.key.new" "$tls/server.key"
fi
sh /compose/router/make-cert.sh /router-tls
# The dynos connect as a role that owns the database and is no superuser, as
# Heroku's credential (dyno-role.sql). A new volume gets it as it is made; one
# made before it existed is handed over once, on a socket-only server, so no
# dyno connects before the role is there. The same way, the roles take
# POSTGRES_PASSWORD as it is now when it changed since the volume last saw it
# (Postgres's image sets it only as a volume is made): .env holds the password.
mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql
chown postgres:postgres /var/run/postgresql
cp /compose/db/dyno-role.sh /docker-entrypoint-initdb.d/50-dyno-role.sh
if [ -s "$PGDATA/PG_VERSION" ]; then
	steps=
	# The password first: a hand-over notes the password as both roles' (dyno-role.sh).
	if ! sh /compose/db/password.sh same; then
		echo "db: POSTGRES_PASSWORD is new to this volume: giving it to $POSTGRES_USER and $DYNO_ROLE"
		steps="sh /compose/db/password.sh set"
	fi
	if [ ! -e "$PGDATA/dyno-role.done" ]; then
		echo "db: handing the database and its tables to $DYNO_ROLE, the role the dynos connect as (once, for a volume made before it)"
		steps="${steps:+$steps && }sh -e /compose/db/dyno-role.sh"
	elif ! sh /compose/db/connection-limit.sh same; then
		echo "db: giving $DYNO_ROLE a limit of $DB_MAX_CONNECTIONS connections (DB_MAX_CONNECTIONS, as the Heroku plan's)"
		steps="${steps:+$steps && }sh /compose/db/connection-limit.sh set"
	fi
	if [ -n "$steps" ]; then
		setpriv --reuid=postgres --regid=postgres --init-groups sh -c '
			pg_ctl -D "$PGDATA" -w -o "-c listen_addresses= -k /var/run/postgresql" start > /dev/null || exit 1
			'"$steps"'; result=$?
			pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
			exit $result' ||
			echo "db: warning: that failed (psql said why, above), so the dynos may be refused, or unable to use" \
				"what the superuser owns; the next start tries again; make db-reset starts over empty" >&2
	fi
fi
# The server takes the dynos' connections (their role's limit, DB_MAX_CONNECTIONS)
# and 10 more, which Postgres keeps 3 of for superusers: the make db-* commands
# and the healthcheck get in while the dynos have all of theirs.
exec docker-entrypoint.sh "$@" -c "max_connections=$((DB_MAX_CONNECTIONS + 10))"
