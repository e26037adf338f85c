#!/bin/sh
# cli_test.sh - reroute's command line, end to end: --help, --version, usage
# errors, --resolve, --check, table errors and -r/--route flags.
#
# The --resolve lines below are written by hand from SPEC.md and
# testdata/tables/filter.table (rules on lines 3-8); they are the contract:
#   ADDR -> CANONICAL, then <TAB>FILE:LINE<TAB>KEY -> TARGET per rule applied
#   (a -r flag's FILE:LINE is --route:N, N its position), or ADDR: not routed.
# Tests run in $tmp with the table copied there, so FILE is "filter.table".

. "${top_srcdir:-$(dirname "$0")/..}/cmd/testlib.sh"

cp "$testdata/tables/filter.table" "$tmp/filter.table" || bail_out "no table"
cp "$testdata/messages/plain.eml" "$tmp/plain.eml" || bail_out "no message"
: >"$tmp/empty.table"
cd "$tmp" || bail_out "cannot cd to $tmp"

T='	'	# a tab

# resolve_is DESC EXPECTED ARG...: reroute ARG... exits 0 and prints exactly
# EXPECTED (printf format: \t and \n).
n_resolve=0
resolve_is() {
	_desc=$1
	printf %s "$2" >want.out
	shift 2
	n_resolve=$((n_resolve + 1))
	run /dev/null "resolve$n_resolve" "$@"
	if [ "$rc" = 0 ] && cmp -s want.out "resolve$n_resolve.out"; then
		ok "$_desc"
	else
		not_ok "$_desc"
		diag "reroute $*: exit status $rc; stderr:"
		sed -n 1,5p "resolve$n_resolve.err" | diag
		cmp_diag want.out "resolve$n_resolve.out"
	fi
}

# stderr_has DESC NAME EREGEX: NAME's stderr matches EREGEX.
stderr_has() {
	if grep -E -q -e "$3" "$2.err"; then
		ok "$1"
	else
		not_ok "$1"
		diag "stderr does not match /$3/:"
		sed -n 1,10p "$2.err" | diag
	fi
}

options="-t --table -r --route --recipient --visible --resolve --check --help --version"
set -- $options
plan $((2 + $# + 2 + 3 + 4 + 12 + 4 + 2 + 6 * 2 + 1 + 3 + 3 + 2 + 5))

# --help: exit 0, every option on stdout.
run /dev/null help --help
status_is "--help: exit 0" 0 help
check "--help: something on stdout" test -s help.out
for opt in $options; do
	if grep -E -q -e "(^|[^[:alnum:]-])$opt([^[:alnum:]-]|\$)" help.out; then
		ok "--help lists $opt"
	else
		not_ok "--help lists $opt"
		sed -n 1,40p help.out | diag
	fi
done

# --version.
run /dev/null version --version
status_is "--version: exit 0" 0 version
printf 'reroute 0.1.0\n' >version.want
same_bytes "--version prints \"reroute 0.1.0\"" version.want version.out

# Usage errors: exit 64, nothing on stdout.
run plain.eml unknown -t filter.table --no-such-option -
status_is "unknown option: exit 64" 64 unknown
empty_file "unknown option: nothing on stdout" unknown.out
check "unknown option: a message on stderr" test -s unknown.err

cp "$testdata/messages/mbox-from.eml" somefile
run /dev/null mixed -t filter.table - somefile
status_is "'-' mixed with a spool: exit 64" 64 mixed
empty_file "'-' mixed with a spool: nothing on stdout" mixed.out
same_bytes "'-' mixed with a spool: the spool is untouched" \
	"$testdata/messages/mbox-from.eml" somefile
run /dev/null nospool -t filter.table no-such-spool
status_is "a spool that does not exist: exit 66" 66 nospool

# --resolve through filter.table.
resolve_is "--resolve a domain rule, then inbound" \
"administrator@cpandl.net -> administrator@adatum.com
${T}filter.table:4${T}cpandl.net -> adatum.com
${T}filter.table:3${T}adatum.com -> inbound
" -t filter.table --resolve administrator@cpandl.net

resolve_is "--resolve cpandl.org" \
"administrator@cpandl.org -> administrator@adatum.com
${T}filter.table:5${T}cpandl.org -> adatum.com
${T}filter.table:3${T}adatum.com -> inbound
" -t filter.table --resolve administrator@cpandl.org

resolve_is "--resolve: a domain rule wins over the wildcard" \
"administrator@internal.adatum.com -> administrator@adatum.com
${T}filter.table:6${T}internal.adatum.com -> adatum.com
${T}filter.table:3${T}adatum.com -> inbound
" -t filter.table --resolve administrator@internal.adatum.com

resolve_is "--resolve: a subdomain wildcard" \
"bob@mail.adatum.com -> bob@adatum.com
${T}filter.table:7${T}.adatum.com -> adatum.com
${T}filter.table:3${T}adatum.com -> inbound
" -t filter.table --resolve bob@mail.adatum.com

resolve_is "--resolve: an address rule wins over the domain rule" \
"sales@cpandl.net -> team@adatum.com
${T}filter.table:8${T}sales@cpandl.net -> team@adatum.com
${T}filter.table:3${T}adatum.com -> inbound
" -t filter.table --resolve sales@cpandl.net

resolve_is "--resolve: an address rule keeps the +extension" \
"Sales+q3@cpandl.net -> team+q3@adatum.com
${T}filter.table:8${T}sales@cpandl.net -> team@adatum.com
${T}filter.table:3${T}adatum.com -> inbound
" -t filter.table --resolve Sales+q3@cpandl.net

resolve_is "--resolve: a domain target keeps the local part as written" \
"Administrator+lists@CPANDL.net -> Administrator+lists@adatum.com
${T}filter.table:4${T}cpandl.net -> adatum.com
${T}filter.table:3${T}adatum.com -> inbound
" -t filter.table --resolve Administrator+lists@CPANDL.net

resolve_is "--resolve: an inbound domain resolves to itself" \
"administrator@adatum.com -> administrator@adatum.com
${T}filter.table:3${T}adatum.com -> inbound
" -t filter.table --resolve administrator@adatum.com

resolve_is "--resolve: an address no rule matches" \
"someone@example.org: not routed
" -t filter.table --resolve someone@example.org

resolve_is "--resolve: several addresses, in order" \
"someone@example.org: not routed
webmaster@cpandl.org -> webmaster@adatum.com
${T}filter.table:5${T}cpandl.org -> adatum.com
${T}filter.table:3${T}adatum.com -> inbound
mx1.cpandl.net@example.com: not routed
" -t filter.table --resolve someone@example.org webmaster@cpandl.org \
	mx1.cpandl.net@example.com

# -r/--route flags: a flag overrides the file rule with the same key.
resolve_is "-r overrides a file rule" \
"administrator@cpandl.net -> administrator@fabrikam.com
${T}--route:1${T}cpandl.net -> fabrikam.com
" -t filter.table -r cpandl.net=fabrikam.com --resolve administrator@cpandl.net

resolve_is "--route N is the flag's position; flags chain into file rules" \
"x@fabrikam.com -> x@adatum.com
${T}--route:2${T}fabrikam.com -> cpandl.net
${T}filter.table:4${T}cpandl.net -> adatum.com
${T}filter.table:3${T}adatum.com -> inbound
" -t filter.table -r cpandl.org=fabrikam.org --route fabrikam.com=cpandl.net \
	--resolve x@fabrikam.com

# --check.
run /dev/null check -t filter.table --check
status_is "--check filter.table: exit 0" 0 check
if cat check.out check.err |
	grep -E -q '^reroute: 6 rules, [0-9]+ warnings?$'; then
	ok "--check filter.table: \"reroute: 6 rules, W warnings\""
else
	not_ok "--check filter.table: \"reroute: 6 rules, W warnings\""
	cat check.out check.err | sed -n 1,10p | diag
fi

run /dev/null check-empty -t empty.table -r cpandl.org=adatum.com --check
status_is "--check an empty table and a flag: exit 0" 0 check-empty
resolve_is "--resolve through an empty table and a flag" \
"a@cpandl.org -> a@adatum.com
${T}--route:1${T}cpandl.org -> adatum.com
" -t empty.table -r cpandl.org=adatum.com --resolve a@cpandl.org

# A chain of 16 steps (and a final inbound) is fine; 17 are too many.
i=0
: >chain16.table
: >chain17.table
while [ $i -lt 17 ]; do
	[ $i -lt 16 ] &&
		echo "d$i.example d$((i + 1)).example" >>chain16.table
	echo "d$i.example d$((i + 1)).example" >>chain17.table
	i=$((i + 1))
done
echo "d16.example inbound" >>chain16.table
run /dev/null chain16 -t chain16.table --check
status_is "--check a chain of 16 steps: exit 0" 0 chain16
resolve_is "--resolve a chain of 16 steps" \
"u@d14.example -> u@d16.example
${T}chain16.table:15${T}d14.example -> d15.example
${T}chain16.table:16${T}d15.example -> d16.example
${T}chain16.table:17${T}d16.example -> inbound
" -t chain16.table --resolve u@d14.example

# Bad tables: exit 65, FILE:LINE on stderr, nothing on stdout.
printf '# bad\nadatum.com inbound\ncpandl.net adatum.com extra\n' >syntax.table
printf 'cpandl.net adatum.com\nadatum.com inbound\ncpandl.org adatum.com\ncpandl.net fabrikam.com\n' >dup.table
printf 'cpandl.net cpandl.org\ncpandl.org cpandl.net\n' >loop.table
printf 'adatum.com inbound\ncpandl..net adatum.com\n' >domain.table
printf 'cpandl.net\n' >onefield.table
for t in syntax:3 dup:4 loop:[12] domain:2 onefield:1 chain17:[0-9]+; do
	name=${t%%:*}
	line=${t#*:}
	run /dev/null "bad-$name" -t "$name.table" --check
	status_is "--check $name.table: exit 65" 65 "bad-$name"
	stderr_has "--check $name.table: stderr names $name.table:$line" \
		"bad-$name" "$name\\.table:$line:"
done
empty_file "--check syntax.table: nothing on stdout" bad-syntax.out

# A bad table stops a filter run before it reads the message.
run plain.eml filter-bad -t syntax.table -
status_is "filter with a bad table: exit 65" 65 filter-bad
empty_file "filter with a bad table: nothing on stdout" filter-bad.out
stderr_has "filter with a bad table: stderr names syntax.table:3" \
	filter-bad 'syntax\.table:3:'

# A table that cannot be read: exit 66.
run /dev/null missing-check -t missing.table --check
status_is "--check a missing table: exit 66" 66 missing-check
run plain.eml missing-filter -t missing.table -
status_is "filter with a missing table: exit 66" 66 missing-filter
empty_file "filter with a missing table: nothing on stdout" missing-filter.out

# No spool argument and stdin not a terminal: the same as "-".
run plain.eml dash -t filter.table -
run plain.eml nodash -t filter.table
status_is "no spool argument, stdin a file: exit 0" 0 nodash
same_bytes "no spool argument, stdin a file: the same output as -" \
	dash.out nodash.out

# Values attached to short options, as getopt takes them (-tFILE, -rFROM=TO,
# -j2), mean what the separate words mean; a value that looks like an option
# stays a value, and after -- nothing is split.
run /dev/null sep -t filter.table -r cpandl.org=fabrikam.com -j 2 --resolve administrator@cpandl.org
run /dev/null att -tfilter.table -rcpandl.org=fabrikam.com -j2 --resolve administrator@cpandl.org
status_is "attached values -tFILE -rFROM=TO -j2: exit 0" 0 att
same_bytes "attached values: the output of separate words" sep.out att.out
check "attached values: the -r rule applied" grep -q 'fabrikam\.com' att.out
printf 'cpandl.org fabrikam.com\n' >./-j2
run /dev/null dashval -t -j2 --resolve administrator@cpandl.org
check "a table named -j2 after -t: still a table" grep -q -- '-j2:1' dashval.out
printf '%s: not routed\n' -j2 >ddash.want
run /dev/null ddash -t filter.table --resolve -- -j2
same_bytes "after --, -j2 is an address" ddash.want ddash.out

done_testing
