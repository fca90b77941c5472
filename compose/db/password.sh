# POSTGRES_PASSWORD as the volume's roles have it: Postgres's image gives it
# to the superuser only as it makes a volume, and .env is where the password
# lives, so a changed one is given to both roles at the next start.
#   sh password.sh same   whether the volume notes the roles have this one
#   sh password.sh set    give it to the superuser and the dynos' role, over
#                         the server's socket, and note it
#   sh password.sh note   note it (a new volume's roles were just given it)
# The note is a digest, readable by the postgres user alone.
noted="$PGDATA/password.sha256"
digest() {
	printf '%s' "$POSTGRES_PASSWORD" | sha256sum | cut -d' ' -f1
}
note() {
	(umask 077 && digest > "$noted.new") && mv "$noted.new" "$noted"
}
case "$1" in
same) [ "$(cat "$noted" 2>/dev/null)" = "$(digest)" ] ;;
set)
	psql -X -q -1 -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres \
		-v super="$POSTGRES_USER" -v role="$DYNO_ROLE" -v password="$POSTGRES_PASSWORD" <<-'SQL' && note
		ALTER ROLE :"super" PASSWORD :'password';
		ALTER ROLE :"role" PASSWORD :'password';
	SQL
	;;
note) note ;;
*)
	echo "usage: sh password.sh same | set | note" >&2
	exit 2
	;;
esac
