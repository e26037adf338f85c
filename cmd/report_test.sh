#!/bin/sh
# report_test.sh - the dry-run report and --report json, end to end.
#
# The JSON Lines report is read with python3's json module (strict: a raw
# control character in a string, invalid UTF-8, NaN or a duplicate key is
# an error); without python3 those assertions are skipped. Fixtures are
# the spools of testdata/spools/ and, for hostile input, testdata/report/
# (its README says what each is).
#
#   a. for the Maildir fixture, all the mbox fixtures together and the bad
#      fixtures, in rewrite mode, refiled into Maildirs and into mboxes, and
#      with --copy: the dry run's JSON parses line by line, every object has
#      exactly the documented keys and types, one summary object comes last;
#      the text report (in a pipe: TAB-separated, never cut) says exactly
#      what the JSON says, message for message, then one line per route and
#      the summary; each route's rule names the table line it comes from;
#      then the real run on the same copy: its JSON is as valid, lists the
#      same messages with the same places, actions, destinations and
#      recipients, has the same counts and routes, and the run did just
#      that (the refiled messages are in those mailboxes and nowhere else,
#      the ones that leave are gone, the others stay, what was rewritten
#      was replaced and nothing else was);
#   b. one message on stdin: the dry-run JSON of every message fixture is
#      valid; as a delivery agent, the real run's JSON agrees with the dry
#      run's and the message is where it says;
#   c. control characters and invalid UTF-8 in a Message-ID, in display
#      names and in Maildir file names: valid JSON (escaped or replaced,
#      never raw), the rest of the value kept; a missing Message-ID is
#      null;
#   d. a real run where one mbox cannot be rewritten (its locks are held):
#      the JSON lists nothing of it, and the other mbox's messages as the
#      dry run did;
#   e. the text report on a terminal (under script(1), 60 and 200 columns
#      wide): the same lines, every message line at most as wide as the
#      terminal, its four columns lined up, long values cut with "...".

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

[ -x "$lockhold" ] || bail_out "$lockhold is not built"
table=$testdata/tables/filter.table
report_data=$testdata/report
for f in hostile.eml hostile.mbox; do
	[ -f "$report_data/$f" ] || bail_out "$report_data/$f is missing"
done
cd "$tmp" || bail_out "cannot cd to $tmp"

have_python=no
if command -v python3 >/dev/null 2>&1 && python3 -c 'import json' 2>/dev/null; then
	have_python=yes
fi
have_script=no
if command -v script >/dev/null 2>&1 &&
    script -qfec 'stty cols 60' /dev/null </dev/null >/dev/null 2>&1; then
	have_script=yes
fi

# --- The JSON checker. -----------------------------------------------------

cat >jr.py <<'EOF'
# jr.py COMMAND ARG...: checks of reroute's JSON Lines report. Prints the
# problems it finds, one a line, and exits 1 when there are any.
import json, os, re, sys

MSG_KEYS = {"place", "message_id", "recipients", "action", "destination",
            "bytes", "dry_run"}
REC_KEYS = {"address", "header", "canonical"}
SUM_KEYS = {"type", "scanned", "rewritten", "refiled", "unchanged",
            "skipped", "errors", "seconds", "dry_run", "routes"}
ROUTE_KEYS = {"rule", "messages", "bytes"}
COUNTS = ["scanned", "rewritten", "refiled", "unchanged", "skipped", "errors"]
ACTIONS = {"rewrite", "refile", "refile+keep", "copy"}
KEPT = ("refile+keep", "copy")    # delivered, and still in the source
problems = []

def problem(s):
    problems.append(s)

def finish():
    for p in problems[:30]:
        print(p)
    sys.exit(1 if problems else 0)

def no_dups(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in %r" % keys)
    return dict(pairs)

def no_constant(c):
    raise ValueError("not JSON: %s" % c)

def load(path):
    data = open(path, "rb").read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        problem("%s: not UTF-8: %s" % (path, e))
        text = data.decode("utf-8", "replace")
    if text and not text.endswith("\n"):
        problem("%s: no newline at the end" % path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    objs = []
    for i, l in enumerate(lines, 1):
        try:
            objs.append(json.loads(l, object_pairs_hook=no_dups,
                                    parse_constant=no_constant))
        except ValueError as e:
            problem("%s line %d: %s: %r" % (path, i, e, l[:160]))
    return objs

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0

def split(objs):
    msgs = [o for o in objs if isinstance(o, dict) and o.get("type") != "summary"]
    sums = [o for o in objs if isinstance(o, dict) and o.get("type") == "summary"]
    return msgs, (sums[-1] if sums else None)

def validate(path, dry, summary_optional=False):
    objs = load(path)
    msgs, summ = split(objs)
    for i, o in enumerate(objs, 1):
        w = "%s object %d" % (path, i)
        if not isinstance(o, dict):
            problem("%s: not an object" % w)
            continue
        if o.get("type") == "summary":
            if i != len(objs):
                problem("%s: a summary that is not the last line" % w)
            if set(o) != SUM_KEYS:
                problem("%s: summary keys %s, want %s" % (w, sorted(o), sorted(SUM_KEYS)))
            for k in COUNTS:
                if k in o and not is_int(o[k]):
                    problem("%s: %s is %r" % (w, k, o[k]))
            s = o.get("seconds")
            if not (isinstance(s, (int, float)) and not isinstance(s, bool) and s >= 0):
                problem("%s: seconds is %r" % (w, s))
            if o.get("dry_run") is not dry:
                problem("%s: dry_run is %r, want %r" % (w, o.get("dry_run"), dry))
            r = o.get("routes")
            if not isinstance(r, list):
                problem("%s: routes is %r" % (w, r))
                continue
            for x in r:
                if not isinstance(x, dict) or set(x) != ROUTE_KEYS:
                    problem("%s: route %r: keys are not %s" % (w, x, sorted(ROUTE_KEYS)))
                    continue
                if not isinstance(x["rule"], str) or not x["rule"]:
                    problem("%s: route rule %r" % (w, x["rule"]))
                if not is_int(x["messages"]) or x["messages"] == 0 or not is_int(x["bytes"]):
                    problem("%s: route counts %r" % (w, x))
            continue
        if set(o) != MSG_KEYS:
            problem("%s: keys %s, want %s" % (w, sorted(o), sorted(MSG_KEYS)))
            continue
        if not isinstance(o["place"], str) or not o["place"]:
            problem("%s: place %r" % (w, o["place"]))
        if o["message_id"] is not None and not isinstance(o["message_id"], str):
            problem("%s: message_id %r" % (w, o["message_id"]))
        if isinstance(o["message_id"], str) and (o["message_id"].startswith("<") or
                                                 o["message_id"].endswith(">")):
            problem("%s: message_id %r has its <>" % (w, o["message_id"]))
        if o["action"] not in ACTIONS:
            problem("%s: action %r" % (w, o["action"]))
        d = o["destination"]
        if not isinstance(d, list) or not d or not all(isinstance(x, str) and x for x in d):
            problem("%s: destination %r is not a list of paths" % (w, d))
        if not is_int(o["bytes"]):
            problem("%s: bytes %r" % (w, o["bytes"]))
        if o["dry_run"] is not dry:
            problem("%s: dry_run is %r, want %r" % (w, o["dry_run"], dry))
        r = o["recipients"]
        if not isinstance(r, list):
            problem("%s: recipients %r" % (w, r))
            continue
        for x in r:
            if not isinstance(x, dict) or set(x) != REC_KEYS:
                problem("%s: recipient %r: keys are not %s" % (w, x, sorted(REC_KEYS)))
                continue
            if not isinstance(x["address"], str) or not isinstance(x["header"], str) or \
               not (x["canonical"] is None or isinstance(x["canonical"], str)):
                problem("%s: recipient %r" % (w, x))
    if summ is None:
        if not summary_optional:
            problem("%s: no summary object" % path)
    else:
        n = {a: sum(1 for m in msgs if m.get("action") == a) for a in ACTIONS}
        if summ.get("rewritten") != n["rewrite"]:
            problem("%s: summary rewritten %r, but %d messages with action rewrite"
                    % (path, summ.get("rewritten"), n["rewrite"]))
        r = summ.get("refiled")
        if not is_int(r) or not n["refile"] + n.get("copy", 0) <= r <= \
                n["refile"] + n["refile+keep"] + n.get("copy", 0):
            problem("%s: summary refiled %r, but %d messages refile and %d refile+keep"
                    % (path, r, n["refile"], n["refile+keep"]))
        if is_int(summ.get("scanned")) and summ["scanned"] < len(msgs):
            problem("%s: summary scanned %r, but %d messages listed"
                    % (path, summ["scanned"], len(msgs)))
    return msgs, summ

def proj(m):
    try:
        return json.dumps([m["place"], m["message_id"], m["action"], m["destination"],
                           [[r["address"], r["header"], r["canonical"]]
                            for r in m["recipients"]]])
    except (KeyError, TypeError) as e:
        return "unreadable message object %r" % (m,)

def cmd_valid(path, dry, opt=""):
    validate(path, dry == "dry", opt == "summary-optional")

def cmd_project(path, prefix=""):
    msgs, _ = split(load(path))
    for m in msgs:
        if str(m.get("place", "")).startswith(prefix):
            print(proj(m))

def summary_lines(path):
    _, s = split(load(path))
    if s is None:
        return ["no summary"]
    out = ["%s %r" % (k, s.get(k)) for k in COUNTS]
    out += sorted("route %s: %r %r" % (r.get("rule"), r.get("messages"), r.get("bytes"))
                  for r in s.get("routes") or [] if isinstance(r, dict))
    return out

def cmd_samesummary(a, b):
    x, y = summary_lines(a), summary_lines(b)
    if x != y:
        for l in sorted(set(x) - set(y)):
            problem("only in %s: %s" % (a, l))
        for l in sorted(set(y) - set(x)):
            problem("only in %s: %s" % (b, l))

def cmd_text(jpath, tpath, verb, prefix):
    # The text report tpath (from a pipe) against the JSON report jpath.
    msgs, summ = split(load(jpath))
    want = []
    for m in msgs:
        mid = None if m["message_id"] is None else "<%s>" % m["message_id"]
        rec = ", ".join("%s -> %s" % (r["address"], "(not routed)" if r["canonical"] is None
                                      else r["canonical"]) for r in m["recipients"])
        want.append([m["place"], mid, rec, "%s %s" % (m["action"], ", ".join(m["destination"]))])
    if summ is not None:
        for r in summ["routes"]:
            n = r["messages"]
            want.append("%s %s: %d message%s, %d bytes"
                        % (verb, r["rule"], n, "" if n == 1 else "s", r["bytes"]))
        want.append("%s%s, T s" % (prefix, ", ".join("%d %s" % (summ[k], k) for k in COUNTS)))
    got = open(tpath, "rb").read().decode("utf-8", "replace").split("\n")
    if got and got[-1] == "":
        got.pop()
    got = [re.sub(r", [0-9]+(\.[0-9]+)? s$", ", T s", l) for l in got]
    if len(got) != len(want):
        problem("%d lines of text, %d expected from the JSON" % (len(got), len(want)))
    for i, (w, g) in enumerate(zip(want, got), 1):
        if isinstance(w, list):
            f = g.split("\t")
            if len(f) != 4 or any(a is not None and a != b for a, b in zip(w, f)):
                problem("line %d: %r\n  expected %r" % (i, g, "\t".join(x or "<ID>" for x in w)))
        elif w != g:
            problem("line %d: %r\n  expected %r" % (i, g, w))

def cmd_rules(jpath):
    # Each route's rule is "FILE:LINE KEY -> TARGET" and line LINE of FILE
    # has KEY and TARGET as its first two fields.
    _, summ = split(load(jpath))
    if summ is None:
        return problem("no summary")
    if not summ["routes"]:
        return problem("no routes")
    for r in summ["routes"]:
        m = re.match(r"^(.*):([0-9]+) (\S+) -> (\S+)$", r["rule"])
        if not m:
            problem("rule %r is not FILE:LINE KEY -> TARGET" % r["rule"])
            continue
        try:
            line = open(m.group(1)).read().split("\n")[int(m.group(2)) - 1].split()
        except (OSError, IndexError) as e:
            problem("rule %r: %s" % (r["rule"], e))
            continue
        if line[:2] != [m.group(3), m.group(4)]:
            problem("rule %r: that line reads %r" % (r["rule"], line))

def mbox_of(place):
    m = re.match(r"^(.*) at byte ([0-9]+)$", place)
    return m.group(1) if m else None

def cmd_didit(jpath, before, root, cwd="."):
    # After a real run: what its JSON lists was done, and nothing else.
    # before: "PATH INODE" of every source file before the run (paths from
    # cwd, the directory the run was made in); root: the destination root
    # ("-" for a rewrite).
    msgs, _ = split(load(jpath))
    ino = {}
    for l in open(before):
        p, i = l.rstrip("\n").rsplit(" ", 1)
        ino[p] = int(i)
    os.chdir(cwd)
    def inode(p):
        try:
            return os.lstat(p).st_ino
        except OSError:
            return None
    listed = {}
    mboxes = {}
    for m in msgs:
        if m.get("action") not in ACTIONS:
            continue    # "valid" says so; its source is not checked here
        place = m["place"]
        mb = mbox_of(place)
        if mb is not None:
            mboxes.setdefault(mb, []).append(m)
        elif place != "<stdin>":
            listed[place] = m
    for p, i in sorted(ino.items()):
        if p in mboxes:
            continue
        m = listed.get(p)
        if p in listed:
            del listed[p]
        if m is None or m["action"] in KEPT:
            if inode(p) != i:
                problem("%s: %s, but it is gone or replaced" %
                        (p, "not listed" if m is None else m["action"]))
        elif inode(p) == i:
            problem("%s: %s, but it is still there, the same file" % (p, m["action"]))
    for p in listed:
        problem("%s: listed, but no such source file before the run" % p)
    for mb, ms in sorted(mboxes.items()):
        if mb not in ino:
            problem("%s: listed, but no such source file before the run" % mb)
            continue
        data = open(mb, "rb").read() if os.path.exists(mb) else b""
        rw = [m for m in ms if m["action"] == "rewrite"]
        if rw and inode(mb) == ino[mb]:
            problem("%s: rewritten, but the same file as before" % mb)
        if not [m for m in ms if m["action"] in ("rewrite", "refile")] and \
           inode(mb) != ino[mb]:
            problem("%s: all its listed messages stay, but it was replaced" % mb)
        for m in ms:
            if m["message_id"] is None or m["action"] == "rewrite":
                continue
            here = ("<%s>" % m["message_id"]).encode() in data
            if here != (m["action"] in KEPT):
                problem("%s: message <%s> %s, but it is %s" % (mb, m["message_id"],
                        m["action"], "still there" if here else "gone"))
    if root == "-":
        return finish()
    want = {}
    for m in msgs:
        if m["action"] == "rewrite":
            problem("%s: rewrite in a refile" % m["place"])
        for d in m["destination"]:
            want[d] = want.get(d, 0) + 1
    got = {}
    for dirpath, dirs, files in os.walk(root):
        if "cur" in dirs or "new" in dirs:
            n = 0
            for s in ("cur", "new"):
                if os.path.isdir(os.path.join(dirpath, s)):
                    n += len([f for f in os.listdir(os.path.join(dirpath, s))
                              if not f.startswith(".")])
            got[dirpath + "/"] = n
            dirs[:] = []
            continue
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                got[p] = sum(1 for l in fh if l.startswith(b"From ")
                             or l.startswith(b"\xef\xbb\xbfFrom "))
    for d in sorted(set(want) | set(got)):
        if want.get(d) != got.get(d):
            problem("mailbox %s: %s messages listed, %s there" % (d, want.get(d, 0),
                    got.get(d, "no mailbox,")))

def cmd_noplace(jpath, prefix):
    msgs, _ = split(load(jpath))
    for m in msgs:
        if str(m.get("place")).startswith(prefix):
            problem("listed: %s" % proj(m))

def cmd_hostile(jpath, want_null):
    msgs, _ = split(load(jpath))
    ids = [m["message_id"] for m in msgs]
    h = [i for i in ids if isinstance(i, str) and i.startswith("ctl")]
    if len(h) != 1:
        problem("no single message_id starting \"ctl\" in %r" % ids)
    elif not h[0].endswith("-\u00e9@example.org"):
        problem("message_id %r does not end in -\u00e9@example.org" % h[0])
    rec = [(r["address"], r["canonical"]) for m in msgs for r in m["recipients"]]
    if ("administrator@cpandl.net", "administrator@adatum.com") not in rec:
        problem("administrator@cpandl.net -> administrator@adatum.com not in %r" % rec)
    if want_null == "null" and None not in ids:
        problem("no message_id null in %r" % ids)

globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
finish()
EOF

# py DESC COMMAND ARG...: one test, ok when jr.py COMMAND ARG... finds no
# problem; skipped without python3.
py() {
	_desc=$1
	shift
	if [ "$have_python" = no ]; then
		skip_test "$_desc (no python3)"
		return
	fi
	if python3 "$tmp/jr.py" "$@" >"$tmp/.py.out" 2>&1; then
		ok "$_desc"
	else
		not_ok "$_desc"
		sed 20q "$tmp/.py.out" | diag
	fi
}

# py_same DESC WANT GOT [PREFIX]: the message objects of the JSON reports
# WANT and GOT (those whose place starts with PREFIX) are the same, as a
# multiset, in place, message_id, action, destination and recipients.
py_same() {
	if [ "$have_python" = no ]; then
		skip_test "$1 (no python3)"
		return
	fi
	python3 "$tmp/jr.py" project "$2" "${4:-}" >"$tmp/.want.proj" 2>&1
	python3 "$tmp/jr.py" project "$3" "${4:-}" >"$tmp/.got.proj" 2>&1
	if [ ! -s "$tmp/.want.proj" ]; then
		not_ok "$1"
		diag "the dry run lists no message"
		return
	fi
	same_list "$1" "$tmp/.want.proj" "$tmp/.got.proj"
}

# at DIR CMD...: CMD run in DIR.
at() {
	(cd "$1" && shift && "$@")
}

# --- a. Every spool fixture, every spool mode: dry run, then real run. ----

mboxes=
for f in "$spools"/mbox/*.mbox; do
	mboxes="$mboxes mbox/${f##*/}"
done

# fresh DIR SET: DIR holds copies of the spools of SET (md, mb or bad),
# and their paths below DIR are in $srcs.
fresh() {
	mkdir "$1" || bail_out "cannot make $1"
	case $2 in
	md) copy_maildir "$spools/maildir" "$1/maildir"
		srcs=maildir ;;
	mb) mkdir "$1/mbox" && cp "$spools"/mbox/*.mbox "$1/mbox/"
		srcs=$mboxes ;;
	bad) mkdir "$1/bad" && copy_maildir "$spools/bad/maildir" "$1/bad/maildir" &&
		cp "$spools/bad/bad.mbox" "$1/bad/"
		srcs="bad/maildir bad/bad.mbox" ;;
	esac
	[ $? -eq 0 ] && settle "$1" || bail_out "cannot copy the fixtures to $1"
}

n_msgs=$(ls "$testdata"/messages/*.eml | wc -l)
plan $((12 * 9 + n_msgs + 1 + 4 * 4 + 12 + 5 + 9))

for set in md mb bad; do
	want=0
	[ "$set" = bad ] && want=65
	for mode in rewrite maildir mbox copy; do
		d=$set.$mode
		fresh "$d" "$set"
		root=$tmp/$d/dest
		case $mode in
		rewrite) set -- ; root=- ;;
		maildir) set -- --deliver "$root/%d/%u/" ;;
		mbox) set -- --deliver "$root/%u" ;;
		copy) set -- --copy --deliver "$root/%d/%u/" ;;
		esac
		what="$set, $mode"
		at "$d" "$reroute" -t "$table" -n --report json "$@" $srcs \
			>"$d.dry.json" 2>"$d.dry.err"
		rc=$?
		status_is "$what: dry run --report json exits $want" "$want" "$d.dry"
		py "$what: dry-run JSON: every line parses, exact keys and types, summary last" \
			valid "$d.dry.json" dry
		at "$d" "$reroute" -t "$table" -n "$@" $srcs >"$d.dry.txt" 2>/dev/null
		py "$what: the text report (a pipe) says what the JSON says, line for line, uncut" \
			text "$d.dry.json" "$d.dry.txt" "would route" "reroute: dry run, nothing changed: "
		py "$what: each route's rule is FILE:LINE KEY -> TARGET of a table line" \
			rules "$d.dry.json"
		at "$d" find $srcs -type f -exec stat -c '%n %i' {} + >"$d.before" ||
			bail_out "cannot list $d"
		at "$d" "$reroute" -t "$table" --report json "$@" $srcs \
			>"$d.real.json" 2>"$d.real.err"
		rc=$?
		status_is "$what: real run --report json exits $want" "$want" "$d.real"
		py "$what: real-run JSON: every line parses, exact keys and types, summary last" \
			valid "$d.real.json" real
		py_same "$what: the real run lists what the dry run said, message for message" \
			"$d.dry.json" "$d.real.json"
		py "$what: the real run's counts and routes are the dry run's" \
			samesummary "$d.dry.json" "$d.real.json"
		py "$what: the real run did what its JSON says, and nothing else" \
			didit "$d.real.json" "$d.before" "$root" "$tmp/$d"
	done
done

# --- b. One message on stdin. ---------------------------------------------

for f in "$testdata"/messages/*.eml "$report_data/hostile.eml"; do
	m=${f##*/}
	"$reroute" -t "$table" -n --report json - <"$f" >"stdin.$m.json" 2>/dev/null
	rc=$?
	opt=
	[ "$rc" -eq 0 ] || opt=summary-optional
	py "stdin ${m%.eml}: dry-run JSON valid, exact keys" valid "stdin.$m.json" dry $opt
done

for f in "$testdata/messages/plain.eml" "$testdata/messages/group.eml" \
    "$refile_data/two-users.eml" "$report_data/hostile.eml"; do
	m=${f##*/}
	m=${m%.eml}
	"$reroute" -t "$table" -n --report json --deliver "$tmp/mda.$m/%d/%u/" - \
		<"$f" >"mda.$m.dry.json" 2>/dev/null
	py "delivery agent $m: dry-run JSON valid" valid "mda.$m.dry.json" dry
	"$reroute" -t "$table" --report json --deliver "$tmp/mda.$m/%d/%u/" - \
		<"$f" >"mda.$m.real.json" 2>"mda.$m.real.err"
	py "delivery agent $m: a real run with --report json prints valid JSON" \
		valid "mda.$m.real.json" real
	py_same "delivery agent $m: the real run lists what the dry run said" \
		"mda.$m.dry.json" "mda.$m.real.json"
	: >empty.list
	py "delivery agent $m: the message is in the mailboxes the dry run named, only there" \
		didit "mda.$m.dry.json" empty.list "$tmp/mda.$m"
done

# --- c. Control characters and invalid UTF-8. ------------------------------

py "hostile Message-ID on stdin: escaped or replaced, the rest kept, still routed" \
	hostile "stdin.hostile.eml.json" -

mkdir hm && cp "$report_data/hostile.mbox" hm/h.mbox && settle hm ||
	bail_out "cannot copy hostile.mbox"
at hm "$reroute" -t "$table" -n --report json h.mbox >hm.dry.json 2>hm.dry.err
py "hostile mbox: dry-run JSON valid" valid hm.dry.json dry
py "hostile mbox: Message-ID escaped, display names harmless, a missing Message-ID is null" \
	hostile hm.dry.json null
at hm "$reroute" -t "$table" --report json h.mbox >hm.real.json 2>hm.real.err
py "hostile mbox: real-run JSON valid" valid hm.real.json real
py_same "hostile mbox: the real run lists what the dry run said" hm.dry.json hm.real.json

# A Maildir whose file names have control characters and invalid UTF-8.
mkdir -p hd/Maildir/cur hd/Maildir/new hd/Maildir/tmp ||
	bail_out "cannot make hd"
cp "$report_data/hostile.eml" "hd/Maildir/cur/1710000000.M1P1.h$(printf '\001\037\377\300x'):2,S" &&
cp "$testdata/messages/plain.eml" "hd/Maildir/new/1710000001.M2P2.h$(printf '\033[1m\177\351')" &&
	settle hd || bail_out "cannot make the hostile Maildir"
at hd "$reroute" -t "$table" -n --report json Maildir >hd.dry.json 2>hd.dry.err
py "hostile file names: dry-run JSON valid" valid hd.dry.json dry
at hd "$reroute" -t "$table" --report json Maildir >hd.real.json 2>hd.real.err
py "hostile file names: real-run JSON valid" valid hd.real.json real
py_same "hostile file names: the real run lists what the dry run said" hd.dry.json hd.real.json

# Refiled: places and destinations in the same JSON.
mkdir hr && cp "$report_data/hostile.mbox" hr/h.mbox && settle hr ||
	bail_out "cannot copy hostile.mbox"
at hr "$reroute" -t "$table" -n --report json --deliver "$tmp/hr/dest/%d/%u/" h.mbox \
	>hr.dry.json 2>hr.dry.err
py "hostile mbox refiled: dry-run JSON valid" valid hr.dry.json dry
at hr find h.mbox -exec stat -c '%n %i' {} + >hr.before
at hr "$reroute" -t "$table" --report json --deliver "$tmp/hr/dest/%d/%u/" h.mbox \
	>hr.real.json 2>hr.real.err
py "hostile mbox refiled: real-run JSON valid" valid hr.real.json real
py_same "hostile mbox refiled: the real run lists what the dry run said" \
	hr.dry.json hr.real.json
py "hostile mbox refiled: the run did what its JSON says" \
	didit hr.real.json hr.before "$tmp/hr/dest" "$tmp/hr"

# --- d. An mbox that cannot be rewritten is not listed. --------------------

mkdir lk && cp "$spools/mbox/mboxrd.mbox" lk/locked.mbox &&
	cp "$spools/mbox/crlf.mbox" lk/other.mbox && settle lk ||
	bail_out "cannot make lk"
at lk "$reroute" -t "$table" -n --report json locked.mbox other.mbox >lk.dry.json 2>&1
"$lockhold" both "$tmp/lk/locked.mbox" 60 >hold.out 2>hold.err &
hold_pid=$!
wait_line hold.out locked 10 || bail_out "lockhold did not lock: $(cat hold.err)"
at lk "$reroute" -t "$table" --report json --lock-timeout 1 locked.mbox other.mbox \
	>lk.real.json 2>lk.real.err
rc=$?
kill -TERM "$hold_pid" 2>/dev/null
wait "$hold_pid"
status_is "one mbox locked: exit 75" 75 lk.real
py "one mbox locked: the JSON is valid" valid lk.real.json real
py_same "one mbox locked: it lists the other mbox's messages as the dry run did, and nothing of the locked one" \
	lk.dry.json lk.real.json other.mbox
py "one mbox locked: the JSON lists nothing of the locked mbox" \
	noplace lk.real.json locked.mbox
file_has "one mbox locked: the summary counts an error" lk.real.json \
	'"type": *"summary".*"errors": *[1-9]'

# --- e. The text report on a terminal. -------------------------------------

mkdir tt && copy_maildir "$spools/maildir" tt/maildir &&
	cp "$spools/mbox/crlf.mbox" "$spools/mbox/mboxrd.mbox" tt/ && settle tt ||
	bail_out "cannot make tt"
tt_args="-t '$table' -n --deliver '$tmp/tt/dest/%u' maildir crlf.mbox mboxrd.mbox"
at tt sh -c "'$reroute' $tt_args" >tt.pipe 2>/dev/null
check "in a pipe: every message line has four TAB-separated columns, none cut" \
	awk -F '\t' '/^would route |^reroute: / { next }
		NF != 4 || $0 ~ /\.\.\.(\t|$)/ { print; bad = 1 } END { exit bad }' tt.pipe

# message_lines FILE: the message lines of a text report (those before the
# per-route lines and the summary).
message_lines() {
	awk '/^would route |^reroute: / { exit } { print }' "$1"
}
message_lines tt.pipe >tt.pipe.msgs
grep -E '^would route |^reroute: ' tt.pipe | sed -E 's/, [0-9]+(\.[0-9]+)? s$/, T s/' >tt.pipe.rest

for cols in 60 200; do
	if [ "$have_script" = no ]; then
		for i in 1 2 3 4; do
			skip_test "terminal $cols columns (no script(1))"
		done
		continue
	fi
	script -qfec "stty cols $cols rows 50; unset COLUMNS; cd '$tmp/tt' && exec '$reroute' $tt_args 2>'$tmp/tt.$cols.err'" \
		/dev/null </dev/null >tt.$cols.raw 2>&1
	tr -d '\r' <tt.$cols.raw >tt.$cols
	message_lines tt.$cols >tt.$cols.msgs
	grep -E '^would route |^reroute: ' tt.$cols | sed -E 's/, [0-9]+(\.[0-9]+)? s$/, T s/' \
		>tt.$cols.rest
	if [ "$(wc -l <tt.$cols.msgs)" -eq "$(wc -l <tt.pipe.msgs)" ] &&
	    cmp -s tt.pipe.rest tt.$cols.rest; then
		ok "terminal $cols columns: a line per message, then the same route lines and summary as in a pipe"
	else
		not_ok "terminal $cols columns: a line per message, then the same route lines and summary as in a pipe"
		diag "$(wc -l <tt.$cols.msgs) message lines, $(wc -l <tt.pipe.msgs) in a pipe; output:"
		visible tt.$cols.raw | sed 20q | diag
	fi
	check "terminal $cols columns: no message line is wider than $cols (none wraps)" \
		awk -v w="$cols" 'length($0) > w { print length($0) ": " $0; bad = 1 }
			END { exit bad }' tt.$cols.msgs
	paste tt.pipe.msgs tt.$cols.msgs >tt.$cols.pairs
	check "terminal $cols columns: the four columns line up, each value whole or cut with \"...\"" \
		awk -F '\t' -v cutsfile="$tmp/tt.$cols.cuts" '
		function take(v, s,   m) {
			cut = 0
			if (substr(s, 1, length(v)) == v)
				return length(v)
			cut = 1
			for (m = length(v) - 1; m >= 0; m--)
				if (substr(s, 1, m + 3) == substr(v, 1, m) "...")
					return m + 3
			return -1
		}
		{
			t = $5
			sub(/ +$/, "", t)
			pos = 1
			for (k = 1; k <= 4; k++) {
				st[k] = pos
				n = take($k, substr(t, pos))
				if (n < 0) {
					print "line " NR ": column " k " is neither \"" $k \
					    "\" nor a cut of it: \"" substr(t, pos) "\""
					bad = 1
					next
				}
				cuts += cut
				pos += n
				if (k == 4)
					break
				if (substr(t, pos, 1) != " ") {
					print "line " NR ": no space after column " k ": " t
					bad = 1
					next
				}
				while (substr(t, pos, 1) == " ")
					pos++
			}
			if (pos != length(t) + 1) {
				print "line " NR ": more after the last column: " t
				bad = 1
			}
			key = st[2] " " st[3] " " st[4]
			if (first == "")
				first = key
			else if (key != first) {
				print "line " NR ": columns 2-4 start at " key \
				    ", on the first line at " first
				bad = 1
			}
		}
		END { print cuts + 0 > cutsfile; exit bad }' tt.$cols.pairs
	if [ "$cols" = 60 ]; then
		check "terminal 60 columns: long values are cut with \"...\"" \
			test "$(cat tt.60.cuts 2>/dev/null || echo 0)" -gt 0
	else
		check "terminal $cols columns: nothing on stderr" test ! -s tt.$cols.err
	fi
done

done_testing
