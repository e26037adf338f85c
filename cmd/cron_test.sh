#!/bin/sh
# cron_test.sh - running reroute from cron: -q, -v, --syslog, --lock and the
# progress display, end to end.
#
#   a. -q: a clean real run (rewrite, refile, delivery agent) prints nothing
#      at all, and does its work; a run with problems prints only the
#      errors, on stderr;
#   b. -v: a real run prints the lines the dry run printed, message for
#      message, "routed RULE" for "would route RULE", and the summary
#      without the dry-run prefix; without -v only the summary;
#   c. --syslog (a syslog daemon may be absent): the run goes as without it,
#      same status, same output;
#   d. --lock FILE: a second run while FILE is held (by cmd/lockhold, or by
#      a concurrent reroute run) exits 75 at once and touches nothing; with
#      --lock-timeout it waits, and goes on when the holder lets go;
#   e. progress: under a pseudo-terminal (script(1)) a run of over a second
#      redraws "\rreroute: N messages, X MB, R messages/s, P%" on stderr and
#      ends it with a newline; with stderr a file or a pipe, or a short run,
#      there is none. The spool is an mbox of generated messages, made
#      larger until a run takes over two seconds (up to about 300 MB; the
#      progress tests are skipped if even that is faster).

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

[ -x "$lockhold" ] || bail_out "$lockhold is not built"
table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"

have_script=no
if command -v script >/dev/null 2>&1 &&
    script -qfec 'true' /dev/null </dev/null >/dev/null 2>&1; then
	have_script=yes
fi
dry_prefix='reroute: dry run, nothing changed: '

# fresh DIR: DIR/maildir, DIR/mboxrd.mbox and DIR/crlf.mbox, copies of the
# fixtures (spools that give no warning), with modes and an old mtime.
fresh() {
	mkdir "$1" && copy_maildir "$spools/maildir" "$1/maildir" &&
	cp "$spools/mbox/mboxrd.mbox" "$spools/mbox/crlf.mbox" "$1/" &&
	settle "$1" || bail_out "cannot make $1"
}
srcs="maildir mboxrd.mbox crlf.mbox"

# at DIR NAME ARG...: reroute ARG... run in DIR, stdin /dev/null; output in
# $tmp/NAME.out and .err, status in $rc, time in ms in $elapsed.
at() {
	_ad=$1
	_an=$2
	shift 2
	_t0=$(now_ms)
	(cd "$_ad" && "$reroute" "$@" </dev/null >"$tmp/$_an.out" 2>"$tmp/$_an.err")
	rc=$?
	elapsed=$(($(now_ms) - _t0))
}

# snap DIR: every entry below DIR with its inode, mtime, size and MD5.
snap() {
	(cd "$1" && find . -exec stat -c '%n %i %Y %s %F' {} + &&
		find . -type f -exec md5sum {} +) | sort
}

# unchanged DESC DIR BEFORE: DIR's snap is still BEFORE.
unchanged() {
	snap "$2" >"$tmp/.snap.after"
	if cmp -s "$3" "$tmp/.snap.after"; then
		ok "$1"
	else
		not_ok "$1"
		diff "$3" "$tmp/.snap.after" | grep '^[<>]' | sed 20q | diag
	fi
}

# message_lines FILE / route_lines FILE / summary_line FILE: the parts of a
# text report, the time of the summary taken out.
message_lines() {
	grep -E -v -e '^(would route|routed) ' -e '^reroute: ' "$1"
}
route_lines() {
	grep -E -e '^(would route|routed) ' "$1"
}
summary_line() {
	grep -E -e '^reroute: ' "$1" | sed -E 's/, [0-9]+(\.[0-9]+)? s$/, T s/'
}

# nothing_to_do DESC DIR: a dry run over DIR's spools rewrites nothing
# (the real run before it did its work).
nothing_to_do() {
	(cd "$2" && "$reroute" -t "$table" -n $srcs 2>&1) >"$tmp/.again"
	if grep -E -q "^${dry_prefix}[0-9]+ scanned, 0 rewritten, " "$tmp/.again"; then
		ok "$1"
	else
		not_ok "$1"
		diag "a dry run afterwards says:"
		tail -n 3 "$tmp/.again" | diag
	fi
}

# documented_status DESC: $rc is not 0 and is one of the exit statuses
# reroute --help lists.
documented_status() {
	_codes=$("$reroute" --help | sed -n '/^Exit status/,$p' |
		grep -E -o '(^| )[0-9]+ ' | tr -d ' ' | tr '\n' ' ')
	case " $_codes " in
	*" $rc "*) [ "$rc" != 0 ] && ok "$1" && return ;;
	esac
	not_ok "$1"
	diag "exit status $rc; reroute --help lists: $_codes"
}

plan $((15 + 12 + 8 + 21 + 10))

# --- a. -q. ---------------------------------------------------------------

fresh qa
at qa qa -q -t "$table" $srcs
status_is "-q, rewrite: exit 0" 0 qa
empty_file "-q, rewrite: nothing on stdout" qa.out
empty_file "-q, rewrite: nothing on stderr" qa.err
nothing_to_do "-q, rewrite: the spools were rewritten" qa

fresh qb
at qb qb -q -t "$table" --deliver "$tmp/qb/dest/%d/%u/" $srcs
status_is "-q, refile: exit 0" 0 qb
empty_file "-q, refile: nothing on stdout" qb.out
empty_file "-q, refile: nothing on stderr" qb.err
check "-q, refile: the messages were delivered" test -d qb/dest/adatum.com/administrator/cur

(cd "$tmp" && "$reroute" -q -t "$table" --deliver "$tmp/qc/%d/%u/" - \
	<"$testdata/messages/plain.eml" >qc.out 2>qc.err)
rc=$?
status_is "-q, delivery agent: exit 0" 0 qc
empty_file "-q, delivery agent: nothing on stdout" qc.out
empty_file "-q, delivery agent: nothing on stderr" qc.err

mkdir qd && copy_maildir "$spools/bad/maildir" qd/maildir &&
	cp "$spools/bad/bad.mbox" qd/ || bail_out "cannot make qd"
at qd qd -q -t "$table" maildir bad.mbox
status_is "-q, bad messages: exit 65" 65 qd
empty_file "-q, bad messages: nothing on stdout" qd.out
file_has "-q, bad messages: the errors on stderr" qd.err '^reroute: bad\.mbox at byte [0-9]+: '
file_lacks "-q, bad messages: no summary" qd.err 'scanned'

# --- b. -v. ---------------------------------------------------------------

for mode in rewrite refile; do
	d=v$mode
	fresh $d
	set --
	[ $mode = refile ] && set -- --deliver "$tmp/$d/dest/%d/%u/"
	at $d $d.dry -t "$table" -n "$@" $srcs
	at $d $d.real -v -t "$table" "$@" $srcs
	status_is "-v, $mode: exit 0" 0 $d.real
	message_lines $d.dry.out >$d.dry.msgs
	message_lines $d.real.out >$d.real.msgs
	if [ -s $d.dry.msgs ]; then
		same_list "-v, $mode: a line per message, the dry run's lines" \
			$d.dry.msgs $d.real.msgs
	else
		not_ok "-v, $mode: a line per message, the dry run's lines"
		diag "the dry run printed no message line"
	fi
	route_lines $d.dry.out | sed 's/^would route /routed /' >$d.dry.routes
	route_lines $d.real.out >$d.real.routes
	same_list "-v, $mode: \"routed RULE: ...\" for each \"would route RULE: ...\"" \
		$d.dry.routes $d.real.routes
	summary_line $d.dry.out | sed "s/^$dry_prefix/reroute: /" >$d.dry.sum
	summary_line $d.real.out >$d.real.sum
	same_bytes "-v, $mode: the dry run's summary, without its dry-run prefix" \
		$d.dry.sum $d.real.sum
done

fresh nv
at nv nv -t "$table" $srcs
status_is "no -v: exit 0" 0 nv
summary_is "no -v: only the summary line" nv \
	"* scanned, * rewritten, 0 refiled, * unchanged, 0 skipped, 0 errors"

"$reroute" -t "$table" -n --deliver "$tmp/vm/%d/%u/" - \
	<"$testdata/messages/plain.eml" >vm.dry.out 2>vm.dry.err
"$reroute" -t "$table" -v --deliver "$tmp/vm/%d/%u/" - \
	<"$testdata/messages/plain.eml" >vm.out 2>vm.err
rc=$?
status_is "-v, delivery agent: exit 0" 0 vm
message_lines vm.dry.out >vm.dry.msgs
message_lines vm.out >vm.msgs
same_list "-v, delivery agent: the message line of the dry run" vm.dry.msgs vm.msgs

# --- c. --syslog. ---------------------------------------------------------

fresh sa
fresh sb
at sa sa -t "$table" $srcs
at sb sb --syslog -t "$table" $srcs
status_is "--syslog: exit 0, as without it" 0 sb
summary_line sa.out >sa.sum
summary_line sb.out >sb.sum
same_bytes "--syslog: the same summary on stdout as without it" sa.sum sb.sum
empty_file "--syslog: nothing on stderr" sb.err

mkdir sc sd && copy_maildir "$spools/bad/maildir" sc/maildir &&
	cp "$spools/bad/bad.mbox" sc/ && copy_maildir "$spools/bad/maildir" sd/maildir &&
	cp "$spools/bad/bad.mbox" sd/ || bail_out "cannot make sc, sd"
at sc sc -t "$table" maildir bad.mbox
at sd sd --syslog -t "$table" maildir bad.mbox
status_is "--syslog, bad messages: exit 65, as without it" 65 sd
same_bytes "--syslog, bad messages: the same errors on stderr as without it" sc.err sd.err

fresh se
at se se -q --syslog -t "$table" $srcs
status_is "-q --syslog: exit 0" 0 se
empty_file "-q --syslog: nothing on stdout" se.out
empty_file "-q --syslog: nothing on stderr" se.err

# --- e. Progress (first: it makes the big spool that d uses). --------------

# gen_big N OUT: an mbox of N small messages, each routed (rewritten).
gen_big() {
	awk -v n="$1" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "From s%d@example.org Mon Mar 18 09:00:00 2024\n" \
			    "Delivered-To: u%d@cpandl.net\nFrom: s%d@example.org\n" \
			    "To: u%d@cpandl.net\nSubject: m%d\n" \
			    "Message-ID: <%d.big@example.org>\n\nLine one.\nLine two.\n\n",
			    i, i % 1000, i, i % 1000, i, i
	}' >"$2"
}

gen_big 150000 big.mbox || bail_out "cannot generate big.mbox"
slow=no
while :; do
	cp big.mbox p1.mbox || bail_out "cannot copy big.mbox"
	at . p1 -t "$table" p1.mbox
	[ "$rc" = 0 ] || break
	if [ "$elapsed" -ge 2000 ]; then
		slow=yes
		break
	fi
	[ "$(wc -c <big.mbox)" -lt 150000000 ] || break
	cat big.mbox big.mbox >big2.mbox && mv big2.mbox big.mbox ||
		bail_out "cannot grow big.mbox"
done
rm -f p1.mbox
big_size=$(($(wc -c <big.mbox) / 1000000))
status_is "progress: a run over a ${big_size} MB mbox, stderr a file: exit 0" 0 p1
file_lacks "progress: stderr a file (${elapsed} ms): no progress on it" p1.err \
	'messages/s|MB,'
file_lacks "progress: stderr a file: no carriage return on it" p1.err "$cr"

if [ "$have_script" = no ] || [ "$slow" = no ]; then
	why="no script(1)"
	[ "$slow" = no ] && why="a run over ${big_size} MB takes ${elapsed} ms, under 2 s"
	for i in 1 2 3 4 5 6; do
		skip_test "progress under a pseudo-terminal: $why"
	done
else
	cp big.mbox p2.mbox || bail_out "cannot copy big.mbox"
	script -qfec "cd '$tmp' && '$reroute' -t '$table' p2.mbox >'$tmp/p2.out'; echo \"rc=\$?\" >'$tmp/p2.rc'" \
		/dev/null </dev/null >p2.tty 2>&1
	rm -f p2.mbox
	is "progress under a pseudo-terminal: exit 0" "rc=0" "$(cat p2.rc 2>&1)"
	tr '\r' '\n' <p2.tty >p2.lines
	# (A line may end in ESC [ K, erase to the end of the line.)
	file_has "progress under a pseudo-terminal: \"reroute: N messages, X MB, R messages/s, P%\" on stderr" \
		p2.lines "^reroute: [0-9]+ messages, [0-9]+(\\.[0-9]+)? MB, [0-9]+(\\.[0-9]+)? messages/s, [0-9]+%($(printf '\033')\\[K)?\$"
	check "progress under a pseudo-terminal: redrawn, each time after a carriage return" \
		test "$(grep -c 'messages/s' p2.lines)" -ge 2 -a \
		"$(tr -d '\n' <p2.tty | tr '\r' '\n' | grep -c '^reroute: .*messages/s')" -ge 2
	check "progress under a pseudo-terminal: ends with a newline" \
		test "$(tail -c 1 p2.tty | od -An -c | tr -d ' ')" = '\n'
	summary_is "progress under a pseudo-terminal: stdout (a file) has only the summary" p2 \
		"* scanned, * rewritten, 0 refiled, 0 unchanged, 0 skipped, 0 errors"
	gen_big 20 p4.mbox
	script -qfec "cd '$tmp' && '$reroute' -t '$table' p4.mbox >'$tmp/p4.out'" \
		/dev/null </dev/null >p4.tty 2>&1
	empty_file "progress under a pseudo-terminal: none for a short run" p4.tty
fi

cp big.mbox p3.mbox || bail_out "cannot copy big.mbox"
"$reroute" -t "$table" p3.mbox 2>&1 | cat >p3.out
rm -f p3.mbox
file_lacks "progress: none when stderr is a pipe" p3.out 'messages/s|MB,'

# --- d. --lock. -----------------------------------------------------------

: >run.lock
# start_hold MODE FILE SECONDS: lockhold in the background, once it holds.
start_hold() {
	"$lockhold" "$1" "$2" "$3" >hold.out 2>hold.err &
	hold_pid=$!
	wait_line hold.out locked 10 || bail_out "lockhold did not lock: $(cat hold.err)"
	t_locked=$(now_ms)
}

fresh la
snap la >la.before
start_hold fcntl "$tmp/run.lock" 30
at la la --lock "$tmp/run.lock" -t "$table" $srcs
status_is "--lock held: exit 75" 75 la
check "--lock held: at once (${elapsed} ms)" test "$elapsed" -lt 1500
unchanged "--lock held: the spools are untouched" la la.before
file_has "--lock held: stderr names the lock" la.err "$(re_quote "$tmp/run.lock")"
empty_file "--lock held: no summary on stdout" la.out

at la lb --lock "$tmp/run.lock" --lock-timeout 1 -t "$table" $srcs
status_is "--lock held, --lock-timeout 1: exit 75" 75 lb
check "--lock held, --lock-timeout 1: waited about a second (${elapsed} ms)" \
	test "$elapsed" -ge 900 -a "$elapsed" -lt 5000
unchanged "--lock held, --lock-timeout 1: the spools are untouched" la la.before
kill -TERM "$hold_pid" 2>/dev/null
wait "$hold_pid"

start_hold fcntl "$tmp/run.lock" 1
at la lc --lock "$tmp/run.lock" --lock-timeout 10 -t "$table" $srcs
t_done=$(now_ms)
status_is "--lock held for 1 s, --lock-timeout 10: exit 0" 0 lc
check "--lock held for 1 s, --lock-timeout 10: waited for the holder ($((t_done - t_locked)) ms after it locked)" \
	test $((t_done - t_locked)) -ge 900
nothing_to_do "--lock held for 1 s, --lock-timeout 10: the run was made" la
wait "$hold_pid"

# Two reroute runs: the first over the big mbox, the second while it runs.
fresh ld
snap ld >ld.before
cp big.mbox ld.big.mbox || bail_out "cannot copy big.mbox"
"$reroute" -q --lock "$tmp/two.lock" -t "$table" ld.big.mbox >ld1.out 2>ld1.err &
first=$!
# Wait until the first run holds the lock (/proc/locks, where there is one).
end=$(($(now_ms) + 5000))
held=no
while [ "$(now_ms)" -lt "$end" ]; do
	if [ -f two.lock ]; then
		if [ ! -r /proc/locks ]; then
			sleep 0.3
			held=yes
			break
		fi
		if grep -q ":$(stat -c %i two.lock) " /proc/locks; then
			held=yes
			break
		fi
	fi
	kill -0 "$first" 2>/dev/null || break
	sleep 0.01
done
at ld ld2 --lock "$tmp/two.lock" -t "$table" $srcs
running=no
kill -0 "$first" 2>/dev/null && running=yes
is "two runs: the first took the lock and was still running when the second ended" \
	"yes yes" "$held $running"
status_is "two runs: the second exits 75" 75 ld2
check "two runs: the second exits at once (${elapsed} ms)" test "$elapsed" -lt 1500
unchanged "two runs: the second touched nothing" ld ld.before
wait "$first"
is "two runs: the first finishes well (exit 0)" 0 "$?"
empty_file "two runs: the first, -q, printed nothing" ld1.err
at ld ld3 -q --lock "$tmp/two.lock" -t "$table" $srcs
status_is "two runs: once the first is done, the second runs (exit 0)" 0 ld3
rm -f ld.big.mbox

# A lock file that cannot be made.
fresh le
snap le >le.before
at le le --lock "$tmp/no/such/dir/run.lock" -t "$table" $srcs
documented_status "--lock in a directory that does not exist: an exit status --help documents"
file_has "--lock in a directory that does not exist: reported on stderr" le.err \
	"$(re_quote "$tmp/no/such/dir/run.lock")"
unchanged "--lock in a directory that does not exist: the spools are untouched" le le.before

done_testing
