#!/bin/sh
# fault_sweep_test.sh - every I/O call of a small run made to fail, one at a
# time, with ENOSPC, EIO and EACCES: the run says so and exits non-zero,
# nothing is lost, torn or doubled, and a clean rerun ends where an
# uninterrupted run does.
#
# cmd/reroute-fault makes the Nth call of OP fail (REROUTE_FAULT=OP:N:ERRNO)
# for OP in open (every open: for reading, creating, of a directory to fsync
# it, of a dotlock or journal), read, write, fsync (of files and of
# directories, syncfs), rename, link, unlink and mkdir; and REROUTE_FAULT=
# count prints how many calls of each OP a run makes (see src/fsutil.c).
# Four small runs through filter.table, each on a fresh copy of its spool:
#
#   rw-md  rewrite a Maildir in place (4 messages: 2 routed, in new/ and
#          cur/, with and without ,S=/,W= sizes, CRLF, a .Archive folder);
#   rw-mb  rewrite an mbox in place (the same 4 messages);
#   rf-md  refile a Maildir into Maildirs, --deliver DIR/dest/%d/%u/
#          (5 messages from gen_refile: for two users, for an alias, not
#          routed, without Return-Path in .Archive, partly routed);
#   rf-mb  refile an mbox into mboxes, --deliver DIR/mail/%u (the same 5).
#
# For each run, R is the result of an uninterrupted run of reroute; the
# count run of reroute-fault must end in R too, and its counts say how many
# calls of each OP there are. Then for every OP, every N from 1 to its
# count and every ERRNO, on a fresh copy:
#   - reroute-fault exits 73, 74 or 75 and says something on stderr;
#   - every copy of a message anywhere (a Maildir file, an mbox message) is
#     byte for byte one that the spool or R has at that place: none torn;
#   - no message is lost: it is in the source, or in every mailbox R has it
#     in; no mailbox (nor the source) holds a message twice;
#   - nothing is left behind: no file in a tmp/, no dotlock, no temporary
#     mbox (the process lived to clean up);
#   - reroute run again exits 0 and the tree is R: the same entries, bytes
#     and modes (and, in the source, mtimes).
# The run's exit status is 73, 74 or 75: an I/O error is never reported as
# bad data (65) or as a spool that is not one (66).
# A refiled message may be both in a mailbox and still in the source after
# a failure, where that cannot be undone: into Maildirs, when its source
# cannot be removed (unlink); into mboxes, after its append (an append is
# durable at once, and the source mbox changes at the end of the run). The
# rerun removes it from the source without delivering it again. How often
# is said as a note; anywhere else it is a failure (a delivery into a
# Maildir is taken back when the message stays).
# And OP:COUNT+1 (past the last call) exits 0: the counts are exact, so
# the sweep met every call.

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

[ -x "$reroute_fault" ] || bail_out "$reroute_fault is not built"
table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"
ops="open read write fsync rename link unlink mkdir"
errnos="ENOSPC EIO EACCES"

# args NAME: the options and spool of NAME's runs, in $tmp/w.
args() {
	case $1 in
	rw-md) echo "-t $table w/src" ;;
	rw-mb) echo "-t $table w/src/m.mbox" ;;
	rf-md) echo "-t $table --deliver $tmp/w/dest/%d/%u/ w/src" ;;
	rf-mb) echo "-t $table --deliver $tmp/w/mail/%u w/src/m.mbox" ;;
	esac
}

# fresh NAME: w, a fresh copy of NAME.master.
fresh() {
	rm -rf w && cp -Rp "$1.master" w || bail_out "cannot copy $1.master"
}

# inventory DIR: one line per message copy below DIR, "GROUP TAB PLACE TAB
# ID TAB KEY": GROUP "src" (the source) or the mailbox (a Maildir's path, an
# mbox file); PLACE a Maildir file's folder and unique name (without sizes
# and info), or the mbox file; ID its Message-ID; KEY the MD5 of a Maildir
# file, or the text of an mbox message (its lines joined with \001, From_
# line and separator included).
inventory() {
	(cd "$1" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) ! -name '.*' \
		-exec md5sum {} +) >"$tmp/.inv.md5"
	(cd "$1" && find . -type f \( -path '*/cur/*' -o -path '*/new/*' \) ! -name '.*' \
		-exec awk 'FNR == 1 { got = 0 }
		!got && tolower($0) ~ /^message-id:/ {
			sub(/\r$/, ""); print FILENAME "\t" substr($0, 13); got = 1
		}' {} +) >"$tmp/.inv.ids"
	(cd "$1" && find . -type f ! -path '*/cur/*' ! -path '*/new/*' ! -path '*/tmp/*' \
		! -name '.*' ! -name '*.lock' -exec awk '
		function flush() {
			if (t != "")
				print (f ~ /^\.\/src\// ? "src" : f) "\t" f "\t" id "\t" t
			t = ""
			id = "?"
		}
		FNR == 1 { flush(); f = FILENAME }
		/^From / { flush() }
		{ t = t (t == "" ? "" : "\001") $0 }
		id == "?" && tolower($0) ~ /^message-id:/ { id = substr($0, 13); sub(/\r$/, "", id) }
		END { flush() }' {} +)
	awk -F '\t' -v md5s="$tmp/.inv.md5" '
	BEGIN {
		while ((getline l < md5s) > 0)
			sum[substr(l, 35)] = substr(l, 1, 32)
	}
	{
		p = $1
		name = p
		sub(/.*\//, "", name)
		dir = substr(p, 1, length(p) - length(name) - 1)
		box = substr(dir, 1, length(dir) - 4)
		stem = name
		sub(/[,:!;].*/, "", stem)
		print (p ~ /^\.\/src\// ? "src" : box) "\t" dir "/" stem "\t" $2 "\t" sum[p]
	}' "$tmp/.inv.ids"
}

# signature DIR: every entry below DIR; for files their mode, size and MD5,
# and in the source (not its dot-files) their mtime.
signature() {
	(cd "$1" && find . | sort &&
	find . -type f -exec stat -c '%n %a %s' {} + | sort &&
	find ./src -type f ! -name '.*' -exec stat -c '%n %Y' {} + | sort &&
	find . -type f -exec md5sum {} + | sort -k 2)
}

# judge NAME INVENTORY: what is wrong with a state (see the head).
judge() {
	awk -F '\t' -v m="$1.master.inv" -v r="$1.r.inv" '
	FILENAME == m || FILENAME == r {
		allowed[$2 "\t" $4] = 1
		if (FILENAME == m)
			ids[$3] = 1
		else if (!(($3 "\t" $1) in inr)) {
			inr[$3 "\t" $1] = 1
			groups[$3] = groups[$3] "\t" $1
		}
		next
	}
	{
		if (!(($2 "\t" $4) in allowed))
			print "a copy of " $3 " at " $2 " that is neither the original nor the result"
		if (++n[$3 "\t" $1] == 2)
			print $3 " twice in " $1
		have[$3 "\t" $1] = 1
		if ($1 != "src")
			delivered[$3] = 1
	}
	END {
		for (id in ids) {
			if ((id "\tsrc") in have) {
				if (id in delivered && !((id "\tsrc") in inr))
					print "NOTE " id
				continue
			}
			if ((id "\tsrc") in inr) {
				print id " is gone from the source"
				continue
			}
			k = split(groups[id], g, "\t")
			for (j = 2; j <= k; j++)
				if (!((id "\t" g[j]) in have))
					print id " left the source but is not in " g[j]
		}
	}' "$1.master.inv" "$1.r.inv" "$2" | sort
}

# prepare NAME: NAME.master, its inventory, R (NAME.r, NAME.r.sig,
# NAME.r.inv), and the counts of the calls ($NAME_OP). Three tests.
prepare() {
	_p=$1
	rm -rf "$_p.master" && mkdir -p "$_p.master" || bail_out "cannot make $_p.master"
	case $_p in
	rw-md) gen_spool maildir 4 20 "$_p.master/src" "$_p.want" ;;
	rw-mb) mkdir "$_p.master/src" &&
		gen_spool mbox 4 20 "$_p.master/src/m.mbox" "$_p.want" ;;
	rf-md) gen_refile maildir 5 4 "$_p.master/src" "$_p.list" "$_p.msgs" ;;
	rf-mb) mkdir "$_p.master/src" &&
		gen_refile mbox 5 4 "$_p.master/src/m.mbox" "$_p.list" "$_p.msgs" "$_p.keep" ;;
	esac || bail_out "cannot generate $_p"
	settle "$_p.master" || bail_out "cannot settle $_p"
	inventory "$_p.master" >"$_p.master.inv"
	fresh "$_p"
	"$reroute" -q --lock-timeout 2 $(args "$_p") >"$_p.r.out" 2>"$_p.r.err"
	_rc=$?
	rm -rf "$_p.r" && mv w "$_p.r"
	signature "$_p.r" >"$_p.r.sig"
	inventory "$_p.r" >"$_p.r.inv"
	_changed=$(signature "$_p.master" | cmp -s - "$_p.r.sig" || echo yes)
	check "$_p: an uninterrupted run exits 0, quietly, and changes the spool" \
		test "$_rc" = 0 -a ! -s "$_p.r.err" -a "$_changed" = yes
	fresh "$_p"
	REROUTE_FAULT=count "$reroute_fault" -q --lock-timeout 2 $(args "$_p") \
		>"$_p.count.out" 2>"$_p.count.err"
	_rc=$?
	signature w | cmp -s - "$_p.r.sig"
	check "$_p: the counting run of reroute-fault exits 0 and ends in the same state" \
		test "$_rc" = 0 -a $? = 0
	_line=$(grep '^reroute-fault: calls: ' "$_p.count.err")
	_v=$(echo "$_p" | tr - _)
	for _op in $ops; do
		_c=$(printf '%s\n' "$_line" | sed -n "s/.* $_op=\([0-9]*\).*/\1/p")
		eval "${_v}_$_op=\${_c:-x}"
	done
	check "$_p: the counting run counts its calls: ${_line#reroute-fault: calls: }" \
		test -n "$_line"
}

# sweep NAME OP ERRNO: OP:N:ERRNO for N = 1 .. NAME's count of OP. One test.
sweep() {
	_s=$1
	_op=$2
	_e=$3
	_count=$(eval echo "\$$(echo "$_s" | tr - _)_$_op")
	_problems=
	_notes=0
	_codes=
	_n=1
	while [ "$_n" -le "$_count" ]; do
		_f=$_op:$_n:$_e
		fresh "$_s"
		REROUTE_FAULT=$_f "$reroute_fault" -q --lock-timeout 2 $(args "$_s") \
			>w.out 2>w.err
		_rc=$?
		case " $_codes " in *" $_rc "*) ;; *) _codes="$_codes $_rc" ;; esac
		case $_rc in
		73 | 74 | 75) [ -s w.err ] || _problems="$_problems
$_f: exit status $_rc, and nothing said on stderr" ;;
		*) _problems="$_problems
$_f: exit status $_rc, not 73, 74 or 75 (an I/O error): $(sed 2q w.err)" ;;
		esac
		inventory w >w.inv
		_state=$(judge "$_s" w.inv)
		_left=$(leftovers w | tr '\n' ' ')
		case $_s:$_op:$_state in
		rf-md:unlink:NOTE* | rf-mb:*:NOTE*) _notes=$((_notes + 1)) ;;
		*:NOTE*) _problems="$_problems
$_f (exit $_rc; $(sed 1q w.err)): refiled, and still in the source: $_state" ;;
		esac
		_state=$(printf '%s\n' "$_state" | grep -v '^NOTE ' | sed 4q)
		[ -z "$_state" ] || _problems="$_problems
$_f (exit $_rc; $(sed 1q w.err)): $_state"
		[ -z "$_left" ] || _problems="$_problems
$_f: left behind: $_left"
		"$reroute" -q --lock-timeout 2 $(args "$_s") >w.again.out 2>w.again.err
		_rc=$?
		[ "$_rc" = 0 ] || _problems="$_problems
$_f, then a clean run: exit status $_rc: $(sed 2q w.again.err)"
		if ! signature w | cmp -s - "$_s.r.sig"; then
			_problems="$_problems
$_f, then a clean run: not the uninterrupted result (< R, > here):
$(signature w | diff "$_s.r.sig" - | grep '^[<>]' | sed 6q)"
		fi
		_n=$((_n + 1))
	done
	_desc="$_s: $_op:1..$_count:$_e: exit${_codes:- -}, nothing lost, torn or doubled; a rerun ends as R"
	if [ -z "$_problems" ]; then
		ok "$_desc"
	else
		not_ok "$_desc"
		printf '%s\n' "$_problems" | sed -e 1d -e 40q | diag
	fi
	[ "$_notes" = 0 ] ||
		diag "$_s: $_op:N:$_e: $_notes runs left a refiled message also in the source"
}

# past NAME: OP:COUNT+1:EIO for every OP exits 0 (no such call). One test.
past() {
	_bad=
	for _op in $ops; do
		_c=$(eval echo "\$$(echo "$1" | tr - _)_$_op")
		fresh "$1"
		REROUTE_FAULT=$_op:$((_c + 1)):EIO "$reroute_fault" -q --lock-timeout 2 \
			$(args "$1") >w.out 2>w.err || _bad="$_bad $_op:$((_c + 1))"
	done
	is "$1: past the last call of each OP, no call fails (the counts are exact)" "" "$_bad"
}

for s in rw-md rw-mb rf-md rf-mb; do
	prepare "$s"
	past "$s"
	for op in $ops; do
		for e in $errnos; do
			sweep "$s" "$op" "$e"
		done
	done
done

plan "$tap_n"
done_testing
