#!/bin/sh
# refile_test.sh - reroute -t TABLE --deliver TEMPLATE SPOOL...: messages
# refiled into the canonical users' mailboxes, end to end.
#
# Sources are copies of testdata/spools/maildir/ and testdata/spools/mbox/;
# testdata/refile/maildir.list and mbox.list say by hand, message by
# message, whether every recipient is routed (full), some are (partial) or
# none, and the distinct canonical addresses. The bytes each mailbox must
# get are worked out here: a message's bytes (for an mbox, without its
# From_ line and separator, its ">From " escaping undone), put through the
# stdin filter (the oracle for a rewrite, tested by filter_test.sh).
# Destinations are compared as multisets of messages (MD5s), with, per
# message, the folder (cur/ or new/) and flags, or the From_ line.
#
#   a. Maildir -> Maildirs ("DEST/%d/%u/"): each mailbox holds exactly its
#      messages, rewritten, a cur/ message in cur/ with its flags, a new/
#      one in new/, under names "MTIME.R<hex>.HOST"; Maildirs 0700, files
#      0600, nothing in tmp/; the source keeps its partial and unrouted
#      messages untouched and nothing else; a rerun delivers nothing;
#   b. mboxes -> Maildirs: the same; each mbox keeps exactly the stored
#      bytes of its partial and unrouted messages;
#   c. Maildir -> mboxes ("DEST/%u"): each mbox holds exactly its messages,
#      each under a From_ line "From SENDER DATE" (Return-Path, else
#      MAILER-DAEMON; asctime) and followed by a blank line, escaped;
#   d. mboxes -> mboxes: each message under its own From_ line;
#   e. --copy keeps every source message as it was, delivers the same, and
#      a second --copy run delivers nothing new (Maildir and mbox
#      destinations);
#   f. one message for two canonical users is in both mailboxes; one for
#      two aliases of one user is delivered once;
#   g. mbox format: mboxrd escaping round trip, --mbox-format=mboxo, an
#      append to an existing mbox, no dotlock left;
#   h. ownership and modes, run as root: created mailboxes belong to the
#      owner of the directory they are made in, or to --owner; a file
#      delivered into an existing mailbox gets that mailbox's owner.
#
# Runs happen in $tmp with relative spool paths and absolute templates.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

table=$testdata/tables/filter.table
for f in maildir.list mbox.list escape.mbox escape.mboxo escape.eml \
    two-users.eml same-user.eml; do
	[ -f "$refile_data/$f" ] || bail_out "$refile_data/$f is missing"
done
cd "$tmp" || bail_out "cannot cd to $tmp"
bom=$(printf '\357\273\277')

# md5 FILE: FILE's MD5.
md5() {
	md5sum <"$1" | cut -c 1-32
}

# box_of ADDR: the path "%d/%u" gives for ADDR.
box_of() {
	echo "${1#*@}/${1%@*}"
}

# fresh_md DIR / fresh_mb DIR: DIR/maildir, DIR/mbox/*.mbox, copies of the
# fixtures as a mail store has them (modes, an old mtime).
fresh_md() {
	mkdir -p "$1" && copy_maildir "$spools/maildir" "$1/maildir" &&
	settle "$1/maildir" || bail_out "cannot copy the Maildir to $1"
}
fresh_mb() {
	mkdir -p "$1/mbox" && cp "$spools"/mbox/*.mbox "$1/mbox/" &&
	settle "$1/mbox" || bail_out "cannot copy the mboxes to $1"
}

mboxes=$(cd "$spools/mbox" && ls *.mbox)

# --- What every run must give, from the lists and the oracle. -------------
#
# md.want.maildir / mb.want.maildir: "MAILBOX SUB INFO MD5" lines, the
#   maildir_digest of the destination root after a refile of the Maildir /
#   the mboxes into "%d/%u/";
# md.want.mbox / mb.want.mbox: "MAILBOX MD5 FROM" lines, the mbox_digest
#   lines of every mbox after a refile into "%u" (dates of From_ lines
#   reroute writes itself read DATE);
# md.full: the Maildir files that must leave the source; md.boxes,
#   mb.boxes: the mailboxes; mbx.want/NAME.mbox: what each mbox keeps.
mkdir exp mbx.want
: >md.want.maildir
: >md.want.mbox
: >md.full
: >md.sources
n_md=0
n_md_full=0
grep -v -e '^#' -e '^[[:space:]]*$' "$refile_data/maildir.list" >md.list
while read -r path kind sender boxes; do
	n_md=$((n_md + 1))
	src=$spools/maildir/$path
	[ -f "$src" ] || bail_out "maildir.list: no file $path"
	echo "$path" >>md.sources
	e=exp/md$n_md
	rewrite_oracle "$src" "$e" -t "$table"
	with_status "$path" "$e" "$e.st" && with_newline "$e.st" "$e.nl" ||
		bail_out "cannot make $e.nl"
	case $path in
	cur/* | */cur/*) where=cur ;;
	*) where=new ;;
	esac
	info=$(printf '%s\n' "${path##*/}" | sed -n 's/^[^:!;]*[:!;]\(2,.*\)$/\1/p')
	[ -n "$info" ] || info=-
	[ "$where" = new ] && info=-
	for a in $boxes; do
		echo "$(box_of "$a") $where $info $(md5 "$e")" >>md.want.maildir
		echo "${a%@*} $(md5 "$e.nl") From $sender DATE" >>md.want.mbox
	done
	case $kind in
	full) echo "$path" >>md.full
		n_md_full=$((n_md_full + 1)) ;;
	partial | none) ;;
	*) bail_out "maildir.list: bad kind $kind" ;;
	esac
done <md.list
n_md_files=$(cd "$spools/maildir" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) \
	! -name '.*' | wc -l)
[ "$n_md" -eq "$n_md_files" ] ||
	bail_out "maildir.list lists $n_md messages, the Maildir has $n_md_files"

: >mb.want.maildir
: >mb.want.mbox
n_mb=0
n_mb_full=0
for m in $mboxes; do
	: >"mbx.want/$m"
done
grep -v -e '^#' -e '^[[:space:]]*$' "$refile_data/mbox.list" |
awk '{ f[NR] = $1; l[NR] = $2; k[NR] = $3; r = $0
	sub(/^[^ ]+ +[^ ]+ +[^ ]+ */, "", r); rest[NR] = r }
END { for (i = 1; i <= NR; i++)
	print f[i], l[i], (f[i + 1] == f[i] ? l[i + 1] : "-"), k[i], rest[i] }' >mb.list
while read -r file line next kind boxes; do
	n_mb=$((n_mb + 1))
	src=$spools/mbox/$file
	[ -f "$src" ] || bail_out "mbox.list: no file $file"
	[ "$next" = - ] && next=
	mbox_chunk "$src" "$line" $next | head -n 1 | grep -q "^\\($bom\\)\\{0,1\\}From " ||
		bail_out "mbox.list: line $line of $file is not a From_ line"
	e=exp/mb$n_mb
	mbox_body "$src" "$line" $next >"$e.in"
	rewrite_oracle "$e.in" "$e" -t "$table"
	with_newline "$e" "$e.nl"
	from=$(mbox_chunk "$src" "$line" $next | head -n 1 | sed -e "s/^$bom//" -e "s/$cr\$//")
	for a in $boxes; do
		echo "$(box_of "$a") new - $(md5 "$e")" >>mb.want.maildir
		echo "${a%@*} $(md5 "$e.nl") $from" >>mb.want.mbox
	done
	case $kind in
	full) n_mb_full=$((n_mb_full + 1)) ;;
	partial | none) mbox_chunk "$src" "$line" $next >>"mbx.want/$file" ;;
	*) bail_out "mbox.list: bad kind $kind" ;;
	esac
done <mb.list
for m in $mboxes; do
	n=$(grep -c "^\\($bom\\)\\{0,1\\}From " "$spools/mbox/$m")
	[ "$n" -ge "$(grep -c "^$m " mb.list)" ] ||
		bail_out "mbox.list lists more messages in $m than it has From_ lines"
done
cut -d ' ' -f 1 md.want.maildir | sort -u >md.boxes
cut -d ' ' -f 1 mb.want.maildir | sort -u >mb.boxes

# --- Checks. ---------------------------------------------------------------

# dest_maildirs DESC ROOT WANT: one test for each mailbox WANT names (its
# messages, folders, flags and bytes, as a multiset), and one that nothing
# else is below ROOT.
dest_maildirs() {
	maildir_digest "$2" >"$tmp/.got.digest"
	for _b in $(cut -d ' ' -f 1 "$3" | sort -u); do
		awk -v b="$_b" '$1 == b' "$3" >"$tmp/.w"
		awk -v b="$_b" '$1 == b' "$tmp/.got.digest" >"$tmp/.g"
		same_list "$1: $_b/ holds exactly its messages (folder, flags, bytes)" \
			"$tmp/.w" "$tmp/.g"
	done
	same_list "$1: no other message delivered anywhere below the destination root" \
		"$3" "$tmp/.got.digest"
}

# dest_names DESC ROOT [MTIME]: every delivered file's name has the form
# "MTIME.R<24 hex digits>.HOST[:2,FLAGS]" (MTIME, when given, that number).
dest_names() {
	maildir_names "$2" >"$tmp/.names"
	grep -E -v -e "$refile_name_re" "$tmp/.names" >"$tmp/.badnames"
	if [ -n "${3:-}" ]; then
		grep -v "^$3\\." "$tmp/.names" >>"$tmp/.badnames"
	fi
	if [ -s "$tmp/.names" ] && [ ! -s "$tmp/.badnames" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "names not of the form ${3:-MTIME}.R<24 hex>.$maildir_host[:2,FLAGS] (of $(wc -l <"$tmp/.names")):"
		sed 10q "$tmp/.badnames" | diag
	fi
}

# modes_ok DESC ROOT BOXES: every Maildir BOXES lists below ROOT, and its
# cur/ new/ tmp/, is a directory of mode 0700; every message file 0600.
modes_ok() {
	_bad=
	for _b in $(cat "$3"); do
		for _d in "$2/$_b" "$2/$_b/cur" "$2/$_b/new" "$2/$_b/tmp"; do
			[ -d "$_d" ] && [ ! -L "$_d" ] &&
			    [ "$(stat -c %a "$_d")" = 700 ] ||
				_bad="$_bad
$_d: $(stat -c '%F %a' "$_d" 2>&1)"
		done
	done
	_bad="$_bad$(find "$2" -type f ! -perm 600 -exec stat -c '
%n: %a' {} +)"
	if [ -z "$_bad" ]; then
		ok "$1"
	else
		not_ok "$1"
		printf '%s\n' "$_bad" | sed -e 1d -e 10q | diag
	fi
}

# none_left DESC DIR...: no file in a tmp/, no dotlock, no temporary mbox.
none_left() {
	leftovers "$@" >"$tmp/.left"
	if [ ! -s "$tmp/.left" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "left behind:"
		sed 10q "$tmp/.left" | diag
	fi
}

# source_md DESC DIR: DIR/maildir is the fixture less the md.full files;
# the rest keep their inodes and mtimes (DIR.stat, taken before the run).
source_md() {
	rm -rf "$tmp/.md.want"
	cp -R "$2.orig/maildir" "$tmp/.md.want" || bail_out "cannot copy $2.orig"
	while read -r _p; do
		rm "$tmp/.md.want/$_p" || bail_out "cannot remove $_p"
	done <md.full
	same_source "$1: the source keeps its partial and unrouted messages (and its other files), byte for byte, and nothing else" \
		"$tmp/.md.want" "$2/maildir"
	stat_list "$2" >"$2.stat2"
	_skip=
	while read -r _p; do
		_skip="$_skip maildir/$_p"
	done <md.full
	# the directories a removed file was in may change; files may not
	kept "$1: every message that stays keeps its name, inode, mtime and mode" \
		"$2.stat" "$2.stat2" $_skip
}

# rest_is DESC WANT GOT: the mbox GOT holds WANT's bytes; when WANT is
# empty, GOT may hold a byte-order mark alone (what was before the first
# message).
rest_is() {
	if cmp -s "$2" "$3" ||
	    { [ ! -s "$2" ] && [ "$(cat "$3")" = "$bom" ]; }; then
		ok "$1"
	else
		not_ok "$1"
		cmp_diag "$2" "$3"
	fi
}

# source_mb DESC DIR: each mbox of DIR/mbox holds what mbx.want says;
# DIR/mbox holds nothing else.
source_mb() {
	for _m in $mboxes; do
		rest_is "$1: $_m keeps exactly its partial and unrouted messages, as stored" \
			"mbx.want/$_m" "$2/mbox/$_m"
	done
	state_files "$2/mbox" >"$tmp/.state"
	is "$1: no lock or temporary file beside the mboxes" \
		"$(echo $mboxes)" \
		"$(cd "$2/mbox" && ls -A | grep -v -x -F -f "$tmp/.state" -e /// | tr '\n' ' ' | sed 's/ $//')"
}

# dest_mboxes DESC DIR WANT: one test for each mailbox WANT names: DIR/NAME
# is in the form reroute writes, and holds exactly its messages (bytes and
# From_ lines, an asctime date read as DATE unless $own_from is set: From_
# lines copied from an mbox source are compared as they are); one that DIR
# holds nothing else; one for the modes.
dest_mboxes() {
	: >"$tmp/.got.mbox"
	for _b in $(cut -d ' ' -f 1 "$3" | sort -u); do
		awk -v b="$_b" '$1 == b' "$3" >"$tmp/.w"
		if [ -f "$2/$_b" ] &&
		    mbox_digest "$2/$_b" "$_b" >"$tmp/.g" 2>"$tmp/.g.err"; then
			_form=
		else
			_form=$(sed 5q "$tmp/.g.err")
			[ -f "$2/$_b" ] || _form="$2/$_b: no such file"
		fi
		if [ -n "${own_from:-}" ]; then
			cp "$tmp/.g" "$tmp/.gd"
		else
			sed -E "s/ $asctime_re\$/ DATE/" "$tmp/.g" >"$tmp/.gd"
		fi
		cat "$tmp/.gd" >>"$tmp/.got.mbox"
		sort "$tmp/.w" >"$tmp/.ws"
		sort "$tmp/.gd" >"$tmp/.gs"
		if [ -z "$_form" ] && cmp -s "$tmp/.ws" "$tmp/.gs"; then
			ok "$1: $_b holds exactly its messages (bytes, From_ lines), each followed by a blank line"
		else
			not_ok "$1: $_b holds exactly its messages (bytes, From_ lines), each followed by a blank line"
			[ -z "$_form" ] || diag "$_form"
			diff "$tmp/.ws" "$tmp/.gs" | grep '^[<>]' |
				sed -e 's/^</-/' -e 's/^>/+/' -e 10q | diag
		fi
	done
	is "$1: nothing else in the destination directory (no lock, no temporary file)" \
		"$(cut -d ' ' -f 1 "$3" | sort -u | tr '\n' ' ')" \
		"$(ls -A "$2" | sort | tr '\n' ' ')"
	_bad=$(find "$2" -type f ! -perm 600)
	is "$1: the mboxes made have mode 0600" "" "$_bad"
}

# snapshot DIR: a copy of DIR at DIR.snap, modes and times kept.
snapshot() {
	rm -rf "$1.snap" && cp -Rp "$1" "$1.snap" || bail_out "cannot copy $1"
}

md_stay=$((n_md - n_md_full))
mb_stay=$((n_mb - n_mb_full))

# --- a. Maildir -> Maildirs. -------------------------------------------------
fresh_md a
cp -Rp a a.orig
mtime_md=$(stat -c %Y "a/maildir/$(sed 1q md.list | cut -d ' ' -f 1)")
stat_list a >a.stat
run /dev/null a -t "$table" --deliver "$tmp/a/dest/%d/%u/" a/maildir
status_is "a. Maildir -> Maildirs: exit 0" 0 a
summary_is "a. the summary: $n_md_full refiled, $md_stay unchanged" a \
	"$n_md scanned, 0 rewritten, $n_md_full refiled, $md_stay unchanged, 0 skipped, 0 errors"
empty_file "a. nothing on stderr" a.err
dest_maildirs "a" a/dest md.want.maildir
dest_names "a. delivered names are <source mtime>.R<hex>.<host>[:2,FLAGS]" a/dest "$mtime_md"
rs=$(find a/dest/adatum.com/administrator/cur -type f -name '*2,RS' 2>/dev/null | wc -l)
is "a. the cur/ message with :2,RS is in administrator/cur/, flags RS" 1 "$rs"
alerts=$(ls a/dest/adatum.com/administrator+alerts/new 2>&1)
check "a. the new/ message is in administrator+alerts/new/, no info part ($alerts)" \
	test -n "$alerts" -a -z "$(ls a/dest/adatum.com/administrator+alerts/cur 2>&1)" \
	-a "${alerts%%:*}" = "$alerts"
none_left "a. nothing left in any tmp/, no lock" a/dest a/maildir
modes_ok "a. Maildirs (and cur/ new/ tmp/) made 0700, files 0600" a/dest md.boxes
source_md "a" a
snapshot a
run /dev/null a2 -t "$table" --deliver "$tmp/a/dest/%d/%u/" a/maildir
status_is "a. rerun: exit 0" 0 a2
summary_is "a. rerun: nothing refiled" a2 \
	"$md_stay scanned, 0 rewritten, 0 refiled, $md_stay unchanged, 0 skipped, 0 errors"
same_tree "a. rerun: the partial message is not delivered again: destinations as they were" \
	a.snap/dest a/dest
same_tree "a. rerun: the source as it was (its state files too)" a.snap/maildir a/maildir

# --- b. mboxes -> Maildirs. --------------------------------------------------
fresh_mb b
run /dev/null b -t "$table" --deliver "$tmp/b/dest/%d/%u/" $(for m in $mboxes; do echo b/mbox/$m; done)
status_is "b. mboxes -> Maildirs: exit 0" 0 b
summary_is "b. the summary: $n_mb_full refiled, $mb_stay unchanged" b \
	"$n_mb scanned, 0 rewritten, $n_mb_full refiled, $mb_stay unchanged, 0 skipped, 0 errors"
grep -v 'Content-Length' b.err >b.err.other
empty_file "b. nothing on stderr but the Content-Length warnings" b.err.other
dest_maildirs "b" b/dest mb.want.maildir
dest_names "b. delivered names are <mtime>.R<hex>.<host>" b/dest
none_left "b. nothing left in any tmp/, no lock" b/dest b/mbox
modes_ok "b. Maildirs made 0700, files 0600" b/dest mb.boxes
source_mb "b" b
snapshot b
run /dev/null b2 -t "$table" --deliver "$tmp/b/dest/%d/%u/" $(for m in $mboxes; do echo b/mbox/$m; done)
status_is "b. rerun: exit 0" 0 b2
summary_is "b. rerun: nothing refiled" b2 \
	"$mb_stay scanned, 0 rewritten, 0 refiled, $mb_stay unchanged, 0 skipped, 0 errors"
same_tree "b. rerun: destinations as they were" b.snap/dest b/dest
same_tree "b. rerun: the mboxes as they were" b.snap/mbox b/mbox

# --- c. Maildir -> mboxes. ---------------------------------------------------
fresh_md c
cp -Rp c c.orig
stat_list c >c.stat
run /dev/null c -t "$table" --deliver "$tmp/c/mail/%u" c/maildir
status_is "c. Maildir -> mboxes: exit 0" 0 c
summary_is "c. the summary" c \
	"$n_md scanned, 0 rewritten, $n_md_full refiled, $md_stay unchanged, 0 skipped, 0 errors"
empty_file "c. nothing on stderr" c.err
dest_mboxes "c" c/mail md.want.mbox
source_md "c" c
snapshot c
run /dev/null c2 -t "$table" --deliver "$tmp/c/mail/%u" c/maildir
status_is "c. rerun: exit 0" 0 c2
same_tree "c. rerun: the partial message is not appended again: mboxes as they were" \
	c.snap/mail c/mail

# --- d. mboxes -> mboxes. ----------------------------------------------------
fresh_mb d
run /dev/null d -t "$table" --deliver "$tmp/d/mail/%u" $(for m in $mboxes; do echo d/mbox/$m; done)
status_is "d. mboxes -> mboxes: exit 0" 0 d
summary_is "d. the summary" d \
	"$n_mb scanned, 0 rewritten, $n_mb_full refiled, $mb_stay unchanged, 0 skipped, 0 errors"
own_from=1
dest_mboxes "d (each message under its source's From_ line)" d/mail mb.want.mbox
own_from=
source_mb "d" d
snapshot d
run /dev/null d2 -t "$table" --deliver "$tmp/d/mail/%u" $(for m in $mboxes; do echo d/mbox/$m; done)
status_is "d. rerun: exit 0" 0 d2
same_tree "d. rerun: mboxes as they were" d.snap/mail d/mail
same_tree "d. rerun: sources as they were" d.snap/mbox d/mbox

# --- e. --copy. -------------------------------------------------------------
fresh_md e
fresh_mb e
cp -Rp e e.orig
(stat_list e/maildir && stat_list e/mbox) >e.stat
mb_args=$(for m in $mboxes; do echo e/mbox/$m; done)
run /dev/null e --copy -t "$table" --deliver "$tmp/e/dest/%d/%u/" e/maildir $mb_args
status_is "e. --copy: exit 0" 0 e
summary_is "e. --copy: the summary" e \
	"$((n_md + n_mb)) scanned, 0 rewritten, * refiled, * unchanged, 0 skipped, 0 errors"
same_source "e. --copy: every source message kept, byte for byte" e.orig/maildir e/maildir
same_source "e. --copy: every mbox kept, byte for byte" e.orig/mbox e/mbox
(stat_list e/maildir && stat_list e/mbox) | grep -v -F -e reroute >e.stat2
same_bytes "e. --copy: every source file keeps its inode, mtime and mode" e.stat e.stat2
cat md.want.maildir mb.want.maildir >e.want
dest_maildirs "e. --copy" e/dest e.want
snapshot e
run /dev/null e2 --copy -t "$table" --deliver "$tmp/e/dest/%d/%u/" e/maildir $mb_args
status_is "e. --copy rerun: exit 0" 0 e2
summary_is "e. --copy rerun: nothing refiled" e2 \
	"$((n_md + n_mb)) scanned, 0 rewritten, 0 refiled, $((n_md + n_mb)) unchanged, 0 skipped, 0 errors"
same_tree "e. --copy rerun: nothing new delivered, destinations as they were" e.snap/dest e/dest
same_source "e. --copy rerun: sources as they were" e.orig/maildir e/maildir

fresh_md e3
cp -Rp e3 e3.orig
run /dev/null e3 --copy -t "$table" --deliver "$tmp/e3/mail/%u" e3/maildir
status_is "e. --copy into mboxes: exit 0" 0 e3
same_source "e. --copy into mboxes: the source kept" e3.orig/maildir e3/maildir
dest_mboxes "e. --copy into mboxes" e3/mail md.want.mbox
snapshot e3
run /dev/null e4 --copy -t "$table" --deliver "$tmp/e3/mail/%u" e3/maildir
status_is "e. --copy into mboxes, rerun: exit 0" 0 e4
same_tree "e. --copy into mboxes, rerun: nothing appended" e3.snap/mail e3/mail

# --- f. Two canonical users; two aliases of one. --------------------------------
mkdir -p f/src/cur f/src/new f/src/tmp
cp "$refile_data/two-users.eml" f/src/new/1710900000.M1P1.mx1.adatum.com
cp "$refile_data/same-user.eml" "f/src/cur/1710900001.M2P1.mx1.adatum.com:2,S"
settle f/src
rewrite_oracle "$refile_data/two-users.eml" f.two -t "$table"
rewrite_oracle "$refile_data/same-user.eml" f.same -t "$table"
cat >f.want <<EOF
adatum.com/alice new - $(md5 f.two)
adatum.com/bob new - $(md5 f.two)
adatum.com/carol cur 2,S $(md5 f.same)
EOF
run /dev/null f -t "$table" --deliver "$tmp/f/dest/%d/%u/" f/src
status_is "f. two users: exit 0" 0 f
summary_is "f. two users: both messages refiled" f \
	"2 scanned, 0 rewritten, 2 refiled, 0 unchanged, 0 skipped, 0 errors"
dest_maildirs "f. two users" f/dest f.want
is "f. two users: the source is empty" "" "$(maildir_names f/src)"

# --- g. mbox format. --------------------------------------------------------
# An mboxrd source into an mboxrd destination: the same bytes.
mkdir g1
cp "$refile_data/escape.mbox" g1/src.mbox
run /dev/null g1 -t "$table" --deliver "$tmp/g1/mail/%u" g1/src.mbox
status_is "g. escape.mbox -> mboxrd: exit 0" 0 g1
same_bytes "g. escape.mbox -> mboxrd: the same From_ lines, escaping and separators" \
	"$refile_data/escape.mbox" g1/mail/administrator
is "g. escape.mbox -> mboxrd: no lock left" administrator "$(ls -A g1/mail)"
rest_is "g. escape.mbox: the source is empty" /dev/null g1/src.mbox

mkdir g2
cp "$refile_data/escape.mbox" g2/src.mbox
run /dev/null g2 --mbox-format=mboxo -t "$table" --deliver "$tmp/g2/mail/%u" g2/src.mbox
status_is "g. escape.mbox -> --mbox-format=mboxo: exit 0" 0 g2
same_bytes "g. escape.mbox -> mboxo: only ^From lines escaped" \
	"$refile_data/escape.mboxo" g2/mail/administrator

mkdir g3
cp "$refile_data/escape.mbox" g3/src.mbox
run /dev/null g3 --mbox-format=mboxrd -t "$table" --deliver "$tmp/g3/mail/%u" g3/src.mbox
status_is "g. --mbox-format=mboxrd: exit 0" 0 g3
same_bytes "g. --mbox-format=mboxrd is the default" "$refile_data/escape.mbox" \
	g3/mail/administrator

# escape.eml from a Maildir: "From SENDER DATE", then the escaped message,
# then a blank line; appended after what the mbox held.
for fmt in mboxrd mboxo; do
	mkdir -p g.$fmt/src/cur g.$fmt/src/new g.$fmt/src/tmp g.$fmt/mail
	cp "$refile_data/escape.eml" g.$fmt/src/new/1710900002.M3P1.mx1.adatum.com
	cp "$refile_data/escape.mbox" g.$fmt/mail/administrator
	chmod 600 g.$fmt/mail/administrator
	if [ $fmt = mboxrd ]; then
		sed 's/^>*From />&/' "$refile_data/escape.eml" >g.$fmt.body
	else
		sed 's/^From />&/' "$refile_data/escape.eml" >g.$fmt.body
	fi
	echo >>g.$fmt.body
	run /dev/null g.$fmt --mbox-format=$fmt -t "$table" \
		--deliver "$tmp/g.$fmt/mail/%u" g.$fmt/src
	status_is "g. escape.eml -> $fmt (an existing mbox): exit 0" 0 g.$fmt
	n=$(wc -c <"$refile_data/escape.mbox")
	head -c "$n" g.$fmt/mail/administrator >g.$fmt.head
	same_bytes "g. escape.eml -> $fmt: what the mbox held is kept as it was" \
		"$refile_data/escape.mbox" g.$fmt.head
	tail -c +$((n + 1)) g.$fmt/mail/administrator >g.$fmt.new
	sed -n 1p g.$fmt.new >g.$fmt.from
	file_has "g. escape.eml -> $fmt: From_ line \"From <Return-Path address> <asctime date>\"" \
		g.$fmt.from "^From owner-list@example\\.org $asctime_re\$"
	sed 1d g.$fmt.new >g.$fmt.rest
	same_bytes "g. escape.eml -> $fmt: the message escaped for $fmt, then a blank line" \
		g.$fmt.body g.$fmt.rest
	is "g. escape.eml -> $fmt: no lock left, the mbox keeps its mode" \
		"administrator 600" "$(ls -A g.$fmt/mail) $(stat -c %a g.$fmt/mail/administrator)"
done

# --- h. Ownership and modes. ------------------------------------------------
# h/NAME/src: a Maildir with one message for administrator@adatum.com.
h_src() {
	mkdir -p "h/$1/src/cur" "h/$1/src/new" "h/$1/src/tmp" &&
	cp "$spools/maildir/cur/1709630047.M512304P4242.mx1.adatum.com,S=674,W=694:2,S" \
		"h/$1/src/new/1710900003.M4P1.mx1.adatum.com" &&
	settle "h/$1/src" || bail_out "cannot make h/$1"
}

# owners DESC WANT PATH...: "USER:GROUP MODE" of each PATH, one a line,
# equal to WANT (a path that is missing fails).
owners() {
	_desc=$1
	_want=$2
	shift 2
	_bad=
	[ $# -gt 0 ] || _bad="
(nothing delivered)"
	for _p; do
		_o=$(owner_of "$_p")
		[ "$_o" = "$_want" ] || _bad="$_bad
$_p: $_o"
	done
	if [ -z "$_bad" ]; then
		ok "$_desc"
	else
		not_ok "$_desc"
		diag "expected $_want for each of:"
		printf '%s\n' "$_bad" | sed 1d | diag
	fi
}

# delivered DIR: the files delivered into the Maildir DIR (one expected).
delivered() {
	find "$1/new" "$1/cur" -type f 2>/dev/null
}

if [ "$(id -u)" != 0 ]; then
	i=0
	while [ $i -lt 20 ]; do
		skip_test "ownership needs root"
		i=$((i + 1))
	done
else
	# A Maildir made in a directory root owns: root's, 0700; the file 0600.
	h_src 1
	run /dev/null h1 -t "$table" --deliver "$tmp/h/1/dest/%d/%u/" h/1/src
	status_is "h. made in root's directory: exit 0" 0 h1
	box=h/1/dest/adatum.com/administrator
	owners "h. made in root's directory: the Maildir is root's, 0700" "root:root 700" \
		"$box" "$box/cur" "$box/new" "$box/tmp"
	owners "h. made in root's directory: the message is root's, 0600" "root:root 600" \
		$(delivered "$box")

	# Made in a directory daemon owns: daemon's.
	h_src 2
	mkdir -p h/2/dest/adatum.com
	chown daemon:daemon h/2/dest/adatum.com
	run /dev/null h2 -t "$table" --deliver "$tmp/h/2/dest/%d/%u/" h/2/src
	status_is "h. made in daemon's directory: exit 0" 0 h2
	box=h/2/dest/adatum.com/administrator
	owners "h. made in daemon's directory: the Maildir is daemon's, 0700" \
		"daemon:daemon 700" "$box" "$box/cur" "$box/new" "$box/tmp"
	owners "h. made in daemon's directory: the message is daemon's, 0600" \
		"daemon:daemon 600" $(delivered "$box")

	# --owner USER:GROUP.
	h_src 3
	run /dev/null h3 --owner nobody:daemon -t "$table" \
		--deliver "$tmp/h/3/dest/%d/%u/" h/3/src
	status_is "h. --owner nobody:daemon: exit 0" 0 h3
	box=h/3/dest/adatum.com/administrator
	owners "h. --owner nobody:daemon: the Maildir made is nobody:daemon, 0700" \
		"nobody:daemon 700" "$box" "$box/cur" "$box/new" "$box/tmp"
	owners "h. --owner nobody:daemon: the message is nobody:daemon, 0600" \
		"nobody:daemon 600" $(delivered "$box")

	# --owner USER: the user (its group is not checked).
	h_src 4
	run /dev/null h4 --owner nobody -t "$table" --deliver "$tmp/h/4/dest/%d/%u/" h/4/src
	box=h/4/dest/adatum.com/administrator
	is "h. --owner nobody: the Maildir made and the message are nobody's" \
		"nobody nobody nobody nobody nobody" \
		"$(stat -c %U "$box" "$box/cur" "$box/new" "$box/tmp" $(delivered "$box") 2>&1 | tr '\n' ' ' | sed 's/ $//')"

	# An existing Maildir of nobody's: the message is nobody's, whatever
	# --owner says (it is for mailboxes reroute makes).
	h_src 5
	mkdir -p h/5/dest/adatum.com/administrator/cur h/5/dest/adatum.com/administrator/new \
		h/5/dest/adatum.com/administrator/tmp
	chown -R nobody:nogroup h/5/dest/adatum.com/administrator
	chmod -R 700 h/5/dest/adatum.com/administrator
	run /dev/null h5 --owner daemon:daemon -t "$table" \
		--deliver "$tmp/h/5/dest/%d/%u/" h/5/src
	status_is "h. an existing Maildir of nobody's: exit 0" 0 h5
	owners "h. an existing Maildir of nobody's: the message is nobody's, 0600" \
		"nobody:nogroup 600" $(delivered h/5/dest/adatum.com/administrator)

	# mboxes: made in root's directory; with --owner; in daemon's
	# directory; an existing one of nobody's (mode 0660 kept).
	h_src 6
	run /dev/null h6 -t "$table" --deliver "$tmp/h/6/mail/%u" h/6/src
	owners "h. an mbox made in root's directory: root's, 0600" "root:root 600" \
		h/6/mail/administrator
	h_src 7
	run /dev/null h7 --owner daemon:daemon -t "$table" --deliver "$tmp/h/7/mail/%u" h/7/src
	owners "h. an mbox made with --owner daemon:daemon: daemon's, 0600" \
		"daemon:daemon 600" h/7/mail/administrator
	h_src 8
	mkdir -p h/8/mail
	chown daemon:daemon h/8/mail
	run /dev/null h8 -t "$table" --deliver "$tmp/h/8/mail/%u" h/8/src
	owners "h. an mbox made in daemon's directory: daemon's, 0600" \
		"daemon:daemon 600" h/8/mail/administrator
	h_src 9
	mkdir -p h/9/mail
	cp "$refile_data/escape.mbox" h/9/mail/administrator
	chown nobody:nogroup h/9/mail/administrator
	chmod 660 h/9/mail/administrator
	run /dev/null h9 --owner daemon:daemon -t "$table" --deliver "$tmp/h/9/mail/%u" h/9/src
	status_is "h. an existing mbox of nobody's: exit 0" 0 h9
	owners "h. an existing mbox of nobody's: still nobody's, mode 0660 kept" \
		"nobody:nogroup 660" h/9/mail/administrator
	check "h. an existing mbox of nobody's: the message appended" \
		test "$(grep -c '^From ' h/9/mail/administrator)" -eq 3
	summary_is "h. the summary of a one-message refile" h9 \
		"1 scanned, 0 rewritten, 1 refiled, 0 unchanged, 0 skipped, 0 errors"
	is "h. no lock left beside the mboxes" "administrator administrator administrator administrator" \
		"$(ls -A h/6/mail h/7/mail h/8/mail h/9/mail | grep -v -e : -e '^$' | tr '\n' ' ' | sed 's/ $//')"
fi

plan "$tap_n"
done_testing
