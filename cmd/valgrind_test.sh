#!/bin/sh
# valgrind_test.sh - reroute under valgrind's memcheck: no invalid read or
# write, no use of an uninitialised value, no leak (definitely lost) from
# any run of a small set.
#
# Each run is valgrind --error-exitcode=99 --leak-check=full
# --errors-for-leak-kinds=definite --show-leak-kinds=definite (with
# testdata/valgrind.supp, should a GLib or GMime version ever need one for
# its one-time allocations; none does now): the run must exit with its
# usual status, never 99, and valgrind must report nothing. The runs: the stdin filter (a routed
# message, one that is not a message); the delivery agent into a Maildir
# and an mbox; --check and --resolve; a Maildir and an mbox rewritten in
# place; a Maildir refiled into Maildirs and an mbox into mboxes; a dry run
# with the JSON report; a spool with bad messages (exit 65); and, with
# cmd/reroute-fault, refiles and rewrites that meet an I/O error at a few
# points (the error paths free what they took too).
#
# Skipped when valgrind is not installed, and in a build with
# AddressSanitizer (the two do not mix).

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"

command -v valgrind >/dev/null 2>&1 || skip_all "valgrind is not installed"
if nm "$reroute" 2>/dev/null | grep -q __asan_init ||
    ldd "$reroute" 2>/dev/null | grep -q libasan; then
	skip_all "an AddressSanitizer build (valgrind and ASan do not mix)"
fi

# testdata/valgrind.supp, for GLib's and GMime's one-time allocations, if
# a version ever needs it (none is needed with GLib 2.74 and GMime 3.2).
supp=
[ -f "$testdata/valgrind.supp" ] && supp=--suppressions=$testdata/valgrind.supp
# vg ARG...: valgrind ARG..., with REROUTE_FAULT=$fault when $fault is set.
fault=
vg() {
	env ${fault:+REROUTE_FAULT=$fault} valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite --show-leak-kinds=definite $supp \
		--log-file="$tmp/vg.log" "$@"
}

# grind DESC WANT IN BIN ARG...: BIN ARG... under valgrind, stdin IN; ok
# when it exits WANT and valgrind says nothing.
grind() {
	_desc=$1
	_want=$2
	_in=$3
	_bin=$4
	shift 4
	vg "$_bin" "$@" <"$_in" >vg.out 2>vg.err
	_rc=$?
	if [ "$_rc" = "$_want" ] && [ ! -s vg.log ]; then
		ok "$_desc: exit $_want, nothing from valgrind"
	else
		not_ok "$_desc: exit $_want, nothing from valgrind"
		diag "exit status $_rc; stderr:"
		sed 5q vg.err | diag
		diag "valgrind:"
		sed 40q vg.log | diag
	fi
}

gen_spool maildir 6 1 md md.want && gen_spool mbox 6 1 m.mbox m.want &&
gen_refile maildir 10 1 rmd rmd.list rmd.msgs &&
mkdir rmb && gen_refile mbox 10 1 rmb/m.mbox rmb.list rmb.msgs rmb.keep ||
	bail_out "cannot generate the spools"
cp -Rp md md.master && cp m.mbox m.master && cp -Rp rmd rmd.master &&
cp -Rp rmb rmb.master || bail_out "cannot copy the spools"
printf 'not a message\n' >junk.eml

grind "filter, a routed message" 0 rmd.msgs/4 "$reroute" -t "$table" -
grind "filter, not a message" 65 junk.eml "$reroute" -t "$table" -
grind "delivery agent into a Maildir" 0 rmd.msgs/4 "$reroute" -t "$table" \
	--deliver "$tmp/mda/%d/%u/" -
grind "delivery agent into an mbox" 0 rmd.msgs/5 "$reroute" -t "$table" \
	--deliver "$tmp/mda/%u" -
grind "--check" 0 /dev/null "$reroute" -t "$table" --check
grind "--resolve" 0 /dev/null "$reroute" -t "$table" --resolve sales@cpandl.net \
	u1@internal.adatum.com nobody@example.org
grind "Maildir rewrite" 0 /dev/null "$reroute" -t "$table" md
grind "mbox rewrite" 0 /dev/null "$reroute" -t "$table" m.mbox
grind "refile a Maildir into Maildirs" 0 /dev/null "$reroute" -t "$table" \
	--deliver "$tmp/dest/%d/%u/" rmd
grind "refile an mbox into mboxes" 0 /dev/null "$reroute" -t "$table" \
	--deliver "$tmp/mail/%u" rmb/m.mbox
rm -rf rmd rmb && cp -Rp rmd.master rmd && cp -Rp rmb.master rmb
grind "dry run, JSON report" 0 /dev/null "$reroute" -n --report json -t "$table" \
	--deliver "$tmp/dest2/%d/%u/" rmd rmb/m.mbox
mkdir bad && copy_maildir "$spools/bad/maildir" bad/maildir &&
cp "$spools/bad/bad.mbox" bad/ && settle bad || bail_out "cannot copy the bad spools"
grind "bad messages" 65 /dev/null "$reroute" -t "$table" bad/maildir bad/bad.mbox

# Error paths: each fault on a fresh copy, first without valgrind for the
# status it gives (non-zero), then under valgrind for the same status.
# faulty DESC FRESH FAULT ARG...: FRESH (a command) makes the copy.
faulty() {
	_d=$1
	_fresh=$2
	fault=$3
	shift 3
	eval "$_fresh" || bail_out "cannot copy for $_d"
	env REROUTE_FAULT="$fault" "$reroute_fault" "$@" </dev/null >/dev/null 2>&1
	_st=$?
	[ "$_st" != 0 ] || bail_out "$_d, $fault: no error"
	eval "$_fresh" || bail_out "cannot copy for $_d"
	grind "$_d, $fault" "$_st" /dev/null "$reroute_fault" "$@"
	fault=
}
for f in write:1:ENOSPC fsync:2:EIO rename:1:EIO read:2:EIO open:4:EACCES unlink:1:EIO; do
	faulty "rewrite" 'rm -rf md m.mbox && cp -Rp md.master md && cp m.master m.mbox' "$f" \
		-t "$table" md m.mbox
done
for f in write:3:ENOSPC fsync:3:EIO link:2:EIO unlink:3:EIO mkdir:4:EIO open:20:EACCES; do
	faulty "refile into Maildirs" 'rm -rf rmd dest3 && cp -Rp rmd.master rmd' "$f" \
		-t "$table" --deliver "$tmp/dest3/%d/%u/" rmd
done
for f in write:5:EIO fsync:4:EIO rename:1:EIO link:2:EIO read:2:EIO; do
	faulty "refile into mboxes" 'rm -rf rmb mail3 && cp -Rp rmb.master rmb' "$f" \
		-t "$table" --deliver "$tmp/mail3/%u" rmb/m.mbox
done

plan "$tap_n"
done_testing
