#!/bin/sh
# mda_test.sh - reroute -t TABLE --deliver TEMPLATE [--recipient ADDR] -:
# one message from standard input delivered, as an MTA runs a delivery
# agent; every exit status, end to end.
#
#   a. delivered into a Maildir: exit 0, nothing on stdout or stderr, one
#      file in new/ with the bytes the stdin filter prints (a From_ line on
#      stdin is not part of the message), nothing in tmp/, 0700 and 0600;
#      a message for two users into both;
#   b. into an mbox: "From SENDER DATE" (the Return-Path address, else
#      MAILER-DAEMON, or --from), the message escaped (mboxrd, or mboxo),
#      a blank line; appended after what the mbox held; no dotlock left;
#   c. --recipient gives the envelope recipient, whatever the headers say;
#   d. no routed recipient: exit 67 and nothing written; with --default
#      TEMPLATE the message goes there, %u %d %a taken from its first
#      recipient as it is, %% a percent sign; a routed message does not;
#   e. not a message, or empty input: exit 65, nothing written;
#   f. temporary failures, exit 75 with nothing half-written left: the
#      mbox locked (dotlock, fcntl lock) past --lock-timeout; a full disk
#      or an I/O error (cmd/reroute-fault, REROUTE_FAULT=OP:N:ERRNO).

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

[ -x "$lockhold" ] || bail_out "$lockhold is not built"
[ -x "$reroute_fault" ] || bail_out "$reroute_fault is not built"
table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"

md=$spools/maildir
# Delivered-To administrator@cpandl.net, Return-Path someone@example.org.
routed=$md/cur/1709630047.M512304P4242.mx1.adatum.com,S=674,W=694:2,S
# CRLF, Delivered-To administrator@internal.adatum.com, no Return-Path.
noreturn=$md/cur/1709633400.M551022P4270.mx1.adatum.com,S=655,W=655\;2,S
# To administrator@cpandl.org, Cc sales@cpandl.net and jane@example.org.
partial=$md/cur/1709631025.M104519P4250.mx1.adatum.com:2,
# To someone@example.org only.
unrouted=$md/.Sent/cur/1709635000.M1P4400.laptop,S=369,W=379:2,S
# No recipient at all.
norcpt=$md/new/1709640388.M340777P4302.mx1.adatum.com
for f in "$routed" "$noreturn" "$partial" "$unrouted" "$norcpt"; do
	[ -f "$f" ] || bail_out "no fixture $f"
done

# mda NAME IN ARG...: reroute -t filter.table ARG... - with IN on stdin,
# as run does (NAME.out, NAME.err, $rc).
mda() {
	_m_name=$1
	_m_in=$2
	shift 2
	run "$_m_in" "$_m_name" -t "$table" "$@" -
}

# one_file DESC DIR WANT: the Maildir DIR holds one message, in new/, with
# WANT's bytes, and nothing in tmp/ or cur/.
one_file() {
	_of=$(find "$2/new" "$2/cur" "$2/tmp" -type f 2>/dev/null)
	set -- "$1" "$2" "$3" $_of
	if [ $# -eq 4 ] && [ "${4%/new/*}" = "$2" ] && cmp -s "$3" "$4"; then
		ok "$1"
	else
		not_ok "$1"
		diag "files in $2/new, cur and tmp (one in new/ expected): ${4:-none} ${5:-} ${6:-}"
		[ $# -eq 4 ] && cmp_diag "$3" "$4"
	fi
}

# mbox_new MBOX SIZE NAME: NAME.from gets the first line MBOX has after its
# first SIZE bytes, NAME.rest the rest.
mbox_new() {
	tail -c +$(($2 + 1)) "$1" >"$3.new"
	sed -n 1p "$3.new" >"$3.from"
	sed 1d "$3.new" >"$3.rest"
}

# escaped FMT IN OUT: OUT is the message IN escaped for FMT, then a blank
# line.
escaped() {
	if [ "$1" = mboxo ]; then
		sed 's/^From />&/' "$2" >"$3"
	else
		sed 's/^>*From />&/' "$2" >"$3"
	fi
	has_final_newline "$3" || echo >>"$3"
	echo >>"$3"
}

# --- a. Maildir. ------------------------------------------------------------
rewrite_oracle "$routed" routed.want -t "$table"
mda a "$routed" --deliver "$tmp/a/%d/%u/"
status_is "a. delivered into a Maildir: exit 0" 0 a
empty_file "a. nothing on stdout" a.out
empty_file "a. nothing on stderr" a.err
one_file "a. one file in new/, the rewritten message" a/adatum.com/administrator routed.want
maildir_names a >a.names
file_has "a. its name is <time>.R<24 hex>.<host>" a.names "$refile_name_re"
is "a. the Maildir and its cur/ new/ tmp/ are 0700, the file 0600" \
	"700 700 700 700 600" \
	"$(stat -c %a a/adatum.com/administrator a/adatum.com/administrator/cur \
		a/adatum.com/administrator/new a/adatum.com/administrator/tmp \
		a/adatum.com/administrator/new/* 2>&1 | tr '\n' ' ' | sed 's/ $//')"

# A From_ line on stdin is not part of what is delivered.
rewrite_oracle "$testdata/messages/mbox-from.eml" a2.filter -t "$table"
sed 1d a2.filter >a2.want
mda a2 "$testdata/messages/mbox-from.eml" --deliver "$tmp/a2/%d/%u/"
status_is "a. a message with a From_ line: exit 0" 0 a2
one_file "a. a message with a From_ line: delivered without it" \
	a2/adatum.com/administrator a2.want

# Two users.
rewrite_oracle "$refile_data/two-users.eml" two.want -t "$table"
mda a3 "$refile_data/two-users.eml" --deliver "$tmp/a3/%d/%u/"
status_is "a. a message for two users: exit 0" 0 a3
one_file "a. a message for two users: in alice's Maildir" a3/adatum.com/alice two.want
one_file "a. a message for two users: in bob's Maildir" a3/adatum.com/bob two.want

# Some recipients routed, one not: delivered for the routed ones.
rewrite_oracle "$partial" partial.want -t "$table"
mda a4 "$partial" --deliver "$tmp/a4/%d/%u/"
status_is "a. some recipients routed: exit 0" 0 a4
one_file "a. some recipients routed: in administrator's Maildir" \
	a4/adatum.com/administrator partial.want
one_file "a. some recipients routed: in team's Maildir" a4/adatum.com/team partial.want
is "a. some recipients routed: no other mailbox" "administrator team" \
	"$(ls a4/adatum.com | tr '\n' ' ' | sed 's/ $//')"

# --- b. mbox. ---------------------------------------------------------------
mkdir b
escaped mboxrd routed.want routed.rd
mda b "$routed" --deliver "$tmp/b/%u"
status_is "b. delivered into an mbox: exit 0" 0 b
empty_file "b. nothing on stdout" b.out
mbox_new b/administrator 0 b
file_has "b. the From_ line: the Return-Path address and an asctime date" b.from \
	"^From someone@example\\.org $asctime_re\$"
same_bytes "b. the message, escaped, then a blank line" routed.rd b.rest
is "b. the mbox made 0600, no dotlock left" "administrator 600" \
	"$(ls -A b) $(stat -c %a b/administrator 2>&1)"

mkdir b2
cp "$refile_data/escape.mbox" b2/administrator
chmod 600 b2/administrator
size=$(wc -c <b2/administrator)
mda b2 "$routed" --from bounces@lists.example.net --deliver "$tmp/b2/%u"
status_is "b. --from: exit 0" 0 b2
head -c "$size" b2/administrator >b2.head
same_bytes "b. appended: what the mbox held is kept" "$refile_data/escape.mbox" b2.head
mbox_new b2/administrator "$size" b2
file_has "b. --from: \"From bounces@lists.example.net DATE\"" b2.from \
	"^From bounces@lists\\.example\\.net $asctime_re\$"
same_bytes "b. appended: the message, escaped, then a blank line" routed.rd b2.rest

rewrite_oracle "$noreturn" noreturn.want -t "$table"
escaped mboxrd noreturn.want noreturn.rd
mda b3 "$noreturn" --deliver "$tmp/b3/%u"
status_is "b. no Return-Path: exit 0" 0 b3
mbox_new b3/administrator 0 b3
file_has "b. no Return-Path: \"From MAILER-DAEMON DATE\"" b3.from \
	"^From MAILER-DAEMON $asctime_re($cr)?\$"
# A CRLF message: its blank separator line may be LF or CRLF.
cp noreturn.want noreturn.crlf
printf '\r\n' >>noreturn.crlf
if cmp -s noreturn.crlf b3.rest; then
	cp noreturn.crlf noreturn.rd
fi
same_bytes "b. no Return-Path: the message (CRLF), then a blank line" noreturn.rd b3.rest

# Return-Path: <> (a bounce): MAILER-DAEMON.
sed 's/^Return-Path: .*/Return-Path: <>/' "$routed" >bounce.eml
mda b4 bounce.eml --deliver "$tmp/b4/%u"
status_is "b. Return-Path <>: exit 0" 0 b4
mbox_new b4/administrator 0 b4
file_has "b. Return-Path <>: \"From MAILER-DAEMON DATE\"" b4.from \
	"^From MAILER-DAEMON $asctime_re\$"

for fmt in mboxrd mboxo; do
	rewrite_oracle "$refile_data/escape.eml" esc.want -t "$table"
	escaped $fmt esc.want esc.$fmt
	mda b.$fmt "$refile_data/escape.eml" --mbox-format=$fmt --deliver "$tmp/b.$fmt/%u"
	status_is "b. --mbox-format=$fmt: exit 0" 0 b.$fmt
	mbox_new b.$fmt/administrator 0 b.$fmt
	same_bytes "b. --mbox-format=$fmt: the body escaped for $fmt" esc.$fmt b.$fmt.rest
done

# --- c. --recipient. ---------------------------------------------------------
rewrite_oracle "$unrouted" c.want -t "$table" --recipient administrator@cpandl.net
mda c "$unrouted" --recipient administrator@cpandl.net --deliver "$tmp/c/%d/%u/"
status_is "c. --recipient administrator@cpandl.net: exit 0" 0 c
one_file "c. --recipient: delivered to administrator@adatum.com, rewritten for that recipient" \
	c/adatum.com/administrator c.want
is "c. --recipient: no other mailbox" administrator "$(ls c/adatum.com 2>&1)"
mda c2 "$routed" --recipient someone@example.org --deliver "$tmp/c2/%d/%u/"
status_is "c. --recipient that is not routed overrides a routed Delivered-To: exit 67" 67 c2
absent "c. --recipient not routed: nothing written" c2

# --- d. No routed recipient; --default. --------------------------------------
mda d "$unrouted" --deliver "$tmp/d/%d/%u/"
status_is "d. no routed recipient: exit 67 (EX_NOUSER)" 67 d
empty_file "d. no routed recipient: nothing on stdout" d.out
file_has "d. no routed recipient: said on stderr" d.err .
absent "d. no routed recipient: nothing written" d

mda d2 "$norcpt" --deliver "$tmp/d2/%d/%u/"
status_is "d. no recipient at all: exit 67" 67 d2
absent "d. no recipient at all: nothing written" d2

rewrite_oracle "$unrouted" unrouted.want -t "$table"
mda d3 "$unrouted" --deliver "$tmp/d3/%d/%u/" --default "$tmp/d3/default/%d/%u/"
status_is "d. --default: exit 0" 0 d3
one_file "d. --default: delivered to %d/%u of the first recipient as it is" \
	d3/default/example.org/someone unrouted.want
is "d. --default: nothing else made" default "$(ls d3 2>&1)"

mkdir d4
mda d4 "$unrouted" --deliver "$tmp/d4/%u" --default "$tmp/d4/%a"
status_is "d. --default with %a, an mbox: exit 0" 0 d4
mbox_new d4/someone@example.org 0 d4
escaped mboxrd unrouted.want unrouted.rd
same_bytes "d. --default %a: the mbox someone@example.org holds the message" unrouted.rd d4.rest
is "d. --default %a: nothing else made" someone@example.org "$(ls -A d4 2>&1)"

mda d5 "$unrouted" --deliver "$tmp/d5/%u/" --default "$tmp/d5/100%%/%u/"
status_is "d. --default with %%: exit 0" 0 d5
one_file "d. --default: %% is a percent sign" "d5/100%/someone" unrouted.want

mda d6 "$routed" --deliver "$tmp/d6/%d/%u/" --default "$tmp/d6/default/%d/%u/"
status_is "d. a routed message with --default: exit 0" 0 d6
one_file "d. a routed message with --default: delivered to its user" \
	d6/adatum.com/administrator routed.want
absent "d. a routed message with --default: nothing in the default" d6/default

# --- e. Not a message. -------------------------------------------------------
for f in not-a-message not-a-message-binary; do
	mda e.$f "$testdata/messages/$f.eml" --deliver "$tmp/e.$f/%d/%u/" \
		--default "$tmp/e.$f/default/%u/"
	status_is "e. $f.eml: exit 65" 65 e.$f
	absent "e. $f.eml: nothing written" e.$f
done
mda e.empty /dev/null --deliver "$tmp/e.empty/%d/%u/" --default "$tmp/e.empty/default/%u/"
status_is "e. empty input: exit 65" 65 e.empty
absent "e. empty input: nothing written" e.empty
empty_file "e. empty input: nothing on stdout" e.empty.out

# --- f. Temporary failures: 75. -----------------------------------------------
# A held lock: wait --lock-timeout, exit 75, write nothing.
for mode in both dotlock fcntl; do
	mkdir f.$mode
	cp "$refile_data/escape.mbox" f.$mode/administrator
	chmod 600 f.$mode/administrator
	"$lockhold" $mode f.$mode/administrator 5 >f.$mode.hold 2>&1 &
	hold=$!
	wait_line f.$mode.hold locked 10 || bail_out "lockhold $mode did not lock"
	mda f.$mode "$routed" --lock-timeout 1 --deliver "$tmp/f.$mode/%u"
	status_is "f. lock held ($mode): exit 75 (EX_TEMPFAIL)" 75 f.$mode
	same_bytes "f. lock held ($mode): the mbox is byte-identical" \
		"$refile_data/escape.mbox" f.$mode/administrator
	if [ $mode = fcntl ]; then
		want="administrator"
	else
		want="administrator administrator.lock"
	fi
	is "f. lock held ($mode): nothing else made (the holder's dotlock left as it was)" \
		"$want" "$(ls -A f.$mode | tr '\n' ' ' | sed 's/ $//')"
	kill -TERM $hold 2>/dev/null
	wait $hold
done

# A full disk, an I/O error: nothing half-written left, into a Maildir...
for f in write:1:ENOSPC write:1:EIO fsync:1:EIO fsync:2:EIO open:1:ENOSPC; do
	name=f.md.$(echo $f | tr : _)
	REROUTE_FAULT=$f "$reroute_fault" -t "$table" --deliver "$tmp/$name/%d/%u/" - \
		<"$routed" >$name.out 2>$name.err
	rc=$?
	status_is "f. $f into a Maildir: exit 75" 75 $name
	file_has "f. $f into a Maildir: said on stderr" $name.err .
	is "f. $f into a Maildir: no message file left (new/, cur/, tmp/)" "" \
		"$(find $name -type f 2>&1)"
done
# ... and into an mbox.
for f in write:1:ENOSPC write:1:EIO fsync:1:EIO; do
	name=f.mb.$(echo $f | tr : _)
	mkdir $name
	cp "$refile_data/escape.mbox" $name/administrator
	chmod 600 $name/administrator
	REROUTE_FAULT=$f "$reroute_fault" -t "$table" --deliver "$tmp/$name/%u" - \
		<"$routed" >$name.out 2>$name.err
	rc=$?
	status_is "f. $f into an mbox: exit 75" 75 $name
	same_bytes "f. $f into an mbox: the mbox is byte-identical" \
		"$refile_data/escape.mbox" $name/administrator
	is "f. $f into an mbox: no lock or temporary file left" administrator \
		"$(ls -A $name | tr '\n' ' ' | sed 's/ $//')"
done

# The same program without a fault delivers: the failures above were the
# injected ones.
mkdir f.ok
"$reroute_fault" -t "$table" --deliver "$tmp/f.ok/%d/%u/" - <"$routed" >f.ok.out 2>f.ok.err
rc=$?
status_is "f. reroute-fault without REROUTE_FAULT: exit 0" 0 f.ok

plan "$tap_n"
done_testing
