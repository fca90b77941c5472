# The dynos' role takes DB_MAX_CONNECTIONS connections at once, as Heroku's
# Essential plans limit their credential: past it, Postgres answers "too many
# connections for role", as Heroku's does. A role's limit is the cluster's,
# kept in the volume: it is set again when DB_MAX_CONNECTIONS changes.
#   sh connection-limit.sh same   whether the volume notes this limit
#   sh connection-limit.sh set    set it over the server's socket, and note it
#   sh connection-limit.sh note   note it (dyno-role.sql just set it)
noted="$PGDATA/connection-limit"
case "$1" in
same) [ "$(cat "$noted" 2>/dev/null)" = "$DB_MAX_CONNECTIONS" ] ;;
set)
	psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres \
		-v role="$DYNO_ROLE" -v limit="$DB_MAX_CONNECTIONS" <<-'SQL' && echo "$DB_MAX_CONNECTIONS" > "$noted"
		ALTER ROLE :"role" CONNECTION LIMIT :limit;
	SQL
	;;
note) echo "$DB_MAX_CONNECTIONS" > "$noted" ;;
*)
	echo "usage: sh connection-limit.sh same | set | note" >&2
	exit 2
	;;
esac
