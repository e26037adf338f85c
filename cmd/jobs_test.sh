#!/bin/sh
# jobs_test.sh - -j/--jobs: Maildir messages are read and judged in worker
# threads, but what a run does and says does not depend on how many.
#
# One Maildir of 200 generated messages (gen_spool: cur/, new/, .Archive,
# CRLF and LF, names with sizes and flags), plus a 3 MB message (bigger than
# the 2 MB read ahead, so it is read when its turn comes) and a bad one; and
# an mbox of the same kind (its messages are copied out and studied in the
# workers too), with the big message in its middle.
# Every mode runs once with -j 1 (no threads) and once with -j 3, each on
# its own copy, and must give the same exit status, the same report (but
# for the time it took) and the same trees, byte for byte:
#   a. dry run, text and JSON: and the spool is untouched;
#   b. rewrite in place: and the result is what gen_spool says it must be;
#   c. refile --copy into Maildirs, and refile (move) into mboxes;
#   d. -j 0 (one per processor) runs; -j -1 and -j 257 are usage errors;
#      --help lists --jobs;
#   e. the mbox: dry run, rewrite, refile --copy into Maildirs and refile
#      (move) into Maildirs, the same with -j 1 and -j 3, and the rewrite
#      what gen_spool says.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"

gen_spool maildir 200 1 master want || bail_out "cannot generate the spool"
# A big routed message and a bad one, in both the spool and what it must become.
big=$tmp/big.eml
{
	printf 'Delivered-To: administrator@cpandl.net\nFrom: a@example.org\n'
	printf 'Subject: big\nMessage-ID: <big@example.org>\n\n'
	awk 'BEGIN { for (i = 0; i < 45000; i++) printf "%070d\n", i }'
} >"$big" || bail_out "cannot make $big"
cp "$big" master/cur/1709000000.M1P1.big:2,S &&
	"$reroute" -t "$table" - <"$big" >want/cur/1709000000.M1P1.big:2,S &&
	printf 'To: <unclosed@cpandl.net\n\nbad\n' >master/new/1709000001.M2P2.bad &&
	cp master/new/1709000001.M2P2.bad want/new/1709000001.M2P2.bad ||
	bail_out "cannot add the big and bad messages"
settle master want || bail_out "cannot settle"
# The mbox: 150 messages, the big one, 150 more.
gen_spool mbox 150 1 mb.a mbw.a && gen_spool mbox 150 151 mb.b mbw.b &&
	{ cat mb.a; printf 'From big@example.org Mon Mar 18 00:00:00 2024\n'
	  cat "$big"; printf '\n'; cat mb.b; } >mbox.master &&
	{ cat mbw.a; printf 'From big@example.org Mon Mar 18 00:00:00 2024\n'
	  "$reroute" -t "$table" - <"$big"; printf '\n'; cat mbw.b; } >mbox.want ||
	bail_out "cannot make the mbox"

plan 34

# run_both NAME ARGS...: runs reroute ARGS... with -j 1 in j1.NAME/ and -j 3
# in j3.NAME/, each a fresh copy of $master (default master) as s/ (ARGS
# name spools and destinations relative to it); stdout with the time cut,
# and the status.
master=master
run_both() {
	_name=$1
	shift
	for _j in 1 3; do
		# cp -p: refiled names and From_ lines take the source's mtime.
		rm -rf "j$_j.$_name" && mkdir "j$_j.$_name" &&
			cp -Rp "$master" "j$_j.$_name/s" || bail_out "cannot copy $master"
		(cd "j$_j.$_name" && "$reroute" -j $_j -t "$table" "$@" >out 2>err
		echo $? >status) || bail_out "cannot run reroute"
		sed -E 's/, [0-9.]+ s$//; s/"seconds": *[0-9.e-]+//' "j$_j.$_name/out" \
			>"j$_j.$_name/report"
	done
	same_bytes "$_name: same exit status with -j 1 and -j 3" \
		"j1.$_name/status" "j3.$_name/status"
	same_bytes "$_name: same report with -j 1 and -j 3" \
		"j1.$_name/report" "j3.$_name/report"
}

# --- a. Dry runs. -----------------------------------------------------------
run_both dry -n s
same_tree "dry: the spool is untouched" master j3.dry/s
is "dry: exit 65 (one bad message)" 65 "$(cat j3.dry/status)"
run_both json -n --report json --deliver 'd/%d/%u/' s
same_tree "json: the spool is untouched" master j3.json/s

# --- b. Rewrite in place. ---------------------------------------------------
run_both rewrite -q s
same_tree "rewrite: same spool with -j 1 and -j 3" j1.rewrite/s j3.rewrite/s
same_tree "rewrite: the spool is what gen_spool says" want j3.rewrite/s

# --- c. Refile. -------------------------------------------------------------
run_both copy -q --copy --deliver 'd/%d/%u/' s
same_tree "copy: same destinations with -j 1 and -j 3" j1.copy/d j3.copy/d
same_tree "copy: the spool is untouched" master j3.copy/s
run_both move -q --deliver 'd/%d/%u' s
same_tree "move: same destinations and spool with -j 1 and -j 3" j1.move j3.move

# --- d. The option itself. --------------------------------------------------
mkdir j0 && copy_maildir master j0/s || bail_out "cannot copy master"
"$reroute" -j 0 -t "$table" -n j0/s >j0/out 2>j0/err
is "-j 0: exit 65 like -j 1" 65 "$?"
"$reroute" -j -1 -t "$table" -n j0/s >/dev/null 2>j0/err
is "-j -1: usage error, exit 64" 64 "$?"
"$reroute" --jobs 257 -t "$table" -n j0/s >/dev/null 2>j0/err
is "--jobs 257: usage error, exit 64" 64 "$?"
"$reroute" --help >j0/help 2>&1
file_has "--help lists -j, --jobs" j0/help '^ +-j, --jobs=N '

# --- e. An mbox. --------------------------------------------------------------
master=mbox.master
run_both mdry -n --report json --deliver 'd/%d/%u/' s
same_bytes "mbox dry run: the spool is untouched" mbox.master j3.mdry/s
run_both mrewrite -q s
same_bytes "mbox rewrite: what gen_spool says" mbox.want j3.mrewrite/s
run_both mcopy -q --copy --deliver 'd/%d/%u/' s
same_tree "mbox copy: same destinations with -j 1 and -j 3" j1.mcopy/d j3.mcopy/d
run_both mmove -q --deliver 'd/%d/%u/' s
same_tree "mbox move: same destinations and spool with -j 1 and -j 3" j1.mmove j3.mmove

done_testing
