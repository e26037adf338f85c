#!/bin/sh
# badinput_test.sh - spools with bad messages among good ones, end to end.
#
# Fixtures are testdata/spools/bad/: a Maildir and an mbox (bad.mbox) mixing
# good messages, routed and not, with messages that are not messages and
# recipient fields that mention a routed domain and do not parse. Their
# .expect files list the edits to the good ones and mark the bad ones
# ("error message", "error field"; format: cmd/testlib.sh, "Spools").
#
# Through filter.table the good routed messages are rewritten, the bad ones
# are left byte-identical (a Maildir file keeps its inode) and each is named
# on stderr, as "reroute: PATH: ..." for a Maildir file and "reroute: MBOX
# at byte N: ..." for an mbox message (N the byte offset of its From_ line,
# computed here from the fixture), and the run exits 65. A second run
# changes nothing and still exits 65. Through an empty table only the
# messages that are not messages are reported. With -q the summary goes,
# the error lines stay.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

table=$testdata/tables/filter.table
: >"$tmp/empty.table"
bad=$spools/bad
mexp=$bad/maildir.expect
bexp=$bad/bad.expect
cd "$tmp" || bail_out "cannot cd to $tmp"

all_files=$(cd "$bad/maildir" && find . \( -path '*/cur/*' -o -path '*/new/*' \) \
	! -name '.*' -type f | sed 's|^\./||' | sort)
n_md=$(printf '%s\n' "$all_files" | wc -l)
n_mb=$(expect_count "$bexp")
md_routed=$(expect_sections "$mexp" edited)
md_bad=$(expect_sections "$mexp" error)
md_notmsg=$(expect_sections "$mexp" "error message")
mb_routed=$(expect_sections "$bexp" edited)
mb_bad=$(expect_sections "$bexp" error)
mb_notmsg=$(expect_sections "$bexp" "error message")
count() {
	[ -z "$1" ] && echo 0 && return
	printf '%s\n' "$1" | wc -l
}
n_routed=$(($(count "$md_routed") + $(count "$mb_routed")))
n_bad=$(($(count "$md_bad") + $(count "$mb_bad")))
n_notmsg=$(($(count "$md_notmsg") + $(count "$mb_notmsg")))
[ "$n_bad" -gt 0 ] && [ "$n_notmsg" -gt 0 ] && [ "$n_notmsg" -lt "$n_bad" ] ||
	bail_out "the fixtures mark no bad messages"
# Every From_ line in bad.mbox starts a message (no body line starts "From ").
[ "$(grep -a -c '^From ' "$bad/bad.mbox")" -eq "$n_mb" ] ||
	bail_out "bad.mbox: not $n_mb From_ lines"

# fresh DIR: DIR/maildir and DIR/bad.mbox, copies of the fixtures.
fresh() {
	mkdir "$1" &&
	copy_maildir "$bad/maildir" "$1/maildir" &&
	cp "$bad/bad.mbox" "$1/bad.mbox" &&
	settle "$1" || bail_out "cannot copy the fixtures to $tmp/$1"
}

# want DIR WANT: what a run through filter.table must make of DIR.
want() {
	cp -R "$1" "$2" || bail_out "cannot copy $1"
	for f in $md_routed; do
		expect_section "$mexp" "$f" >"$tmp/.section" &&
		expect_apply "$tmp/.section" "$1/maildir/$f" >"$tmp/.new" ||
			bail_out "maildir.expect does not fit $f"
		np=${f%/*}/$(maildir_name "${f##*/}" "$tmp/.new")
		rm "$2/maildir/$f" && cp "$tmp/.new" "$2/maildir/$np" ||
			bail_out "cannot build $2/maildir/$np"
	done
	expect_apply "$bexp" "$1/bad.mbox" >"$2/bad.mbox" ||
		bail_out "bad.expect does not fit bad.mbox"
}

# reported DESC NAME PLACE: NAME's stderr has a line "reroute: PLACE: ...".
reported() {
	file_has "$1" "$tmp/$2.err" "^reroute: $(re_quote "$3"): "
}

# not_reported DESC NAME PLACES: no line of NAME's stderr names one of the
# places listed in the file PLACES, one a line.
not_reported() {
	: >"$tmp/.places"
	while read -r _p; do
		printf '%s\n' "^reroute: $(re_quote "$_p")[: ]" >>"$tmp/.places"
	done <"$3"
	if ! grep -E -q -f "$tmp/.places" "$tmp/$2.err"; then
		ok "$1"
	else
		not_ok "$1"
		grep -E -f "$tmp/.places" "$tmp/$2.err" | sed 10q | diag
	fi
}

# counts_are DESC NAME SCANNED REWRITTEN UNCHANGED BAD: NAME's summary line
# gives these counts, the bad messages counted as skipped or errors.
counts_are() {
	_l=$(sed -n 's/^reroute: \([0-9]*\) scanned, \([0-9]*\) rewritten, [0-9]* refiled, \([0-9]*\) unchanged, \([0-9]*\) skipped, \([0-9]*\) errors, .*/\1 \2 \3 \4 \5/p' "$tmp/$2.out")
	set -- "$1" "$2" "$3" "$4" "$5" "$6" $_l
	if [ $# -eq 11 ] && [ "$3 $4 $5" = "$7 $8 $9" ] &&
	    [ $((${10} + ${11})) -eq "$6" ] &&
	    grep -E -q -e "$summary_re" "$tmp/$2.out"; then
		ok "$1"
	else
		not_ok "$1"
		diag "expected: $3 scanned, $4 rewritten, $5 unchanged, skipped + errors = $6"
		diag "stdout:"
		sed -n 1,5p "$tmp/$2.out" | diag
	fi
}

# The places of the good messages, which must not be reported.
: >good.places
for f in $all_files; do
	printf '%s\n' "$md_bad" | grep -q -x -F -e "$f" ||
		echo "x/maildir/$f" >>good.places
done
for l in $(grep -a -n '^From ' "$bad/bad.mbox" | cut -d: -f1); do
	printf '%s\n' "$mb_bad" | grep -q -x -e "$l" ||
		echo "x/bad.mbox at byte $(line_offset "$bad/bad.mbox" "$l")" >>good.places
done
mb_offset() {
	line_offset "$bad/bad.mbox" "$1"
}

plan $((7 + n_bad + 5 + 5 + n_notmsg + 3))

# 1. Through filter.table.
fresh x
stat_list x >x.stat
want x x.want
run /dev/null x -t "$table" x/maildir x/bad.mbox
status_is "bad messages: exit 65" 65 x
counts_are "bad messages: the summary counts" x \
	$((n_md + n_mb)) "$n_routed" $((n_md + n_mb - n_routed - n_bad)) "$n_bad"
same_tree "Maildir: good routed messages rewritten, bad ones byte-identical" \
	x.want/maildir x/maildir
same_bytes "bad.mbox: good routed messages rewritten, bad ones byte-identical" \
	x.want/bad.mbox x/bad.mbox
skip=
for f in $md_routed; do
	skip="$skip maildir/$f"
done
stat_list x >x.stat2
kept "Maildir: the bad files and the unrouted ones keep their inodes and mtimes" \
	x.stat x.stat2 $skip bad.mbox
not_reported "the good messages are not reported" x good.places
for f in $md_bad; do
	reported "reported: x/maildir/$f" x "x/maildir/$f"
done
for l in $mb_bad; do
	reported "reported: x/bad.mbox at byte $(mb_offset "$l") (line $l)" x \
		"x/bad.mbox at byte $(mb_offset "$l")"
done
is "stderr: one line for each bad message" "$n_bad" "$(wc -l <x.err)"

# 2. A second run: nothing to do but the bad messages, which stay as they are.
stat_list x >x.stat3
run /dev/null x2 -t "$table" x/maildir x/bad.mbox
status_is "second run: exit 65" 65 x2
counts_are "second run: the summary counts" x2 \
	$((n_md + n_mb)) 0 $((n_md + n_mb - n_bad)) "$n_bad"
same_tree "second run: nothing changes" x.want x
stat_list x >x.stat4
same_bytes "second run: every file keeps its inode and mtime (bad.mbox is not rewritten)" \
	x.stat3 x.stat4
is "second run: one line on stderr for each bad message" "$n_bad" \
	"$(wc -l <x2.err)"

# 3. Through an empty table: fields that do not parse route nothing and are
# not reported; messages that are not messages still are.
fresh y
cp -Rp y y.orig
stat_list y >y.stat
run /dev/null y -t empty.table y/maildir y/bad.mbox
status_is "empty table: exit 65 (messages that are not messages)" 65 y
counts_are "empty table: the summary counts" y \
	$((n_md + n_mb)) 0 $((n_md + n_mb - n_notmsg)) "$n_notmsg"
same_tree "empty table: nothing changes" y.orig y
stat_list y >y.stat2
same_bytes "empty table: every file keeps its inode and mtime" y.stat y.stat2
is "empty table: one line on stderr for each message that is not a message" \
	"$n_notmsg" "$(wc -l <y.err)"
for f in $md_notmsg; do
	reported "empty table: reported: y/maildir/$f" y "y/maildir/$f"
done
for l in $mb_notmsg; do
	reported "empty table: reported: y/bad.mbox at byte $(mb_offset "$l")" y \
		"y/bad.mbox at byte $(mb_offset "$l")"
done

# 4. -q: no summary, but the errors still go to stderr.
fresh z
run /dev/null z -q -t "$table" z/maildir z/bad.mbox
status_is "-q: exit 65" 65 z
empty_file "-q: nothing on stdout" z.out
is "-q: still one line on stderr for each bad message" "$n_bad" "$(wc -l <z.err)"

done_testing
