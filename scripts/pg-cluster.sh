#!/bin/sh
# A throwaway PostgreSQL 15 cluster for maind's tests and benchmarks
# (Documentation/maind.md): no system service, nothing outside DIR.
#
#   scripts/pg-cluster.sh start DIR [PORT]    primary in DIR/primary
#   scripts/pg-cluster.sh standby DIR [PORT]  streaming hot standby of it in DIR/standby
#   scripts/pg-cluster.sh stop DIR            both, fast shutdown
#   scripts/pg-cluster.sh conninfo DIR [primary|standby] [PORT]
#
# The clusters listen on unix sockets only, in DIR/primary.sock and
# DIR/standby.sock (PORT only names the socket file; default 5432), with
# trust authentication for the superuser "postgres" and fsync on. initdb
# refuses to run as root: as root, the clusters belong to the unprivileged
# user "nobody" (DIR is given to it). start and standby print the conninfo.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
	echo "usage: $0 start|standby|stop|conninfo DIR [PORT]" >&2
	exit 2
}
if [ ! -x "$PGBIN/initdb" ]; then
	echo "pg-cluster: $PGBIN/initdb not found (apt-get install postgresql-15)" >&2
	exit 3
fi

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env -- "$@"
	else
		"$@"
	fi
}

conninfo() {	# role port
	echo "host=$dir/$1.sock port=$2 user=postgres dbname=postgres"
}

start_one() {	# role port
	mkdir -p "$dir/$1.sock"
	[ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$dir/$1.sock"
	if ! as_owner "$PGBIN/pg_ctl" -D "$dir/$1" status >/dev/null 2>&1; then
		as_owner "$PGBIN/pg_ctl" -D "$dir/$1" -l "$dir/$1.log" -w -t 60 \
			-o "-c listen_addresses='' -c unix_socket_directories='$dir/$1.sock' -p $2 -c fsync=on -c synchronous_commit=on -c max_wal_senders=4 -c wal_level=replica -c hot_standby=on" \
			start >/dev/null || { tail -20 "$dir/$1.log" >&2; exit 1; }
	fi
	conninfo "$1" "$2"
}

port=${3:-5432}
case "$cmd" in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$dir"
	if [ ! -f "$dir/primary/PG_VERSION" ]; then
		as_owner "$PGBIN/initdb" -D "$dir/primary" -U postgres --auth=trust \
			--no-instructions -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 1; }
	fi
	start_one primary "$port"
	;;
standby)
	dir=$(cd "$dir" && pwd)
	if [ ! -f "$dir/standby/PG_VERSION" ]; then
		# a copy of the primary that follows its WAL (standby.signal and
		# primary_conninfo written by -R)
		as_owner "$PGBIN/pg_basebackup" -h "$dir/primary.sock" -p "$port" -U postgres \
			-D "$dir/standby" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 ||
			{ cat "$dir/basebackup.log" >&2; exit 1; }
	fi
	start_one standby "$port"
	;;
stop)
	dir=$(cd "$dir" 2>/dev/null && pwd) || exit 0
	for r in standby primary; do
		if [ -f "$dir/$r/postmaster.pid" ]; then
			as_owner "$PGBIN/pg_ctl" -D "$dir/$r" -m fast -w -t 60 stop >/dev/null 2>&1 || true
		fi
	done
	;;
conninfo)
	dir=$(cd "$dir" && pwd)
	conninfo "${3:-primary}" "${4:-5432}"
	;;
*)
	echo "usage: $0 start|standby|stop|conninfo DIR [PORT]" >&2
	exit 2
	;;
esac
