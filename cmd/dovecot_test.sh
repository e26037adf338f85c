#!/bin/sh
# dovecot_test.sh - what reroute refiles, Dovecot reads: a Maildir spool with
# flags is refiled (the built reroute, run as root with --owner nobody:nogroup,
# as from root's crontab) into Maildirs and into mboxes, and a private Dovecot
# reads them with doveadm, as an administrator checks a mail store (see
# "Using reroute with Dovecot" in reroute(1)).
#
# The Dovecot instance runs as root with everything below $tmp (base_dir,
# state_dir, log_path), no protocols (no port), a static userdb, mail_uid
# nobody and mail_location maildir:$tmp/vmail/%d/%n, which is where the
# template $tmp/vmail/%d/%u/ puts a canonical address's mail; doveadm reads
# the mboxes with copies of that dovecot.conf whose mail_location is
# mbox:~/mail:INBOX=$tmp/mail/%d/%n, for the template $tmp/mail/%d/%u.
#
#   a. Maildir destination: for administrator@adatum.com and bob@adatum.com,
#      doveadm fetch sees every message refiled for them, no more (the
#      unrouted one stays in the spool), with the flags of its source file
#      name (S \Seen, R \Answered, F \Flagged, T \Deleted, D \Draft; cur/
#      without flags and new/: none), and its text is the bytes reroute
#      wrote, which are what reroute's filter makes of the source message;
#      doveadm force-resync finds nothing wrong (exit 0, nothing on stderr);
#      the check of reroute(1) and README.md, as written there, lists them;
#   b. mbox destination, --mbox-format=mboxcl2: the same messages, byte for
#      byte (Dovecot honours Content-Length and hides it; it gives the header
#      of a CRLF message with LF line ends); force-resync is
#      clean; every message has the flags it had in the source (reroute
#      writes them as Status and X-Status fields);
#   c. mbox destination, the default mboxrd: every message is there, but
#      Dovecot does not undo the escaping: a body line "From ..." reads
#      ">From ..." (why reroute(1) says to use mboxcl2 with Dovecot);
#   d. Dovecot logs no error or warning, and stops, leaving no process.
#
# It needs root (Dovecot drops to mail_uid) and doveadm (dovecot-core:
# scripts/setup installs it); without them it skips, and so it does when
# REROUTE_SKIP_SERVERS is set.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

PATH=$PATH:/usr/sbin:/sbin
export PATH

[ -z "${REROUTE_SKIP_SERVERS:-}" ] || skip_all "REROUTE_SKIP_SERVERS is set"
[ "$(id -u)" -eq 0 ] || skip_all "not root: a private Dovecot must start as root"
for c in dovecot doveadm; do
	command -v $c >/dev/null 2>&1 ||
		skip_all "no $c: scripts/setup installs dovecot-core"
done
id nobody >/dev/null 2>&1 || skip_all "no user nobody for mail_uid"

dv=$tmp/dv
conf=$dv/dovecot.conf
instance=reroute-${tmp##*.}
group=$(id -gn nobody)
table=$testdata/tables/spec.table

# Dovecot stops on every exit; what is left of the instance (its master and
# the processes titled dovecot-INSTANCE/...) is killed.
dv_pids() {
	_mp=$(cat "$dv/run/master.pid" 2>/dev/null)
	for _p in /proc/[0-9]*; do
		_c=$({ tr '\0' ' ' <"$_p/cmdline"; } 2>/dev/null)
		case $_c in
		"dovecot-$instance/"*) echo "${_p#/proc/}" ;;
		*) [ -n "$_mp" ] && [ "${_p#/proc/}" = "$_mp" ] &&
			[ "${_c#*dovecot -c }" != "$_c" ] && echo "$_mp" ;;
		esac
	done
}

dv_stop() {
	[ -f "$dv/run/master.pid" ] || return 0
	doveadm -c "$conf" stop >/dev/null 2>&1 ||
		kill -TERM "$(cat "$dv/run/master.pid")" 2>/dev/null
	_end=$(($(now_ms) + 10000))
	while [ -n "$(dv_pids)" ] && [ "$(now_ms)" -lt "$_end" ]; do
		sleep 0.05
	done
	_left=$(dv_pids)
	[ -z "$_left" ] || kill -KILL $_left 2>/dev/null
	rm -f "$dv/run/master.pid"
	[ -z "$_left" ]
}
trap 'dv_stop; rm -rf "$tmp"' EXIT

# --- The source spool. ----------------------------------------------------------
# msg N RECIPIENT EOL: a message for RECIPIENT (its Delivered-To; To for
# an unrouted one), lines ending in EOL, with body lines an mbox escapes.
msg() {
	printf '%s\n' \
		"Return-Path: <sender$1@example.org>" \
		"Delivered-To: $2" \
		"Date: Tue, 19 Mar 2024 10:0$1:00 +0000" \
		"From: Sender $1 <sender$1@example.org>" \
		"To: <$2>" \
		"Subject: Message $1 of the Dovecot test" \
		"Message-ID: <m$1.dovecot-test@example.org>" \
		"" \
		"Message $1, for $2." \
		"From the start of a line: an mbox escapes it." \
		">From a quoted line: mboxrd escapes it again." \
		". a dot" \
		"" \
		"-- " \
		"Sender $1" | sed "s/\$/$3/"
}

src=$tmp/src
mkdir -p "$src/cur" "$src/new" "$src/tmp" "$src/.Archive/cur" "$src/.Archive/new" \
	"$src/.Archive/tmp" || bail_out "cannot make $src"
# N PLACE RECIPIENT EOL: PLACE is the file below $src; its info part gives
# the flags.
while read -r n place rcpt eol; do
	[ "$eol" = crlf ] && eol=$cr || eol=
	msg "$n" "$rcpt" "$eol" >"$src/$place"
	echo "$n $place $rcpt" >>"$tmp/src.list"
done <<EOF
1 cur/1710000001.M1P101.mx1.adatum.com:2,S administrator@cpandl.net lf
2 cur/1710000002.M2P102.mx1.adatum.com:2,FS administrator@cpandl.org lf
3 cur/1710000003.M3P103.mx1.adatum.com:2,RS administrator@internal.adatum.com crlf
4 cur/1710000004.M4P104.mx1.adatum.com:2,D administrator@cpandl.net lf
5 cur/1710000005.M5P105.mx1.adatum.com:2,ST bob@cpandl.org lf
6 cur/1710000006.M6P106.mx1.adatum.com:2, bob@cpandl.net lf
7 new/1710000007.M7P107.mx1.adatum.com administrator@cpandl.net lf
8 .Archive/cur/1710000008.M8P108.mx1.adatum.com:2,FRS administrator@adatum.com lf
9 cur/1710000009.M9P109.mx1.adatum.com:2,S someone@example.org lf
EOF
settle "$src"

# The flags Dovecot must show for each routed message, "USER ID FLAGS" with
# FLAGS sorted and joined by commas ("-" for none), and the bytes reroute
# must deliver for it (its filter's output), in $tmp/want/N.
mkdir "$tmp/want"
while read -r n place rcpt; do
	[ "$n" = 9 ] && continue
	user=${rcpt%@*}
	info=
	case $place in *:2,*) info=${place##*:2,} ;; esac
	flags=$(printf '%s' "$info" | awk '{
		n = split("R \\Answered F \\Flagged T \\Deleted S \\Seen D \\Draft", m, " ")
		for (i = 1; i < n; i += 2)
			if (index($0, m[i]))
				print m[i + 1]
	}' | sort | tr '\n' ',' | sed 's/,$//')
	echo "$user <m$n.dovecot-test@example.org> ${flags:--}" >>"$tmp/flags.want"
	rewrite_oracle "$src/$place" "$tmp/want/$n" -t "$table"
done <"$tmp/src.list"

# --- The refiles. -------------------------------------------------------------------
chmod 711 "$tmp" || bail_out "cannot chmod $tmp"
for d in vmail mail mailrd; do
	mkdir "$tmp/$d" && chown "nobody:$group" "$tmp/$d" && chmod 755 "$tmp/$d" ||
		bail_out "cannot make $tmp/$d"
done
for dest in md mb rd; do
	cp -Rp "$src" "$tmp/src.$dest" || bail_out "cannot copy $src"
done
refile() {
	_name=$1
	shift
	"$reroute" -q -t "$table" --owner "nobody:$group" "$@" \
		>"$tmp/$_name.out" 2>"$tmp/$_name.err"
	rc=$?
	status_is "refile into $_name: exit 0" 0 "$_name"
	empty_file "refile into $_name: nothing on stderr" "$tmp/$_name.err"
}
refile maildirs --deliver "$tmp/vmail/%d/%u/" "$tmp/src.md"
refile "mboxes (mboxcl2)" --mbox-format=mboxcl2 --deliver "$tmp/mail/%d/%u" "$tmp/src.mb"
refile "mboxes (mboxrd)" --deliver "$tmp/mailrd/%d/%u" "$tmp/src.rd"
is "the unrouted message stays in the spool, the rest left" \
	"cur/1710000009.M9P109.mx1.adatum.com:2,S" \
	"$(cd "$tmp/src.md" && find . -type f -path '*/cur/*' -o -type f -path '*/new/*' | sed 's|^\./||')"

# --- Dovecot. -----------------------------------------------------------------------
mkdir -p "$dv/run" "$dv/state" "$dv/home" && chown "nobody:$group" "$dv/home" &&
	chmod 755 "$dv" || bail_out "cannot make $dv"
# dv_conf LOCATION: a dovecot.conf with mail_location LOCATION. The daemon
# runs with the first; doveadm reads the others for the mboxes (they share
# base_dir, so it asks the same auth process).
dv_conf() {
	cat <<EOF
base_dir = $dv/run
state_dir = $dv/state
instance_name = $instance
log_path = $dv/dovecot.log
protocols =
ssl = no
mail_location = $1
mail_uid = nobody
mail_gid = $group
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = home=$dv/home/%d/%n
}
EOF
}
dv_conf "maildir:$tmp/vmail/%d/%n" >"$conf"
dv_conf "mbox:~/mail:INBOX=$tmp/mail/%d/%n" >"$dv/mboxcl2.conf"
dv_conf "mbox:~/mailrd:INBOX=$tmp/mailrd/%d/%n" >"$dv/mboxrd.conf"
dovecot -c "$conf" >"$tmp/dovecot.err" 2>&1 ||
	bail_out "dovecot does not start: $(sed 5q "$tmp/dovecot.err") $(tail -n 5 "$dv/dovecot.log" 2>/dev/null)"
_end=$(($(now_ms) + 10000))
until [ -S "$dv/run/auth-userdb" ]; do
	[ "$(now_ms)" -lt "$_end" ] ||
		bail_out "dovecot has no auth-userdb socket: $(tail -n 5 "$dv/dovecot.log")"
	sleep 0.05
done
ok "a private Dovecot runs (no protocols)"

# dadm NAME CONF ARG...: doveadm -c CONF ARG...; stdout to $tmp/NAME.out,
# stderr to $tmp/NAME.err, exit status to $rc.
dadm() {
	_name=$1
	_conf=$2
	shift 2
	doveadm -c "$_conf" "$@" >"$tmp/$_name.out" 2>"$tmp/$_name.err"
	rc=$?
}

# clean DESC NAME: the doveadm run NAME exited 0, with nothing on stderr.
clean() {
	if [ "$rc" = 0 ] && [ ! -s "$tmp/$2.err" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "exit status $rc; stderr:"
		sed 10q "$tmp/$2.err" | diag
	fi
}

# seen NAME CONF USER: "USER ID FLAGS" for each message doveadm -c CONF
# fetches for USER, FLAGS as in flags.want, \Recent left out: to $tmp/NAME.
seen() {
	_n=$1 _u=$3
	dadm "$_n.fetch" "$2" -f tab fetch -u "$_u@adatum.com" 'hdr.message-id flags' all
	awk -F '\t' -v user="$_u" 'NR > 1 {
		n = split($2, f, " ")
		s = ""
		for (i = 1; i <= n; i++)
			if (f[i] != "\\Recent")
				s = s " " f[i]
		print user, $1, s
	}' "$tmp/$_n.fetch.out" | while read -r _user _id _flags; do
		_flags=$(printf '%s\n' $_flags | sort | tr '\n' ',' | sed 's/,$//')
		echo "$_user $_id ${_flags:--}"
	done >>"$tmp/$_n"
}

# text_of NAME CONF USER N: the text (header and body) doveadm -c CONF
# fetches for USER's message N, to $tmp/NAME.
text_of() {
	_n=$1 _u=$3 _m=$4
	dadm "$_n.text" "$2" -f pager fetch -u "$_u@adatum.com" text \
		header message-id "<m$_m.dovecot-test@example.org>"
	if [ "$(head -c 6 "$tmp/$_n.text.out")" = "text:" ]; then
		tail -c +7 "$tmp/$_n.text.out" >"$tmp/$_n"
	else
		cp "$tmp/$_n.text.out" "$tmp/$_n"
	fi
}

users="administrator bob"

# --- a. Maildirs. -----------------------------------------------------------------
: >"$tmp/md.flags"
for u in $users; do
	seen md.flags "$conf" $u
	clean "a. doveadm fetch -u $u@adatum.com 'hdr.message-id flags' all: exit 0, no error" md.flags.fetch
done
same_list "a. Dovecot sees every message refiled into the Maildirs, no more, with its source flags" \
	"$tmp/flags.want" "$tmp/md.flags"
while read -r u id flags; do
	n=${id#<m}
	n=${n%%.*}
	text_of md.$n "$conf" $u $n
	f=$(grep -l -F -e "Message-ID: <m$n.dovecot-test@example.org>" \
		"$tmp/vmail/adatum.com/$u/cur/"* "$tmp/vmail/adatum.com/$u/new/"* 2>/dev/null)
	[ -f "$f" ] || f=/dev/null
	same_bytes "a. message $n: Dovecot's text is what reroute wrote" "$f" "$tmp/md.$n"
	same_bytes "a. message $n: what reroute's filter makes of the source" "$tmp/want/$n" "$tmp/md.$n"
done <"$tmp/flags.want"
for u in $users; do
	dadm md.resync.$u "$conf" force-resync -u "$u@adatum.com" '*'
	clean "a. doveadm force-resync -u $u@adatum.com '*': exit 0, nothing on stderr" md.resync.$u
done
# The check of reroute(1) and README.md, as written there (with -c).
dadm doc "$conf" fetch -u administrator@adatum.com 'flags hdr.subject' all
clean "a. doveadm fetch -u administrator@adatum.com 'flags hdr.subject' all: exit 0, no error" doc
grep '^hdr.subject: ' "$tmp/doc.out" | sort >"$tmp/doc.subjects"
grep '^administrator ' "$tmp/flags.want" | sed 's/.*<m\([0-9]*\)\..*/hdr.subject: Message \1 of the Dovecot test/' |
	sort >"$tmp/doc.want"
same_list "a. ... lists the subjects of administrator's messages" "$tmp/doc.want" "$tmp/doc.subjects"
file_has "a. ... and their flags, \\Flagged \\Seen for :2,FS" "$tmp/doc.out" '^flags: \\Flagged \\Seen'
: >"$tmp/md.flags2"
for u in $users; do
	seen md.flags2 "$conf" $u
done
same_list "a. after force-resync: the same messages and flags" "$tmp/flags.want" "$tmp/md.flags2"

# --- b. mboxes, mboxcl2. ------------------------------------------------------------
: >"$tmp/mb.flags"
for u in $users; do
	seen mb.flags "$dv/mboxcl2.conf" $u
	clean "b. mboxcl2: doveadm fetch -u $u@adatum.com: exit 0, no error" mb.flags.fetch
done
cut -d ' ' -f 1,2 "$tmp/flags.want" >"$tmp/ids.want"
cut -d ' ' -f 1,2 "$tmp/mb.flags" >"$tmp/mb.ids"
same_list "b. mboxcl2: Dovecot sees every message refiled into the mboxes, no more" \
	"$tmp/ids.want" "$tmp/mb.ids"
sort "$tmp/flags.want" >"$tmp/flags.sorted"
sort "$tmp/mb.flags" >"$tmp/mb.flags.sorted"
while read -r u id flags; do
	n=${id#<m}
	n=${n%%.*}
	got=$(awk -v id="$id" '$2 == id { print $3 }' "$tmp/mb.flags.sorted")
	if [ "$flags" = - ]; then
		is "b. mboxcl2: message $n has no flags, as in its source" - "$got"
	else
		is "b. mboxcl2: message $n has its source flags (Status, X-Status)" "$flags" "$got"
	fi
	text_of mb.$n "$dv/mboxcl2.conf" $u $n
	# Dovecot gives the header of a CRLF message in an mbox with LF line
	# ends (the body as it is).
	awk -v cr="$cr" 'h == 0 { if ($0 == "" || $0 == cr) h = 1; sub(cr "$", "") } { print }' \
		"$tmp/want/$n" >"$tmp/want/$n.mbox"
	same_bytes "b. mboxcl2: message $n: Dovecot's text is what reroute's filter makes of the source" \
		"$tmp/want/$n.mbox" "$tmp/mb.$n"
done <"$tmp/flags.sorted"
for u in $users; do
	dadm mb.resync.$u "$dv/mboxcl2.conf" force-resync -u "$u@adatum.com" '*'
	clean "b. mboxcl2: doveadm force-resync -u $u@adatum.com '*': exit 0, nothing on stderr" mb.resync.$u
done

# --- c. mboxes, mboxrd. ---------------------------------------------------------------
: >"$tmp/rd.flags"
for u in $users; do
	seen rd.flags "$dv/mboxrd.conf" $u
	clean "c. mboxrd: doveadm fetch -u $u@adatum.com: exit 0, no error" rd.flags.fetch
done
cut -d ' ' -f 1,2 "$tmp/rd.flags" >"$tmp/rd.ids"
same_list "c. mboxrd: Dovecot sees every message, no more" "$tmp/ids.want" "$tmp/rd.ids"
text_of rd.1 "$dv/mboxrd.conf" administrator 1
sed 's/^>*From />&/' "$tmp/want/1" >"$tmp/want/1.escaped"
same_bytes "c. mboxrd: Dovecot shows the body lines as escaped, >From and >>From" \
	"$tmp/want/1.escaped" "$tmp/rd.1"

# --- d. The log; stopping. ------------------------------------------------------------
file_lacks "d. Dovecot's log has no error or warning" "$dv/dovecot.log" \
	'(Error|Warning|Fatal|Panic):'
if dv_stop; then
	ok "d. Dovecot stops, no process of the instance left"
else
	not_ok "d. Dovecot stops, no process of the instance left"
	diag "processes killed after 10 s"
fi

plan "$tap_n"
done_testing
