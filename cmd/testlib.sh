# testlib.sh - TAP helpers for reroute's shell tests, sourced by cmd/*_test.sh.
#
# The tests run under automake's tap-driver.sh with $top_srcdir (the source
# tree, read-only under make distcheck) and $top_builddir (where ./reroute is
# built). Run by hand they default to the tree this file is in:
#
#   top_srcdir=. top_builddir=/tmp/b-main sh cmd/filter_test.sh
#
# POSIX sh only (dash runs it). A test writes only below $tmp, a fresh
# mktemp -d directory removed on exit. Results compare bytes with cmp, as
# mblaze's t/lib.sh does; a failure prints the cmp verdict and a diff, with
# carriage returns shown as \r, as "# " diagnostics.

LC_ALL=C
export LC_ALL

if [ -z "${top_srcdir:-}" ]; then
	top_srcdir=$(dirname "$0")/..
fi
top_builddir=${top_builddir:-$top_srcdir}
reroute=$top_builddir/reroute
testdata=$top_srcdir/testdata
# Absolute, so that a test may cd into $tmp.
case $reroute in /*) ;; *) reroute=$(pwd)/$reroute ;; esac
case $testdata in /*) ;; *) testdata=$(pwd)/$testdata ;; esac

tap_n=0
tap_failed=0

tmp=$(mktemp -d "${TMPDIR:-/tmp}/reroute-test.XXXXXX") || {
	echo "Bail out! mktemp -d failed"
	exit 1
}
trap 'rm -rf "$tmp"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# plan N: print the TAP plan.
plan() {
	echo "1..$1"
}

# skip_all REASON: the whole test script is skipped (TAP plan 1..0).
skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

# bail_out REASON: stop the whole test script.
bail_out() {
	echo "Bail out! $*"
	exit 1
}

# diag TEXT...: print TEXT (or standard input, when no TEXT) as diagnostics.
diag() {
	if [ $# -gt 0 ]; then
		printf '%s\n' "$*" | sed 's/^/# /'
	else
		sed 's/^/# /'
	fi
}

# ok DESC / not_ok DESC: print one result.
ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

# check DESC CMD [ARG...]: ok when CMD succeeds.
check() {
	_desc=$1
	shift
	if "$@"; then
		ok "$_desc"
	else
		not_ok "$_desc"
		diag "failed: $*"
	fi
}

# visible FILE: FILE's lines for diagnostics, with CR shown as \r, other
# control bytes but tab as \ooo, and a missing final newline said; a file
# with NUL bytes as an od -c dump.
visible() {
	if ! tr -d '\000' <"$1" | cmp -s - "$1"; then
		od -An -c "$1"	# NUL bytes: a dump, not lines
		return
	fi
	awk 'BEGIN {
		for (i = 1; i < 32; i++)
			esc[sprintf("%c", i)] = sprintf("\\%03o", i)
		esc["\r"] = "\\r"
		esc["\t"] = "\t"
		esc[sprintf("%c", 127)] = "\\177"
	}
	/[[:cntrl:]]/ {
		s = ""
		for (i = 1; i <= length($0); i++) {
			c = substr($0, i, 1)
			s = s ((c in esc) ? esc[c] : c)
		}
		$0 = s
	}
	{ print }' "$1"
	if [ -s "$1" ] && ! has_final_newline "$1"; then
		echo '\ (no final newline)'
	fi
}

# cmp_diag EXPECTED ACTUAL: the cmp verdict and a diff as diagnostics.
cmp_diag() {
	cmp "$1" "$2" 2>&1 | diag
	visible "$1" >"$tmp/.expected.vis"
	visible "$2" >"$tmp/.actual.vis"
	diff -u "$tmp/.expected.vis" "$tmp/.actual.vis" |
		sed -e '1s/.*/--- expected/' -e '2s/.*/+++ actual/' -e 60q | diag
}

# same_bytes DESC EXPECTED ACTUAL: ok when both files hold the same bytes.
same_bytes() {
	if cmp -s "$2" "$3"; then
		ok "$1"
	else
		not_ok "$1"
		cmp_diag "$2" "$3"
	fi
}

# is DESC EXPECTED ACTUAL: ok when two strings are equal.
is() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "expected: $2"
		diag "     got: $3"
	fi
}

# run IN NAME ARG...: run reroute ARG... with standard input from IN; its
# output goes to $tmp/NAME.out and $tmp/NAME.err and its status to $rc.
run() {
	_in=$1
	_name=$2
	shift 2
	"$reroute" "$@" <"$_in" >"$tmp/$_name.out" 2>"$tmp/$_name.err"
	rc=$?
}

# status_is DESC WANT NAME: ok when $rc is WANT; else show NAME's stderr.
status_is() {
	if [ "$rc" = "$2" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "exit status $rc, expected $2; stderr:"
		sed -n 1,10p "$tmp/$3.err" | diag
	fi
}

# empty_file DESC FILE: ok when FILE is empty.
empty_file() {
	if [ ! -s "$2" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "not empty: $(wc -c <"$2") bytes:"
		visible "$2" | sed -n 1,10p | diag
	fi
}

# has_final_newline FILE: whether FILE's last byte is a newline.
has_final_newline() {
	[ "$(tail -c 1 "$1" | wc -l)" -eq 1 ]
}

# done_testing: exit 1 when some test failed.
done_testing() {
	[ "$tap_failed" -eq 0 ]
	exit $?
}

# ---------------------------------------------------------------------------
# Spools: helpers for cmd/spool_test.sh, crash_test.sh, lock_test.sh and
# badinput_test.sh. Fixtures are in testdata/spools/; their .expect files
# list by hand the edits a run through testdata/tables/filter.table makes:
#
#   message LINE          (mbox) the message whose From_ line is line LINE of
#                         the file: the lines below apply to it
#   file PATH             (Maildir) the message file PATH: the lines below
#                         apply to it (expect_section picks them)
#   top TEXT              a field inserted at the top of the header (below a
#                         From_ line), in this order, ending in the
#                         message's own line ending
#   sub LINE NTH OLD NEW  the NTH occurrence of OLD on line LINE of the
#                         message (its From_ line, if any, is line 1)
#                         becomes NEW
#   warning               (mbox) a warning about the message's Content-Length
#   error message         not a message: reported (whatever the table) and
#                         left as it is
#   error field           a recipient field that mentions a routed domain
#                         and does not parse: reported and left as it is
#   messages N            (mbox) the file holds N messages in all
#
# A message or file that no section names comes out byte-identical.

spools=$testdata/spools
lockhold=$top_builddir/cmd/lockhold
case $lockhold in /*) ;; *) lockhold=$(pwd)/$lockhold ;; esac

# The summary line of a spool run, as an extended regular expression.
summary_re='^reroute: [0-9]+ scanned, [0-9]+ rewritten, [0-9]+ refiled, [0-9]+ unchanged, [0-9]+ skipped, [0-9]+ errors, [0-9]+(\.[0-9]+)? s$'

# expect_apply EXPECT INPUT: INPUT (one message, or an mbox when EXPECT has
# "message" lines) with EXPECT's edits. Fails on an EXPECT that does not fit.
expect_apply() {
	_nofinal=0
	has_final_newline "$2" || _nofinal=1
	awk -v efile="$1" -v nofinal="$_nofinal" '
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
	# Line a of the input with the subs that apply to it.
	function edit(a,   o, n, i, j, s, p, pos, idx, res, cur) {
		o = line[a]
		n = 0
		for (s = 1; s <= ns; s++) {
			if (sabs[s] != a)
				continue
			p = nth(o, so[s], sk[s])
			if (p == 0)
				fail("line " a " of the input has no occurrence " \
				    sk[s] " of " so[s])
			for (i = n; i > 0 && pos[i] > p; i--) {
				pos[i + 1] = pos[i]
				idx[i + 1] = idx[i]
			}
			pos[i + 1] = p
			idx[i + 1] = s
			n++
		}
		res = ""
		cur = 1
		for (j = 1; j <= n; j++) {
			s = idx[j]
			if (pos[j] < cur)
				fail("line " a ": overlapping edits")
			res = res substr(o, cur, pos[j] - cur) sw[s]
			cur = pos[j] + length(so[s])
		}
		return res substr(o, cur)
	}
	function emit(s) {
		if (nout++)
			printf "\n"
		printf "%s", s
	}
	function is_from(l) {
		return substr(l, 1, 5) == "From " || substr(l, 1, 8) == bom "From "
	}
	BEGIN {
		bom = sprintf("%c%c%c", 239, 187, 191)
		cur = 0		# 0: the whole input is one message
		while ((r = getline l < efile) > 0) {
			if (l ~ /^#/ || l ~ /^[ \t]*$/ ||
			    l ~ /^(warning|error message|error field)$/ ||
			    l ~ /^file / || l ~ /^messages [0-9]+$/)
				continue
			if (l ~ /^message [1-9][0-9]*$/) {
				cur = substr(l, 9) + 0
				if (cur in seen)
					fail("message " cur " twice")
				seen[cur] = 1
				nsec++
				continue
			}
			if (substr(l, 1, 4) == "top ") {
				if (nsec && !cur)
					fail("top before the first message line")
				ntop[cur]++
				top[cur, ntop[cur]] = substr(l, 5)
				continue
			}
			nf = split(l, f, " ")
			if (f[1] == "sub" && nf == 5 && f[2] ~ /^[1-9][0-9]*$/ &&
			    f[3] ~ /^[1-9][0-9]*$/) {
				ns++
				ssec[ns] = cur
				sline[ns] = f[2] + 0
				sk[ns] = f[3] + 0
				so[ns] = f[4]
				sw[ns] = f[5]
				continue
			}
			fail("bad line: " l)
		}
		if (r < 0)
			fail("cannot be read")
	}
	{ line[NR] = $0 }
	END {
		if (failed)
			exit 2
		# Where each section inserts its fields: after line at[sec].
		for (c in seen) {
			c += 0
			if (c > NR || !is_from(line[c]))
				fail("line " c " is not a From_ line")
			at[c] = c
		}
		if (!nsec)
			at[0] = is_from(line[1]) ? 1 : 0
		for (s = 1; s <= ns; s++) {
			sabs[s] = (ssec[s] ? ssec[s] : 1) + sline[s] - 1
			if (sabs[s] > NR)
				fail("sub line " sline[s] " is past the end")
		}
		for (c in at) {
			if (!ntop[c])
				continue
			if (!NR)
				fail("fields to insert into an empty input")
			cr = line[at[c] + 1] ~ /\r$/ ? "\r" : ""
			for (t = 1; t <= ntop[c]; t++)
				ins[at[c]] = ins[at[c]] top[c, t] cr "\n"
		}
		for (i = 0; i <= NR; i++) {
			if (i > 0)
				emit(edit(i))
			if (i in ins) {
				s = ins[i]
				sub(/\n$/, "", s)
				emit(s)
			}
		}
		if (nout && !nofinal)
			printf "\n"
	}' "$2"
}

# expect_section EXPECT FILE: the lines of EXPECT's "file FILE" section.
expect_section() {
	awk -v f="$2" '
	$0 == "file " f { on = 1; found = 1; next }
	/^file / { on = 0 }
	on
	END { exit !found }' "$1"
}

# expect_files EXPECT: the files EXPECT names, one a line.
expect_files() {
	sed -n 's/^file //p' "$1"
}

# expect_sections EXPECT WHAT: the sections EXPECT names, one a line: the
# From_ line number of each "message" section, the path of each "file"
# section. WHAT is "all", "edited" (with top or sub lines), "warning",
# "error" (either kind), "error message" or "error field".
expect_sections() {
	awk -v what="$2" '
	function flush() {
		if (cur != "" && (what == "all" || (what in has)))
			print cur
		split("", has)
	}
	/^message [1-9][0-9]*$/ { flush(); cur = $2; next }
	/^file / { flush(); cur = substr($0, 6); next }
	/^(top|sub) / { has["edited"] = 1 }
	/^warning$/ { has["warning"] = 1 }
	/^error (message|field)$/ { has["error"] = 1; has[$0] = 1 }
	END { flush() }' "$1"
}

# expect_count EXPECT: the number of messages of an mbox EXPECT.
expect_count() {
	sed -n 's/^messages //p' "$1"
}

# expect_line_after EXPECT LINE: where line LINE of the input (a From_ line
# that EXPECT names) is in the output, below the fields inserted above it.
expect_line_after() {
	awk -v l="$2" '
	/^message [1-9][0-9]*$/ { cur = $2 + 0; next }
	/^top / && cur < l { n++ }
	END { print l + n }' "$1"
}

# section_edits FILE: whether an expect section (or file) has edits.
section_edits() {
	grep -E -q '^(top|sub) ' "$1"
}

# line_offset FILE LINE: the byte offset of line LINE (1-based) of FILE.
line_offset() {
	head -n $(($2 - 1)) "$1" | wc -c | tr -d ' '
}

# maildir_sizes FILE: "S W", FILE's size and its size with every bare LF
# counted as CRLF (Dovecot's ,S= and ,W= fields).
maildir_sizes() {
	_s=$(wc -c <"$1" | tr -d ' ')
	_lf=$(tr -cd '\n' <"$1" | wc -c | tr -d ' ')
	_crlf=$(awk '/\r$/ { n++ } END { print n + 0 }' "$1")
	# A last line that ends in CR but has no LF is no CRLF.
	if [ "$_s" -gt 0 ] && ! has_final_newline "$1" &&
	    [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\r' ]; then
		_crlf=$((_crlf - 1))
	fi
	echo "$_s $((_s + _lf - _crlf))"
}

# maildir_name NAME FILE: the Maildir file name NAME with its ,S= and ,W=
# fields (if any, in the part before the info separator) set to FILE's sizes.
maildir_name() {
	set -- "$1" $(maildir_sizes "$2")
	printf '%s\n' "$1" | sed -e "s/^\([^:!;]*\),S=[0-9]*/\1,S=$2/" \
		-e "s/^\([^:!;]*\),W=[0-9]*/\1,W=$3/"
}

# copy_maildir SRC DST: a copy of the Maildir SRC, with the cur/, new/ and
# tmp/ directories git does not keep made in every folder that has cur/ or
# new/ (the root and its .Name subfolders).
copy_maildir() {
	cp -R "$1" "$2" || return 1
	for _d in "$2" "$2"/.[!.]*; do
		[ -d "$_d/cur" ] || [ -d "$_d/new" ] || continue
		mkdir -p "$_d/cur" "$_d/new" "$_d/tmp" || return 1
	done
}

# settle DIR...: modes 0700 (directories) and 0600 (files) and a fixed mtime
# on everything below each DIR, as a mail store has them (a git checkout
# has neither).
settle() {
	for _d; do
		find "$_d" -type d -exec chmod 700 {} + &&
		find "$_d" -type f -exec chmod 600 {} + &&
		find "$_d" -exec touch -t 202403050914.07 {} + || return 1
	done
}

# tree_list DIR: every entry below DIR, dot-files included, as "TYPE PATH"
# (d, f or ?), sorted.
tree_list() {
	(cd "$1" && find . ! -name . \( -type d -exec printf 'd %s\n' {} + \) \
		-o \( -type f -exec printf 'f %s\n' {} + \) \
		-o -exec printf '? %s\n' {} +) | sort
}

# stat_list DIR: "PATH INODE MTIME MODE" for every file below DIR, sorted.
stat_list() {
	(cd "$1" && find . -type f -exec stat -c '%n %i %Y %a' {} +) | sort
}

# kept DESC BEFORE AFTER SKIP...: ok when every file of the stat_list BEFORE
# whose path is not one of SKIP (as "./PATH") is in AFTER unchanged: same
# inode, mtime and mode.
kept() {
	_desc=$1
	_before=$2
	_after=$3
	shift 3
	printf '%s\n' "$@" >"$tmp/.skip"
	awk 'NR == FNR { skip["./" $0] = 1; next } !($1 in skip)' \
		"$tmp/.skip" "$_before" | sort >"$tmp/.keep"
	sort "$_after" | comm -23 "$tmp/.keep" - >"$tmp/.lost"
	if [ ! -s "$tmp/.lost" ]; then
		ok "$_desc"
	else
		not_ok "$_desc"
		diag "changed or gone (path inode mtime mode before):"
		sed 10q "$tmp/.lost" | diag
	fi
}

# absent DESC PATH: PATH does not exist.
absent() {
	if [ ! -e "$2" ] && [ ! -L "$2" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "$2 exists:"
		(cd "$2" 2>/dev/null && find . | sed 10q) | diag
	fi
}

# same_tree DESC WANT GOT: ok when the trees WANT and GOT hold the same
# entries (names and types, dot-files included) and the same bytes in every
# file.
same_tree() {
	tree_list "$2" >"$tmp/.want.tree"
	tree_list "$3" >"$tmp/.got.tree"
	if ! cmp -s "$tmp/.want.tree" "$tmp/.got.tree"; then
		not_ok "$1"
		diag "entries differ:"
		diff -u "$tmp/.want.tree" "$tmp/.got.tree" | sed -e 1,2d -e 40q | diag
		return
	fi
	_bad=
	while read -r _t _p; do
		[ "$_t" = f ] || continue
		cmp -s "$2/$_p" "$3/$_p" || _bad="$_bad $_p"
	done <"$tmp/.want.tree"
	if [ -z "$_bad" ]; then
		ok "$1"
		return
	fi
	not_ok "$1"
	diag "files that differ:$_bad"
	_want=$2
	_got=$3
	set -- $_bad
	cmp_diag "$_want/$1" "$_got/$1"
}

# file_has DESC FILE EREGEX / file_lacks DESC FILE EREGEX: ok when a line of
# FILE matches (does not match) EREGEX.
file_has() {
	if grep -E -q -e "$3" "$2"; then
		ok "$1"
	else
		not_ok "$1"
		diag "no line matches /$3/ in:"
		sed -n 1,10p "$2" | diag
	fi
}

file_lacks() {
	if ! grep -E -q -e "$3" "$2"; then
		ok "$1"
	else
		not_ok "$1"
		diag "a line matches /$3/:"
		grep -E -e "$3" "$2" | sed 10q | diag
	fi
}

# summary_is DESC NAME COUNTS: NAME's stdout (see run) is exactly one summary
# line whose counts read COUNTS, "N scanned, N rewritten, N unchanged,
# N skipped, N errors", where a count written * may be any number.
summary_is() {
	_re=$(printf '%s' "$3" | sed 's/\*/[0-9]+/g')
	if [ "$(wc -l <"$tmp/$2.out")" -eq 1 ] &&
	    grep -E -q -e "$summary_re" "$tmp/$2.out" &&
	    grep -E -q -e "^reroute: $_re, [0-9]+(\.[0-9]+)? s\$" "$tmp/$2.out"; then
		ok "$1"
	else
		not_ok "$1"
		diag "expected one line: reroute: $3, T s"
		diag "stdout:"
		sed -n 1,5p "$tmp/$2.out" | diag
	fi
}

# re_quote TEXT: TEXT with the characters special in an extended regular
# expression escaped.
re_quote() {
	printf '%s\n' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'
}

# now_ms: milliseconds since the epoch.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# wait_line FILE TEXT SECONDS: wait until FILE has a line TEXT; fails after
# SECONDS.
wait_line() {
	_end=$(($(now_ms) + $3 * 1000))
	until grep -q -x -F -e "$2" "$1" 2>/dev/null; do
		[ "$(now_ms)" -lt "$_end" ] || return 1
		sleep 0.02
	done
}

# gen_spool KIND N FIRST OUT WANT: N generated messages, numbered from FIRST,
# about half of them routed through filter.table, of mixed sizes and line
# endings. KIND "maildir" writes a Maildir OUT (cur/, new/ and a .Archive
# subfolder, names with and without ,S=/,W= fields and flags); KIND "mbox"
# writes an mbox file OUT. WANT gets what an uninterrupted run through
# filter.table must make of OUT: the same spool with the routed messages
# rewritten (and renamed, where their names carry sizes).
gen_spool() {
	if [ "$1" = maildir ]; then
		for _d in "$4" "$5"; do
			mkdir -p "$_d/cur" "$_d/new" "$_d/tmp" "$_d/.Archive/cur" \
				"$_d/.Archive/new" "$_d/.Archive/tmp" || return 1
		done
	fi
	awk -v kind="$1" -v n="$2" -v first="$3" -v out="$4" -v want="$5" '
	function hms(i) {
		return sprintf("%02d:%02d:%02d", int(i / 3600) % 24,
		    int(i / 60) % 60, i % 60)
	}
	# Message i, as stored (rw 0) or as rewritten (rw 1).
	function message(i, rw,   k, e, h, b, j, nb, to) {
		k = i % 4	# 0, 1: routed; 2, 3: not
		e = i % 7 == 0 ? "\r\n" : "\n"
		h = ""
		if (rw && k == 0)
			h = "X-Rerouted-From: user" i "@cpandl.net" e
		if (rw && k == 1)
			h = "Delivered-To: user" i "@adatum.com" e \
			    "X-Rerouted-From: user" i "@cpandl.org" e
		h = h "Return-Path: <sender" i "@example.org>" e
		if (k == 0)
			h = h "Delivered-To: user" i "@" \
			    (rw ? "adatum.com" : "cpandl.net") e
		if (k == 2)
			h = h "Delivered-To: user" i "@adatum.com" e
		h = h "Received: from mail.example.org (mail.example.org [192.0.2.25])" e
		h = h "\tby mx1.adatum.com (Postfix) with ESMTPS id 4Q" i e
		h = h "Date: Mon, 18 Mar 2024 " hms(i) " +0000" e
		h = h "From: Sender " i " <sender" i "@example.org>" e
		if (k == 0)
			to = "User " i " <user" i "@cpandl.net>"
		else if (k == 1)
			to = "User " i " <user" i "@cpandl.org>"
		else if (k == 2)
			to = "user" i "@adatum.com"
		else
			to = "list@example.org"
		h = h "To: " to e
		if (k == 1)
			h = h "Cc: colleague@example.org" e
		h = h "Subject: Message " i " of a generated spool" e
		h = h "Message-ID: <" i ".gen@example.org>" e e
		b = ""
		nb = i % 50 == 0 ? 400 : (i * 37) % 60 + 1
		for (j = 1; j <= nb; j++)
			b = b "Line " j " of message " i \
			    ": lorem ipsum dolor sit amet, consectetur adipiscing." e
		if (i % 9 == 0)
			b = b ">From the archive of message " i "." e
		return h b
	}
	function sizes(s,   t, lf, crlf) {
		t = s
		lf = gsub(/\n/, "", t)
		t = s
		crlf = gsub(/\r\n/, "", t)
		return ",S=" length(s) ",W=" (length(s) + lf - crlf)
	}
	function mdname(i, s,   name) {
		name = (i % 10 == 3 ? ".Archive/" : "") (i % 5 == 0 ? "new/" : "cur/")
		name = name (1710000000 + i) ".M" i "P" (4000 + i % 97) ".gen.adatum.com"
		if (i % 3)
			name = name sizes(s)
		if (i % 5)
			name = name (i % 11 == 1 ? "!2,FS" : i % 2 ? ":2,S" : ":2,RS")
		return name
	}
	BEGIN {
		for (i = first; i < first + n; i++) {
			o = message(i, 0)
			w = message(i, 1)
			if (kind == "maildir") {
				f = out "/" mdname(i, o)
				printf "%s", o >f
				close(f)
				f = want "/" mdname(i, w)
				printf "%s", w >f
				close(f)
			} else {
				e = i % 7 == 0 ? "\r\n" : "\n"
				fl = "From sender" i "@example.org Mon Mar 18 " hms(i) " 2024" e
				printf "%s", fl o e >out
				printf "%s", fl w e >want
			}
		}
	}'
}

[ -x "$reroute" ] || bail_out "$reroute is not built"

# ---------------------------------------------------------------------------
# Refile: helpers for cmd/refile_test.sh, refile_crash_test.sh, mda_test.sh
# and hostile_test.sh (reroute --deliver TEMPLATE). Fixtures are in
# testdata/refile/ (its README says what each is).
#
# A destination is checked as a multiset of messages, by bytes: a Maildir
# as "MAILBOX SUB INFO MD5" lines (maildir_digest), an mbox as
# "MAILBOX MD5 FROM" lines (mbox_digest). The bytes a delivered message
# must have are those reroute's stdin filter prints for it
# (rewrite_oracle), tested on its own by cmd/filter_test.sh.

refile_data=$testdata/refile
reroute_fault=$top_builddir/cmd/reroute-fault
case $reroute_fault in /*) ;; *) reroute_fault=$(pwd)/$reroute_fault ;; esac
cr=$(printf '\r')

# The host part of the Maildir names reroute makes: the host name, with
# '/' and ':' written \057 and \072 as the Maildir convention has it.
maildir_host=$(uname -n | sed -e 's|/|\\057|g' -e 's|:|\\072|g')

# An ERE for the name of a file reroute delivers into a Maildir:
# "MTIME.R<24 hex digits>.HOST", then an optional info part.
refile_name_re="^[0-9]+\\.R[0-9a-fA-F]{24}\\.$(re_quote "$maildir_host")([:!;]2,[A-Za-z]*)?\$"

# An ERE for a From_ line reroute writes itself: "From SENDER DATE", DATE
# in asctime form ("Mon Mar 18 09:14:07 2024", the day padded with a space).
asctime_re='(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 123][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] [0-9]{4}'

# skip_test REASON: one test, skipped.
skip_test() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n # SKIP $*"
}

# rewrite_oracle IN OUT ARG...: OUT gets what reroute's stdin filter, run
# with ARG... (the table options), prints for the message IN: the bytes a
# refile must deliver for it. Bails out when the filter fails.
rewrite_oracle() {
	_ro_in=$1
	_ro_out=$2
	shift 2
	"$reroute" "$@" - <"$_ro_in" >"$_ro_out" 2>"$tmp/.oracle.err" ||
		bail_out "the stdin filter fails on $_ro_in: $(sed 3q "$tmp/.oracle.err")"
}

# with_newline IN OUT: OUT is IN with a newline added when its last byte is
# not one (a message in an mbox ends in a newline, whatever it was).
with_newline() {
	cat "$1" >"$2" || return 1
	if [ -s "$1" ] && ! has_final_newline "$1"; then
		echo >>"$2"
	fi
}

# with_status PLACE IN OUT: OUT is IN as reroute delivers it into an mbox
# when it comes from the Maildir file PLACE: a message from cur/ with an
# info part ("2,FLAGS") gets "Status: O" (RO when seen) and, for the flags
# R F D T, "X-Status: " with A F T D, at its top in its own line ending;
# any other is IN as it is.
with_status() {
	case $1 in
	cur/*[:!\;]2,* | */cur/*[:!\;]2,*) ;;
	*) cat "$2" >"$3"; return ;;
	esac
	_flags=${1##*2,}
	awk -v flags="$_flags" 'NR == 1 {
		e = /\r$/ ? "\r" : ""
		printf "Status: %sO%s\n", index(flags, "S") ? "R" : "", e
		x = (index(flags, "R") ? "A" : "") (index(flags, "F") ? "F" : "") \
		    (index(flags, "D") ? "T" : "") (index(flags, "T") ? "D" : "")
		if (x != "")
			printf "X-Status: %s%s\n", x, e
	} { print }' "$2" >"$3"
	# awk adds a newline the input may not end with; cut it off again.
	if [ -s "$2" ] && ! has_final_newline "$2"; then
		head -c -1 "$3" >"$3.cut" && mv "$3.cut" "$3"
	fi
}

# mbox_chunk MBOX FIRST [NEXT]: lines FIRST to NEXT-1 of MBOX (to its end
# without NEXT), as stored: a message with its From_ line and separator.
mbox_chunk() {
	if [ -n "${3:-}" ]; then
		sed -n "$2,$(($3 - 1))p" "$1"
	else
		sed -n "$2,\$p" "$1"
	fi
}

# mbox_body MBOX FIRST [NEXT]: the message stored at lines FIRST to NEXT-1
# of MBOX as a message: without its From_ line and without its last line
# when that is blank (the separator), with one '>' taken off every line
# that matches ^>+From (the escaping undone).
mbox_body() {
	mbox_chunk "$@" | sed -e 1d -e "\$ { /^$cr\\{0,1\\}\$/d; }" \
		-e 's/^>\(>*From \)/\1/'
}

# mbox_split MBOX DIR [o]: splits MBOX as reroute writes one (every body
# line that could be taken for a From_ line escaped) at each line that
# starts "From ". Message N goes to DIR/N: the lines below its From_ line,
# less the blank separator line that ends it, with the escaping undone (one
# '>' off ^>+From lines; with "o", mboxo: off ^>From lines only). DIR/from
# gets "N FROM" for each, FROM its From_ line without a byte-order mark or
# line ending. What does not fit that form (no From_ line first, a message
# that does not end in a blank line, no final newline) is printed, and the
# function fails.
mbox_split() {
	rm -rf "$2" && mkdir "$2" || return 1
	awk -v dir="$2" -v fmt="${3:-rd}" '
	function end_msg() {
		if (!held || (h != "" && h != "\r"))
			print "message " n " (line " start ") does not end in a blank line"
		else
			held = 0
		if (held)
			printf "%s\n", h > f
		printf "" > f
		close(f)
	}
	BEGIN { bom = sprintf("%c%c%c", 239, 187, 191) }
	{
		l = $0
		if (NR == 1 && substr(l, 1, 3) == bom)
			l = substr(l, 4)
		if (substr(l, 1, 5) == "From ") {
			if (n)
				end_msg()
			n++
			start = NR
			f = dir "/" n
			fl = l
			sub(/\r$/, "", fl)
			print n, fl > (dir "/from")
			held = 0
			next
		}
		if (!n) {
			print "line " NR " comes before the first From_ line"
			next
		}
		if (held)
			printf "%s\n", h > f
		if (fmt == "o" ? l ~ /^>From / : l ~ /^>+From /)
			l = substr(l, 2)
		h = l
		held = 1
	}
	END {
		if (n)
			end_msg()
		printf "" > (dir "/from")
	}' "$1" >"$tmp/.split.problems" || return 1
	if [ -s "$1" ] && ! has_final_newline "$1"; then
		echo "no newline at the end" >>"$tmp/.split.problems"
	fi
	if [ -s "$tmp/.split.problems" ]; then
		cat "$tmp/.split.problems"
		return 1
	fi
}

# mbox_digest MBOX [NAME]: "NAME MD5 FROM" for each message of MBOX (see
# mbox_split), sorted; NAME defaults to MBOX's base name. Fails, printing
# what is wrong on standard error, when MBOX is not in the form reroute
# writes (the lines it could read are printed all the same).
mbox_digest() {
	_md_name=${2:-${1##*/}}
	mbox_split "$1" "$tmp/.digest" >"$tmp/.digest.problems"
	_md_rc=$?
	(cd "$tmp/.digest" && find . -type f ! -name from -exec md5sum {} +) |
	awk -v name="$_md_name" -v froms="$tmp/.digest/from" '
	BEGIN {
		while ((getline l < froms) > 0) {
			k = l
			sub(/ .*/, "", k)
			from[k] = substr(l, length(k) + 2)
		}
	}
	{
		k = $2
		sub(/^\.\//, "", k)
		print name, $1, from[k]
	}' | sort
	if [ "$_md_rc" != 0 ]; then
		sed "s|^|$_md_name: |" "$tmp/.digest.problems" >&2
		return 1
	fi
}

# maildir_digest ROOT: "MAILBOX SUB INFO MD5" for every message file (not
# a dot-file) in a cur/ or new/ directory below ROOT, sorted: MAILBOX its Maildir's path
# below ROOT, SUB cur or new, INFO the info part of its name without its
# separator ("2,FLAGS"), or "-" when it has none, MD5 the MD5 of its bytes.
maildir_digest() {
	(cd "$1" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) \
		! -name '.*' -exec md5sum {} +) | awk '{
		p = substr($0, 35)
		sub(/^\.\//, "", p)
		name = p
		sub(/.*\//, "", name)
		box = substr(p, 1, length(p) - length(name) - 1)
		sub_ = box
		sub(/.*\//, "", sub_)
		box = substr(box, 1, length(box) - 4)
		if (box == "")
			box = "."
		info = "-"
		if (match(name, /[:!;]2,/))
			info = substr(name, RSTART + 1)
		print box, sub_, info, $1
	}' | sort
}

# maildir_names ROOT: the names of the message files in the cur/ and new/
# directories below ROOT, one a line.
maildir_names() {
	(cd "$1" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) \
		! -name '.*') | sed 's|.*/||'
}

# same_list DESC WANT GOT: ok when the files WANT and GOT hold the same
# lines (multisets: both are sorted first); else the lines that differ.
same_list() {
	sort "$2" >"$tmp/.want.list"
	sort "$3" >"$tmp/.got.list"
	if cmp -s "$tmp/.want.list" "$tmp/.got.list"; then
		ok "$1"
	else
		not_ok "$1"
		diag "lines missing (-) and extra (+):"
		diff "$tmp/.want.list" "$tmp/.got.list" | grep '^[<>]' |
			sed -e 's/^</-/' -e 's/^>/+/' -e 20q | diag
	fi
}

# leftovers DIR...: every file below the DIRs that a finished run must not
# leave: files in a tmp/ directory, dotlocks (*.lock) and reroute's
# temporary mbox files (.*.reroute.*), one a line.
leftovers() {
	for _lo; do
		(cd "$_lo" 2>/dev/null && find . \( -type f -path '*/tmp/*' \) \
			-o -name '*.lock' -o -name '.*.reroute.*') |
			sed "s|^\.|$_lo|"
	done
}

# owner_of PATH: "USER:GROUP MODE" of PATH (not following a symlink).
owner_of() {
	stat -c '%U:%G %a' "$1" 2>&1
}

# gen_refile KIND N FIRST OUT LIST MSGS [KEEP]: N generated messages,
# numbered from FIRST, for refile tests through filter.table: by i % 10,
#   0 Delivered-To uA@cpandl.net                   full     uA
#   1 Delivered-To uA@adatum.com                   full     uA (as it is)
#   2 To uA@cpandl.org, Cc colleague@example.org   partial  uA
#   3 To list@example.org                          none
#   4 Delivered-To uA@cpandl.net, uB@cpandl.org    full     uA uB
#   5 X-Original-To sales@cpandl.net               full     team
#   6 Delivered-To nobody@example.org, To uA@cpandl.net    none
#   7 Delivered-To uA@internal.adatum.com, no Return-Path  full uA
#   8 Delivered-To uA@cpandl.net, stranger@example.net     partial uA
#   9 Delivered-To uB@cpandl.org                   full     uB
# where uA is u(i % 5) and uB u((i + 2) % 5), all @adatum.com; of mixed
# sizes, LF and CRLF, with body lines "From ..." and ">From ...". KIND
# "maildir" writes a Maildir OUT (cur/ with flags, new/, a .Archive
# subfolder); KIND "mbox" an mboxrd file OUT, and KEEP gets what must be
# left of it after a refile: the partial and unrouted messages, as stored.
# LIST gets "ID PLACE KIND SENDER MAILBOX..." for each message (PLACE its
# path below OUT, "-" in an mbox; SENDER its Return-Path address or
# MAILER-DAEMON), MSGS/ID each message's bytes (unescaped, no From_ line).
gen_refile() {
	mkdir -p "$6" || return 1
	if [ "$1" = maildir ]; then
		mkdir -p "$4/cur" "$4/new" "$4/tmp" "$4/.Archive/cur" \
			"$4/.Archive/new" "$4/.Archive/tmp" || return 1
	fi
	awk -v kind="$1" -v n="$2" -v first="$3" -v out="$4" -v list="$5" \
	    -v msgs="$6" -v keep="${7:-/dev/null}" '
	function hms(i) {
		return sprintf("%02d:%02d:%02d", int(i / 3600) % 24,
		    int(i / 60) % 60, i % 60)
	}
	function message(i,   k, e, a, b, h, body, j, nb) {
		k = i % 10
		e = i % 7 == 0 ? "\r\n" : "\n"
		a = "u" (i % 5)
		b = "u" ((i + 2) % 5)
		h = ""
		if (k != 7)
			h = h "Return-Path: <sender" i "@example.org>" e
		if (k == 0)
			h = h "Delivered-To: " a "@cpandl.net" e
		else if (k == 1)
			h = h "Delivered-To: " a "@adatum.com" e
		else if (k == 4)
			h = h "Delivered-To: " a "@cpandl.net, " b "@cpandl.org" e
		else if (k == 5)
			h = h "X-Original-To: sales@cpandl.net" e
		else if (k == 6)
			h = h "Delivered-To: nobody@example.org" e
		else if (k == 7)
			h = h "Delivered-To: " a "@internal.adatum.com" e
		else if (k == 8)
			h = h "Delivered-To: " a "@cpandl.net, stranger@example.net" e
		else if (k == 9)
			h = h "Delivered-To: " b "@cpandl.org" e
		h = h "Received: from mail.example.org (mail.example.org [192.0.2.25])" e
		h = h "\tby mx1.adatum.com (Postfix) with ESMTPS id 5R" i e
		h = h "Date: Tue, 19 Mar 2024 " hms(i) " +0000" e
		h = h "From: Sender " i " <sender" i "@example.org>" e
		if (k == 2)
			h = h "To: User <" a "@cpandl.org>" e "Cc: colleague@example.org" e
		else if (k == 3)
			h = h "To: list@example.org" e
		else
			h = h "To: " a "@cpandl.net" e
		h = h "Subject: Message " i " of a generated refile spool" e
		h = h "Message-ID: <" i ".refile@example.org>" e e
		body = ""
		nb = i % 50 == 0 ? 300 : (i * 37) % 40 + 1
		for (j = 1; j <= nb; j++) {
			body = body "Line " j " of message " i \
			    ": lorem ipsum dolor sit amet, consectetur adipiscing." e
			if (j == 2 && i % 3 == 0)
				body = body "From the archive of message " i "." e
			if (j == 3 && i % 4 == 0)
				body = body ">From a quoted line of message " i "." e
		}
		return h body
	}
	function what(i,   k, a, b) {
		k = i % 10
		a = "u" (i % 5) "@adatum.com"
		b = "u" ((i + 2) % 5) "@adatum.com"
		if (k == 0 || k == 1 || k == 7)
			return "full " a
		if (k == 2 || k == 8)
			return "partial " a
		if (k == 4)
			return "full " a " " b
		if (k == 5)
			return "full team@adatum.com"
		if (k == 9)
			return "full " b
		return "none"
	}
	function mdname(i,   name) {
		name = (i % 6 == 1 ? ".Archive/" : "") (i % 5 == 0 ? "new/" : "cur/")
		name = name (1710000000 + i) ".M" i "P" (4000 + i % 97) ".gen.adatum.com"
		if (i % 3 == 0)
			name = name ",S=" length(message(i))
		if (i % 5)
			name = name (i % 11 == 1 ? "!2,FS" : i % 2 ? ":2,S" : ":2,RS")
		return name
	}
	function escaped(s,   t, out, p) {
		# mboxrd: one more ">" on every line matching ^>*From .
		out = ""
		t = s
		while ((p = index(t, "\n")) > 0) {
			l = substr(t, 1, p)
			if (l ~ /^>*From /)
				l = ">" l
			out = out l
			t = substr(t, p + 1)
		}
		return out t
	}
	BEGIN {
		for (i = first; i < first + n; i++) {
			m = message(i)
			w = what(i)
			f = msgs "/" i
			printf "%s", m > f
			close(f)
			sender = i % 10 == 7 ? "MAILER-DAEMON" : "sender" i "@example.org"
			split(w, wf, " ")
			if (kind == "maildir") {
				place = mdname(i)
				f = out "/" place
				printf "%s", m > f
				close(f)
			} else {
				place = "-"
				e = i % 7 == 0 ? "\r\n" : "\n"
				chunk = "From sender" i "@example.org Tue Mar 19 " hms(i) " 2024" e \
				    escaped(m) e
				printf "%s", chunk > out
				if (wf[1] != "full")
					printf "%s", chunk > keep
			}
			rest = w
			sub(/^[a-z]+/, "", rest)
			print i, place, wf[1], sender rest > list
		}
		printf "" > keep
		if (kind == "mbox")
			printf "" > out
	}'
}

# state_files DIR: the files below DIR, outside cur/ new/ tmp/, that reroute
# may keep as its own state beside a source spool (a journal of what it
# delivered): hidden regular files whose name has "reroute" in it, other
# than a temporary mbox (.NAME.reroute.*), one a line, as paths below DIR.
state_files() {
	(cd "$1" && find . -type f -name '.*reroute*' ! -name '.*.reroute.*' \
		! -path '*/cur/*' ! -path '*/new/*' ! -path '*/tmp/*') |
		sed 's|^\./||'
}

# same_source DESC WANT GOT: same_tree WANT GOT, where GOT may also hold
# reroute's state files (see state_files).
same_source() {
	rm -rf "$tmp/.source" && cp -Rp "$3" "$tmp/.source" ||
		bail_out "cannot copy $3"
	state_files "$tmp/.source" | while read -r _f; do
		rm -f "$tmp/.source/$_f"
	done
	same_tree "$1" "$2" "$tmp/.source"
}
