#!/bin/sh
# spool_test.sh - reroute -t TABLE SPOOL...: Maildir and mbox spools
# rewritten in place, end to end.
#
# Fixtures are testdata/spools/maildir/ (with Maildir++ subfolders) and
# testdata/spools/mbox/*.mbox; their .expect files list by hand the edits a
# run through testdata/tables/filter.table makes (format: cmd/testlib.sh,
# "Spools"), and the expected spools are built here from the input:
#
#   a. through an empty table nothing changes at all: same bytes, same
#      entries, every file keeps its inode, mtime and mode;
#   b. through filter.table every spool gets exactly the listed edits; a
#      rewritten Maildir file keeps its folder, unique name and flags, gets
#      its ,S=/,W= fields updated, a new inode, and the old mode and mtime; a
#      rewritten mbox gets a new inode and keeps its mode and mtime; every
#      other file keeps its inode and mtime; tmp/ is made where it is needed
#      (0700) and a foreign file in tmp/ is left alone;
#   c. a second run changes nothing;
#   d. --no-recurse leaves the subfolders alone;
#   e. a path that is not a spool is reported, the others are done, exit 66;
#   f. the summary line and -q;
#   g. the warning for a Content-Length that does not end at a boundary.
#
# Runs happen in $tmp with relative paths, so reroute's messages name them
# as given.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

table=$testdata/tables/filter.table
: >"$tmp/empty.table"
cd "$tmp" || bail_out "cannot cd to $tmp"

mboxes=
for f in "$spools"/mbox/*.mbox; do
	name=${f##*/}
	mboxes="$mboxes ${name%.mbox}"
	[ -f "$spools/mbox/${name%.mbox}.expect" ] ||
		bail_out "$f has no .expect file"
done
routed_files=$(expect_files "$spools/maildir.expect")
[ -n "$routed_files" ] || bail_out "no files in maildir.expect"

# The message files of the Maildir fixture (dot-files are not messages).
all_files=$(cd "$spools/maildir" && find . \( -path '*/cur/*' -o -path '*/new/*' \) \
	! -name '.*' -type f | sed 's|^\./||' | sort)

# The message counts the summary must give: every message file of the
# Maildir, and the "messages N" of each mbox's .expect file.
n_md=$(printf '%s\n' "$all_files" | wc -l)
n_md_routed=$(printf '%s\n' "$routed_files" | wc -l)
n_md_root=$(printf '%s\n' "$all_files" | grep -c -v '^\.')
n_md_root_routed=$(printf '%s\n' "$routed_files" | grep -c -v '^\.')
n_mb=0
n_mb_routed=0
n_mb_edited=0
for m in $mboxes; do
	n=$(expect_count "$spools/mbox/$m.expect")
	[ -n "$n" ] || bail_out "$m.expect has no messages line"
	n_mb=$((n_mb + n))
	n=$(expect_sections "$spools/mbox/$m.expect" edited | wc -l)
	n_mb_routed=$((n_mb_routed + n))
	[ "$n" -gt 0 ] && n_mb_edited=$((n_mb_edited + 1))
done
set -- $mboxes
n_mboxes=$#

# The first routed Maildir file gets mode 0640, crlf.mbox 0660: modes to keep.
mode_file=$(printf '%s\n' "$routed_files" | sed 1q)
foreign=tmp/1710999999.M1P9999.mx1.adatum.com

# fresh DIR: DIR/maildir and DIR/mbox/*.mbox, copies of the fixtures as a
# mail store has them: modes, an mtime in the past, no tmp/ in
# .Lists.Debian (reroute makes it when it has to), and a message an MDA is
# delivering right now in tmp/ (reroute must neither read nor remove it).
fresh() {
	mkdir "$1" "$1/mbox" &&
	copy_maildir "$spools/maildir" "$1/maildir" &&
	cp "$spools"/mbox/*.mbox "$1/mbox/" &&
	settle "$1" &&
	rmdir "$1/maildir/.Lists.Debian/tmp" &&
	chmod 640 "$1/maildir/$mode_file" &&
	chmod 660 "$1/mbox/crlf.mbox" &&
	cp "$spools/maildir/cur/.hidden" "$1/maildir/$foreign" &&
	chmod 600 "$1/maildir/$foreign" ||
		bail_out "cannot copy the fixtures to $tmp/$1"
}

# new_path FILE: sets $np to where the routed Maildir file FILE (a path
# below maildir/) must be after the run (same folder, its name's sizes
# updated), and writes its expected bytes to $tmp/.new.
new_path() {
	expect_section "$spools/maildir.expect" "$1" >"$tmp/.section" &&
	expect_apply "$tmp/.section" "$spools/maildir/$1" >"$tmp/.new" ||
		bail_out "maildir.expect does not fit $1"
	np=${1%/*}/$(maildir_name "${1##*/}" "$tmp/.new")
}

# want DIR WANT [root]: WANT is what a run through filter.table must make of
# the fresh copy DIR (with "root": of its Maildir root only, --no-recurse).
want() {
	cp -R "$1" "$2" || bail_out "cannot copy $1"
	for f in $routed_files; do
		case $3:$f in root:.*) continue ;; esac
		new_path "$f"
		rm "$2/maildir/$f" && cp "$tmp/.new" "$2/maildir/$np" ||
			bail_out "cannot build $2/maildir/$np"
	done
	[ "$3" = root ] || mkdir "$2/maildir/.Lists.Debian/tmp"
	for m in $mboxes; do
		expect_apply "$spools/mbox/$m.expect" "$1/mbox/$m.mbox" \
			>"$2/mbox/$m.mbox" || bail_out "$m.expect does not fit"
	done
}

# warnings_are DESC NAME MBOX...: NAME's stderr holds exactly the
# Content-Length warnings that the .expect files of the MBOXes (paths as
# given to reroute) list, one line each, at the byte offsets of the messages
# in the fixture (or, with $rewritten set, in the file rewritten by a first
# run).
warnings_are() {
	_desc=$1
	_name=$2
	shift 2
	: >"$tmp/.warn.re"
	for _m; do
		_b=${_m##*/}
		_b=${_b%.mbox}
		_e=$spools/mbox/$_b.expect
		for _l in $(expect_sections "$_e" warning); do
			if [ -n "${rewritten:-}" ]; then
				expect_apply "$_e" "$spools/mbox/$_b.mbox" >"$tmp/.rewritten"
				_o=$(line_offset "$tmp/.rewritten" \
					"$(expect_line_after "$_e" "$_l")")
			else
				_o=$(line_offset "$spools/mbox/$_b.mbox" "$_l")
			fi
			printf '^reroute: %s: message at byte %s: Content-Length .* does not end at a message boundary; ignored$\n' \
				"$(re_quote "$_m")" "$_o" >>"$tmp/.warn.re"
		done
	done
	_missing=
	while read -r _re; do
		[ "$(grep -E -c -e "$_re" "$tmp/$_name.err")" -eq 1 ] ||
			_missing="$_missing
$_re"
	done <"$tmp/.warn.re"
	if [ -z "$_missing" ] &&
	    [ "$(wc -l <"$tmp/$_name.err")" -eq "$(wc -l <"$tmp/.warn.re")" ]; then
		ok "$_desc"
	else
		not_ok "$_desc"
		diag "expected one line each matching:"
		diag <"$tmp/.warn.re"
		[ -z "$_missing" ] || diag "not matched exactly once:$_missing"
		diag "stderr:"
		sed -n 1,10p "$tmp/$_name.err" | diag
	fi
}

# replaced DESC OLD NEW BEFORE: ok when NEW (a path below .) is a new file
# (another inode than OLD's in the stat_list BEFORE) with OLD's mtime and mode.
replaced() {
	_old=$(awk -v p="./$2" '$1 == p { print $2, $3, $4 }' "$4")
	_new=$(stat -c '%i %Y %a' "$3" 2>/dev/null)
	set -- "$1" $_old "|" $_new
	if [ $# -eq 8 ] && [ "$2" != "$6" ] && [ "$3" = "$7" ] && [ "$4" = "$8" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "inode mtime mode before: $2 $3 $4; after: $6 $7 $8"
		diag "(a new inode, the same mtime and mode expected)"
	fi
}

mbox_args() {
	for _m in $mboxes; do
		printf ' %s/mbox/%s.mbox' "$1" "$_m"
	done
}

plan $((5 + 4 + n_mboxes + 2 + n_md_routed + n_mb_edited + 4 \
	+ 5 + 5 + 9 + 6 + 4))

# a. An empty table: nothing changes, nothing is made, nothing is touched.
fresh a
cp -Rp a a.orig
stat_list a >a.stat
run /dev/null a -t empty.table a/maildir $(mbox_args a)
status_is "empty table: exit 0" 0 a
same_tree "empty table: every file byte-identical, no file made or removed" \
	a.orig a
stat_list a >a.stat2
same_bytes "empty table: every file keeps its inode, mtime and mode" \
	a.stat a.stat2
summary_is "empty table: the summary counts every message as unchanged" a \
	"$((n_md + n_mb)) scanned, 0 rewritten, 0 refiled, $((n_md + n_mb)) unchanged, 0 skipped, 0 errors"
warnings_are "empty table: no output on stderr but the Content-Length warnings" \
	a $(mbox_args a)

# b. filter.table: the expected edits, names, inodes, modes and mtimes.
fresh b
stat_list b >b.stat
want b b.want
run /dev/null b -t "$table" b/maildir $(mbox_args b)
status_is "filter.table: exit 0" 0 b
summary_is "filter.table: the summary counts" b \
	"$((n_md + n_mb)) scanned, $((n_md_routed + n_mb_routed)) rewritten, 0 refiled, $((n_md + n_mb - n_md_routed - n_mb_routed)) unchanged, 0 skipped, 0 errors"
warnings_are "filter.table: no output on stderr but the Content-Length warnings" \
	b $(mbox_args b)
same_tree "maildir: the expected edits and file names, nothing else made or removed (dot-files, tmp/ and subfolders included)" \
	b.want/maildir b/maildir
for m in $mboxes; do
	same_bytes "$m.mbox: the expected edits and no other change" \
		b.want/mbox/$m.mbox b/mbox/$m.mbox
done
skip=
for f in $routed_files; do
	skip="$skip maildir/$f"
done
for m in $mboxes; do
	section_edits "$spools/mbox/$m.expect" && skip="$skip mbox/$m.mbox"
done
stat_list b >b.stat2
kept "every file that needs no change is not touched (inode, mtime, mode)" \
	b.stat b.stat2 $skip
is "mbox/: no lock or temporary file left" "$(ls -A b.want/mbox)" \
	"$(ls -A b/mbox)"
for f in $routed_files; do
	new_path "$f"
	replaced "maildir/$f: a new file, $np, with the old mode and mtime" \
		"maildir/$f" "b/maildir/$np" b.stat
done
for m in $mboxes; do
	section_edits "$spools/mbox/$m.expect" || continue
	replaced "$m.mbox: a new file with the old mode and mtime" \
		"mbox/$m.mbox" "b/mbox/$m.mbox" b.stat
done
is "maildir/.Lists.Debian/tmp/ made with mode 0700" 700 \
	"$(stat -c %a b/maildir/.Lists.Debian/tmp 2>&1)"
is "maildir/$foreign: the file an MDA is writing is not touched" \
	"$(awk -v p="./maildir/$foreign" '$1 == p { print $2, $3 }' b.stat)" \
	"$(stat -c '%i %Y' "b/maildir/$foreign" 2>&1)"
is "maildir/cur/.hidden: the dot-file is not touched" \
	"$(awk '$1 == "./maildir/cur/.hidden" { print $2, $3 }' b.stat)" \
	"$(stat -c '%i %Y' b/maildir/cur/.hidden 2>&1)"
is "mbox/empty.mbox: the empty mbox is not touched" \
	"$(awk '$1 == "./mbox/empty.mbox" { print $2, $3 }' b.stat)" \
	"$(stat -c '%i %Y' b/mbox/empty.mbox 2>&1)"

# c. A second run over the result changes nothing at all.
stat_list b >b.stat3
run /dev/null b2 -t "$table" b/maildir $(mbox_args b)
status_is "second run: exit 0" 0 b2
summary_is "second run: every message unchanged" b2 \
	"$((n_md + n_mb)) scanned, 0 rewritten, 0 refiled, $((n_md + n_mb)) unchanged, 0 skipped, 0 errors"
same_tree "second run: every file byte-identical, no file made or removed" \
	b.want b
stat_list b >b.stat4
same_bytes "second run: every file keeps its inode, mtime and mode" \
	b.stat3 b.stat4
rewritten=1
warnings_are "second run: no output on stderr but the Content-Length warnings (at the offsets of the rewritten file)" \
	b2 $(mbox_args b)
rewritten=

# d. --no-recurse: the root folder only.
fresh d
stat_list d >d.stat
want d d.want root
run /dev/null d --no-recurse -t "$table" d/maildir
status_is "--no-recurse: exit 0" 0 d
summary_is "--no-recurse: the summary counts the root folder only" d \
	"$n_md_root scanned, $n_md_root_routed rewritten, 0 refiled, $((n_md_root - n_md_root_routed)) unchanged, 0 skipped, 0 errors"
same_tree "--no-recurse: the root folder rewritten, the subfolders untouched" \
	d.want/maildir d/maildir
stat_list d >d.stat2
grep '^\./maildir/\.' d.stat >d.sub
grep '^\./maildir/\.' d.stat2 >d.sub2
same_bytes "--no-recurse: subfolder files keep their inodes and mtimes" \
	d.sub d.sub2
empty_file "--no-recurse: nothing on stderr" d.err

# e. Paths that are not spools among spools: reported, the others done,
# exit 66.
fresh e
printf 'just some notes\n' >e/notes.txt
mkdir e/plaindir
printf 'a directory without cur/ and new/\n' >e/plaindir/README
cp "$testdata/messages/plain.eml" e/message.eml
cp -Rp e e.orig
stat_list e >e.stat
want e e.want
run /dev/null e -t "$table" e/notes.txt e/maildir e/missing \
	e/mbox/mboxrd.mbox e/plaindir e/message.eml e/mbox/crlf.mbox
status_is "non-spools among spools: exit 66" 66 e
same_tree "non-spools among spools: the Maildir is done" \
	e.want/maildir e/maildir
cat e.want/mbox/mboxrd.mbox e.want/mbox/crlf.mbox >e.want.mboxes
cat e/mbox/mboxrd.mbox e/mbox/crlf.mbox >e.mboxes
same_bytes "non-spools among spools: the mbox files after them are done" \
	e.want.mboxes e.mboxes
mkdir e.non e.non.orig
cp -Rp e/notes.txt e/plaindir e/message.eml e.non/
cp -Rp e.orig/notes.txt e.orig/plaindir e.orig/message.eml e.non.orig/
same_tree "non-spools among spools: the non-spools are untouched" \
	e.non.orig e.non
stat_list e >e.stat2
grep -E '^\./(notes\.txt|message\.eml|plaindir/)' e.stat >e.non.stat
grep -E '^\./(notes\.txt|message\.eml|plaindir/)' e.stat2 >e.non.stat2
same_bytes "non-spools among spools: they keep their inodes and mtimes" \
	e.non.stat e.non.stat2
file_has "non-spools among spools: a text file is not a spool" e.err \
	'^reroute: e/notes\.txt: not a spool'
file_has "non-spools among spools: a message file is not a spool" e.err \
	'^reroute: e/message\.eml: not a spool'
file_has "non-spools among spools: a directory without cur/ and new/ is not a spool" \
	e.err '^reroute: e/plaindir: not a spool'
file_has "non-spools among spools: a missing path is reported" e.err \
	'^reroute: e/missing: (.*: )?No such file or directory$'

# f. The summary line, and -q.
is "the summary line has the documented form" 1 \
	"$(grep -E -c -e "$summary_re" b.out)"
fresh f
want f f.want
run /dev/null f -q -t "$table" f/maildir f/mbox/mboxrd.mbox
status_is "-q: exit 0" 0 f
empty_file "-q: nothing on stdout" f.out
empty_file "-q: nothing on stderr when all went well" f.err
same_tree "-q: the Maildir is done" f.want/maildir f/maildir
same_bytes "-q: the mbox is done" f.want/mbox/mboxrd.mbox f/mbox/mboxrd.mbox

# g. A Content-Length that does not end at a boundary: a warning naming the
# message's byte offset; ignored, the file is split at its From_ lines.
fresh g
want g g.want
run /dev/null g -t "$table" g/mbox/lying-cl.mbox
status_is "lying Content-Length: exit 0 (a warning is not an error)" 0 g
warnings_are "lying Content-Length: a warning for each lying message, at its byte offset" \
	g g/mbox/lying-cl.mbox
same_bytes "lying Content-Length: split at the From_ lines, rewritten" \
	g.want/mbox/lying-cl.mbox g/mbox/lying-cl.mbox
summary_is "lying Content-Length: three messages, two rewritten" g \
	"3 scanned, 2 rewritten, 0 refiled, 1 unchanged, 0 skipped, 0 errors"

done_testing
