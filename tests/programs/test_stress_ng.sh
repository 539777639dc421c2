#!/bin/bash
#
# test_stress_ng.sh: stress-ng's malloc, bigheap and fork stressors with
# --verify, 4 seconds, natively and under usrvm-run --mem 1M.  stress-ng
# runs each stressor in a process it forks (and those fork again), so
# under usrvm-run the stressors run in fork children, each of which pages
# on its own under a budget of its own (lib/fork.c: 1 MiB, against the
# malloc stressor's 32 MiB): what this exercises is fork of a process
# whose heap is partly staged and swapped out, again and again, and the
# children paging from their copy.  The summary --stats prints is the top
# process's; its heap is small (about 1 MiB at its peak), hence the
# smallest budget; whether that peak passes the budget long enough for
# the page daemon to page something out varies from run to run (a CI run
# once peaked at exactly the budget and paged nothing), so the usrvm run
# is repeated, up to 3 times, until one pages out: a run that never does
# is still a failure.
# Outputs differ from run to run, so: both runs exit 0, every stressor
# did some work, and nothing failed (stress-ng reports verify failures as
# "fail").
#
#	test_stress_ng.sh USRVM_RUN

. "$(dirname "$0")/lib.sh"
: "${PROG_RUN_LIMIT:=30}"	# a run takes 5 s
prog_init stress-ng "$@"
prog_need stress-ng

stressors=(malloc bigheap fork)
args=(--malloc 2 --malloc-bytes 32M --malloc-touch --bigheap 1
    --bigheap-growth 64K --fork 2 --verify --timeout 4s --metrics-brief
    --temp-path "$prog_work")
prog_native stress stress-ng "${args[@]}"
for try in 1 2 3; do
	prog_usrvm stress 1M stress-ng "${args[@]}"
	prog_hung stress && break
	grep -Eq '^usrvm: page-ins .*page-outs [1-9]' \
	    "$prog_work/stress.usrvm.stats" && break
	echo "stress: try $try paged nothing out; again"
done
prog_ok stress
prog_pageouts stress
for k in native usrvm; do
	[ "$k" = usrvm ] && prog_hung stress && continue
	f=$prog_work/stress.$k
	cat "$f.out" "$f.err" >"$f.both"
	grep -q 'successful run completed' "$f.both" ||
	    prog_fail "stress ($k): no 'successful run completed'"
	if grep -Ei 'fail|corrupt|verif.*(error|mismatch)' "$f.both" \
	    >"$f.failed"; then
		sed 's/^/    /' "$f.failed"
		prog_fail "stress ($k): stress-ng reports failures"
	fi
	for s in "${stressors[@]}"; do
		# "stress-ng: metrc: [pid] malloc  27413  4.14 ...": bogo ops
		ops=$(awk -v s="$s" '$2 == "metrc:" && $4 == s { print $5; exit }' \
		    "$f.both")
		[ "${ops:-0}" -gt 0 ] 2>/dev/null ||
		    prog_fail "stress ($k): the $s stressor did nothing" \
		    "(bogo ops '${ops}')"
	done
done
prog_end
