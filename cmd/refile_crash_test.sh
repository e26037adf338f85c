#!/bin/sh
# refile_crash_test.sh - reroute --deliver killed with SIGKILL at many
# moments, or hit by an I/O error, then run again: every routed message is
# in each of its mailboxes exactly once and gone from the source, every
# other message still in the source byte for byte, nothing left behind.
#
# cmd/reroute-fault SIGKILLs itself just before its Nth file-system
# mutation (REROUTE_FAULT=kill:N) or makes the Nth call of one fail
# (REROUTE_FAULT=OP:N:ERRNO); see cmd/crash_test.sh. Spools come from
# gen_refile (cmd/testlib.sh): by i % 10, messages for one canonical user,
# for two, already at the inbound domain, through an address rule, with
# some recipients not routed (partial: delivered, kept), with none routed;
# LF and CRLF, body lines "From " and ">From ", in cur/ (flags), new/ and a
# .Archive subfolder. What each mailbox must hold is worked out from the
# list gen_refile writes and the stdin filter (the oracle for the rewrite),
# not from a run of reroute.
#
# Three cases, 200 messages each: a Maildir refiled into Maildirs
# ("dest/%d/%u/"), an mbox into Maildirs, a Maildir into mboxes
# ("mail/%u"); and a small Maildir (10 messages) into mboxes, killed before
# every one of its mutations. For each kill:
#   - reroute-fault dies by SIGKILL (137), or exits 0 when N is past its
#     last mutation;
#   - what it leaves loses nothing: every message not refiled is in the
#     source as it was; a message gone from the source is in each of its
#     mailboxes; a Maildir destination holds only whole expected messages;
#   - reroute run again exits 0, and then: each mailbox holds exactly its
#     messages, once each (a Maildir: in cur/ with the source's flags, or in
#     new/); the source holds exactly its partial and unrouted messages,
#     byte for byte (a Maildir: under their names; an mbox: their stored
#     bytes in order); no file in any tmp/, no dotlock, no temporary mbox,
#     no other file in the mail directory (reroute's own state files, see
#     state_files in testlib.sh, may stay beside the source).
# Kill points, for the big cases: 1, 2, 8, 32, ... (early, middle, late)
# until a run gets past its last mutation, then bisection down to the last
# mutation T (kill:T dies, kill:T+1 exits 0); runs killed one after the
# other. Injected errors (ENOSPC, EIO on write, fsync, open, mkdir, unlink,
# rename): exit 74 (73 or 74 for open and mkdir), reported, the same
# no-loss state with no partial message and nothing left behind (the
# process lived to clean up), then a clean run finishes the job.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

[ -x "$reroute_fault" ] || bail_out "$reroute_fault is not built"
table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"

# prepare NAME SRCKIND N FIRST DESTKIND: NAME.master/src (a Maildir, or
# m.mbox), settled; NAME.need, one line per message, its fields separated
# by \002 (messages hold tabs): ID, KIND (full, partial, none), its key in
# the source ("PATH MD5" for a Maildir, the MD5 of its stored chunk for an
# mbox), then the key of each copy it must have in a destination
# ("MAILBOX SUB INFO MD5" for a Maildir destination, "MAILBOX TEXT" for an
# mbox, see mbox_keys); NAME.boxes, the mailboxes (of an mbox
# destination). One test.
prepare() {
	_p=$1
	mkdir -p "$_p.master" "$_p.msgs" "$_p.exp" "$_p.chunks" ||
		bail_out "cannot make $_p"
	if [ "$2" = maildir ]; then
		gen_refile maildir "$3" "$4" "$_p.master/src" "$_p.list" "$_p.msgs" ||
			bail_out "cannot generate $_p"
	else
		mkdir "$_p.master/src"
		gen_refile mbox "$3" "$4" "$_p.master/src/m.mbox" "$_p.list" "$_p.msgs" \
			"$_p.keep" || bail_out "cannot generate $_p"
		# the stored chunk of each message, in order
		awk -v dir="$_p.chunks" '
		/^From sender[0-9]+@example\.org / { n++; f = dir "/" n }
		{ printf "%s\n", $0 > f }' "$_p.master/src/m.mbox"
	fi
	settle "$_p.master" || bail_out "cannot settle $_p"
	# The expected bytes (generated messages end in a newline, so an mbox
	# holds them as they are).
	while read -r _id _place _rest; do
		rewrite_oracle "$_p.msgs/$_id" "$_p.exp/$_id" -t "$table"
		if [ "$2" = maildir ] && [ "$5" = mbox ]; then
			with_status "$_place" "$_p.exp/$_id" "$_p.exp/$_id.st" &&
				mv "$_p.exp/$_id.st" "$_p.exp/$_id" || bail_out "cannot add flags"
		fi
	done <"$_p.list"
	if [ "$5" = maildir ]; then
		(cd "$_p.exp" && md5sum *) >"$_p.exp.md5"
	else
		# an mbox destination: keys are the messages' texts (mbox_keys)
		(cd "$_p.exp" && awk '
		FNR == 1 && NR > 1 { print id, t }
		FNR == 1 { id = FILENAME; t = $0; next }
		{ t = t "\001" $0 }
		END { print id, t }' *) >"$_p.exp.md5"
	fi
	(cd "$_p.msgs" && md5sum *) >"$_p.msgs.md5"
	(cd "$_p.chunks" && find . -type f -exec md5sum {} +) >"$_p.chunks.md5"
	awk -v srckind="$2" -v destkind="$5" -v em="$_p.exp.md5" -v mm="$_p.msgs.md5" \
	    -v cm="$_p.chunks.md5" -v boxes="$_p.boxes.all" '
	BEGIN {
		while ((getline l < em) > 0) {
			split(l, w, " ")
			if (destkind == "maildir")
				e[w[2]] = w[1]
			else
				e[w[1]] = substr(l, length(w[1]) + 2)
		}
		while ((getline l < mm) > 0) { split(l, w, " "); m[w[2]] = w[1] }
		while ((getline l < cm) > 0) {
			split(l, w, " ")
			sub(/^\.\//, "", w[2])
			c[w[2]] = w[1]
		}
		printf "" > boxes
	}
	{
		k++
		id = $1
		place = $2
		if (srckind == "maildir") {
			skey = place " " m[id]
			name = place
			sub(/.*\//, "", name)
			if (place ~ /(^|\/)cur\//) {
				sb = "cur"
				info = match(name, /[:!;]2,/) ? substr(name, RSTART + 1) : "-"
			} else {
				sb = "new"
				info = "-"
			}
		} else {
			skey = c[k]
			sb = "new"
			info = "-"
		}
		line = id "\002" $3 "\002" skey
		for (j = 5; j <= NF; j++) {
			a = $j
			local = a
			sub(/@.*/, "", local)
			dom = a
			sub(/^[^@]*@/, "", dom)
			if (destkind == "maildir")
				line = line "\002" dom "/" local " " sb " " info " " e[id]
			else
				line = line "\002" local " " e[id]
			print local > boxes
		}
		print line
	}' "$_p.list" >"$_p.need"
	sort -u "$_p.boxes.all" >"$_p.boxes"
	if [ "$2" = maildir ]; then
		_src=src
	else
		_src=src/m.mbox
	fi
	eval "${_p}_src=\$_src ${_p}_srckind=$2 ${_p}_destkind=$5"
	_n_full=$(awk -F "\002" "{ print \$2 }" "$_p.need" | grep -c '^full$')
	_n_part=$(awk -F "\002" "{ print \$2 }" "$_p.need" | grep -c '^partial$')
	_n_none=$(awk -F "\002" "{ print \$2 }" "$_p.need" | grep -c '^none$')
	check "$_p: $3 messages generated: $_n_full fully routed, $_n_part partially, $_n_none not at all" \
		test "$_n_full" -gt 0 -a "$_n_part" -gt 0 -a "$_n_none" -gt 0 \
		-a "$(wc -l <"$_p.need")" -eq "$3"
}

# mbox_keys DIR: for every message of every mbox in DIR (dot-files and
# *.lock left out), in the form reroute writes (split at lines that start
# "From ", the blank separator line at the end of each taken off, mboxrd
# escaping undone), "MAILBOX TEXT": TEXT the message's lines joined with
# \001 (so that messages compare as strings, without a file each). Fails,
# printing what is wrong on standard error, when an mbox is not in that
# form.
mbox_keys() {
	set -- $(cd "$1" && for _f in *; do
		case $_f in *.lock) ;; *) [ -f "$_f" ] && echo "$1/$_f" ;; esac
	done)
	[ $# -gt 0 ] || return 0
	awk '
	function end_msg() {
		if (!held || (h != "" && h != "\r"))
			bad = bad name ": message at line " start " does not end in a blank line\n"
		else
			held = 0
		if (held)
			t = t (nl++ ? "\001" : "") h
		print name, t
		held = 0
	}
	FNR == 1 {
		if (started)
			end_msg()
		name = FILENAME
		sub(/.*\//, "", name)
		started = 0
	}
	{
		l = $0
		if (substr(l, 1, 5) == "From ") {
			if (started)
				end_msg()
			started = 1
			start = FNR
			t = ""
			nl = 0
			next
		}
		if (!started) {
			bad = bad name ": line " FNR " comes before the first From_ line\n"
			next
		}
		if (held)
			t = t (nl++ ? "\001" : "") h
		if (l ~ /^>+From /)
			l = substr(l, 2)
		h = l
		held = 1
	}
	END {
		if (started)
			end_msg()
		if (bad != "") {
			printf "%s", bad > "/dev/stderr"
			exit 1
		}
	}' "$@"
}

# template NAME DIR: the --deliver template for NAME's runs in DIR.
template() {
	if [ "$(eval echo \$${1}_destkind)" = maildir ]; then
		echo "$tmp/$2/dest/%d/%u/"
	else
		echo "$tmp/$2/mail/%u"
	fi
}

# judge NAME DIR MODE: prints what is wrong with DIR after a run of NAME:
# MODE "final" (after an uninterrupted run, or a rerun), "crash" (after a
# kill: nothing lost), "error" (after an injected error: nothing lost,
# nothing partial or left behind).
judge() {
	_j=$1
	_d=$2
	_srckind=$(eval echo \$${_j}_srckind)
	_destkind=$(eval echo \$${_j}_destkind)
	# the destination, as keys
	: >"$tmp/.dest.keys"
	_form=
	if [ "$_destkind" = maildir ]; then
		[ -d "$_d/dest" ] && maildir_digest "$_d/dest" >"$tmp/.dest.keys"
	elif [ -d "$_d/mail" ]; then
		mbox_keys "$_d/mail" >"$tmp/.dest.keys" 2>"$tmp/.form" ||
			_form=" (see below)"
	fi
	# the source, as keys
	if [ "$_srckind" = maildir ]; then
		(cd "$_d/src" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) \
			! -name '.*' -exec md5sum {} +) |
			awk '{ p = substr($0, 35); sub(/^\.\//, "", p); print p, $1 }' \
			>"$tmp/.src.keys"
	else
		rm -rf "$tmp/.src.chunks" && mkdir "$tmp/.src.chunks"
		awk -v dir="$tmp/.src.chunks" '
		/^From sender[0-9]+@example\.org / { n++; f = dir "/" n }
		!n { print "a line before the first From_ line" > (dir "/bad"); exit }
		{ printf "%s\n", $0 > f }' "$_d/$(eval echo \$${_j}_src)"
		(cd "$tmp/.src.chunks" && ls | grep -v -x bad | sort -n |
			xargs -r md5sum) | cut -c 1-32 >"$tmp/.src.keys"
		[ -f "$tmp/.src.chunks/bad" ] && echo "bad" >>"$tmp/.src.keys"
	fi
	awk -F '\002' -v mode="$3" -v srckind="$_srckind" -v destkind="$_destkind" \
	    -v dk="$tmp/.dest.keys" \
	    -v sk="$tmp/.src.keys" '
	# A key for diagnostics: its mailbox, and the Message-ID of a
	# message given by its text.
	function short(k,   b) {
		if (!match(k, /Message-ID: <[^>]*>/))
			return k
		b = k
		sub(/ .*/, "", b)
		return b " " substr(k, RSTART, RLENGTH)
	}
	FILENAME == dk { got[$0]++; next }
	FILENAME == sk { ns++; s[ns] = $0; have[$0]++; next }
	{
		n++
		id[n] = $1
		kind[n] = $2
		skey[n] = $3
		isorig[$3] = 1
		nk[n] = NF - 3
		for (j = 4; j <= NF; j++) {
			key[n, j - 3] = $j
			want[$j]++
		}
	}
	END {
		# (after a kill, an mbox may end in a partial append, which
		# the rerun must undo)
		for (k in got)
			if (!(k in want) && (mode != "crash" || destkind == "maildir"))
				print "in a mailbox, not a message it should hold: " short(k)
		if (mode == "final")
			for (k in want)
				if (got[k] != want[k])
					print short(k) ": " got[k] + 0 " copies, not " want[k]
		# which messages are still in the source
		if (srckind == "maildir") {
			for (k in have)
				if (!(k in isorig))
					print "in the source, not an original message: " k
			for (i = 1; i <= n; i++)
				present[i] = skey[i] in have
		} else {
			j = 1
			for (c = 1; c <= ns; c++) {
				while (j <= n && skey[j] != s[c])
					j++
				if (j > n) {
					print "source mbox: message " c " is not an original one, in order"
					break
				}
				present[j] = 1
				j++
			}
		}
		for (i = 1; i <= n; i++) {
			if (kind[i] != "full" && !present[i])
				print "message " id[i] " (" kind[i] ") is gone from the source"
			if (kind[i] == "full" && present[i] && mode == "final")
				print "message " id[i] " is still in the source"
			if (kind[i] == "full" && !present[i])
				for (j = 1; j <= nk[i]; j++)
					if (!got[key[i, j]])
						print "message " id[i] " left the source but is not in " short(key[i, j])
		}
	}' "$tmp/.dest.keys" "$tmp/.src.keys" "$_j.need" | sort | sed 8q
	if [ "$3" != crash ]; then
		[ -z "$_form" ] || { echo "mboxes not in the form reroute writes:$_form"; sed 3q "$tmp/.form"; }
		_left=$(leftovers "$_d/src" "$_d/dest" "$_d/mail" | sed 5q | tr '\n' ' ')
		[ -z "$_left" ] || echo "left behind: $_left"
		if [ "$_srckind" = mbox ]; then
			_other=$(ls -A "$_d/src" | grep -v -x -e m.mbox \
				-e "$(state_files "$_d/src" | sed 1q)" -e /// | tr '\n' ' ')
			[ -z "$_other" ] || echo "beside the source mbox: $_other"
		fi
		if [ "$_destkind" = mbox ] && [ -d "$_d/mail" ]; then
			_other=$(ls -A "$_d/mail" | grep -v -x -F -f "$_j.boxes" | tr '\n' ' ')
			[ -z "$_other" ] || echo "in the mail directory, not a mailbox: $_other"
		fi
	fi
	rm -f "$tmp/.form"
}

# fault_run NAME DIR FAULT: reroute-fault over DIR's source; $frc its exit
# status.
fault_run() {
	REROUTE_FAULT=$3 "$reroute_fault" -q --lock-timeout 5 -t "$table" \
		--deliver "$(template "$1" "$2")" "$2/$(eval echo \$${1}_src)" \
		>"$2.fault.out" 2>"$2.fault.err"
	frc=$?
}

# fresh NAME: w, a fresh copy of NAME.master.
# (A Maildir source is copied with hard links: a Maildir's messages are
# never changed in place, and a message changed all the same would not have
# its MD5 from NAME.need any more.)
fresh() {
	rm -rf w w.* || bail_out "cannot remove w"
	if [ "$(eval echo \$${1}_srckind)" = maildir ]; then
		cp -Rpl "$1.master" w
	else
		cp -Rp "$1.master" w
	fi || bail_out "cannot copy $1"
}

# crash NAME FAULT...: on a fresh copy, reroute-fault with each FAULT in
# turn, judged after each; then reroute, judged final. One test. Sets
# $crash_rc, the last fault run's status.
crash() {
	c_name=$1
	shift
	c_problems=
	fresh "$c_name"
	for c_f; do
		fault_run "$c_name" w "$c_f"
		crash_rc=$frc
		case $c_f:$frc in
		kill:*:137 | kill:*:0) c_mode=crash ;;
		kill:*) c_problems="$c_problems
$c_f: exit status $frc, not 137 (SIGKILL) or 0: $(sed 3q w.fault.err)"
			c_mode=crash ;;
		open:*:73 | open:*:74 | mkdir:*:73 | mkdir:*:74 | *:74) c_mode=error ;;
		*) c_problems="$c_problems
$c_f: exit status $frc, not 74 (73 or 74 for open and mkdir): $(sed 3q w.fault.err)"
			c_mode=error ;;
		esac
		if [ "$c_mode" = error ] && [ ! -s w.fault.err ]; then
			c_problems="$c_problems
$c_f: nothing reported on stderr"
		fi
		[ "$frc" = 0 ] && c_mode=final
		c_state=$(judge "$c_name" w "$c_mode")
		[ -z "$c_state" ] || c_problems="$c_problems
after $c_f (exit $frc):
$c_state"
	done
	"$reroute" -q --lock-timeout 5 -t "$table" --deliver "$(template "$c_name" w)" \
		"w/$(eval echo \$${c_name}_src)" >w.again.out 2>w.again.err
	c_rc=$?
	[ "$c_rc" = 0 ] || c_problems="$c_problems
the run after: exit status $c_rc: $(sed 3q w.again.err)"
	c_state=$(judge "$c_name" w final)
	[ -z "$c_state" ] || c_problems="$c_problems
after the run after:
$c_state"
	if [ -z "$c_problems" ]; then
		ok "$c_name: $* (exit $crash_rc), run again: each message once where it belongs"
	else
		not_ok "$c_name: $* (exit $crash_rc), run again: each message once where it belongs"
		printf '%s\n' "$c_problems" | sed -e 1d -e 25q | diag
	fi
}

# uninterrupted NAME: an uninterrupted run gives the final state. One test.
uninterrupted() {
	fresh "$1"
	run /dev/null w.run --lock-timeout 5 -t "$table" --deliver "$(template "$1" w)" \
		"w/$(eval echo \$${1}_src)"
	_state=$(judge "$1" w final)
	if [ "$rc" = 0 ] && [ -z "$_state" ]; then
		ok "$1: an uninterrupted run: exit 0, each message once where it belongs"
	else
		not_ok "$1: an uninterrupted run: exit 0, each message once where it belongs"
		diag "exit status $rc; $(sed 3q w.run.err)"
		printf '%s\n' "$_state" | diag
	fi
}

# search NAME: kills at 1, 2, 8, 32, ... (early, middle, late) until a run
# gets past its last mutation (exit 0), then by bisection down to the last
# mutation T: kill:T dies, kill:T+1 finishes. Each is a crash test; one
# test more. Sets $total, T.
search() {
	_lo=0
	_hi=1
	while :; do
		crash "$1" "kill:$_hi"
		[ "$crash_rc" = 137 ] || break
		_lo=$_hi
		if [ "$_hi" = 1 ]; then
			_hi=2
		else
			_hi=$((_hi * 4))
		fi
		[ "$_hi" -le 65536 ] || bail_out "$1: more than 65536 mutations?"
	done
	[ "$crash_rc" = 0 ] || bail_out "$1: kill:$_hi: exit status $crash_rc"
	while [ $((_hi - _lo)) -gt 1 ]; do
		_mid=$(((_lo + _hi) / 2))
		crash "$1" "kill:$_mid"
		if [ "$crash_rc" = 137 ]; then
			_lo=$_mid
		elif [ "$crash_rc" = 0 ]; then
			_hi=$_mid
		else
			break
		fi
	done
	total=$_lo
	is "$1: killed before each of the points up to its last mutation ($total), past it exit 0" \
		1 $((_hi - _lo))
}

# 1. A Maildir into Maildirs.
prepare md2md maildir 200 1 maildir
uninterrupted md2md
search md2md
crash md2md "kill:$((total / 2))" "kill:$((total / 4))" kill:3
for f in write:1:ENOSPC write:100:EIO fsync:1:EIO fsync:2:EIO open:1:ENOSPC \
    mkdir:1:EIO unlink:1:EIO; do
	crash md2md "$f"
done
crash md2md kill:40 write:30:ENOSPC kill:20

# 2. An mbox into Maildirs.
prepare mb2md mbox 200 1001 maildir
uninterrupted mb2md
search mb2md
crash mb2md "kill:$((total * 3 / 4))" "kill:$((total / 3))" kill:5
for f in write:1:ENOSPC write:100:EIO fsync:2:EIO open:1:ENOSPC mkdir:1:EIO \
    rename:1:EIO; do
	crash mb2md "$f"
done

# 3. A Maildir into mboxes.
prepare md2mb maildir 200 2001 mbox
uninterrupted md2mb
search md2mb
crash md2mb "kill:$((total / 2))" "kill:$((total / 4))" kill:3
for f in write:1:ENOSPC write:60:EIO fsync:1:EIO fsync:3:EIO open:1:ENOSPC \
    unlink:1:EIO; do
	crash md2mb "$f"
done
crash md2mb kill:40 write:30:ENOSPC kill:20

# 4. A small Maildir into mboxes: killed before every mutation.
prepare small maildir 10 3001 mbox
uninterrupted small
n=1
while :; do
	crash small "kill:$n"
	[ "$crash_rc" = 137 ] || break
	n=$((n + 1))
	[ $n -le 1000 ] || bail_out "small: more than 1000 mutations?"
done
is "small: killed before each of its $((n - 1)) mutations; past them, exit 0" 0 "$crash_rc"

plan "$tap_n"
done_testing
