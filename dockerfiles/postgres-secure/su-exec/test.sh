#!/bin/sh
# Behavioural tests for su-exec. Run as root (the tests switch users):
#
#     sh test.sh [--add-fixtures] PATH/TO/su-exec
#
# The tests need a fixture user with a supplementary group:
#   suexec-test  uid 4242, primary group suexec-test (4242), member of suexec-extra (4243)
# --add-fixtures creates them with groupadd/useradd; use it only in a throwaway
# environment such as a build stage. tests/unit/test_su_exec.py provides them
# through bind-mounted copies of /etc/passwd and /etc/group instead.
set -eu

add_fixtures=no
if [ "${1:-}" = "--add-fixtures" ]; then
	add_fixtures=yes
	shift
fi
if [ "$#" -ne 1 ]; then
	echo "usage: sh test.sh [--add-fixtures] PATH/TO/su-exec" >&2
	exit 2
fi
case "$1" in
/*) SU_EXEC=$1 ;;
*) SU_EXEC=$(pwd)/$1 ;;
esac
# A fixed PATH keeps "command not found" results independent of the caller's PATH.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

if [ "$(id -u)" -ne 0 ]; then
	echo "test.sh: must run as root" >&2
	exit 2
fi
if [ "$add_fixtures" = yes ]; then
	groupadd --gid 4242 suexec-test
	groupadd --gid 4243 suexec-extra
	useradd --uid 4242 --gid suexec-test --groups suexec-extra \
		--home-dir /srv/suexec-test --no-create-home --shell /bin/sh suexec-test
fi
if ! grep -q '^suexec-test:x:4242:4242:' /etc/passwd ||
	! grep -q '^suexec-extra:x:4243:suexec-test$' /etc/group; then
	echo "test.sh: fixture user suexec-test/suexec-extra missing (see the header of this file)" >&2
	exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Unprivileged users must be able to reach the marker directory, so that a
# missing marker proves the command did not run rather than that it could not write.
chmod 0777 "$work"

failures=0
tests=0

pass() { tests=$((tests + 1)); }
fail() {
	tests=$((tests + 1))
	failures=$((failures + 1))
	echo "FAIL: $*" >&2
}

# expect_output NAME EXPECTED COMMAND...: COMMAND must succeed and print EXPECTED.
expect_output() {
	name=$1 expected=$2
	shift 2
	if actual=$("$@" 2>"$work/stderr"); then
		if [ "$actual" = "$expected" ]; then
			pass
		else
			fail "$name: expected '$expected', got '$actual'"
		fi
	else
		fail "$name: exit $?, stderr: $(cat "$work/stderr")"
	fi
}

# expect_refusal NAME MESSAGE SPEC: su-exec SPEC must exit 1, say MESSAGE on
# stderr and not run the command (which would create a marker file).
expect_refusal() {
	name=$1 message=$2 spec=$3
	marker="$work/ran-$tests"
	status=0
	"$SU_EXEC" "$spec" touch "$marker" 2>"$work/stderr" || status=$?
	if [ "$status" -ne 1 ]; then
		fail "$name: expected exit 1, got $status"
	elif [ -e "$marker" ]; then
		fail "$name: the command ran"
	elif ! grep -q "$message" "$work/stderr"; then
		fail "$name: stderr lacks '$message': $(cat "$work/stderr")"
	else
		pass
	fi
}

# expect_status NAME STATUS COMMAND...: COMMAND must exit with STATUS.
expect_status() {
	name=$1 expected=$2
	shift 2
	status=0
	"$@" >/dev/null 2>&1 || status=$?
	if [ "$status" -eq "$expected" ]; then
		pass
	else
		fail "$name: expected exit $expected, got $status"
	fi
}

# Users and groups, by name and by number.
expect_output "user by name" 65534 "$SU_EXEC" nobody id -u
expect_output "numeric user:group" 65534 "$SU_EXEC" 65534:65534 id -G
expect_output "numeric user with passwd entry keeps its primary group" 65534 "$SU_EXEC" 65534 id -g
expect_output "primary and member groups like initgroups" "4242 4243" "$SU_EXEC" suexec-test id -G
expect_output "primary group from passwd" 4242 "$SU_EXEC" suexec-test id -g
expect_output "explicit group replaces all groups" 4243 "$SU_EXEC" suexec-test:suexec-extra id -G
expect_output "explicit group by number" 4243 "$SU_EXEC" suexec-test:4243 id -g
expect_output "unknown numeric uid" 4999 "$SU_EXEC" 4999 id -u
expect_output "unknown numeric uid: gid defaults to the uid, not 0" 4999 "$SU_EXEC" 4999 id -G
expect_output "real, effective, saved and fs uid all changed" "Uid:	65534	65534	65534	65534" \
	"$SU_EXEC" nobody grep '^Uid:' /proc/self/status
expect_output "real, effective, saved and fs gid all changed" "Gid:	4242	4242	4242	4242" \
	"$SU_EXEC" suexec-test grep '^Gid:' /proc/self/status

# Supplementary groups of the caller must not survive: start as root holding
# group 4243 only, then switch to nobody.
expect_output "caller's supplementary groups are cleared" 65534 \
	"$SU_EXEC" 0:4243 "$SU_EXEC" nobody id -G

# HOME follows the target user.
# shellcheck disable=SC2016 # $HOME must expand in the target user's shell
expect_output "HOME from passwd" /srv/suexec-test "$SU_EXEC" suexec-test sh -c 'echo "$HOME"'
# shellcheck disable=SC2016
expect_output "HOME is / without a passwd entry" / "$SU_EXEC" 4999 sh -c 'echo "$HOME"'

# Exec, not fork: the shell's pid is the pid of the command su-exec runs.
# shellcheck disable=SC2016 # $$ must expand in the inner shells
pids=$(sh -c 'echo $$; exec "$0" nobody sh -c "echo \$\$"' "$SU_EXEC")
first=$(echo "$pids" | sed -n 1p)
second=$(echo "$pids" | sed -n 2p)
if [ -n "$first" ] && [ "$first" = "$second" ]; then pass; else fail "exec keeps the pid: got '$pids'"; fi

# Failures run nothing.
expect_refusal "unknown user" "unknown user 'no-such-user'" no-such-user
expect_refusal "unknown group" "unknown group 'no-such-group'" root:no-such-group
expect_refusal "unknown group with a valid user" "unknown group" nobody:no-such-group
expect_refusal "uid -1 means 'unchanged' to the kernel" "unknown user" 4294967295
expect_refusal "signed uid" "unknown user" -1
expect_refusal "hex uid" "unknown user" 0x10
expect_refusal "empty user" usage :root
expect_refusal "empty group" usage nobody:

# Usage errors.
expect_status "no arguments" 1 "$SU_EXEC"
expect_status "no command" 1 "$SU_EXEC" nobody
if "$SU_EXEC" 2>&1 | grep -q '^usage: su-exec USER\[:GROUP\] COMMAND'; then pass; else fail "usage text"; fi

# Exit statuses.
expect_status "command status passes through" 7 "$SU_EXEC" nobody sh -c 'exit 7'
expect_status "command not found" 127 "$SU_EXEC" nobody no-such-command-4242
expect_status "command not executable" 126 "$SU_EXEC" nobody /etc/passwd
expect_status "cannot regain root" 1 "$SU_EXEC" nobody "$SU_EXEC" root true

echo "su-exec: $((tests - failures))/$tests passed"
[ "$failures" -eq 0 ]
