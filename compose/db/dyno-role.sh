# Hand the app's database, or LOCAL_DB, to the role the dynos connect as
# (dyno-role.sql), over the server's socket. Sourced by the image's
# entrypoint from /docker-entrypoint-initdb.d on a new volume; run with
# `sh -e` by entrypoint.sh once on a volume made before the role existed
# (its server takes no TCP connection yet), and by bin/localdb for each
# database it puts in the app's place (LOCAL_DB). No `set -e` or `exit`
# here: the image's entrypoint sources it, under its own `set -e`. A db
# container made before DB_MAX_CONNECTIONS was passed to it (kept by make
# db-up while healthy) gives it none (-1), as that container's server had.
psql -X -q -1 -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d "${LOCAL_DB:-$POSTGRES_DB}" \
	-v role="$DYNO_ROLE" -v password="$POSTGRES_PASSWORD" -v limit="${DB_MAX_CONNECTIONS:--1}" -f /compose/db/dyno-role.sql
# The volume's own database is handed over: entrypoint.sh need not again. On
# a new volume, both roles were just given POSTGRES_PASSWORD (password.sh).
if [ -z "${LOCAL_DB-}" ]; then
	touch "$PGDATA/dyno-role.done"
	[ -e "$PGDATA/password.sha256" ] || sh /compose/db/password.sh note
	sh /compose/db/connection-limit.sh note
fi
