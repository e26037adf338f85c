#!/bin/sh
# soak_test.sh - reroute rewriting and refiling spools again and again while
# a writer keeps delivering into them: nothing the writer wrote is lost,
# doubled or changed.
#
# The writer (python3, below) delivers COUNT messages, one every 0 to 80 ms,
# alternately into an mbox and a Maildir, as an MDA does: to the mbox under
# its locks (the dotlock m.mbox.lock made with O_EXCL holding its PID, then
# an fcntl write lock taken with F_SETLKW, checking that the file it locked
# is still the one at the path; append, fsync, unlock); into the Maildir by
# writing a file in tmp/, fsyncing it and renaming it into new/. Each
# message has a serial (Message-ID <N.soak@example.org>, X-Soak-Serial: N)
# and a body made from it (with "From " and ">From " lines, which the mbox
# holds escaped). By N % 4 it is for a user at cpandl.net (routed to
# adatum.com, inbound), a user at adatum.com, sales@cpandl.net (an alias to
# team@adatum.com), or list@example.org (not routed: it stays).
#
# Meanwhile reroute runs over both spools in turn: a rewrite in place, a
# refile into Maildirs (dest/%d/%u/), a refile into mboxes (mail/%u), each
# with --lock-timeout 20, so that it waits for the writer's locks (an exit
# 75 would be a retry; any other non-zero status is a failure). When the
# writer is done, one rewrite and one refile run finish the job. Then:
#   - every run exited 0 or 75, and there were enough of them while the
#     writer wrote;
#   - every serial the writer wrote is present exactly once, in the source
#     spools or in a destination mailbox, with its body byte for byte; the
#     unrouted ones in a source spool, the others in a mailbox;
#   - every mbox is whole (every message in it is one of the writer's);
#   - nothing is left behind: no dotlock, no file in a tmp/, no temporary
#     mbox.
# Bounded: about 20 s (COUNT 400).

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

table=$testdata/tables/filter.table
cd "$tmp" || bail_out "cannot cd to $tmp"
count=400

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import fcntl' 2>/dev/null; then
	skip_all "python3 is not installed (the writer is a python3 script)"
fi

cat >writer.py <<'EOF'
import errno, fcntl, os, random, sys, time

mbox, maildir, count, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lockpath = mbox + ".lock"


def message(n):
    k = n % 4
    rcpt = ("u%d@cpandl.net" % (n % 5), "u%d@adatum.com" % (n % 5),
            "sales@cpandl.net", "list@example.org")[k]
    head = ("Return-Path: <writer@example.org>\n"
            + ("Delivered-To: %s\n" % rcpt if k != 3 else "")
            + "Date: Wed, 20 Mar 2024 10:00:00 +0000\n"
            "From: Writer <writer@example.org>\n"
            "To: %s\n"
            "Subject: soak message %d\n"
            "Message-ID: <%d.soak@example.org>\n"
            "X-Soak-Serial: %d\n\n") % (rcpt, n, n, n)
    return head + body(n)


def body(n):
    lines = ["Line %d of soak message %d: %s\n" % (j, n, "x" * ((n * 7 + j) % 60))
             for j in range(1, 3 + n % 23)]
    if n % 3 == 0:
        lines.insert(1, "From the writer, message %d.\n" % n)
    if n % 5 == 0:
        lines.insert(2, ">From a quoted line of message %d.\n" % n)
    return "".join(lines)


def escaped(text):
    out = []
    for line in text.splitlines(True):
        if line.lstrip(">").startswith("From "):
            line = ">" + line
        out.append(line)
    return "".join(out)


def take_dotlock():
    deadline = time.monotonic() + 60
    while True:
        try:
            fd = os.open(lockpath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if time.monotonic() > deadline:
                sys.exit("writer: %s held for 60 s" % lockpath)
            time.sleep(0.005)
            continue
        os.write(fd, b"%d\n" % os.getpid())
        os.close(fd)
        return


def append_mbox(n):
    take_dotlock()
    try:
        fd = os.open(mbox, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)  # fcntl F_SETLKW, the whole file
            st, now = os.fstat(fd), os.stat(mbox)
            if (st.st_ino, st.st_dev) != (now.st_ino, now.st_dev):
                sys.exit("writer: %s was replaced while we held its locks" % mbox)
            data = ("From writer@example.org Wed Mar 20 10:00:00 2024\n"
                    + escaped(message(n)) + "\n").encode()
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        os.unlink(lockpath)


def deliver_maildir(n):
    name = "%d.M%dP%dQ%d.soak" % (time.time(), n, os.getpid(), n)
    tmp = os.path.join(maildir, "tmp", name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    data = message(n).encode()
    while data:
        data = data[os.write(fd, data):]
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, os.path.join(maildir, "new", name))


random.seed(7)
with open(log, "w") as out:
    for n in range(1, count + 1):
        (append_mbox if n % 2 else deliver_maildir)(n)
        print(n, flush=True, file=out)
        time.sleep(random.random() * 0.08)
    print("done", flush=True, file=out)
EOF

cat >check.py <<'EOF'
import importlib.util, os, re, sys

root, count = sys.argv[1], int(sys.argv[2])
spec = importlib.util.spec_from_file_location("writer_body", "body.py")
wb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wb)

seen = {}
problems = []


def take(text, where, mbox):
    m = re.search(r"^X-Soak-Serial: (\d+)\r?$", text.split("\n\n", 1)[0], re.M)
    if not m:
        problems.append("%s: a message without a serial: %r" % (where, text[:80]))
        return
    n = int(m.group(1))
    body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    if mbox:
        if not body.endswith("\n\n"):
            problems.append("%s: message %d does not end in a blank line" % (where, n))
        body = body[:-1]
        body = "".join(l[1:] if re.match(r">+From ", l) else l for l in body.splitlines(True))
    if body != wb.body(n):
        problems.append("%s: message %d: the body differs" % (where, n))
    seen.setdefault(n, []).append(where)


for dirpath, dirs, files in os.walk(root):
    for f in files:
        p = os.path.join(dirpath, f)
        sub = os.path.basename(dirpath)
        rel = os.path.relpath(p, root)
        if sub == "tmp" or f.endswith(".lock") or ".reroute." in f:
            problems.append("left behind: " + rel)
            continue
        if f.startswith("."):
            continue  # reroute's journals
        data = open(p, "rb").read().decode()
        if sub in ("cur", "new"):
            take(data, rel, False)
            continue
        if data and not data.startswith("From "):
            problems.append("%s: does not start with a From_ line" % rel)
        chunks = re.split(r"(?m)^(?=From )", data)
        for c in chunks:
            if c:
                take(c.split("\n", 1)[1], rel, True)

for n in range(1, count + 1):
    places = seen.get(n, [])
    if len(places) != 1:
        problems.append("message %d: %d copies %s" % (n, len(places), places))
    elif (n % 4 == 3) != (places[0] == "m.mbox" or places[0].startswith("md/")):
        problems.append("message %d is in %s" % (n, places[0]))
for n in seen:
    if not 1 <= n <= count:
        problems.append("message %d: not one the writer wrote" % n)
print("\n".join(problems[:20]))
EOF
# the checker takes body() from the writer
sed -n '/^def body/,/^$/p' writer.py >body.py

mkdir -p s/md/cur s/md/new s/md/tmp s/dest s/mail || bail_out "cannot make the spools"
: >s/m.mbox
chmod 600 s/m.mbox

python3 writer.py s/m.mbox s/md "$count" writer.log 2>writer.err &
writer=$!

# pass MODE: one reroute run over both spools; counts its exit status.
runs=0
during=0
bad=
tempfail=0
pass() {
	case $1 in
	rw) set -- ;;
	rf-md) set -- --deliver "$tmp/s/dest/%d/%u/" ;;
	rf-mb) set -- --deliver "$tmp/s/mail/%u" ;;
	esac
	"$reroute" -q --lock-timeout 20 -t "$table" "$@" s/m.mbox s/md >run.out 2>run.err
	_rc=$?
	runs=$((runs + 1))
	case $_rc in
	0) ;;
	75) tempfail=$((tempfail + 1)) ;;
	*) bad="$bad
run $runs ($*): exit $_rc: $(sed 3q run.err)" ;;
	esac
}

start=$(now_ms)
while ! grep -q -x done writer.log 2>/dev/null && kill -0 "$writer" 2>/dev/null; do
	for mode in rw rf-md rw rf-mb; do
		pass "$mode"
		during=$((during + 1))
	done
done
wait "$writer"
wrc=$?
t=$((($(now_ms) - start) / 1000))
pass rw
pass rf-md

is "the writer wrote its $count messages (exit 0) in ${t} s" "0 done" \
	"$wrc $(tail -n 1 writer.log 2>/dev/null)"
[ ! -s writer.err ] || sed 5q writer.err | diag
check "reroute ran $during times while the writer wrote (at least 12)" test "$during" -ge 12
is "every reroute run exited 0 or 75 ($tempfail times 75)" "" "$bad"
problems=$(python3 check.py s "$count")
is "every message the writer wrote is there exactly once, its body byte for byte, nothing left behind" \
	"" "$problems"
is "the Maildir's tmp/ is empty and no dotlock is left" "" \
	"$(ls -A s/md/tmp; ls s/*.lock s/mail/*.lock 2>/dev/null)"

plan "$tap_n"
done_testing
