#!/bin/bash
#
# test_python.sh: CPython's own regression tests for its containers,
# strings, JSON and regular expressions (Debian's libpython3.11-testsuite)
# with PYTHONMALLOC=malloc, so that every object is a malloc block: a heap
# that peaks near 150 MiB (test_unicode) under a 32 MiB budget.  Both
# runs must pass, and run and pass or skip the same test cases (from
# regrtest's JUnit report, names and outcomes, timings left out).  Then a
# program that outgrows its budget and swap gets MemoryError, and goes on.
#
#	test_python.sh USRVM_RUN

. "$(dirname "$0")/lib.sh"
prog_init python "$@"
py=/usr/bin/python3
prog_need "$py"

tests="test_list test_dict test_set test_unicode test_json test_re
    test_bytes test_collections test_heapq"
"$py" -c 'import test.test_list, test.test_unicode, test.test_json' \
    2>/dev/null ||
    prog_abort "CPython's test suite is not installed (Debian:" \
    "libpython3.11-testsuite; tools/setup.sh installs it)"

export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
# shellcheck disable=SC2086
prog_native py "$py" -m test --junit-xml "$prog_work/native.xml" $tests
# shellcheck disable=SC2086
prog_usrvm py 32M "$py" -m test --junit-xml "$prog_work/usrvm.xml" $tests
prog_ok py
prog_pageouts py

# One line per test case: its name and outcome.
cases() {
	"$py" - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
for tc in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    kinds = sorted(c.tag for c in tc if c.tag in
                   ("skipped", "failure", "error"))
    print(tc.get("name"), tc.get("status"), tc.get("result"),
          ",".join(kinds) or "passed")
EOF
}
for k in native usrvm; do
	cases "$prog_work/$k.xml" >"$prog_work/$k.cases" 2>&1 ||
	    prog_fail "py: no JUnit report from the $k run"
done
prog_diff py "test cases and outcomes" "$prog_work/native.cases" \
    "$prog_work/usrvm.cases"
n=$(grep -c ' passed$' "$prog_work/native.cases")
echo "py: $n test cases passed in each run"
[ "$n" -ge 1000 ] ||
    prog_fail "py: only $n test cases passed natively (expected over 1000)"
grep -q ' failure\| error' "$prog_work/usrvm.cases" &&
    prog_fail "py: failures under usrvm-run: $(grep -c ' failure\| error' \
    "$prog_work/usrvm.cases")"

# Out of memory: a budget and swap (16 MiB each) that the program outgrows.
# Its mallocs return NULL with ENOMEM, Python raises MemoryError, and the
# program catches it, lets go and allocates again: no crash, no kill.
cat >"$prog_work/memerr.py" <<'EOF'
try:
    b = bytearray(256 << 20)
    print("no MemoryError for 256 MiB at once")
except MemoryError:
    print("MemoryError at once")
xs = []
try:
    while True:
        xs.append(bytes(1 << 16))
except MemoryError:
    n = len(xs)
    xs = None
    print("MemoryError after", "over 100" if n > 100 else n, "blocks")
xs = [bytes(1 << 16) for _ in range(100)]
print("and allocates again")
EOF
PROG_SWAP_SIZE=16M prog_usrvm memerr 16M "$py" "$prog_work/memerr.py"
if ! prog_hung memerr; then
	[ "$(cat "$prog_work/memerr.usrvm.rc")" -eq 0 ] ||
	    prog_fail "memerr: exit $(cat "$prog_work/memerr.usrvm.rc")," \
	    "stderr: $(head -c 300 "$prog_work/memerr.usrvm.err")"
	[ "$(cat "$prog_work/memerr.usrvm.out")" = "MemoryError at once
MemoryError after over 100 blocks
and allocates again" ] ||
	    prog_fail "memerr: printed '$(cat "$prog_work/memerr.usrvm.out")'"
	prog_pageouts memerr
fi
prog_end
