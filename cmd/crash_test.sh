#!/bin/sh
# crash_test.sh - reroute killed with SIGKILL at many moments, or hit by an
# I/O error, then run again: nothing is lost, nothing is duplicated, every
# routed message is rewritten exactly once, nothing is left behind.
#
# The test build cmd/reroute-fault SIGKILLs itself just before its Nth
# file-system mutation (REROUTE_FAULT=kill:N; mutations are the calls of
# write, fsync, rename, link, unlink, mkdir and open-for-create, counted
# from 1), or makes the Nth call of one of them fail (REROUTE_FAULT=
# OP:N:ERRNO). Spools come from gen_spool (cmd/testlib.sh): 500 messages,
# about half routed, of mixed sizes, LF and CRLF, in a Maildir (cur/, new/, a
# .Archive subfolder, names with and without ,S=/,W= fields) and in an mbox,
# and a small Maildir of 13 messages.
#
# For each spool, R is the result of an uninterrupted run on a copy; it must
# be the spool gen_spool says (names, bytes, modes and mtimes). Then, for
# each fault, on a fresh copy:
#   - reroute-fault dies by SIGKILL (status 137), or exits 0 when N is past
#     its last mutation; with an injected error it exits 73, 74 or 75;
#   - what it leaves is safe: every message is there, in its folder, as it
#     was or as rewritten, under a name whose ,S= is its size (a message may
#     be there twice, old and new, until the rerun); an mbox is the original
#     or R, byte for byte; after an injected error (the process lived to
#     clean up) no tmp/ file, temporary mbox or dotlock is left either;
#   - reroute run again exits 0, and the spool is then R exactly: the same
#     entries (no tmp/ file, no ".m.mbox.reroute.*", no m.mbox.lock), the
#     same bytes, modes and mtimes. Equal to R means every routed message is
#     rewritten once and the multiset of messages is the original one.
# Kill points: every one for the mbox and the small Maildir (until the run
# gets past its last mutation); 1, 2, 3, 10, 57, 250, 501, 1000 and one far
# past the end for the big Maildir, and two runs killed one after the other.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

fault=$top_builddir/cmd/reroute-fault
case $fault in /*) ;; *) fault=$(pwd)/$fault ;; esac
[ -x "$fault" ] || bail_out "$fault is not built"
table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"

# signature DIR: every entry below DIR; for files their mode, mtime and an
# MD5 of their bytes.
signature() {
	(cd "$1" && find . -type d | sed 's/^/d /' | sort &&
	find . -type f -exec stat -c '%n %a %Y' {} + | sort &&
	find . -type f -exec md5sum {} + | sort -k 2)
}

# known_list MAILDIR...: "MD5 FOLDER/STEM" for every message file, STEM the
# unique part of its name (before any , : ! or ;).
known_list() {
	for _d; do
		(cd "$_d" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) \
			! -name '.*' -exec md5sum {} +)
	done | awk '{
		p = $2
		sub(/[,:!;][^\/]*$/, "", p)
		print $1, p
	}' | sort -u
}

# maildir_state KNOWN DIR: prints what is unsafe in the Maildir DIR after a
# crash: a message file whose bytes are neither its original ones nor its
# rewritten ones (per KNOWN, a known_list of both), a message gone, a name
# whose ,S= is not the size of the file.
maildir_state() {
	(cd "$2" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) \
		! -name '.*' -exec md5sum {} +) >"$tmp/.state.md5"
	(cd "$2" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) \
		! -name '.*' -exec stat -c '%s %n' {} +) >"$tmp/.state.size"
	awk -v known="$1" -v sizes="$tmp/.state.size" '
	FILENAME == known { k[$1] = $2; all[$2] = 1; next }
	FILENAME == sizes { sz[$2] = $1; next }
	{
		path = $2
		key = path
		sub(/[,:!;][^\/]*$/, "", key)
		base = path
		sub(/.*\//, "", base)
		if (!($1 in k))
			print path ": neither the original nor the rewritten message"
		else if (k[$1] != key)
			print path ": holds message " k[$1]
		seen[key] = 1
		stem = base
		sub(/[:!;].*/, "", stem)
		if (match(stem, /,S=[0-9]+/) &&
		    substr(stem, RSTART + 3, RLENGTH - 3) + 0 != sz[path] + 0)
			print path ": " sz[path] " bytes, but its name says " \
			    substr(stem, RSTART, RLENGTH)
	}
	END {
		for (key in all)
			if (!(key in seen))
				print "message " key " is gone"
	}' "$1" "$tmp/.state.size" "$tmp/.state.md5"
}

# prepare NAME KIND N FIRST: master copy NAME.master (a Maildir, or a
# directory holding m.mbox) of N generated messages (numbered from FIRST) as
# a mail store has them, the expected result NAME.want, and R: NAME.r, an
# uninterrupted run on a copy. Sets $spool, the spool's path below a copy.
# Two tests.
prepare() {
	if [ "$2" = maildir ]; then
		gen_spool maildir "$3" "$4" "$1.master" "$1.want" ||
			bail_out "cannot generate $1"
		spool=
	else
		mkdir "$1.master" "$1.want" &&
		gen_spool mbox "$3" "$4" "$1.master/m.mbox" "$1.want/m.mbox" ||
			bail_out "cannot generate $1"
		spool=/m.mbox
	fi
	# gen_spool routes message i when i % 4 is 0 or 1.
	_routed=0
	_i=$4
	while [ "$_i" -lt $(($4 + $3)) ]; do
		[ $((_i % 4)) -lt 2 ] && _routed=$((_routed + 1))
		_i=$((_i + 1))
	done
	settle "$1.master" "$1.want" || bail_out "cannot settle $1"
	cp -Rp "$1.master" "$1.r" || bail_out "cannot copy $1"
	run /dev/null "$1.r" -t "$table" "$1.r$spool"
	if [ "$rc" = 0 ] && grep -E -q \
	    "^reroute: $3 scanned, $_routed rewritten, 0 refiled, $(($3 - _routed)) unchanged, 0 skipped, 0 errors, " \
	    "$1.r.out"; then
		ok "$1: an uninterrupted run rewrites the $_routed routed messages of $3"
	else
		not_ok "$1: an uninterrupted run rewrites the $_routed routed messages of $3"
		diag "exit status $rc; stdout and stderr:"
		cat "$1.r.out" "$1.r.err" | sed 10q | diag
	fi
	signature "$1.want" >"$1.want.sig"
	signature "$1.r" >"$1.r.sig"
	if cmp -s "$1.want.sig" "$1.r.sig"; then
		ok "$1: the uninterrupted run gives the expected spool (names, bytes, modes, mtimes)"
	else
		not_ok "$1: the uninterrupted run gives the expected spool (names, bytes, modes, mtimes)"
		diff "$1.want.sig" "$1.r.sig" | sed 20q | diag
	fi
	if [ "$2" = maildir ]; then
		known_list "$1.master" "$1.want" >"$1.known"
	fi
}

# crash NAME KIND FAULT... : on a fresh copy of NAME.master, runs
# reroute-fault once for each FAULT in turn (kill:N or OP:N:ERRNO), checks
# after each what it left, then runs reroute and compares with R. Sets
# $crash_rc to the last fault run's status. One test. (Its variables are
# named c_*: run, which it calls, sets _name.)
crash() {
	c_name=$1
	c_kind=$2
	shift 2
	c_desc="$c_name: $*"
	c_problems=
	rm -rf w && cp -Rp "$c_name.master" w || bail_out "cannot copy $c_name"
	for c_f; do
		REROUTE_FAULT=$c_f "$fault" -q --lock-timeout 5 -t "$table" "w$spool" \
			>w.out 2>w.err
		crash_rc=$?
		case $c_f:$crash_rc in
		kill:*:137 | kill:*:0) ;;
		kill:*) c_problems="$c_problems
$c_f: exit status $crash_rc, not 137 (SIGKILL) or 0: $(sed 3q w.err)" ;;
		*:73 | *:74 | *:75) ;;
		*) c_problems="$c_problems
$c_f: exit status $crash_rc, not 73, 74 or 75: $(sed 3q w.err)" ;;
		esac
		if [ "$c_kind" = maildir ]; then
			c_state=$(maildir_state "$c_name.known" w | sed 5q)
		elif cmp -s w/m.mbox "$c_name.master/m.mbox" ||
		    cmp -s w/m.mbox "$c_name.r/m.mbox"; then
			c_state=
		else
			c_state="m.mbox is neither the original nor the rewritten mbox"
		fi
		[ -z "$c_state" ] || c_problems="$c_problems
after $c_f (exit $crash_rc):
$c_state"
		case $c_f:$crash_rc in
		kill:*:137) ;;
		*)	c_left=$(find w -path '*/tmp/*' -o -name '*.lock' \
				-o -name '.m.mbox.reroute.*')
			[ -z "$c_left" ] || c_problems="$c_problems
after $c_f (exit $crash_rc), left behind: $c_left" ;;
		esac
	done
	run /dev/null w.again --lock-timeout 5 -t "$table" "w$spool"
	[ "$rc" = 0 ] || c_problems="$c_problems
the run after: exit status $rc: $(sed 3q "$tmp/w.again.err")"
	signature w >w.sig
	if ! cmp -s "$c_name.r.sig" w.sig; then
		c_problems="$c_problems
the spool differs from the uninterrupted run's (< R, > here):
$(diff "$c_name.r.sig" w.sig | grep '^[<>]' | sed 10q)"
	fi
	if [ -z "$c_problems" ]; then
		ok "$c_desc (exit $crash_rc), run again: the uninterrupted result"
	else
		not_ok "$c_desc (exit $crash_rc), run again: the uninterrupted result"
		printf '%s\n' "$c_problems" | sed 1d | diag
	fi
}

# every NAME KIND: crash at kill:1, kill:2, ... until a run gets past its
# last mutation (exit 0); at most 400.
every() {
	_n=1
	while [ $_n -le 400 ]; do
		crash "$1" "$2" "kill:$_n"
		[ "$crash_rc" = 137 ] || break
		_n=$((_n + 1))
	done
	if [ "$crash_rc" = 0 ]; then
		ok "$1: killed before each of its $((_n - 1)) mutations; past them, exit 0"
	else
		not_ok "$1: killed before each of its $((_n - 1)) mutations; past them, exit 0"
		diag "kill:$_n: exit status $crash_rc"
	fi
}

# 1. The mbox: every kill point, and I/O errors.
prepare mbox mbox 500 1
every mbox mbox
for f in rename:1:EIO write:1:ENOSPC write:2:EIO fsync:1:EIO fsync:2:EIO; do
	crash mbox mbox "$f"
done

# 2. A small Maildir: every kill point, and I/O errors. Messages 9 to 21:
# routed ones in cur/ and new/, with and without size fields, CRLF, and in
# the .Archive subfolder.
prepare small maildir 13 9
every small maildir
for f in mkdir:1:EIO write:1:ENOSPC fsync:1:EIO rename:2:EIO unlink:1:EIO \
    fsync:6:EIO; do
	crash small maildir "$f"
done

# 3. The big Maildir: kill points spread over the run, past its end, and
# runs killed one after the other.
prepare big maildir 500 1
for n in 1 2 3 10 57 250 501 1000; do
	crash big maildir "kill:$n"
	is "big: kill:$n is before the last mutation (dies by SIGKILL)" 137 "$crash_rc"
done
crash big maildir kill:1000000
is "big: kill:1000000 is past the last mutation (exit 0)" 0 "$crash_rc"
crash big maildir kill:501 kill:250 kill:3
crash big maildir kill:1000 write:100:ENOSPC kill:57

plan "$tap_n"
done_testing
