#!/bin/sh
# hostile_test.sh - reroute --deliver never writes outside the template's
# directory: hostile local parts and planted symlinks, end to end.
#
# The table is filter.table (cpandl.net -> adatum.com -> inbound), so a
# message to LOCAL@cpandl.net goes to the canonical LOCAL@adatum.com, the
# local part kept from the original address. A spool holds one good message
# (administrator@cpandl.net) and messages whose local part is
# "../../../../x", "../../etc/x", a/b, .hidden, ".hidden", "..", ".", one
# with a control character (\001), one with DEL (\177), an empty one, and
# one message with a good and a hostile recipient. The templates are
# W/top/r/dest/%d/%u/, W/top/r/mail/%u and W/top/r/mail/%a, deep enough
# that every escape would land inside W, where it is looked for.
#
#   a. Maildir source, into Maildirs, mboxes by %u and by %a; and an mbox
#      source: each hostile message is refused, stays in the source byte for
#      byte and is reported with its place (file; mbox file and byte
#      offset); the good one is delivered; exit 65; nothing in W changes
#      outside the destination root and the source (find -newer), and
#      W/outside is as it was;
#   b. symlinks planted where a mailbox would be: the domain directory, the
#      Maildir, its new/ and tmp/, the mbox (to a file, dangling): refused,
#      not followed; the message stays and is reported; exit 65;
#   c. hostile rules given with -r: refused as a table error (exit 65,
#      nothing touched) or the message refused (exit 65): either way
#      nothing escapes; a hostile domain reached through a wildcard rule.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"

# hmsg FILE RECIPIENT: a message to RECIPIENT (Delivered-To and To).
hmsg() {
	{
		printf 'Return-Path: <someone@example.org>\n'
		printf 'Delivered-To: %s\n' "$2"
		printf 'Date: Wed, 20 Mar 2024 10:00:00 +0000\n'
		printf 'From: Someone Else <someone@example.org>\n'
		printf 'To: %s\n' "$2"
		printf 'Subject: a message for %s\n' "${1##*/}"
		printf 'Message-ID: <%s@example.org>\n\n' "${1##*/}"
		printf 'Hello.\n'
	} >"$1"
}

# The hostile messages: TAG RECIPIENT, one a line (TAB-separated).
tab=$(printf '\t')
{
	printf 'dotdot\t"../../../../x"@cpandl.net\n'
	printf 'etc\t"../../etc/x"@cpandl.net\n'
	printf 'slash\ta/b@cpandl.net\n'
	printf 'dotfile\t.hidden@cpandl.net\n'
	printf 'qdotfile\t".hidden"@cpandl.net\n'
	printf 'dotdotonly\t".."@cpandl.net\n'
	printf 'dotonly\t"."@cpandl.net\n'
	printf 'control\t"a\001b"@cpandl.net\n'
	printf 'del\t"a\177b"@cpandl.net\n'
	printf 'empty\t""@cpandl.net\n'
	printf 'mixed\tadministrator@cpandl.net, "../x"@cpandl.net\n'
} >hostile.list

mkdir msgs
hmsg msgs/good administrator@cpandl.net
rewrite_oracle msgs/good good.want -t "$table"
i=0
while IFS=$tab read -r tag rcpt; do
	i=$((i + 1))
	hmsg "msgs/$tag" "$rcpt"
done <hostile.list
tags=$(cut -f 1 hostile.list)

# md_source DIR: DIR is a Maildir with every message, in new/, named
# 1711000NNN.M<N>P1.mx1.adatum.com (the good one first).
md_source() {
	mkdir -p "$1/cur" "$1/new" "$1/tmp" || return 1
	_n=0
	for _t in good $tags; do
		_n=$((_n + 1))
		cp "msgs/$_t" "$1/new/$((1711000000 + _n)).M${_n}P1.mx1.adatum.com" || return 1
	done
	settle "$1"
}

# name_of TAG: the file name md_source gives the message TAG.
name_of() {
	_n=0
	for _t in good $tags; do
		_n=$((_n + 1))
		[ "$_t" = "$1" ] && echo "$((1711000000 + _n)).M${_n}P1.mx1.adatum.com"
	done
}

# mb_source FILE: FILE is an mbox with every message (the good one first);
# FILE.offsets gets "TAG OFFSET" for each.
mb_source() {
	: >"$1"
	: >"$1.offsets"
	for _t in good $tags; do
		echo "$_t $(wc -c <"$1" | tr -d ' ')" >>"$1.offsets"
		{
			echo "From someone@example.org Wed Mar 20 10:00:00 2024"
			cat "msgs/$_t"
			echo
		} >>"$1"
	done
	chmod 600 "$1"
}

# world W: W/outside (a directory with a Maildir, an mbox and a file, as
# things an escape could hit), W/top/r/dest and W/top/r/mail (the
# destination roots, made), all with an mtime in the past; W.outside gets
# what outside holds. The caller makes its source in W/src, then touches
# W.marker just before the run (mark).
world() {
	mkdir -p "$1/outside/Maildir/cur" "$1/outside/Maildir/new" \
		"$1/outside/Maildir/tmp" "$1/outside/new" "$1/outside/tmp" \
		"$1/top/r/dest" "$1/top/r/mail" || bail_out "cannot make $1"
	printf 'do not touch\n' >"$1/outside/file"
	cp "$refile_data/escape.mbox" "$1/outside/mbox"
	settle "$1" || bail_out "cannot settle $1"
	outside_list "$1" >"$1.outside"
}

# mark W: W.marker, the time the run begins.
mark() {
	sleep 0.01
	touch "$1.marker"
	sleep 0.01
}

# outside_list W: every entry of W/outside with, for files, their size,
# mode, mtime and MD5; symlinks with their targets.
outside_list() {
	(cd "$1/outside" && find . -exec stat -c '%n %F %s %a %Y %N' {} + | sort &&
	find . -type f -exec md5sum {} + | sort -k 2)
}

# escaped_to W ALLOWED...: the entries of W, other than W itself and what
# is below an ALLOWED path (W/top/r/dest, W/src, ...), changed since
# W.marker, one a line.
escaped_to() {
	_w=$1
	shift
	find "$_w" -newer "$_w.marker" ! -path "$_w" | while read -r _p; do
		_ok=
		for _a; do
			case $_p in "$_a" | "$_a"/*) _ok=1 ;; esac
		done
		[ -n "$_ok" ] || echo "$_p"
	done
}

# contained DESC W ALLOWED...: two tests: nothing changed in W outside
# ALLOWED; W/outside as it was.
contained() {
	_desc=$1
	shift
	escaped_to "$@" >"$tmp/.escaped"
	if [ ! -s "$tmp/.escaped" ]; then
		ok "$_desc: nothing written outside the destination root and the source"
	else
		not_ok "$_desc: nothing written outside the destination root and the source"
		diag "changed or made since the run began:"
		sed 10q "$tmp/.escaped" | diag
	fi
	outside_list "$1" >"$1.outside2"
	if cmp -s "$1.outside" "$1.outside2"; then
		ok "$_desc: $1/outside is as it was"
	else
		not_ok "$_desc: $1/outside is as it was"
		diff "$1.outside" "$1.outside2" | grep '^[<>]' | sed 10q | diag
	fi
}

# stayed DESC DIR TAG...: each message TAG is in the Maildir DIR's new/
# under its name, byte for byte.
stayed() {
	_desc=$1
	_dir=$2
	shift 2
	_bad=
	for _t; do
		cmp -s "msgs/$_t" "$_dir/new/$(name_of "$_t")" || _bad="$_bad $_t"
	done
	is "$_desc" "" "$_bad"
}

# reported DESC ERR TEXT...: each TEXT (a fixed string) is on a line of the
# file ERR.
reported() {
	_desc=$1
	_err=$2
	shift 2
	_bad=
	for _s; do
		grep -q -F -e "$_s" "$_err" || _bad="$_bad $_s"
	done
	if [ -z "$_bad" ]; then
		ok "$_desc"
	else
		not_ok "$_desc"
		diag "not named on stderr:$_bad"
		diag "stderr:"
		sed 15q "$_err" | diag
	fi
}

# has_good DESC DIR: the good message, rewritten, is in the Maildir DIR.
has_good() {
	_sum=$(md5sum <good.want | cut -c 1-32)
	if maildir_digest "$2" | grep -q " $_sum\$"; then
		ok "$1"
	else
		not_ok "$1"
		diag "not in $2; it holds:"
		maildir_digest "$2" 2>&1 | sed 5q | diag
	fi
}

# --- a. Hostile local parts. ---------------------------------------------------
n_tags=$(echo $tags | wc -w)
for kind in maildir mbox-u mbox-a; do
	W=$tmp/a.$kind
	world "$W"
	md_source "$W/src" || bail_out "cannot make $W/src"
	mark "$W"
	case $kind in
	maildir) tpl="$W/top/r/dest/%d/%u/" ;;
	mbox-u) tpl="$W/top/r/mail/%u" ;;
	mbox-a) tpl="$W/top/r/mail/%a" ;;
	esac
	run /dev/null a.$kind -t "$table" --deliver "$tpl" "a.$kind/src"
	status_is "a. $kind: exit 65" 65 a.$kind
	stayed "a. $kind: every hostile message stays in the source, byte for byte" \
		"$W/src" $tags
	is "a. $kind: the good message is refiled (gone from the source)" "" \
		"$(ls "$W/src/new" | grep -F -x -e "$(name_of good)")"
	case $kind in
	maildir)
		has_good "a. $kind: the good message is delivered" \
			"$W/top/r/dest/adatum.com/administrator" ;;
	mbox-u)
		check "a. $kind: the good message is delivered" \
			grep -q -F 'Message-ID: <good@example.org>' "$W/top/r/mail/administrator" ;;
	mbox-a)
		check "a. $kind: the good message is delivered" \
			grep -q -F 'Message-ID: <good@example.org>' "$W/top/r/mail/administrator@adatum.com" ;;
	esac
	reported "a. $kind: each hostile message is reported with its file" \
		a.$kind.err $(for t in $tags; do name_of $t; done)
	contained "a. $kind" "$W" "$W/top/r/dest" "$W/top/r/mail" "$W/src"
	is "a. $kind: nothing left in tmp/, no lock" "" \
		"$(leftovers "$W/top/r" "$W/src" | tr '\n' ' ')"
done

# An mbox source: places are the mbox and the byte offset.
W=$tmp/a.mboxsrc
world "$W"
mkdir "$W/src"
mb_source "$W/src/in.mbox"
mark "$W"
run /dev/null a.mboxsrc -t "$table" --deliver "$W/top/r/dest/%d/%u/" a.mboxsrc/src/in.mbox
status_is "a. mbox source: exit 65" 65 a.mboxsrc
: >a.mboxsrc.want
for t in $tags; do
	echo "From someone@example.org Wed Mar 20 10:00:00 2024" >>a.mboxsrc.want
	cat "msgs/$t" >>a.mboxsrc.want
	echo >>a.mboxsrc.want
done
same_bytes "a. mbox source: every hostile message stays, as stored; the good one is gone" \
	a.mboxsrc.want "$W/src/in.mbox"
has_good "a. mbox source: the good message is delivered" \
	"$W/top/r/dest/adatum.com/administrator"
bad=
for t in $tags; do
	o=$(awk -v t="$t" '$1 == t { print $2 }' "$W/src/in.mbox.offsets")
	grep -E -q -e "in\\.mbox.*byte $o([^0-9]|\$)" a.mboxsrc.err || bad="$bad $t@$o"
done
if [ -z "$bad" ]; then
	ok "a. mbox source: each hostile message is reported with the mbox and its byte offset"
else
	not_ok "a. mbox source: each hostile message is reported with the mbox and its byte offset"
	diag "not reported (tag@offset):$bad"
	sed 15q a.mboxsrc.err | diag
fi
contained "a. mbox source" "$W" "$W/top/r/dest" "$W/src"

# --- b. Planted symlinks. --------------------------------------------------------
# symlink_case NAME TEMPLATE-KIND SETUP: a world with one good message in
# its source, SETUP run in W/top/r to plant the link; then the run.
symlink_case() {
	W=$tmp/b.$1
	world "$W"
	mkdir -p "$W/src/cur" "$W/src/new" "$W/src/tmp"
	cp msgs/good "$W/src/new/$(name_of good)"
	settle "$W/src"
	(cd "$W/top/r" && eval "$3") || bail_out "cannot plant the link for $1"
	mark "$W"
	if [ "$2" = maildir ]; then
		tpl="$W/top/r/dest/%d/%u/"
	else
		tpl="$W/top/r/mail/%u"
	fi
	run /dev/null b.$1 -t "$table" --deliver "$tpl" "b.$1/src"
	status_is "b. $1: exit 65" 65 b.$1
	stayed "b. $1: the message stays in the source, byte for byte" "$W/src" good
	reported "b. $1: it is reported with its file" b.$1.err "$(name_of good)"
	contained "b. $1" "$W" "$W/top/r/dest" "$W/top/r/mail" "$W/src"
}

symlink_case domain-dir maildir 'ln -s "$W/outside" dest/adatum.com'
symlink_case maildir maildir \
	'mkdir dest/adatum.com && ln -s "$W/outside/Maildir" dest/adatum.com/administrator'
symlink_case maildir-new maildir \
	'mkdir -p dest/adatum.com/administrator/cur dest/adatum.com/administrator/tmp &&
	 ln -s "$W/outside/new" dest/adatum.com/administrator/new'
symlink_case maildir-tmp maildir \
	'mkdir -p dest/adatum.com/administrator/cur dest/adatum.com/administrator/new &&
	 ln -s "$W/outside/tmp" dest/adatum.com/administrator/tmp'
symlink_case mbox-file mbox 'ln -s "$W/outside/mbox" mail/administrator'
symlink_case mbox-dangling mbox 'ln -s "$W/outside/new-mbox" mail/administrator'
check "b. mbox-dangling: the link's target is not made" test ! -e "$W/outside/new-mbox"

# --- c. Hostile rules. -----------------------------------------------------------
# An address rule whose target's local part climbs out: a table error, or
# the message refused; exit 65 and nothing escapes either way.
for rule in 'evil@cpandl.net=../../etc/x@adatum.com' 'evil@cpandl.net=a/b@adatum.com' \
    'evil@cpandl.net=.evil@adatum.com'; do
	W=$tmp/c.$(echo "$rule" | cksum | cut -d ' ' -f 1)
	world "$W"
	mkdir -p "$W/src/cur" "$W/src/new" "$W/src/tmp"
	hmsg "$W/src/new/1711000100.M100P1.mx1.adatum.com" evil@cpandl.net
	cp "$W/src/new/1711000100.M100P1.mx1.adatum.com" "$W.evil"
	settle "$W/src"
	mark "$W"
	run /dev/null c -t "$table" -r "$rule" --deliver "$W/top/r/dest/%d/%u/" "$W/src"
	status_is "c. -r '$rule': exit 65" 65 c
	same_bytes "c. -r '$rule': the message stays in the source" "$W.evil" \
		"$W/src/new/1711000100.M100P1.mx1.adatum.com"
	contained "c. -r '$rule'" "$W" "$W/top/r/dest" "$W/src"
done

# A domain kept through a wildcard rule to inbound: x@a/b.cpandl.net or
# x@..cpandl.net is not a domain a path may be made of. Not routed (exit
# 0) or refused (exit 65): either way it stays and nothing escapes.
for rcpt in 'x@a/b.cpandl.net' 'x@..cpandl.net' 'x@.cpandl.net'; do
	W=$tmp/c.$(echo "$rcpt" | cksum | cut -d ' ' -f 1)
	world "$W"
	mkdir -p "$W/src/cur" "$W/src/new" "$W/src/tmp"
	hmsg "$W/src/new/1711000101.M101P1.mx1.adatum.com" "$rcpt"
	cp "$W/src/new/1711000101.M101P1.mx1.adatum.com" "$W.evil"
	settle "$W/src"
	mark "$W"
	run /dev/null c -t "$table" -r .cpandl.net=inbound --deliver "$W/top/r/dest/%d/%u/" "$W/src"
	check "c. $rcpt through .cpandl.net=inbound: exit 0 (not routed) or 65 (refused): $rc" \
		test "$rc" = 0 -o "$rc" = 65
	same_bytes "c. $rcpt: the message stays in the source" "$W.evil" \
		"$W/src/new/1711000101.M101P1.mx1.adatum.com"
	contained "c. $rcpt" "$W" "$W/top/r/dest" "$W/src"
done

plan "$tap_n"
done_testing
