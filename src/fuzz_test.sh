#!/bin/sh
# fuzz_test.sh - replays the fuzzing corpora through the harnesses: every
# file in testdata/fuzz/HARNESS/ (seeds, and crash-* fixtures, each a
# regression test for a defect the fuzzer found) is one test, run through
# src/HARNESS_fuzz. Built without --enable-fuzzing, that program is the
# harness with fuzz_replay.c's main(); with it, libFuzzer's, which runs the
# files it is given the same way. A harness aborts when an invariant fails,
# and under ASan/UBSan (scripts/check's second pass) on any memory error;
# a run longer than a minute fails too.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

harnesses="route message mbox"
# A fixture may guard against a hang (crash-long-key-backtracking): each run
# gets a minute, far more than any input needs, even under ASan.
limit=""
command -v timeout >/dev/null 2>&1 && limit="timeout 60"
n=0
for h in $harnesses; do
	[ -x "$top_builddir/src/${h}_fuzz" ] || bail_out "src/${h}_fuzz is not built"
	for f in "$testdata/fuzz/$h"/*; do
		[ -f "$f" ] && n=$((n + 1))
	done
done
[ "$n" -gt 0 ] || bail_out "no corpus in $testdata/fuzz"
plan "$n"

for h in $harnesses; do
	for f in "$testdata/fuzz/$h"/*; do
		[ -f "$f" ] || continue
		if $limit "$top_builddir/src/${h}_fuzz" "$f" >"$tmp/out" 2>&1; then
			ok "${h}_fuzz: ${f##*/}"
		else
			not_ok "${h}_fuzz: ${f##*/}"
			sed -n 1,40p "$tmp/out" | diag
		fi
	done
done

done_testing
