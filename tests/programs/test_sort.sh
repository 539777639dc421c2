#!/bin/bash
#
# test_sort.sh: GNU sort on a 31 MB file (500 000 lines) with -S 1G, so it
# sorts in memory (about 60 MiB of heap, its two threads), under a 16 MiB
# budget.  The input comes from a seeded generator: a key that grows
# along the file plus a random offset of up to 20 000 lines, and random
# fields after it, so that sorting really moves lines (and pages) around
# while the accesses keep some locality (a fully random order under a
# quarter of the memory would take minutes, fault by fault).  -T names a
# directory that does not exist: a sort that spilled to temporary files
# would fail.  The outputs must be identical and sorted.
#
#	test_sort.sh USRVM_RUN

. "$(dirname "$0")/lib.sh"
prog_init sort "$@"
prog_need sort awk

awk 'BEGIN {
	srand(4242)
	for (i = 0; i < 500000; i++)
		printf "%012d %08x%08x %s\n", i * 100 + int(rand() * 2000000),
		    int(rand() * 4294967296), int(rand() * 4294967296),
		    substr("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
		    1 + int(rand() * 30))
}' >"$prog_work/input" || prog_abort "cannot write the input"

prog_run sort 16M sort -S 1G -T "$prog_work/no-such-dir" "$prog_work/input"
prog_ok sort
prog_same sort
prog_pageouts sort
# Not vacuous: every line is there, in order.
[ "$(wc -l <"$prog_work/sort.native.out")" -eq 500000 ] ||
    prog_fail "sort: the native output does not have 500000 lines"
sort -c "$prog_work/sort.native.out" ||
    prog_fail "sort: the native output is not sorted"
cmp -s "$prog_work/input" "$prog_work/sort.native.out" &&
    prog_fail "sort: the input was already sorted"
prog_end
