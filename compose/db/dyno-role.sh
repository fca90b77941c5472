# Hand the app's database to the role the dynos connect as (dyno-role.sql),
# over the socket of a server that takes no TCP connection yet. Sourced by
# the image's entrypoint from /docker-entrypoint-initdb.d on a new volume;
# run by entrypoint.sh once on a volume made before the role existed. No
# `set -e` or `exit` here: the image's entrypoint sources it.
psql -X -q -1 -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
	-v role="$DYNO_ROLE" -v password="$POSTGRES_PASSWORD" -f /compose/db/dyno-role.sql
touch "$PGDATA/dyno-role.done"
