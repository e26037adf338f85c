#!/bin/sh
# postfix_test.sh - reroute as the delivery agent of a real Postfix, end to
# end: mail sent over SMTP is delivered through a pipe(8) transport that runs
# the built reroute, as an administrator configures it (see "Using reroute
# with Postfix" in reroute(1)).
#
# A private Postfix instance runs as root with everything below $tmp (its
# config_directory, queue_directory, data_directory and maillog_file), on
# 127.0.0.1 at a port that was free, with no DNS, short queue timers, and
# for mydestination the domains of SPEC's route table plus fabrikam.com,
# which the table does not know. local_transport is the pipe transport
# "reroute": flags=RXhu user=nobody, --recipient=${recipient}, one recipient
# a delivery, into the Maildirs $tmp/vmail/%d/%u/; transport_maps sends one
# address, legacy@cpandl.net, to "reroute-mbox", the same with the mbox
# template $tmp/mbox/%u and --lock-timeout 1.
#
#   a. administrator@cpandl.net, @cpandl.org, @internal.adatum.com and
#      administrator+lists@cpandl.net: each delivered once ("status=sent" in
#      the log, once), into administrator@adatum.com's Maildir (the +lists
#      one into administrator+lists's: a canonical address with an extension
#      has a mailbox of its own), owned by the pipe's user; the file is the
#      message as sent, below the Return-Path and Received fields Postfix
#      adds, with reroute's Delivered-To and X-Rerouted-From fields on top,
#      byte for byte what reroute's filter makes of what Postfix handed over;
#   b. administrator@fabrikam.com: reroute exits 67, Postfix bounces it
#      (status=bounced in the log, the non-delivery report delivered to the
#      sender, alice@adatum.com, through reroute, Status 5.1.1), nothing
#      delivered for it, nothing left in the queue;
#   c. legacy@cpandl.net while cmd/lockhold holds the mbox's dotlock and
#      fcntl lock: reroute exits 75, Postfix defers the message (deferred
#      queue, status=deferred) and the mbox is untouched; once the lock is
#      released, postqueue -f delivers it, exactly once;
#   d. Postfix stops and leaves no process behind.
#
# It needs root (Postfix starts as root and the pipe runs as nobody),
# Postfix (scripts/setup installs it) and python3 (the SMTP client); without
# them it skips. REROUTE_SKIP_SERVERS=1 skips it too.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

PATH=$PATH:/usr/sbin:/sbin
export PATH

[ -z "${REROUTE_SKIP_SERVERS:-}" ] || skip_all "REROUTE_SKIP_SERVERS is set"
[ "$(id -u)" -eq 0 ] || skip_all "not root: a private Postfix must start as root"
for c in postfix postconf postqueue python3; do
	command -v $c >/dev/null 2>&1 ||
		skip_all "no $c: scripts/setup installs postfix and python3"
done
id nobody >/dev/null 2>&1 || skip_all "no user nobody for the pipe transport"
[ -x "$lockhold" ] || bail_out "$lockhold is not built"

pf=$tmp/pf
conf=$pf/etc
queue=$pf/queue
log=$pf/log/maillog
group=$(id -gn nobody)
hold=

# Postfix stops on every exit; what is left of this instance (every process
# whose working directory is its queue directory: master and its children,
# pipe commands included) is killed.
instance_pids() {
	for _p in /proc/[0-9]*; do
		[ "$(readlink "$_p/cwd" 2>/dev/null)" = "$queue" ] && echo "${_p#/proc/}"
	done
}

pf_stop() {
	if [ -n "$hold" ]; then
		kill -TERM "$hold" 2>/dev/null
		wait "$hold" 2>/dev/null
		hold=
	fi
	[ -d "$queue" ] || return 0
	postfix -c "$conf" stop >/dev/null 2>&1
	_end=$(($(now_ms) + 10000))
	while [ -n "$(instance_pids)" ] && [ "$(now_ms)" -lt "$_end" ]; do
		sleep 0.05
	done
	_left=$(instance_pids)
	[ -z "$_left" ] || kill -KILL $_left 2>/dev/null
	[ -z "$_left" ]
}
trap 'pf_stop; rm -rf "$tmp"' EXIT

# poll SECONDS CMD ARG...: run CMD until it succeeds, for up to SECONDS.
poll() {
	_end=$(($(now_ms) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "$_end" ] || return 1
		sleep 0.05
	done
}

# logged QID EREGEX: the mail log has a line of message QID matching EREGEX.
logged() {
	grep -E -q -e ": $1: .*$2" "$log" 2>/dev/null
}

# log_count QID EREGEX: how many lines of message QID match EREGEX.
log_count() {
	grep -E -c -e ": $1: .*$2" "$log" 2>/dev/null
}

# log_is DESC COUNT QID EREGEX: ok when COUNT lines of message QID match
# EREGEX (COUNT "1+": one or more); else the log lines of QID.
log_is() {
	_lc=$(log_count "$3" "$4")
	if [ "$_lc" = "$2" ] || { [ "$2" = 1+ ] && [ "$_lc" -ge 1 ]; }; then
		ok "$1"
	else
		not_ok "$1"
		diag "$_lc lines, not $2, match /: $3: .*$4/; the lines of $3:"
		grep -F ": $3: " "$log" | sed 20q | diag
	fi
}

# queue_of QID: the queue Postfix holds message QID in (active, deferred,
# ...), nothing when it holds it in none.
queue_of() {
	postqueue -c "$conf" -j 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m["queue_id"] == sys.argv[1]:
        print(m["queue_name"])' "$1"
}

in_deferred() {
	[ "$(queue_of "$1")" = deferred ]
}

queue_empty() {
	[ -z "$(postqueue -c "$conf" -j 2>/dev/null)" ]
}

# --- The instance. -----------------------------------------------------------
# The pipe's user must reach the program, the table and the mailboxes.
chmod 711 "$tmp" || bail_out "cannot chmod $tmp"
mkdir -p "$conf" "$queue" "$pf/log" "$tmp/bin" "$tmp/vmail" "$tmp/mbox" "$tmp/msg" ||
	bail_out "cannot make the instance's directories"
cp "$reroute" "$tmp/bin/reroute" && cp "$testdata/tables/spec.table" "$tmp/routes" ||
	bail_out "cannot copy reroute and the table"
chmod 755 "$tmp/bin" "$tmp/bin/reroute" && chmod 644 "$tmp/routes" &&
	chown "nobody:$group" "$tmp/vmail" "$tmp/mbox" || bail_out "cannot chmod/chown"

port=$(python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])') || bail_out "no free port"

cat >"$conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $log
maillog_file_prefixes = $pf/log
myhostname = mx.reroute.test
mydomain = reroute.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
relayhost =
alias_maps =
alias_database =
biff = no
mydestination = cpandl.net, cpandl.org, internal.adatum.com, adatum.com, fabrikam.com
local_recipient_maps =
local_transport = reroute
reroute_destination_recipient_limit = 1
transport_maps = texthash:$conf/transport
reroute-mbox_destination_recipient_limit = 1
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
export_environment = TZ MAIL_CONFIG LANG ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
EOF
printf 'legacy@cpandl.net\treroute-mbox:\n' >"$conf/transport"
cat >"$conf/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
reroute   unix  -       n       n       -       -       pipe
  flags=RXhu user=nobody argv=$tmp/bin/reroute -t $tmp/routes
  --deliver $tmp/vmail/%d/%u/ --recipient=\${recipient} -
reroute-mbox unix -     n       n       -       -       pipe
  flags=RXhu user=nobody argv=$tmp/bin/reroute -t $tmp/routes --lock-timeout 1
  --deliver $tmp/mbox/%u --recipient=\${recipient} -
EOF

postfix -c "$conf" check >"$tmp/check.err" 2>&1 ||
	bail_out "postfix check: $(sed 5q "$tmp/check.err") $(tail -n 5 "$log" 2>/dev/null)"
postfix -c "$conf" start >"$tmp/start.err" 2>&1 ||
	bail_out "postfix start: $(sed 5q "$tmp/start.err") $(tail -n 5 "$log" 2>/dev/null)"

smtp_up() {
	python3 -c '
import smtplib, sys
smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=2).quit()' "$port" 2>/dev/null
}
poll 20 smtp_up || bail_out "Postfix does not answer on 127.0.0.1:$port: $(tail -n 5 "$log")"
ok "a private Postfix runs on 127.0.0.1:$port"

cat >"$tmp/send.py" <<'EOF'
# send.py PORT SENDER RECIPIENT FILE: one SMTP transaction; prints the
# queue ID of Postfix's "250 2.0.0 Ok: queued as QID".
import smtplib, sys

port, sender, rcpt, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with open(path, "rb") as f:
    msg = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
    s.ehlo("client.reroute.test")
    s.mail(sender)
    code, resp = s.rcpt(rcpt)
    if code != 250:
        sys.exit("RCPT TO:<%s>: %d %s" % (rcpt, code, resp.decode()))
    code, resp = s.data(msg)
    if code != 250:
        sys.exit("DATA: %d %s" % (code, resp.decode()))
print(resp.decode().rsplit(" ", 1)[-1])
EOF

# message N RCPT: $tmp/msg/N, a message to RCPT with a body that SMTP must
# dot-stuff and an mbox must escape.
message() {
	cat >"$tmp/msg/$1" <<EOF
Date: Tue, 19 Mar 2024 09:14:0$1 +0000
From: Alice <alice@example.org>
To: Administrator <$2>
Subject: Message $1 for $2
Message-ID: <$1.postfix-test@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Message $1, sent to $2 over SMTP.
.A line that starts with a dot
..and one with two.
From here on, a line an mbox must escape,
>From and one it escapes again.

-- 
Alice
EOF
}

# send N RCPT: message N, from alice@adatum.com to RCPT; its queue ID goes
# to $tmp/msg/N.qid.
send() {
	message "$1" "$2"
	python3 "$tmp/send.py" "$port" alice@adatum.com "$2" "$tmp/msg/$1" \
		>"$tmp/msg/$1.qid" 2>"$tmp/msg/$1.err" ||
		bail_out "sending to $2: $(cat "$tmp/msg/$1.err")"
}

qid() {
	cat "$tmp/msg/$1.qid"
}

# delivered_files N ROOT: the files below ROOT that hold message N.
delivered_files() {
	grep -r -l -F -x -e "Message-ID: <$1.postfix-test@example.org>" "$2" 2>/dev/null
}

# check_delivered N RCPT FILE: FILE, delivered for message N sent to RCPT,
# is reroute's Delivered-To CANONICAL and X-Rerouted-From RCPT, then what
# Postfix handed over: Return-Path, its Received field, and the message as
# sent; and reroute's filter makes FILE of what Postfix handed over.
check_delivered() {
	_n=$1
	_canon=$(echo "$2" | sed 's/@.*/@adatum.com/')
	printf 'Delivered-To: %s\nX-Rerouted-From: %s\nReturn-Path: <alice@adatum.com>\n' \
		"$_canon" "$2" >"$tmp/$_n.top.want"
	sed -n 1,3p "$3" >"$tmp/$_n.top"
	same_bytes "a. $2: Delivered-To $_canon, X-Rerouted-From $2, Return-Path" \
		"$tmp/$_n.top.want" "$tmp/$_n.top"
	# Below them, Postfix's Received field (a line and its continuations),
	# then the message as sent, header and body, byte for byte.
	sed 1,3d "$3" | awk 'NR == 1 && /^Received: / { skip = 1; next }
		skip && /^[ \t]/ { next } { skip = 0; print }' >"$tmp/$_n.rest"
	file_has "a. $2: Postfix's Received field says for <$2>" "$3" "for <$(re_quote "$2")>;"
	same_bytes "a. $2: the message as sent, header and body, byte for byte" \
		"$tmp/msg/$_n" "$tmp/$_n.rest"
	sed 1,2d "$3" >"$tmp/$_n.handed"
	"$reroute" -t "$tmp/routes" --recipient="$2" - <"$tmp/$_n.handed" \
		>"$tmp/$_n.filter" 2>"$tmp/$_n.filter.err"
	same_bytes "a. $2: what reroute's filter makes of what Postfix handed over" \
		"$tmp/$_n.filter" "$3"
}

# --- a. Routed recipients: one copy each, in the canonical Maildir. -----------
set -- 1 administrator@cpandl.net administrator \
	2 administrator@cpandl.org administrator \
	3 administrator@internal.adatum.com administrator \
	4 administrator+lists@cpandl.net administrator+lists
while [ $# -gt 0 ]; do
	send "$1" "$2"
	shift 3
done
send 5 administrator@fabrikam.com

for n in 1 2 3 4; do
	poll 30 logged "$(qid $n)" 'status=(sent|bounced|deferred)' ||
		diag "message $n ($(qid $n)) not delivered after 30 s"
done
poll 30 logged "$(qid 5)" 'status=(sent|bounced|deferred)' ||
	diag "message 5 ($(qid 5)) not handled after 30 s"

set -- 1 administrator@cpandl.net administrator \
	2 administrator@cpandl.org administrator \
	3 administrator@internal.adatum.com administrator \
	4 administrator+lists@cpandl.net administrator+lists
while [ $# -gt 0 ]; do
	n=$1 rcpt=$2 user=$3
	shift 3
	box=$tmp/vmail/adatum.com/$user
	q=$(qid $n)
	log_is "a. $rcpt: Postfix logs one delivery, by reroute (status=sent)" 1 "$q" \
		"to=<$(re_quote "$rcpt")>, relay=reroute, .*status=sent \\(delivered via reroute service\\)"
	files=$(delivered_files $n "$tmp/vmail")
	f=$(echo "$files" | sed 1q)
	is "a. $rcpt: one copy in all the Maildirs, in $user's new/" \
		"1 $box/new" "$(echo "$files" | grep -c .) ${f%/*}"
	if [ -f "$f" ]; then
		check_delivered $n "$rcpt" "$f"
		is "a. $rcpt: the file belongs to the pipe's user, nobody, mode 0600" \
			"nobody 600" "$(stat -c '%U %a' "$f")"
	else
		for d in 1 2 3 4 5; do not_ok "a. $rcpt: delivered ($d)"; done
	fi
done

# --- b. Not routed: 67, bounced. -------------------------------------------------
q=$(qid 5)
log_is "b. administrator@fabrikam.com: reroute exits 67, Postfix bounces (5.1.1, status=bounced)" \
	1 "$q" 'to=<administrator@fabrikam\.com>, relay=reroute, .*dsn=5\.1\.1, status=bounced'
# The non-delivery report goes to the sender, alice@adatum.com, whose mail
# reroute delivers too.
poll 30 sh -c "ls '$tmp/vmail/adatum.com/alice/new/'* >/dev/null 2>&1"
dsn=$(ls "$tmp/vmail/adatum.com/alice/new/"* 2>/dev/null)
is "b. no mailbox for fabrikam.com; the Maildirs made: administrator's, administrator+lists's and alice's (the report)" \
	"adatum.com/administrator adatum.com/administrator+lists adatum.com/alice" \
	"$(cd "$tmp/vmail" && echo */*)"
is "b. one non-delivery report, in alice@adatum.com's Maildir" 1 "$(echo "$dsn" | grep -c .)"
dsn=$(echo "$dsn" | sed 1q)
[ -f "$dsn" ] || dsn=/dev/null
file_has "b. the report is Postfix's, to alice@adatum.com" "$dsn" \
	"^Subject: Undelivered Mail Returned to Sender"
file_has "b. the report: Final-Recipient administrator@fabrikam.com" "$dsn" \
	"^Final-Recipient: rfc822; ?administrator@fabrikam\\.com"
file_has "b. the report: Status 5.1.1" "$dsn" "^Status: 5\\.1\\.1"
file_has "b. the report holds the bounced message" "$dsn" \
	"^Message-ID: <5\\.postfix-test@example\\.org>"
is "b. the message is nowhere else" "$dsn" "$(delivered_files 5 "$tmp/vmail")"

# --- c. The mbox locked: 75, deferred, then delivered once. ---------------------
mbox=$tmp/mbox/legacy
: >"$mbox" && chown "nobody:$group" "$mbox" && chmod 600 "$mbox" ||
	bail_out "cannot make $mbox"
"$lockhold" both "$mbox" 120 >"$tmp/hold.out" 2>&1 &
hold=$!
wait_line "$tmp/hold.out" locked 10 || bail_out "lockhold did not lock $mbox"
send 6 legacy@cpandl.net
q=$(qid 6)
poll 30 logged "$q" 'status=deferred'
log_is "c. legacy@cpandl.net, mbox locked: reroute exits 75, Postfix defers (status=deferred)" \
	1+ "$q" 'to=<legacy@cpandl\.net>, relay=reroute-mbox, .*dsn=4\.[0-9.]+, status=deferred'
poll 10 in_deferred "$q"
is "c. the message waits in the deferred queue" deferred "$(queue_of "$q")"
is "c. nothing delivered meanwhile: the mbox is empty" 0 "$(wc -c <"$mbox")"
log_is "c. nothing logged as sent" 0 "$q" 'status=sent'

kill -TERM "$hold"
wait "$hold"
hold=
postqueue -c "$conf" -f
poll 30 logged "$q" 'status=sent'
log_is "c. after the lock is released and postqueue -f: delivered once (status=sent)" \
	1 "$q" 'to=<legacy@cpandl\.net>, relay=reroute-mbox, .*status=sent'
if mbox_split "$mbox" "$tmp/legacy.split" >"$tmp/legacy.problems"; then
	ok "c. the mbox is well formed"
else
	not_ok "c. the mbox is well formed"
	diag <"$tmp/legacy.problems"
fi
is "c. the mbox holds one message" 1 "$(grep -c . "$tmp/legacy.split/from" 2>/dev/null)"
file_has "c. its From_ line gives the envelope sender" "$tmp/legacy.split/from" \
	"^1 From alice@adatum\\.com $asctime_re\$"
m=$tmp/legacy.split/1
[ -f "$m" ] || m=/dev/null
is "c. reroute's fields on top" \
	"Delivered-To: legacy@adatum.com|X-Rerouted-From: legacy@cpandl.net|Return-Path: <alice@adatum.com>" \
	"$(sed 3q "$m" | tr '\n' '|' | sed 's/|$//')"
sed 1,3d "$m" | awk 'NR == 1 && /^Received: / { skip = 1; next }
	skip && /^[ \t]/ { next } { skip = 0; print }' >"$tmp/6.rest"
same_bytes "c. the message as sent, byte for byte (escaping undone)" "$tmp/msg/6" "$tmp/6.rest"
is "c. no dotlock left" "legacy" "$(ls -A "$tmp/mbox")"
poll 10 queue_empty
is "the queue is empty at the end" "" "$(postqueue -c "$conf" -j 2>&1)"
# Postfix's cleanup warns when the file system's clock and the host's differ
# by a second, which a loaded machine makes happen: not about reroute.
grep -v -e 'warning: file system clock is [0-9]* seconds* ahead' \
	-e 'warning: resetting file time stamps' "$log" >"$tmp/log.own"
file_lacks "the mail log has no warning, error, fatal or panic" "$tmp/log.own" \
	'postfix/[a-z-]+\[[0-9]+\]: (warning|error|fatal|panic):'

# --- d. Stopping. -----------------------------------------------------------------
if pf_stop; then
	ok "d. postfix stop: no process of the instance left"
else
	not_ok "d. postfix stop: no process of the instance left"
	diag "processes killed after 10 s"
fi

plan "$tap_n"
done_testing
