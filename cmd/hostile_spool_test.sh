#!/bin/sh
# hostile_spool_test.sh - spools that are large, odd or unfriendly: what
# reroute says, its exit status, and that nothing is damaged.
#
# A routed message here is "Delivered-To: NAME@cpandl.net" first, then
# whatever the case needs; through filter.table it must come out as
# "X-Rerouted-From: NAME@cpandl.net", "Delivered-To: NAME@adatum.com" and
# every other byte as it was (built here, not asked of reroute).
#
#   a. a 1 MB header line, and 100,000 header fields (in a few seconds),
#      in a Maildir and in an mbox: rewritten, exit 0;
#   b. a 200 MB message, written by a streaming generator: a Maildir
#      rewrite, an mbox rewrite (a small message after it), a refile from
#      an mbox into a Maildir, byte for byte; peak memory (GNU time's %M,
#      when /usr/bin/time is there) stays near the message's size: at most
#      1.5 times it (+64 MB) in place, 3.5 times (+64 MB) for a refile, which
#      holds the mbox window, the rewritten copy and the unescaped copy.
#      Under AddressSanitizer the sizes are not checked (its allocator keeps
#      freed memory in quarantine), the bytes are;
#   c. NUL bytes in a header field and in the body: rewritten, the NULs
#      kept; a NUL inside the routed field: reported (it does not parse),
#      left byte for byte, exit 65;
#   d. a message that is only a header (no blank line, no body), with and
#      without a final newline: rewritten, exit 0;
#   e. a Maildir file moved away by a MUA between reroute's readdir and its
#      open (cmd/reroute-fault's REROUTE_FAULT=move:NAME really moves it to
#      cur/NAME:2,S at that moment): skipped quietly (nothing on stderr,
#      exit 0), and met again in cur/, rewritten or refiled once;
#   f. spools that are a FIFO with no writer, a symlink, a device: refused
#      at once as not a spool (exit 66, under timeout: nothing blocks); the
#      same inside a Maildir: a FIFO or a device skipped as not a regular
#      file (65), a symlink reported and not followed (74); an mbox
#      destination that is a FIFO: refused, the message stays (65); every
#      file as it was;
#   g. unreadable files: a Maildir message and an mbox spool that cannot be
#      opened (REROUTE_FAULT=open:=NAME:EACCES; and for real, mode 000 and
#      run as nobody with setpriv, when the test runs as root, or as the
#      user it runs as otherwise): reported with the path, exit 74, every
#      file as it was, the readable messages done.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"
from='From someone@example.org Wed Mar 20 10:00:00 2024'
asan=
if nm "$reroute" 2>/dev/null | grep -q __asan_init ||
    ldd "$reroute" 2>/dev/null | grep -q libasan; then
	asan=yes
fi

# head_of NAME: the routed header start of message NAME, as stored.
head_of() {
	printf 'Delivered-To: %s@cpandl.net\n' "$1"
}

# want_head NAME: what reroute makes of it.
want_head() {
	printf 'X-Rerouted-From: %s@cpandl.net\nDelivered-To: %s@adatum.com\n' "$1" "$1"
}

# maildir DIR: an empty Maildir.
maildir() {
	mkdir -p "$1/cur" "$1/new" "$1/tmp" || bail_out "cannot make $1"
}

# snapshot DIR: every entry below DIR with its type, and the MD5 of files.
snapshot() {
	(cd "$1" && find . -exec stat -c '%n %F %s' {} + | sort &&
	find . -type f -exec md5sum {} + | sort -k 2)
}

# rss_ok DESC FILE LIMIT_KB: FILE's last line is GNU time's %M (KB); ok when
# it is at most LIMIT_KB. Skipped without GNU time and under ASan.
rss_ok() {
	if [ -n "$asan" ]; then
		skip_test "$1 (AddressSanitizer build: its quarantine keeps freed memory)"
	elif [ -z "$gnutime" ]; then
		skip_test "$1 (no /usr/bin/time)"
	else
		_kb=$(tail -n 1 "$2")
		check "$1: $((_kb / 1024)) MB, at most $(($3 / 1024)) MB" test "$_kb" -le "$3"
	fi
}
gnutime=
if [ -x /usr/bin/time ] && /usr/bin/time -f %M true 2>/dev/null >/dev/null; then
	gnutime=/usr/bin/time
fi

# timed NAME ARG...: reroute ARG... with NAME.out, NAME.err, $rc; peak RSS
# in NAME.rss (GNU time) when there is GNU time.
timed() {
	_n=$1
	shift
	if [ -n "$gnutime" ]; then
		"$gnutime" -o "$_n.rss" -f %M "$reroute" "$@" </dev/null >"$_n.out" 2>"$_n.err"
	else
		"$reroute" "$@" </dev/null >"$_n.out" 2>"$_n.err"
	fi
	rc=$?
}

# --- a. Long lines, many fields ---------------------------------------------
awk 'BEGIN { s = "y"; while (length(s) < 1048576) s = s s; printf "X-Long: %s\n", s }' \
	>long.field
awk 'BEGIN { for (i = 1; i <= 100000; i++) printf "X-Filler-%d: value %d\n", i, i }' \
	>many.fields
for c in long many; do
	{
		head_of "$c"
		cat "$c.fields" 2>/dev/null || cat "$c.field"
		printf 'To: %s@cpandl.net\nSubject: %s\n\nThe body.\n' "$c" "$c"
	} >"$c.eml"
	{
		want_head "$c"
		sed 1d "$c.eml"
	} >"$c.want"
	maildir "a.$c/md"
	cp "$c.eml" "a.$c/md/cur/1711000001.M1P1.host:2,S"
	{ echo "$from"; cat "$c.eml"; echo; } >"a.$c/m.mbox"
	start=$(now_ms)
	run /dev/null "a.$c" -q -t "$table" "a.$c/md" "a.$c/m.mbox"
	ms=$(($(now_ms) - start))
	status_is "a. $c: exit 0" 0 "a.$c"
	empty_file "a. $c: nothing said" "$tmp/a.$c.err"
	same_bytes "a. $c: the Maildir message is rewritten, every other byte kept" \
		"$c.want" "a.$c/md/cur/1711000001.M1P1.host:2,S"
	{ echo "$from"; cat "$c.want"; echo; } >"$c.mbox.want"
	same_bytes "a. $c: the mbox message is rewritten, every other byte kept" \
		"$c.mbox.want" "a.$c/m.mbox"
	check "a. $c: in reasonable time (${ms} ms, at most 20 s)" test "$ms" -le 20000
done

# --- b. A 200 MB message ------------------------------------------------------
line='0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 the body of a large message'
# 200 MB of body: 2,000,000 lines of 105 bytes.
yes "$line" | head -n 2000000 >big.body || bail_out "cannot write the body"
size=$(wc -c <big.body | tr -d ' ')
{ head_of big; printf 'To: big@cpandl.net\nSubject: big\n\n'; cat big.body; } >big.eml
{ want_head big; printf 'To: big@cpandl.net\nSubject: big\n\n'; cat big.body; } >big.want
rm -f big.body
small() {
	printf 'Delivered-To: small@cpandl.net\nSubject: small\n\nsmall\n'
}
small_want() {
	printf 'X-Rerouted-From: small@cpandl.net\nDelivered-To: small@adatum.com\nSubject: small\n\nsmall\n'
}

maildir b.md
cp big.eml b.md/new/1711000002.M2P1.host
timed b.md -q -t "$table" b.md
status_is "b. 200 MB in a Maildir: exit 0" 0 b.md
check "b. 200 MB in a Maildir: rewritten byte for byte" cmp -s big.want b.md/new/1711000002.M2P1.host
rss_ok "b. 200 MB in a Maildir: peak memory" b.md.rss $((size * 3 / 2 / 1024 + 65536))
rm -rf b.md

mkdir b.mb
{ echo "$from"; cat big.eml; echo; echo "$from"; small; echo; } >b.mb/m.mbox
timed b.mb -q -t "$table" b.mb/m.mbox
status_is "b. 200 MB in an mbox, a small message after it: exit 0" 0 b.mb
{ echo "$from"; cat big.want; echo; echo "$from"; small_want; echo; } | cmp -s - b.mb/m.mbox
check "b. 200 MB in an mbox: both rewritten byte for byte" test $? = 0
rss_ok "b. 200 MB in an mbox: peak memory" b.mb.rss $((size * 3 / 2 / 1024 + 65536))
rm -rf b.mb

mkdir b.rf
{ echo "$from"; cat big.eml; echo; } >b.rf/m.mbox
timed b.rf -q -t "$table" --deliver "$tmp/b.rf/dest/%d/%u/" b.rf/m.mbox
status_is "b. 200 MB refiled from an mbox into a Maildir: exit 0" 0 b.rf
got=$(find b.rf/dest/adatum.com/big/new -type f)
check "b. 200 MB refiled: delivered byte for byte, gone from the mbox" \
	test -n "$got" -a ! -s b.rf/m.mbox
[ -n "$got" ] && check "b. 200 MB refiled: the delivered bytes" cmp -s big.want $got
rss_ok "b. 200 MB refiled: peak memory" b.rf.rss $((size * 7 / 2 / 1024 + 65536))
rm -rf b.rf big.eml big.want

# --- c. NUL bytes ------------------------------------------------------------
{
	head_of nul
	printf 'Subject: a \000 in the subject\nTo: nul@cpandl.net\n\nA \000 in the body.\n\000\n'
} >nul.eml
{ want_head nul; sed 1d nul.eml; } >nul.want
{
	printf 'Delivered-To: bad@cpandl.net\000x\nSubject: a NUL in the routed field\n\nbody\n'
} >nulfield.eml
maildir c/md
cp nul.eml c/md/cur/1711000003.M3P1.host:2,S
cp nulfield.eml c/md/cur/1711000004.M4P1.host:2,S
{ echo "$from"; cat nul.eml; echo; echo "$from"; cat nulfield.eml; echo; } >c/m.mbox
run /dev/null c -q -t "$table" c/md c/m.mbox
status_is "c. NUL bytes: exit 65 (the field with a NUL does not parse)" 65 c
same_bytes "c. NULs in a field and the body: the Maildir message rewritten, the NULs kept" \
	nul.want c/md/cur/1711000003.M3P1.host:2,S
same_bytes "c. a NUL in the routed field: the Maildir message left byte for byte" \
	nulfield.eml c/md/cur/1711000004.M4P1.host:2,S
{ echo "$from"; cat nul.want; echo; echo "$from"; cat nulfield.eml; echo; } >c.mbox.want
same_bytes "c. NUL bytes in an mbox: the first rewritten, the second left" c.mbox.want c/m.mbox
file_has "c. the field with a NUL is reported (Maildir)" c.err \
	'1711000004\.M4P1\.host:2,S: Delivered-To field .*does not parse'
off=$(($(wc -c <nul.eml) + ${#from} + 2))
file_has "c. the field with a NUL is reported (mbox at byte $off)" c.err "m\\.mbox at byte $off: "

# --- d. Only a header -------------------------------------------------------------
printf 'Delivered-To: hdr@cpandl.net\nSubject: only a header\nTo: hdr@cpandl.net\n' >hdr.eml
printf 'Delivered-To: hdr@cpandl.net\nSubject: only a header\nTo: hdr@cpandl.net' >hdrnonl.eml
maildir d/md
cp hdr.eml d/md/new/1711000005.M5P1.host
cp hdrnonl.eml d/md/new/1711000006.M6P1.host
{ echo "$from"; cat hdr.eml; echo "$from"; small; echo; } >d/m.mbox
run /dev/null d -q -t "$table" d/md d/m.mbox
status_is "d. only a header: exit 0" 0 d
empty_file "d. only a header: nothing said" "$tmp/d.err"
{ want_head hdr; sed 1d hdr.eml; } >hdr.want
{ want_head hdr; sed 1d hdrnonl.eml; } >hdrnonl.want
same_bytes "d. only a header, with a final newline: rewritten" hdr.want d/md/new/1711000005.M5P1.host
same_bytes "d. only a header, no final newline: rewritten, still none" hdrnonl.want \
	d/md/new/1711000006.M6P1.host
{ echo "$from"; cat hdr.want; echo "$from"; small_want; echo; } >d.mbox.want
same_bytes "d. only a header in an mbox, right before the next From_ line: rewritten" \
	d.mbox.want d/m.mbox

# --- e. A Maildir file moved between readdir and open ------------------------------
for m in 7 8 9; do
	{ head_of "u$m"; printf 'Subject: %s\n\nBody %s.\n' "$m" "$m"; } >"e.$m.eml"
done
for mode in rewrite refile; do
	maildir "e.$mode"
	for m in 7 8 9; do
		cp "e.$m.eml" "e.$mode/new/171100000$m.M${m}P1.host"
	done
	if [ $mode = rewrite ]; then
		set --
	else
		set -- --deliver "$tmp/e.dest/%d/%u/"
	fi
	REROUTE_FAULT=move:1711000008.M8P1.host "$reroute_fault" -t "$table" "$@" "e.$mode" \
		>"e.$mode.out" 2>"e.$mode.err"
	rc=$?
	status_is "e. $mode: a message moved to cur/ between readdir and open: exit 0" 0 "e.$mode"
	empty_file "e. $mode: nothing said on stderr" "$tmp/e.$mode.err"
	file_has "e. $mode: the summary counts 3 messages (the moved one met again in cur/)" \
		"e.$mode.out" "^reroute: 3 scanned, "
	if [ $mode = rewrite ]; then
		{ want_head u8; sed 1d e.8.eml; } >e.8.want
		same_bytes "e. rewrite: the moved message is rewritten once, under its new name" \
			e.8.want "e.rewrite/cur/1711000008.M8P1.host:2,S"
		is "e. rewrite: and nowhere else" \
			"cur/1711000008.M8P1.host:2,S new/1711000007.M7P1.host new/1711000009.M9P1.host" \
			"$(cd e.rewrite && find cur new -type f | sort | tr '\n' ' ' | sed 's/ $//')"
	else
		is "e. refile: each message delivered once, the source empty" "u7 u8 u9 ." \
			"$(find e.dest/adatum.com -path '*/cur/*' -o -path '*/new/*' -type f |
			sed 's|e.dest/adatum.com/\([^/]*\)/.*|\1|' | sort | tr '\n' ' ')$(
			find e.refile/cur e.refile/new -type f | sed 1q)."
	fi
done

# --- f. FIFOs, symlinks, devices ----------------------------------------------------
mkdir f
mkfifo f/fifo || bail_out "mkfifo failed"
printf '%s\n' "$from" >f/target.mbox
head_of sym >>f/target.mbox
ln -s target.mbox f/link.mbox
maildir f/linked-md
ln -s linked-md f/link.md
dev=/dev/null
if [ "$(id -u)" = 0 ] && mknod f/dev c 1 3 2>/dev/null; then
	dev=f/dev
fi
snapshot f >f.before
for s in f/fifo f/link.mbox f/link.md "$dev"; do
	timeout 20 "$reroute" -t "$table" "$s" </dev/null >f.one.out 2>f.one.err
	rc=$?
	status_is "f. $s as a spool: exit 66 at once (not 124: nothing blocks)" 66 f.one
	file_has "f. $s: reported as not a spool" f.one.err "^reroute: $(re_quote "$s"): not a spool: "
done
maildir f/md
{ head_of ok; printf 'Subject: ok\n\nok\n'; } >f/md/new/1711000010.M10P1.host
mkfifo f/md/new/1711000011.M11P1.host
ln -s ../../target.mbox f/md/new/1711000012.M12P1.host
if [ "$dev" = f/dev ]; then
	mknod f/md/new/1711000013.M13P1.host c 1 3
fi
snapshot f >f.before
timeout 20 "$reroute" -t "$table" f/md </dev/null >f.md.out 2>f.md.err
rc=$?
status_is "f. a FIFO, a symlink (and a device) in a Maildir: exit 74 (the symlink), at once" 74 f.md
file_has "f. the FIFO is skipped as not a regular file" f.md.err \
	'1711000011\.M11P1\.host: not a regular file'
file_has "f. the symlink is reported, not followed" f.md.err \
	'cannot open f/md/new/1711000012\.M12P1\.host: Too many levels of symbolic links'
if [ "$dev" = f/dev ]; then
	file_has "f. the device is skipped as not a regular file" f.md.err \
		'1711000013\.M13P1\.host: not a regular file'
else
	skip_test "f. the device (mknod needs root)"
fi
snapshot f >f.after
diff f.before f.after | grep '^[<>]' | grep -v -e 1711000010 -e ' ./md/tmp' >f.diff
is "f. every other file as it was (the good message rewritten)" "" "$(cat f.diff)"
{ want_head ok; printf 'Subject: ok\n\nok\n'; } >f.ok.want
same_bytes "f. the good message is rewritten" f.ok.want f/md/new/1711000010.M10P1.host
mkdir -p f.dest
mkfifo f.dest/fifo
maildir f/src
{ head_of fifo; printf 'Subject: to a FIFO\n\nfifo\n'; } >f/src/new/1711000014.M14P1.host
cp f/src/new/1711000014.M14P1.host f.fifo.eml
timeout 20 "$reroute" -t "$table" --deliver "$tmp/f.dest/%u" f/src </dev/null >f.dst.out 2>f.dst.err
rc=$?
status_is "f. an mbox destination that is a FIFO: refused at once, exit 65" 65 f.dst
same_bytes "f. the message stays in the source" f.fifo.eml f/src/new/1711000014.M14P1.host
check "f. the FIFO is still a FIFO" test -p f.dest/fifo

# --- g. Unreadable files ------------------------------------------------------------
maildir g/md
for m in 15 16; do
	{ head_of "u$m"; printf 'Subject: %s\n\nBody %s.\n' "$m" "$m"; } >"g/md/cur/17110000$m.M${m}P1.host:2,S"
done
{ echo "$from"; head_of mb; printf 'Subject: mb\n\nmb\n'; echo; } >g/m.mbox
cp g/md/cur/1711000016.M16P1.host:2,S g.16.want.src
{ want_head u15; sed 1d g/md/cur/1711000015.M15P1.host:2,S; } >g.15.want
cp -Rp g g.orig
for name in 1711000016.M16P1.host:2,S m.mbox; do
	rm -rf g && cp -Rp g.orig g
	REROUTE_FAULT="open:=$name:EACCES" "$reroute_fault" -t "$table" g/md g/m.mbox \
		>g.out 2>g.err
	rc=$?
	status_is "g. $name cannot be opened (EACCES): exit 74" 74 g
	file_has "g. $name: reported with its path" g.err \
		"^reroute: cannot open .*$(re_quote "$name"): Permission denied"
	if [ "$name" = m.mbox ]; then
		same_bytes "g. the unreadable mbox is as it was" g.orig/m.mbox g/m.mbox
	else
		same_bytes "g. the unreadable message is as it was" g.16.want.src \
			"g/md/cur/$name"
	fi
	same_bytes "g. $name unreadable: the readable message is rewritten" g.15.want \
		g/md/cur/1711000015.M15P1.host:2,S
done

# The same for real: mode 000, and a user that mode 000 stops.
as=
if [ "$(id -u)" != 0 ]; then
	as=self
elif command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
	as=nobody
fi
if [ -n "$as" ]; then
	rm -rf g && cp -Rp g.orig g && mkdir bin
	cp "$reroute" "$table" bin/ && chmod 755 bin "$tmp" && chmod 644 bin/filter.table
	chmod 000 g/m.mbox "g/md/cur/1711000016.M16P1.host:2,S"
	if [ $as = nobody ]; then
		chown -R nobody g
		setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
			bin/reroute -t bin/filter.table g/md g/m.mbox >g.real.out 2>g.real.err
	else
		bin/reroute -t bin/filter.table g/md g/m.mbox >g.real.out 2>g.real.err
	fi
	rc=$?
	chmod 600 g/m.mbox "g/md/cur/1711000016.M16P1.host:2,S"
	status_is "g. mode 000, run as $as: exit 74" 74 g.real
	file_has "g. mode 000: the message is reported" g.real.err \
		'^reroute: cannot open g/md/cur/1711000016\.M16P1\.host:2,S: Permission denied'
	file_has "g. mode 000: the mbox is reported" g.real.err \
		'^reroute: cannot open g/m\.mbox: Permission denied'
	same_bytes "g. mode 000: the message is as it was" g.16.want.src \
		"g/md/cur/1711000016.M16P1.host:2,S"
	same_bytes "g. mode 000: the mbox is as it was" g.orig/m.mbox g/m.mbox
	same_bytes "g. mode 000: the readable message is rewritten" g.15.want \
		g/md/cur/1711000015.M15P1.host:2,S
	chmod 700 "$tmp"
else
	skip_test "g. mode 000 for real (root without setpriv or user nobody)"
fi

plan "$tap_n"
done_testing
