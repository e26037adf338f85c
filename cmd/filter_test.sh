#!/bin/sh
# filter_test.sh - reroute as a stdin filter (reroute -t TABLE -), end to end.
#
# Fixtures are testdata/messages/*.eml:
#   not-a-message*.eml  not a message: exit 65, nothing on stdout;
#   bad-*.eml           a recipient field that mentions a routed domain and
#                       does not parse: exit 65, the message unchanged on stdout;
#   any other           a message, with at least one NAME[.VARIANT].expect.
# Every message comes out byte-identical through an empty table.
#
# The output through testdata/tables/filter.table is not a golden copy of
# reroute's output: each NAME[.VARIANT].expect lists, by hand, the edits the
# contract asks for, and the expected bytes are built here from the input:
#
#   # comment
#   args ARG...               arguments after "-t TABLE" (word-split)
#   table empty               use an empty table instead of filter.table
#   top TEXT                  a field inserted at the top of the header block
#                             (after a From_ line), in this order, ending in
#                             the message's own line ending
#   sub LINE NTH OLD NEW      the NTH occurrence of OLD on input line LINE
#                             (1-based, From_ line included) becomes NEW
#
# No other byte may change. The test also undoes those edits on reroute's
# output (which must give the input back) and runs reroute again on its own
# output (which must change nothing).

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

msgs=$testdata/messages
table=$testdata/tables/filter.table
empty_table=$tmp/empty.table
: >"$empty_table"

# edits MODE EXPECT ORIGINAL [OUTPUT]: MODE "apply" prints ORIGINAL with
# EXPECT's edits; MODE "undo" prints OUTPUT with them undone (positions are
# taken from ORIGINAL). Fails on an expect file that does not fit ORIGINAL.
edits() {
	_file=${4:-$3}
	_nofinal=0
	has_final_newline "$_file" || _nofinal=1
	awk -v mode="$1" -v efile="$2" -v orig="$3" -v nofinal="$_nofinal" '
	function fail(msg) {
		print efile ": " msg | "cat 1>&2"
		failed = 1
		exit 2
	}
	function nth(s, t, k,   off, q) {
		off = 0
		for (; k > 0; k--) {
			q = index(substr(s, off + 1), t)
			if (q == 0)
				return 0
			off += q
		}
		return off
	}
	# Applies (or undoes) the edits of original line L to text o.
	function edit(o, L,   n, i, j, s, p, pos, idx, res, cur, delta, from_, to_) {
		n = 0
		for (s = 1; s <= ns; s++) {
			if (sl[s] != L)
				continue
			p = nth(src[L], so[s], sk[s])
			if (p == 0)
				fail("line " L " has no occurrence " sk[s] " of " so[s])
			for (i = n; i > 0 && pos[i] > p; i--) {
				pos[i + 1] = pos[i]
				idx[i + 1] = idx[i]
			}
			pos[i + 1] = p
			idx[i + 1] = s
			n++
		}
		if (n == 0)
			return o
		res = ""
		cur = 1
		delta = 0
		for (j = 1; j <= n; j++) {
			s = idx[j]
			from_ = mode == "apply" ? so[s] : sw[s]
			to_ = mode == "apply" ? sw[s] : so[s]
			p = pos[j] + delta
			if (p < cur)
				fail("line " L ": overlapping edits")
			if (substr(o, p, length(from_)) != from_)
				return o	# not there: leave the line for cmp to show
			res = res substr(o, cur, p - cur) to_
			cur = p + length(from_)
			if (mode == "undo")
				delta += length(sw[s]) - length(so[s])
		}
		return res substr(o, cur)
	}
	function emit(s) {
		if (nout++)
			printf "\n"
		printf "%s", s
	}
	BEGIN {
		while ((r = getline l < efile) > 0) {
			if (l ~ /^#/ || l ~ /^[ \t]*$/ || l ~ /^(args|table)( |$)/)
				continue
			if (substr(l, 1, 4) == "top ") {
				top[++ntop] = substr(l, 5)
				continue
			}
			nf = split(l, f, " ")
			if (f[1] == "sub" && nf == 5 && f[2] ~ /^[1-9][0-9]*$/ &&
			    f[3] ~ /^[1-9][0-9]*$/) {
				ns++
				sl[ns] = f[2] + 0
				sk[ns] = f[3] + 0
				so[ns] = f[4]
				sw[ns] = f[5]
				continue
			}
			fail("bad line: " l)
		}
		if (r < 0)
			fail("cannot be read")
		nsrc = 0
		while ((r = getline l < orig) > 0)
			src[++nsrc] = l
		if (r < 0)
			fail("cannot read " orig)
	}
	{ line[NR] = $0 }
	END {
		if (failed)
			exit 2
		for (s = 1; s <= ns; s++)
			if (sl[s] > nsrc)
				fail("line " sl[s] " is past the end of the message")
		from = src[1] ~ /^From / ? 1 : 0
		cr = src[from + 1] ~ /\r$/ ? "\r" : ""
		for (i = 1; i <= NR; i++) {
			if (mode == "apply") {
				if (i == from + 1)
					for (t = 1; t <= ntop; t++)
						emit(top[t] cr)
				emit(edit(line[i], i))
			} else if (i <= from) {
				emit(edit(line[i], i))
			} else if (i > from + ntop) {
				emit(edit(line[i], i - ntop))
			}
		}
		if (nout && !nofinal)
			printf "\n"
	}' "$_file"
}

# Sort the fixtures.
messages=
nonmessages=
badfields=
n_expect=0
for f in "$msgs"/*.eml; do
	name=${f##*/}
	name=${name%.eml}
	case $name in
	not-a-message*) nonmessages="$nonmessages $name" ;;
	bad-*) badfields="$badfields $name" messages="$messages $name" ;;
	*) messages="$messages $name" ;;
	esac
done
for e in "$msgs"/*.expect; do
	n_expect=$((n_expect + 1))
done
set -- $messages
n_messages=$#
set -- $nonmessages
n_nonmessages=$#
set -- $badfields
n_badfields=$#

plan $((n_messages * 2 + 1 + n_expect * 4 + 3 + n_nonmessages * 6 + n_badfields * 3))

# 1. Through an empty table every message comes out as it went in.
for name in $messages; do
	in=$msgs/$name.eml
	run "$in" "$name.empty" -t "$empty_table" -
	status_is "$name: exit 0 through an empty table" 0 "$name.empty"
	same_bytes "$name: unchanged through an empty table" \
		"$in" "$tmp/$name.empty.out"
done

# Every message that is not a bad-field case has its edits written down.
missing=
for name in $messages; do
	case $name in bad-*) continue ;; esac
	[ -f "$msgs/$name.expect" ] || missing="$missing $name"
done
if [ -z "$missing" ]; then
	ok "every message fixture has an .expect file"
else
	not_ok "every message fixture has an .expect file"
	diag "missing:$missing"
fi

# 2-4. Through filter.table (or the table and flags the .expect names): the
# expected edits and nothing else; undone, the input; run again, no change.
for e in "$msgs"/*.expect; do
	name=${e##*/}
	name=${name%.expect}
	fixture=${name%%.*}
	in=$msgs/$fixture.eml
	args=$(sed -n 's/^args //p' "$e")
	tbl=$table
	if grep -q '^table empty$' "$e"; then
		tbl=$empty_table
	fi
	desc="$name${args:+ ($args)}"
	edits apply "$e" "$in" >"$tmp/$name.want" ||
		bail_out "$e does not fit $in"

	set -f
	run "$in" "$name" -t "$tbl" $args -
	set +f
	status_is "$desc: exit 0" 0 "$name"
	same_bytes "$desc: the expected edits and no other change" \
		"$tmp/$name.want" "$tmp/$name.out"
	edits undo "$e" "$in" "$tmp/$name.out" >"$tmp/$name.undone" ||
		bail_out "$e does not fit $in"
	same_bytes "$desc: undoing the edits gives the input back" \
		"$in" "$tmp/$name.undone"

	set -f
	run "$tmp/$name.out" "$name.again" -t "$tbl" $args -
	set +f
	if [ "$rc" = 0 ] && cmp -s "$tmp/$name.out" "$tmp/$name.again.out"; then
		ok "$desc: a second run changes nothing"
	else
		not_ok "$desc: a second run changes nothing"
		diag "exit status $rc; stderr:"
		sed -n 1,5p "$tmp/$name.again.err" | diag
		cmp_diag "$tmp/$name.out" "$tmp/$name.again.out"
	fi
done

# 5. Errors. Empty input: no message, so nothing to write.
run /dev/null empty-input -t "$table" -
status_is "empty input: exit 65" 65 empty-input
empty_file "empty input: nothing on stdout" "$tmp/empty-input.out"
check "empty input: a message on stderr" test -s "$tmp/empty-input.err"

# Not a message: exit 65 and nothing on stdout, whatever the table.
for name in $nonmessages; do
	in=$msgs/$name.eml
	for t in filter empty; do
		tbl=$table
		[ $t = empty ] && tbl=$empty_table
		run "$in" "$name.$t" -t "$tbl" -
		status_is "$name ($t table): exit 65" 65 "$name.$t"
		empty_file "$name ($t table): nothing on stdout" \
			"$tmp/$name.$t.out"
		check "$name ($t table): a message on stderr" \
			test -s "$tmp/$name.$t.err"
	done
done

# A recipient field that mentions a routed domain and does not parse: the
# message goes through unchanged, reported, exit 65.
for name in $badfields; do
	in=$msgs/$name.eml
	run "$in" "$name" -t "$table" -
	status_is "$name: exit 65" 65 "$name"
	same_bytes "$name: the message unchanged on stdout" "$in" "$tmp/$name.out"
	check "$name: a message on stderr" test -s "$tmp/$name.err"
done

done_testing
