#!/bin/bash
# Entrypoint for the Debian-built postgres stand-in: the subset of the official
# image's docker-entrypoint.sh that this project relies on.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [ "$1" = 'postgres' ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != 'trust' ]; then
		echo 'error: POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)' >&2
		exit 1
	fi
	auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

	echo "stand-in: initdb (UTF8) for user $POSTGRES_USER, database $POSTGRES_DB"
	pwfile="$(mktemp)"
	printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
	initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
		--encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host="$auth" \
		${POSTGRES_INITDB_ARGS:-} > /dev/null
	rm -f "$pwfile"
	printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"

	# Like the official image: a socket-only server while initialising, so
	# nothing can connect over TCP until the database really is ready.
	pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /var/run/postgresql" start > /dev/null
	export PGUSER="$POSTGRES_USER" PGHOST=/var/run/postgresql
	if [ "$POSTGRES_DB" != 'postgres' ]; then
		psql -v ON_ERROR_STOP=1 --dbname postgres -q \
			-c "CREATE DATABASE \"$POSTGRES_DB\""
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)  echo "stand-in: running $f"; . "$f" ;;
			*.sql) echo "stand-in: running $f"; psql -v ON_ERROR_STOP=1 --dbname "$POSTGRES_DB" -q -f "$f" ;;
			*) ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
	unset PGUSER PGHOST
	echo 'stand-in: init complete; ready for start up.'
fi

if [ "$1" = 'postgres' ]; then
	shift
	set -- postgres -c listen_addresses='*' "$@"
fi
exec "$@"
