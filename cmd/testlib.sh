# testlib.sh - TAP helpers for reroute's shell tests, sourced by cmd/*_test.sh.
#
# The tests run under automake's tap-driver.sh with $top_srcdir (the source
# tree, read-only under make distcheck) and $top_builddir (where ./reroute is
# built). Run by hand they default to the tree this file is in:
#
#   top_srcdir=. top_builddir=/tmp/b-main sh cmd/filter_test.sh
#
# POSIX sh only (dash runs it). A test writes only below $tmp, a fresh
# mktemp -d directory removed on exit. Results compare bytes with cmp, as
# mblaze's t/lib.sh does; a failure prints the cmp verdict and a diff, with
# carriage returns shown as \r, as "# " diagnostics.

LC_ALL=C
export LC_ALL

if [ -z "${top_srcdir:-}" ]; then
	top_srcdir=$(dirname "$0")/..
fi
top_builddir=${top_builddir:-$top_srcdir}
reroute=$top_builddir/reroute
testdata=$top_srcdir/testdata
# Absolute, so that a test may cd into $tmp.
case $reroute in /*) ;; *) reroute=$(pwd)/$reroute ;; esac
case $testdata in /*) ;; *) testdata=$(pwd)/$testdata ;; esac

tap_n=0
tap_failed=0

tmp=$(mktemp -d "${TMPDIR:-/tmp}/reroute-test.XXXXXX") || {
	echo "Bail out! mktemp -d failed"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# plan N: print the TAP plan.
plan() {
	echo "1..$1"
}

# bail_out REASON: stop the whole test script.
bail_out() {
	echo "Bail out! $*"
	exit 1
}

# diag TEXT...: print TEXT (or standard input, when no TEXT) as diagnostics.
diag() {
	if [ $# -gt 0 ]; then
		printf '%s\n' "$*" | sed 's/^/# /'
	else
		sed 's/^/# /'
	fi
}

# ok DESC / not_ok DESC: print one result.
ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

# check DESC CMD [ARG...]: ok when CMD succeeds.
check() {
	_desc=$1
	shift
	if "$@"; then
		ok "$_desc"
	else
		not_ok "$_desc"
		diag "failed: $*"
	fi
}

# visible FILE: FILE's lines for diagnostics, with CR shown as \r, other
# control bytes but tab as \ooo, and a missing final newline said; a file
# with NUL bytes as an od -c dump.
visible() {
	if ! tr -d '\000' <"$1" | cmp -s - "$1"; then
		od -An -c "$1"	# NUL bytes: a dump, not lines
		return
	fi
	awk 'BEGIN {
		for (i = 1; i < 32; i++)
			esc[sprintf("%c", i)] = sprintf("\\%03o", i)
		esc["\r"] = "\\r"
		esc["\t"] = "\t"
		esc[sprintf("%c", 127)] = "\\177"
	}
	/[[:cntrl:]]/ {
		s = ""
		for (i = 1; i <= length($0); i++) {
			c = substr($0, i, 1)
			s = s ((c in esc) ? esc[c] : c)
		}
		$0 = s
	}
	{ print }' "$1"
	if [ -s "$1" ] && ! has_final_newline "$1"; then
		echo '\ (no final newline)'
	fi
}

# cmp_diag EXPECTED ACTUAL: the cmp verdict and a diff as diagnostics.
cmp_diag() {
	cmp "$1" "$2" 2>&1 | diag
	visible "$1" >"$tmp/.expected.vis"
	visible "$2" >"$tmp/.actual.vis"
	diff -u "$tmp/.expected.vis" "$tmp/.actual.vis" |
		sed -e '1s/.*/--- expected/' -e '2s/.*/+++ actual/' -e 60q | diag
}

# same_bytes DESC EXPECTED ACTUAL: ok when both files hold the same bytes.
same_bytes() {
	if cmp -s "$2" "$3"; then
		ok "$1"
	else
		not_ok "$1"
		cmp_diag "$2" "$3"
	fi
}

# is DESC EXPECTED ACTUAL: ok when two strings are equal.
is() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "expected: $2"
		diag "     got: $3"
	fi
}

# run IN NAME ARG...: run reroute ARG... with standard input from IN; its
# output goes to $tmp/NAME.out and $tmp/NAME.err and its status to $rc.
run() {
	_in=$1
	_name=$2
	shift 2
	"$reroute" "$@" <"$_in" >"$tmp/$_name.out" 2>"$tmp/$_name.err"
	rc=$?
}

# status_is DESC WANT NAME: ok when $rc is WANT; else show NAME's stderr.
status_is() {
	if [ "$rc" = "$2" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "exit status $rc, expected $2; stderr:"
		sed -n 1,10p "$tmp/$3.err" | diag
	fi
}

# empty_file DESC FILE: ok when FILE is empty.
empty_file() {
	if [ ! -s "$2" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "not empty: $(wc -c <"$2") bytes:"
		visible "$2" | sed -n 1,10p | diag
	fi
}

# has_final_newline FILE: whether FILE's last byte is a newline.
has_final_newline() {
	[ "$(tail -c 1 "$1" | wc -l)" -eq 1 ]
}

# done_testing: exit 1 when some test failed.
done_testing() {
	[ "$tap_failed" -eq 0 ]
	exit $?
}

[ -x "$reroute" ] || bail_out "$reroute is not built"
