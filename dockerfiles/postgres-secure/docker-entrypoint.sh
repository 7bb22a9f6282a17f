#!/bin/sh
# Entrypoint of the postgres-secure image.
#
# Started as root, it only repairs ownership of the data and socket directories
# and re-executes itself as postgres through su-exec. As postgres, it initialises
# an empty PGDATA once and then replaces itself with the server, so the server is
# PID 1 and receives docker's signals directly.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
socket_dir=/var/run/postgresql
initdb_dir=/docker-entrypoint-initdb.d
# Present while a first-start initialisation is in progress. If it survives, the
# init scripts did not all run, and silently starting the half-made cluster would
# hide that.
incomplete_marker="$PGDATA/.docker-entrypoint-init-incomplete"

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Runs psql against the temporary, socket-only server.
run_psql() {
	psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --host="$socket_dir" --username="$db_user" "$@"
}

initialise() {
	db_user=${POSTGRES_USER:-postgres}
	db_name=${POSTGRES_DB:-$db_user}
	host_auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
	os_user=$(id -un) || die "uid $(id -u) has no passwd entry; run the container as postgres or root"

	[ -n "$db_user" ] || die "POSTGRES_USER is empty"
	[ -n "$db_name" ] || die "POSTGRES_DB is empty"
	case "$host_auth" in
	scram-sha-256 | trust | reject) ;;
	*) die "POSTGRES_HOST_AUTH_METHOD must be scram-sha-256, trust or reject, not '$host_auth'" ;;
	esac

	if [ -n "${POSTGRES_PASSWORD:-}" ] && [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
		die "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, not both"
	fi
	password=${POSTGRES_PASSWORD:-}
	if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
		[ -r "$POSTGRES_PASSWORD_FILE" ] ||
			die "POSTGRES_PASSWORD_FILE $POSTGRES_PASSWORD_FILE is not readable by uid $(id -u)"
		password=$(cat -- "$POSTGRES_PASSWORD_FILE")
	fi
	if [ -z "$password" ] && [ "$host_auth" != trust ] && [ "${POSTGRES_ALLOW_EMPTY_PASSWORD:-}" != yes ]; then
		die "no superuser password: set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE." \
			"To start without one anyway, set POSTGRES_HOST_AUTH_METHOD=trust (anyone who reaches" \
			"port 5432 gets in) or POSTGRES_ALLOW_EMPTY_PASSWORD=yes (network logins fail until a" \
			"password is set over the local socket)."
	fi

	log "initialising $PGDATA for superuser '$db_user'"
	# initdb refuses password-based host auth without a password; the real
	# pg_hba.conf is written below in any case.
	if [ -n "$password" ]; then
		# The password reaches initdb through a private file, never through argv,
		# where every process in the container could read it.
		pwfile=$(mktemp)
		printf '%s\n' "$password" >"$pwfile"
		set -- --pwfile="$pwfile" --auth-host="$host_auth"
	else
		pwfile=
		if [ "$host_auth" = trust ]; then
			set -- --auth-host=trust
		else
			set -- --auth-host=reject
		fi
	fi
	# POSTGRES_INITDB_ARGS is split on whitespace on purpose; globbing is off so
	# that a '*' stays literal.
	set -f
	# shellcheck disable=SC2086
	set -- "$@" ${POSTGRES_INITDB_ARGS:-}
	set +f
	status=0
	initdb --pgdata="$PGDATA" --username="$db_user" --auth-local=peer \
		--encoding=UTF8 --locale=C.UTF-8 --no-instructions "$@" || status=$?
	[ -z "$pwfile" ] || rm -f "$pwfile"
	unset password
	[ "$status" -eq 0 ] || die "initdb failed with status $status"
	: >"$incomplete_marker"

	# Local connections: only the container's own OS user, as the superuser or
	# as postgres. Network connections: the chosen method, from anywhere.
	cat >"$PGDATA/pg_hba.conf" <<-EOF
		# Written by docker-entrypoint.sh on first start.
		# TYPE  DATABASE  USER  ADDRESS  METHOD
		local   all       all            peer map=container
		host    all       all   all      $host_auth
	EOF
	cat >>"$PGDATA/pg_ident.conf" <<-EOF
		# Written by docker-entrypoint.sh on first start.
		container  $os_user  $db_user
		container  $os_user  postgres
	EOF

	# A temporary server costs about half a second of every first start; skip it
	# when there is neither a database to create nor a script to run.
	needs_server=no
	[ "$db_name" = postgres ] || needs_server=yes
	for script in "$initdb_dir"/*; do
		if [ -e "$script" ]; then needs_server=yes; fi
	done
	if [ "$needs_server" = yes ]; then
		run_temporary_server
	fi
	rm -f "$incomplete_marker"
	log "initialisation complete"
}

run_temporary_server() {
	# Socket only: clients must not see the server before initialisation is done.
	pg_ctl --pgdata="$PGDATA" --wait --timeout=60 --silent \
		-o "-c listen_addresses='' -c unix_socket_directories=$socket_dir" start

	if [ "$db_name" != postgres ]; then
		run_psql --dbname=postgres --set=db="$db_name" <<-'EOF'
			CREATE DATABASE :"db";
		EOF
	fi

	for script in "$initdb_dir"/*; do
		[ -e "$script" ] || continue
		case "$script" in
		*.sql)
			log "running $script"
			run_psql --dbname="$db_name" --file="$script"
			;;
		*.sh)
			log "running $script"
			if [ -x "$script" ]; then
				PGHOST=$socket_dir PGUSER=$db_user PGDATABASE=$db_name "$script"
			else
				PGHOST=$socket_dir PGUSER=$db_user PGDATABASE=$db_name sh "$script"
			fi
			;;
		*) log "ignoring $script: only *.sql and *.sh are run" ;;
		esac
	done

	pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
}

# Options alone ("-c work_mem=64MB") are meant for the server.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi
# Any other command (psql, sh, su-exec …) runs as given, as the container's user.
if [ "$1" != postgres ]; then
	exec "$@"
fi

if [ "$(id -u)" -eq 0 ]; then
	mkdir -p "$PGDATA" "$socket_dir"
	# Only what is not ours yet, so a large existing cluster is not rewritten;
	# -h so that a symlink planted in the volume cannot redirect a chown as root.
	find "$PGDATA" "$socket_dir" ! -user postgres -exec chown -h postgres:postgres {} +
	# The server insists on 0700 or 0750.
	chmod u=rwx,g-w,o= "$PGDATA"
	chmod 2775 "$socket_dir"
	exec su-exec postgres "$0" "$@"
fi

# Unreachable through the root branch above; kept so that no later edit can
# start the server with root's credentials.
[ "$(id -u)" -ne 0 ] || die "refusing to run the server as root"

if [ -e "$incomplete_marker" ]; then
	die "an earlier first start did not finish initialising $PGDATA (init scripts may not" \
		"have run); inspect the volume or start again with an empty one"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	initialise
fi
# The server has no use for the password; keep it out of its environment.
unset POSTGRES_PASSWORD
exec "$@"
