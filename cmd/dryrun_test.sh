#!/bin/sh
# dryrun_test.sh - reroute -n/--dry-run reads everything and writes
# nothing, in every mode, end to end.
#
# One store, $tmp/s, holds copies of every fixture spool (testdata/spools/
# maildir/, mbox/*.mbox, bad/maildir/, bad/bad.mbox) with modes and an old
# mtime as a mail store has them, and existing destinations (old/: Maildirs
# and mboxes that already hold mail). Every dry run is made in it (as its
# working directory, with relative spool paths), and before and after each
# one the whole store is listed: every entry, the root included, with its
# type, inode, mtime, ctime, size and mode, and the MD5 of every file. The
# lists must be the same: no file or directory made, removed, renamed,
# written, touched or chmod'ed, no tmp/ directory, no PATH.lock, no journal,
# and no directory's mtime moved (which a lock made and removed would do).
#
#   a. each fixture spool, in rewrite mode; refiled into a Maildir template
#      and into an mbox template under a root that does not exist (it must
#      still not exist); refiled with --copy into existing Maildirs, and
#      into existing mboxes, with --report json: exit 0 (65 for the bad
#      fixtures), nothing changed, the report ends with the dry-run summary;
#   b. every message of testdata/messages/ and testdata/report/ on stdin,
#      as a filter (stdout is the report, not the message) and as a
#      delivery agent (nothing delivered; exit 67 when nothing routes and
#      there is no --default): the exit status of the real run, nothing
#      changed, no destination root made;
#   c. an mbox whose dotlock, fcntl lock or both are held by cmd/lockhold
#      (and a destination mbox held so): the dry run takes no lock, so it
#      finishes at once (well under the default --lock-timeout of 30 s)
#      with the report it gives when nothing is locked.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

[ -x "$lockhold" ] || bail_out "$lockhold is not built"
table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"
S=$tmp/s

dry_summary_re='^reroute: dry run, nothing changed: [0-9]+ scanned, [0-9]+ rewritten, [0-9]+ refiled, [0-9]+ unchanged, [0-9]+ skipped, [0-9]+ errors, [0-9]+(\.[0-9]+)? s$'
json_summary_re='^\{"type": *"summary",.*"dry_run": *true'

# --- The store. -----------------------------------------------------------

mkdir "$S" "$S/mbox" "$S/bad" || bail_out "cannot make $S"
copy_maildir "$spools/maildir" "$S/maildir" &&
	cp "$spools"/mbox/*.mbox "$S/mbox/" &&
	copy_maildir "$spools/bad/maildir" "$S/bad/maildir" &&
	cp "$spools/bad/bad.mbox" "$S/bad/" ||
	bail_out "cannot copy the fixtures"
# Existing destinations: two Maildirs with mail in cur/ and new/, two mboxes.
for b in administrator team; do
	mkdir -p "$S/old/adatum.com/$b/cur" "$S/old/adatum.com/$b/new" \
		"$S/old/adatum.com/$b/tmp" "$S/old/mbox" &&
	cp "$refile_data/escape.eml" "$S/old/adatum.com/$b/cur/1710000000.R1.old:2,S" &&
	cp "$refile_data/escape.eml" "$S/old/adatum.com/$b/new/1710000001.R2.old" &&
	cp "$refile_data/escape.mbox" "$S/old/mbox/$b" ||
		bail_out "cannot make the existing destinations"
done
settle "$S" || bail_out "cannot settle $S"

spool_list="maildir"
for f in "$spools"/mbox/*.mbox; do
	spool_list="$spool_list mbox/${f##*/}"
done
spool_list="$spool_list bad/maildir bad/bad.mbox"
set -- $spool_list
n_spools=$#

msgs=
for f in "$testdata"/messages/*.eml "$testdata"/report/*.eml; do
	[ -f "$f" ] && msgs="$msgs $f"
done
set -- $msgs
n_msgs=$#
[ "$n_msgs" -gt 20 ] || bail_out "too few messages in testdata/messages"
n_unrouted=0
for f in $msgs; do
	case ${f##*/} in no-recipients.eml | unparsed-unrouted.eml)
		n_unrouted=$((n_unrouted + 1)) ;;
	esac
done
[ "$n_unrouted" -eq 2 ] || bail_out "testdata/messages lacks its unrouted messages"

# --- Helpers. -------------------------------------------------------------

# snap DIR: DIR and every entry below it, "stat PATH ino= mtime= ctime=
# size= mode= type=", then "md5 PATH SUM" for every file; sorted.
snap() {
	(cd "$1" && find . -exec stat -c \
		'stat %n ino=%i mtime=%Y ctime=%Z size=%s mode=%a type=%F' {} + &&
	find . -type f -exec md5sum {} + | awk '{ print "md5", substr($0, 35), $1 }') |
		sort
}

# unchanged DESC BEFORE: the store's snap is still BEFORE.
unchanged() {
	snap "$S" >"$tmp/.snap.after"
	if cmp -s "$2" "$tmp/.snap.after"; then
		ok "$1"
	else
		not_ok "$1"
		diag "store entries before (-) and after (+):"
		diff "$2" "$tmp/.snap.after" | grep '^[<>]' |
			sed -e 's/^</-/' -e 's/^>/+/' -e 20q | diag
	fi
}

# dry NAME IN ARG...: reroute ARG... run in $S with stdin IN; output in
# $tmp/NAME.out and .err, status in $rc, time in ms in $elapsed.
dry() {
	_dn=$1
	_di=$2
	shift 2
	_t0=$(now_ms)
	(cd "$S" && "$reroute" "$@" <"$_di" >"$tmp/$_dn.out" 2>"$tmp/$_dn.err")
	rc=$?
	elapsed=$(($(now_ms) - _t0))
}

# last_line DESC NAME ERE: the last line of NAME's stdout matches ERE.
last_line() {
	if tail -n 1 "$tmp/$2.out" | grep -E -q -e "$3"; then
		ok "$1"
	else
		not_ok "$1"
		diag "last line of stdout does not match /$3/:"
		tail -n 3 "$tmp/$2.out" | diag
		diag "stderr:"
		sed 5q "$tmp/$2.err" | diag
	fi
}

# report_only DESC NAME: every line of NAME's stdout is a line of the text
# report of a message from stdin, a per-route line or the summary: none of
# the message's own lines.
report_only() {
	grep -E -v -e '^<stdin>	' -e '^would route ' -e "$dry_summary_re" \
		"$tmp/$2.out" >"$tmp/.notreport"
	if [ ! -s "$tmp/.notreport" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "lines on stdout that are no report lines:"
		visible "$tmp/.notreport" | sed 10q | diag
	fi
}

# norm NAME: NAME's stdout with the time of the summary taken out.
norm() {
	sed -E -e 's/, [0-9]+(\.[0-9]+)? s$/, T s/' \
		-e 's/"seconds": *[0-9.eE+-]+/"seconds":T/' "$tmp/$1.out"
}

# start_hold MODE MBOX SECONDS / stop_hold: cmd/lockhold in the background,
# once it holds its locks (as in lock_test.sh); ended with SIGTERM.
start_hold() {
	_h=$tmp/hold.$(echo "$2" | tr / _)
	"$lockhold" "$1" "$2" "$3" >"$_h.out" 2>"$_h.err" &
	hold_pid=$!
	wait_line "$_h.out" locked 10 ||
		bail_out "lockhold $1 $2 did not lock: $(cat "$_h.err")"
}
stop_hold() {
	kill -TERM "$hold_pid" 2>/dev/null
	wait "$hold_pid"
}

plan $((n_spools * 19 + n_msgs * 7 + 2 * 3 + 3 * 8 + 4 + 4))

# --- a. Every fixture spool, every spool mode. ----------------------------

for sp in $spool_list; do
	want=0
	case $sp in bad/*) want=65 ;; esac
	name=$(echo "$sp" | tr /. __)
	for mode in rewrite maildir mbox copy-old-maildir old-mbox; do
		case $mode in
		rewrite) set -- ;;
		maildir) set -- --deliver "$S/dest/%d/%u/" ;;
		mbox) set -- --deliver "$S/dest/%u" ;;
		copy-old-maildir) set -- --copy --report json --deliver "$S/old/%d/%u/" ;;
		old-mbox) set -- --report json --deliver "$S/old/mbox/%u" ;;
		esac
		what="$sp, $mode"
		snap "$S" >"$tmp/before"
		dry "$name.$mode" /dev/null -t "$table" -n "$@" "$sp"
		status_is "$what: exit $want" "$want" "$name.$mode"
		unchanged "$what: nothing in the spool or the destinations changed, nothing made" \
			"$tmp/before"
		case $mode in
		maildir | mbox)
			absent "$what: the destination root was not made" "$S/dest" ;;
		esac
		case $mode in
		copy-old-maildir | old-mbox)
			last_line "$what: the JSON report ends with its dry-run summary" \
				"$name.$mode" "$json_summary_re"
			file_lacks "$what: nothing on stdout but JSON objects" \
				"$tmp/$name.$mode.out" '^[^{]' ;;
		*)
			last_line "$what: the report ends with the dry-run summary" \
				"$name.$mode" "$dry_summary_re" ;;
		esac
	done
done

# --- b. One message on stdin: filter and delivery agent. -------------------

mkdir scratch || bail_out "cannot make scratch"
for f in $msgs; do
	m=${f##*/}
	m=${m%.eml}
	# What the real runs do, in a scratch directory outside the store.
	(cd scratch && "$reroute" -t "$table" - <"$f" >/dev/null 2>&1)
	want_filter=$?
	rm -rf scratch/dest
	(cd scratch && "$reroute" -t "$table" --deliver "$tmp/scratch/dest/%d/%u/" - \
		<"$f" >/dev/null 2>&1)
	want_mda=$?
	case $m in no-recipients | unparsed-unrouted) want_mda=67 ;; esac

	snap "$S" >"$tmp/before"
	dry "$m.filter" "$f" -t "$table" -n -
	status_is "stdin $m, filter: exit $want_filter, as a real run" \
		"$want_filter" "$m.filter"
	report_only "stdin $m, filter: stdout is the report, not the message" "$m.filter"
	dry "$m.mda" "$f" -t "$table" -n --deliver "$S/dest/%d/%u/" -
	status_is "stdin $m, delivery agent: exit $want_mda" "$want_mda" "$m.mda"
	report_only "stdin $m, delivery agent: stdout is the report" "$m.mda"
	dry "$m.mda2" "$f" -t "$table" -n --deliver "$S/old/mbox/%u" -
	status_is "stdin $m, delivery agent into existing mboxes: exit $want_mda" \
		"$want_mda" "$m.mda2"
	unchanged "stdin $m: nothing in the store or the destinations changed" \
		"$tmp/before"
	absent "stdin $m: the destination root was not made" "$S/dest"
done

# Unrouted, with --default: the dry run says where it would go, and exit 0.
for m in no-recipients unparsed-unrouted; do
	snap "$S" >"$tmp/before"
	dry "$m.default" "$testdata/messages/$m.eml" -t "$table" -n \
		--deliver "$S/dest/%d/%u/" --default "$S/dest/default/" -
	status_is "stdin $m, delivery agent with --default: exit 0" 0 "$m.default"
	file_has "stdin $m, with --default: the report names the default mailbox" \
		"$tmp/$m.default.out" "	refile $(re_quote "$S/dest/default/")\$"
	unchanged "stdin $m, with --default: nothing changed, no destination made" \
		"$tmp/before"
done

# --- c. Locks held by others do not stop a dry run. ------------------------

dry base.rw /dev/null -t "$table" -n mbox/mboxrd.mbox
dry base.rf /dev/null -t "$table" -n --deliver "$S/old/mbox/%u" mbox/mboxrd.mbox
[ "$rc" = 0 ] && [ -s "$tmp/base.rw.out" ] && [ -s "$tmp/base.rf.out" ] ||
	bail_out "the dry runs over mbox/mboxrd.mbox fail: $(cat "$tmp/base.rf.err")"
norm base.rw >base.rw.norm
norm base.rf >base.rf.norm

for hold in dotlock fcntl both; do
	start_hold "$hold" "$S/mbox/mboxrd.mbox" 60
	snap "$S" >"$tmp/before"
	dry "$hold.rw" /dev/null -t "$table" -n mbox/mboxrd.mbox
	status_is "$hold lock held on the mbox: rewrite dry run exits 0" 0 "$hold.rw"
	check "$hold lock held on the mbox: rewrite dry run did not wait (${elapsed} ms)" \
		test "$elapsed" -lt 5000
	norm "$hold.rw" >"$hold.rw.norm"
	same_bytes "$hold lock held on the mbox: the same rewrite report as unlocked" \
		base.rw.norm "$hold.rw.norm"
	dry "$hold.rf" /dev/null -t "$table" -n --deliver "$S/old/mbox/%u" mbox/mboxrd.mbox
	status_is "$hold lock held on the mbox: refile dry run exits 0" 0 "$hold.rf"
	check "$hold lock held on the mbox: refile dry run did not wait (${elapsed} ms)" \
		test "$elapsed" -lt 5000
	norm "$hold.rf" >"$hold.rf.norm"
	same_bytes "$hold lock held on the mbox: the same refile report as unlocked" \
		base.rf.norm "$hold.rf.norm"
	unchanged "$hold lock held on the mbox: nothing changed (the holder's lock left as it is)" \
		"$tmp/before"
	stop_hold
	is "$hold lock held on the mbox: the holder's locks were not touched" "" \
		"$(cat "$tmp/hold.$(echo "$S/mbox/mboxrd.mbox" | tr / _).err")"
done

# Both locks held on a destination mbox.
start_hold both "$S/old/mbox/administrator" 60
snap "$S" >"$tmp/before"
dry dest.rf /dev/null -t "$table" -n --deliver "$S/old/mbox/%u" mbox/mboxrd.mbox
status_is "destination mbox locked: refile dry run exits 0" 0 dest.rf
check "destination mbox locked: the dry run did not wait (${elapsed} ms)" \
	test "$elapsed" -lt 5000
norm dest.rf >dest.rf.norm
same_bytes "destination mbox locked: the same report as unlocked" base.rf.norm dest.rf.norm
unchanged "destination mbox locked: nothing changed" "$tmp/before"
stop_hold

# A bad mbox, dotlocked: exit 65 at once, the same report.
dry base.bad /dev/null -t "$table" -n bad/bad.mbox
norm base.bad >base.bad.norm
start_hold dotlock "$S/bad/bad.mbox" 60
dry bad.rw /dev/null -t "$table" -n bad/bad.mbox
status_is "bad mbox dotlocked: dry run exits 65" 65 bad.rw
check "bad mbox dotlocked: the dry run did not wait (${elapsed} ms)" \
	test "$elapsed" -lt 5000
norm bad.rw >bad.rw.norm
same_bytes "bad mbox dotlocked: the same report as unlocked" base.bad.norm bad.rw.norm
same_bytes "bad mbox dotlocked: the same errors as unlocked" "$tmp/base.bad.err" \
	"$tmp/bad.rw.err"
stop_hold

done_testing
