#!/bin/sh
# inplace_test.sh - reroute --deliver over the mail store itself: a message
# that already sits in the mailbox of its canonical address stays there,
# untouched, end to end.
#
# A cron job refiling /var/vmail into /var/vmail/%d/%u/ meets every message
# in its own mailbox. Delivering it there again would give it a new name on
# every run (IMAP clients fetch it again, Dovecot's UIDs change) and pull
# what the user filed into a Maildir++ subfolder back into the INBOX.
# Spools and templates are spelt differently on purpose ("//", "./", a
# symlinked parent, relative spools): mailboxes are compared by identity.
#
#   a. a Maildir that is the destination, with a .Archive subfolder: every
#      message keeps its name, bytes, inode and mtime, exit 0, the report
#      says unchanged (real run, -n, --report json), a rerun changes
#      nothing; the subfolder named as the spool itself is left alone too;
#   b. an mbox that is its destination: the file is byte-identical (real
#      run and -n); a message in it for another user is refiled, the one
#      at home stays, as it was stored;
#   c. a message for two users, in one user's Maildir: delivered to the
#      other (the rewritten bytes), kept in the source byte for byte, the
#      report says refile+keep with the other mailbox only (-n, --report
#      json), and a rerun delivers nothing new;
#   d. the same with mboxes.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

cd "$tmp" || bail_out "cannot cd to $tmp"
routes="-r cpandl.net=adatum.com -r cpandl.org=adatum.com -r adatum.com=inbound"
tab=$(printf '\t')

# msg FILE RECIPIENTS N: message N for RECIPIENTS (a Delivered-To value),
# with a body line that an mbox escapes.
msg() {
	mkdir -p "$(dirname "$1")" &&
	printf 'Delivered-To: %s\nFrom: Sender <sender%s@example.org>\nSubject: message %s\nMessage-ID: <%s.inplace@example.org>\n\nbody %s\nFrom the start of a line.\n' \
		"$2" "$3" "$3" "$3" "$3" >"$1"
}

# mbox_msg MBOX RECIPIENTS N: appends message N to MBOX, as an MDA does.
mbox_msg() {
	msg "$tmp/.m" "$2" "$3" && {
		echo "From sender$3@example.org Tue Mar 19 09:14:0$3 2024"
		sed 's/^From />From /' "$tmp/.m"
		echo
	} >>"$1"
}

# lines_is DESC NAME N: NAME's stdout has N lines.
lines_is() {
	is "$1" "$3" "$(wc -l <"$tmp/$2.out" | tr -d ' ')"
}

# snapshot DIR COPY: COPY is a copy of DIR, times and modes kept.
snapshot() {
	rm -rf "$2" && cp -Rp "$1" "$2" || bail_out "cannot copy $1"
}

plan 47

# --- a. A Maildir that is the destination. ----------------------------------
box=a/vmail/adatum.com/administrator
mkdir -p "$box/tmp" "$box/.Archive/tmp" || bail_out "cannot make $box"
msg "$box/new/1710000001.M1P1.host" administrator@cpandl.net 1
msg "$box/cur/1710000002.M2P2.host,S=190:2,S" administrator@adatum.com 2
msg "$box/.Archive/cur/1710000003.M3P3.host:2,RS" administrator@cpandl.org 3
msg "$box/.Archive/new/1710000004.M4P4.host" administrator@cpandl.net 4
mkdir -p "$box/cur" && settle a/vmail && ln -s vmail a/link ||
	bail_out "cannot make the store"
snapshot a/vmail a.want
stat_list a/vmail >a.stat
# The template reaches the store through a symlink, the spool by another
# spelling.
tpl="$tmp/a/link/%d/%u/"
spool=a//vmail/./adatum.com/administrator

run /dev/null a1 $routes --deliver "$tpl" "$spool"
status_is "a. Maildir that is the destination: exit 0" 0 a1
summary_is "a. every message counted unchanged, none refiled" a1 \
	"4 scanned, 0 rewritten, 0 refiled, 4 unchanged, 0 skipped, 0 errors"
same_tree "a. every message keeps its folder, name and bytes (INBOX and .Archive)" \
	a.want a/vmail
stat_list a/vmail >a.stat2
kept "a. every message keeps its inode, mtime and mode" a.stat a.stat2
empty_file "a. nothing on stderr" "$tmp/a1.err"

run /dev/null a2 $routes --deliver "$tpl" "$spool"
status_is "a. rerun: exit 0" 0 a2
summary_is "a. rerun: unchanged again" a2 \
	"4 scanned, 0 rewritten, 0 refiled, 4 unchanged, 0 skipped, 0 errors"
same_tree "a. rerun: the store is as it was" a.want a/vmail
stat_list a/vmail >a.stat3
kept "a. rerun: every message keeps its inode and mtime" a.stat a.stat3

run /dev/null a3 $routes -n --deliver "$tpl" "$spool"
status_is "a. -n: exit 0" 0 a3
lines_is "a. -n: no report line, only the summary" a3 1
file_has "a. -n: the summary says unchanged, not refiled" "$tmp/a3.out" \
	'^reroute: dry run, nothing changed: 4 scanned, 0 rewritten, 0 refiled, 4 unchanged, 0 skipped, 0 errors'

run /dev/null a4 $routes -n --report json --deliver "$tpl" "$spool"
status_is "a. -n --report json: exit 0" 0 a4
lines_is "a. -n --report json: no message object, only the summary" a4 1
file_has "a. -n --report json: the summary says unchanged, not refiled" "$tmp/a4.out" \
	'^\{"type":"summary","scanned":4,"rewritten":0,"refiled":0,"unchanged":4,"skipped":0,"errors":0,'
same_tree "a. dry runs: the store is as it was" a.want a/vmail

# The subfolder as the spool itself: still in its user's mailbox.
run /dev/null a5 $routes --deliver "$tmp/a/vmail/%d/%u/" "$box/.Archive/"
status_is "a. .Archive as the spool: exit 0" 0 a5
summary_is "a. .Archive as the spool: unchanged" a5 \
	"2 scanned, 0 rewritten, 0 refiled, 2 unchanged, 0 skipped, 0 errors"
same_tree "a. .Archive as the spool: the store is as it was" a.want a/vmail

# --- b. An mbox that is its destination. ------------------------------------
mbox=b/mail/adatum.com/administrator
mkdir -p "$(dirname "$mbox")" || bail_out "cannot make b/mail"
mbox_msg "$mbox" administrator@cpandl.net 1 &&
	mbox_msg "$mbox" administrator@adatum.com 2 && settle b/mail ||
	bail_out "cannot make $mbox"
snapshot b/mail b.want

# --lock-timeout: a run that locked the mbox and then waited for its own
# lock to deliver into it would not hang the test.
run /dev/null b1 $routes --lock-timeout 2 --deliver "$tmp/b/mail/%d/%u" "$mbox"
status_is "b. mbox that is its destination: exit 0" 0 b1
summary_is "b. both messages unchanged, none refiled" b1 \
	"2 scanned, 0 rewritten, 0 refiled, 2 unchanged, 0 skipped, 0 errors"
same_bytes "b. the mbox is byte-identical" b.want/adatum.com/administrator "$mbox"
same_tree "b. no other file made (mailbox, journal, lock)" b.want b/mail

run /dev/null b2 $routes -n --deliver "$tmp/b/mail/%d/%u" "./$mbox"
file_has "b. -n: the summary says unchanged, not refiled" "$tmp/b2.out" \
	'^reroute: dry run, nothing changed: 2 scanned, 0 rewritten, 0 refiled, 2 unchanged, 0 skipped, 0 errors'

# One message at home, one for bob: bob's leaves, the other stays as stored.
mbox_msg "$mbox" bob@cpandl.net 3 || bail_out "cannot add to $mbox"
run /dev/null b3 $routes --deliver "$tmp/b/mail/%d/%u" "$mbox"
status_is "b. with a message for bob: exit 0" 0 b3
summary_is "b. with a message for bob: it is refiled, the others unchanged" b3 \
	"3 scanned, 0 rewritten, 1 refiled, 2 unchanged, 0 skipped, 0 errors"
same_bytes "b. with a message for bob: the mbox keeps its own messages, as stored" \
	b.want/adatum.com/administrator "$mbox"
is "b. bob's mbox holds his message" "1 1" \
	"$(grep -c '^From ' b/mail/adatum.com/bob) $(grep -c '^X-Rerouted-From: bob@cpandl.net$' b/mail/adatum.com/bob)"

# --- c. A message for two users, in one user's Maildir. ---------------------
box=c/vmail/adatum.com/administrator
mkdir -p "$box/cur" "$box/tmp" || bail_out "cannot make $box"
msg "$box/new/1710000005.M5P5.host" "administrator@cpandl.net, bob@cpandl.net" 5
settle c/vmail
snapshot c/vmail c.fresh
snapshot "$box" c.want
rewrite_oracle "$box/new/1710000005.M5P5.host" c.bob $routes
bobs=$tmp/c/vmail/adatum.com/bob/

run /dev/null c0 $routes -n --deliver "$tmp/c/vmail/%d/%u/" "$box"
lines_is "c. -n: one report line, one route line and the summary" c0 3
file_has "c. -n: the line says refile+keep to bob's mailbox only" "$tmp/c0.out" \
	"${tab}refile\\+keep $(re_quote "$bobs")\$"
file_has "c. -n: the summary says unchanged, not refiled" "$tmp/c0.out" \
	'^reroute: dry run, nothing changed: 1 scanned, 0 rewritten, 0 refiled, 1 unchanged,'
run /dev/null c1 $routes -n --report json --deliver "$tmp/c/vmail/%d/%u/" "$box"
file_has "c. -n --report json: refile+keep to bob's mailbox only" "$tmp/c1.out" \
	"\"action\":\"refile\\+keep\",\"destination\":\\[\"$(re_quote "$bobs")\"\\]"
same_tree "c. dry runs: nothing written" c.fresh c/vmail

run /dev/null c2 $routes --report json --deliver "$tmp/c/vmail/%d/%u/" "$box"
status_is "c. exit 0" 0 c2
file_has "c. the report says refile+keep to bob's mailbox only" "$tmp/c2.out" \
	"\"action\":\"refile\\+keep\",\"destination\":\\[\"$(re_quote "$bobs")\"\\]"
file_has "c. counted unchanged, not refiled" "$tmp/c2.out" \
	'^\{"type":"summary","scanned":1,"rewritten":0,"refiled":0,"unchanged":1,'
same_tree "c. the source keeps the message, same name and bytes" c.want "$box"
set -- "$bobs"new/*
if [ $# -eq 1 ] && [ -f "$1" ]; then
	same_bytes "c. bob's Maildir holds the rewritten message" c.bob "$1"
else
	not_ok "c. bob's Maildir holds the rewritten message"
	diag "in ${bobs}new: $*"
fi
{
	tree_list c.fresh
	printf '%s\n' "d ./adatum.com/bob" "d ./adatum.com/bob/cur" \
		"d ./adatum.com/bob/new" "f ./adatum.com/bob/new/${1##*/}" \
		"d ./adatum.com/bob/tmp"
} >c.tree.want
tree_list c/vmail >c.tree.got
same_list "c. nothing else delivered" c.tree.want c.tree.got
snapshot c/vmail c.after

run /dev/null c3 $routes --deliver "$tmp/c/vmail/%d/%u/" "$box"
status_is "c. rerun: exit 0" 0 c3
summary_is "c. rerun: unchanged, nothing refiled" c3 \
	"1 scanned, 0 rewritten, 0 refiled, 1 unchanged, 0 skipped, 0 errors"
same_tree "c. rerun: nothing delivered again" c.after c/vmail

# --- d. The same with mboxes. -----------------------------------------------
mbox=d/mail/adatum.com/administrator
mkdir -p "$(dirname "$mbox")" || bail_out "cannot make d/mail"
mbox_msg "$mbox" "administrator@cpandl.net, bob@cpandl.net" 6 && settle d/mail ||
	bail_out "cannot make $mbox"
cp -p "$mbox" d.want || bail_out "cannot copy $mbox"

run /dev/null d1 $routes --lock-timeout 2 --deliver "$tmp/d/mail/%d/%u" "$mbox"
status_is "d. exit 0" 0 d1
same_bytes "d. the source mbox is byte-identical" d.want "$mbox"
is "d. bob's mbox holds the message once" 1 "$(grep -c '^From ' d/mail/adatum.com/bob)"
cp d/mail/adatum.com/bob d.bob || bail_out "cannot copy bob's mbox"
run /dev/null d2 $routes --lock-timeout 2 --deliver "$tmp/d/mail/%d/%u" "$mbox"
summary_is "d. rerun: unchanged, nothing refiled" d2 \
	"1 scanned, 0 rewritten, 0 refiled, 1 unchanged, 0 skipped, 0 errors"
same_bytes "d. rerun: bob's mbox is as it was" d.bob d/mail/adatum.com/bob

done_testing
