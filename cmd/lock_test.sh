#!/bin/sh
# lock_test.sh - reroute and the mbox locks MUAs and MDAs take, end to end.
#
# cmd/lockhold takes the locks the way an MDA does (dotlock MBOX.lock made
# with O_EXCL and holding its PID, fcntl write lock on the whole file):
#
#   a. dotlock held longer than --lock-timeout: reroute waits that long,
#      exits 75, reports "PATH is locked", the mbox is untouched (bytes,
#      inode, mtime) and the holder's dotlock is left alone;
#   b. the same with the fcntl lock held, and reroute removes its own dotlock;
#   c. both held for two seconds, --lock-timeout 10: reroute waits and
#      finishes;
#   d. a stale dotlock (its PID is not running; or older than --stale-lock)
#      is taken over with a notice and the run goes on; a fresh dotlock of a
#      live process is not stale;
#   e. lockhold appends 20 messages one by one while reroute runs over the
#      mbox again and again: afterwards the mbox is exactly the rewritten
#      original followed by the 20 rewritten appended messages, each once.
#
# Messages come from gen_spool (cmd/testlib.sh), which also gives the
# expected rewrite through filter.table. Each case has its own directory,
# so that nothing but the mbox may be left in it.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

[ -x "$lockhold" ] || bail_out "$lockhold is not built"
table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"

gen_spool mbox 12 1 small.mbox small.want || bail_out "cannot generate an mbox"
cmp -s small.mbox small.want && bail_out "the generated mbox routes nothing"

# fresh DIR: DIR/m.mbox, a copy of small.mbox with an old mtime.
fresh() {
	mkdir "$1" && cp small.mbox "$1/m.mbox" && chmod 600 "$1/m.mbox" &&
	touch -t 202403050914.07 "$1/m.mbox" || bail_out "cannot make $1"
}

# start_hold MODE MBOX SECONDS: lockhold MODE MBOX SECONDS in the background,
# once it holds the lock; its PID in $hold_pid, the time in $t_locked.
start_hold() {
	_h=$tmp/hold.$(echo "$2" | tr / _)
	"$lockhold" "$1" "$2" "$3" >"$_h.out" 2>"$_h.err" &
	hold_pid=$!
	wait_line "$_h.out" locked 10 ||
		bail_out "lockhold $1 $2 did not lock: $(cat "$_h.err")"
	t_locked=$(now_ms)
}

# stop_hold: ends the lockhold started last (SIGTERM: it releases its
# locks) and waits for it.
stop_hold() {
	kill -TERM "$hold_pid" 2>/dev/null
	wait "$hold_pid"
	hold_rc=$?
}

# timed NAME ARG...: run /dev/null NAME ARG..., its time in ms in $elapsed.
timed() {
	_t0=$(now_ms)
	run /dev/null "$@"
	elapsed=$(($(now_ms) - _t0))
}

# only_mbox DESC DIR [EXTRA]: DIR holds m.mbox (and EXTRA) and nothing else.
only_mbox() {
	_want="m.mbox${3:+ $3}"
	_got=$(ls -A "$2" | tr '\n' ' ' | sed 's/ $//')
	is "$1" "$_want" "$_got"
}

# untouched DESC DIR BEFORE: DIR/m.mbox has small.mbox's bytes and the inode
# and mtime recorded in BEFORE.
untouched() {
	if cmp -s small.mbox "$2/m.mbox" &&
	    [ "$(stat -c '%i %Y' "$2/m.mbox")" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "inode mtime before: $3; after: $(stat -c '%i %Y' "$2/m.mbox")"
		cmp small.mbox "$2/m.mbox" 2>&1 | diag
	fi
}

plan $((7 + 7 + 6 + 4 + 4 + 3 + 6))

# a. A held dotlock: wait --lock-timeout, exit 75, touch nothing.
fresh a
before=$(stat -c '%i %Y' a/m.mbox)
start_hold dotlock a/m.mbox 30
timed a --lock-timeout 1 -t "$table" a/m.mbox
status_is "dotlock held: exit 75" 75 a
file_has "dotlock held: \"is locked\" on stderr" a.err '^reroute: a/m\.mbox is locked'
untouched "dotlock held: the mbox is untouched (bytes, inode, mtime)" a "$before"
check "dotlock held: reroute waited about --lock-timeout 1 (${elapsed} ms)" \
	test "$elapsed" -ge 900 -a "$elapsed" -lt 5000
is "dotlock held: the holder's dotlock is left as it was" "$hold_pid" \
	"$(cat a/m.mbox.lock 2>&1)"
only_mbox "dotlock held: no temporary file left" a m.mbox.lock
stop_hold
is "dotlock held: the holder released its lock (exit 0)" 0 "$hold_rc"

# b. A held fcntl lock: the same, and reroute's own dotlock is removed.
fresh b
before=$(stat -c '%i %Y' b/m.mbox)
start_hold fcntl b/m.mbox 30
timed b --lock-timeout 1 -t "$table" b/m.mbox
status_is "fcntl lock held: exit 75" 75 b
file_has "fcntl lock held: \"is locked\" on stderr" b.err '^reroute: b/m\.mbox is locked'
untouched "fcntl lock held: the mbox is untouched (bytes, inode, mtime)" b "$before"
check "fcntl lock held: reroute waited about --lock-timeout 1 (${elapsed} ms)" \
	test "$elapsed" -ge 900 -a "$elapsed" -lt 5000
only_mbox "fcntl lock held: reroute removed its dotlock, left no temporary file" b
stop_hold
is "fcntl lock held: the holder released its lock (exit 0)" 0 "$hold_rc"
empty_file "fcntl lock held: the holder saw no error" "$tmp/hold.b_m.mbox.err"

# c. Both locks held for two seconds, --lock-timeout 10: wait, then finish.
# (At least one second after lockhold said "locked": some slack for a
# loaded machine, where that line is seen late.)
fresh c
before=$(stat -c '%Y %a' c/m.mbox)
start_hold both c/m.mbox 2
timed c --lock-timeout 10 -t "$table" c/m.mbox
t_done=$(now_ms)
status_is "locks released in time: exit 0" 0 c
same_bytes "locks released in time: the mbox is rewritten" small.want c/m.mbox
check "locks released in time: reroute waited for the holder ($((t_done - t_locked)) ms after it locked)" \
	test $((t_done - t_locked)) -ge 1000
is "locks released in time: the mtime and mode are kept" "$before" \
	"$(stat -c '%Y %a' c/m.mbox)"
only_mbox "locks released in time: no lock or temporary file left" c
wait "$hold_pid"
is "locks released in time: the holder ended well (exit 0)" 0 "$?"

# d. Stale dotlocks. A PID that is not running: one of a process that has
# ended.
fresh d
dead=$(sh -c 'echo $$')
echo "$dead" >d/m.mbox.lock
run /dev/null d --lock-timeout 5 -t "$table" d/m.mbox
status_is "dotlock of a dead PID: taken over, exit 0" 0 d
same_bytes "dotlock of a dead PID: the mbox is rewritten" small.want d/m.mbox
only_mbox "dotlock of a dead PID: no lock left" d
file_has "dotlock of a dead PID: a notice on stderr" d.err 'lock'

# A live PID (this shell's), but older than --stale-lock.
fresh e
echo $$ >e/m.mbox.lock
touch -d "@$(($(date +%s) - 600))" e/m.mbox.lock
run /dev/null e --lock-timeout 5 --stale-lock 60 -t "$table" e/m.mbox
status_is "dotlock older than --stale-lock: taken over, exit 0" 0 e
same_bytes "dotlock older than --stale-lock: the mbox is rewritten" small.want e/m.mbox
only_mbox "dotlock older than --stale-lock: no lock left" e
file_has "dotlock older than --stale-lock: a notice on stderr" e.err 'lock'

# A fresh dotlock of a live process is not stale.
fresh f
echo $$ >f/m.mbox.lock
before=$(stat -c '%i %Y' f/m.mbox)
run /dev/null f --lock-timeout 1 -t "$table" f/m.mbox
status_is "fresh dotlock of a live PID: exit 75" 75 f
untouched "fresh dotlock of a live PID: the mbox is untouched" f "$before"
is "fresh dotlock of a live PID: the dotlock is left as it was" "$$" \
	"$(cat f/m.mbox.lock 2>&1)"

# e. Appends under the locks while reroute works: nothing is lost.
mkdir g
gen_spool mbox 40 101 g/m.mbox g.want || bail_out "cannot generate"
i=1
while [ $i -le 20 ]; do
	gen_spool mbox 1 $((140 + i)) app$i app$i.want || bail_out "cannot generate"
	cat app$i.want >>g.want
	i=$((i + 1))
done
(
	i=1
	while [ $i -le 20 ]; do
		"$lockhold" append g/m.mbox app$i 2>>appender.err ||
			echo "lockhold append app$i: exit $?" >>appender.err
		sleep 0.05
		i=$((i + 1))
	done
) &
appender=$!
runs=0
failed_runs=
: >g.err
while kill -0 "$appender" 2>/dev/null; do
	"$reroute" -q --lock-timeout 10 -t "$table" g/m.mbox >>g.out 2>>g.err ||
		failed_runs="$failed_runs $?"
	runs=$((runs + 1))
done
wait "$appender"
run /dev/null g2 --lock-timeout 10 -t "$table" g/m.mbox
status_is "after the appends: a last run exits 0" 0 g2
is "while appending: every reroute run exited 0 ($runs runs)" "" "$failed_runs"
check "while appending: reroute ran more than once ($runs runs)" test "$runs" -gt 1
empty_file "while appending: every append went to the mbox in place" appender.err
missing=
for id in $(sed -n 's/^Message-ID: <\([0-9]*\)\.gen@example\.org>\r*$/\1/p' g.want); do
	n=$(grep -c "^Message-ID: <$id\.gen@example\.org>" g/m.mbox)
	[ "$n" -eq 1 ] || missing="$missing $id($n)"
done
is "while appending: every message, original or appended, is there once" "" "$missing"
same_bytes "while appending: the mbox is the rewritten original, then each rewritten append" \
	g.want g/m.mbox

done_testing
