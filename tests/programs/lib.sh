# tests/programs/lib.sh: what the program tests share (sourced, not run).
#
# Each test runs a real program that nobody here wrote twice, on the
# kernel's memory and under usrvm-run with a budget well below the
# program's heap, compares what the two runs produced, and checks from
# the --stats summary that pages really went to swap.
#
#	. "$(dirname "$0")/lib.sh"
#	prog_init NAME "$@"		# "$@": USRVM_RUN
#	prog_need PROGRAM...		# installed? (tools/setup.sh)
#	prog_run TAG MEM CMD...		# both runs; stdin: $PROG_STDIN
#	prog_native TAG CMD...		# the kernel's run alone
#	prog_usrvm TAG MEM CMD...	# the usrvm-run run alone
#	prog_same TAG			# exit status, stdout, stderr equal
#	prog_ok TAG			# both runs exited 0
#	prog_pageouts TAG		# page-outs > 0 in the summary
#	prog_end			# exit 0, or 1 if anything failed
#
# A run leaves $prog_work/TAG.{native,usrvm}.{out,err,rc}, and for usrvm
# TAG.usrvm.stats: the summary, taken out of its stderr (the rest of
# which is the program's own and is compared).  A run that outlives its
# time (a hang) gets every thread's backtrace printed (gdb, if installed)
# and is killed.  Exit status: 0 pass, 1 fail, 77 skip: only when usrvm
# says this machine cannot run it (no userfaultfd, or not permitted, or a
# kernel without UFFDIO_MOVE), never for a failure.
#
# Environment: PROG_RUN_LIMIT (seconds for one run before it counts as a
# hang, default 90), PROG_DEADLINE (seconds for the whole test, default
# 140; ctest's TIMEOUT is 180), PROG_SWAP_SIZE (default 2G, sparse),
# USRVM_KEEP=1 keeps the work directory (a failed test always keeps it,
# with every run's output).

set -u -o pipefail

prog_failures=0

# prog_init NAME USRVM_RUN
prog_init() {
	prog_name=$1
	shift
	if [ $# -ne 1 ]; then
		echo "usage: $0 USRVM_RUN" >&2
		exit 2
	fi
	if [ ! -x "$1" ]; then
		echo "FAIL: $prog_name: usrvm-run '$1' is not an executable"
		exit 1
	fi
	USRVM_RUN=$(realpath "$1") || exit 1
	# Nothing of the caller's configuration leaks into either run.
	unset LD_PRELOAD USRVM_MEM USRVM_SWAP USRVM_SWAP_SIZE USRVM_STATS \
	    USRVM_PRELOAD USRVM_RESERVE USRVM_VERBOSE USRVM_FAULT_THREADS
	export LC_ALL=C TZ=UTC
	prog_work=$(mktemp -d "${TMPDIR:-/tmp}/usrvm-$prog_name.XXXXXX") ||
	    exit 1
	trap prog_cleanup EXIT
	prog_t0=$SECONDS
	exec 3>&1		# the test's own output, for prog_bounded
	: "${PROG_RUN_LIMIT:=90}" "${PROG_DEADLINE:=140}" "${PROG_STDIN:=}"
	: "${USRVM_KEEP:=}"
}

prog_cleanup() {
	if [ -n "$USRVM_KEEP" ] || [ "$prog_failures" -gt 0 ]; then
		echo "work directory kept: $prog_work"
	else
		rm -rf "$prog_work"
	fi
}

# prog_fail MESSAGE: count a failure (the test goes on, to say more).
prog_fail() {
	echo "FAIL: $prog_name: $*"
	prog_failures=$((prog_failures + 1))
}

# prog_abort MESSAGE: a failure after which nothing else means anything.
prog_abort() {
	prog_fail "$*"
	exit 1
}

prog_end() {
	if [ "$prog_failures" -gt 0 ]; then
		echo "$prog_name: $prog_failures failure(s) in $((SECONDS - prog_t0)) s"
		exit 1
	fi
	echo "$prog_name: passed in $((SECONDS - prog_t0)) s"
	exit 0
}

# prog_need PROGRAM...: each is installed (a missing one is a failure:
# tools/setup.sh installs them, and a test that skips is never looked at).
prog_need() {
	local p
	for p; do
		command -v "$p" >/dev/null 2>&1 ||
		    prog_abort "'$p' is not installed (tools/setup.sh installs it)"
	done
}

# The processes under $1, deepest first.
prog_descendants() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null); do
		prog_descendants "$c"
		echo "$c"
	done
}

# prog_hang_report PID: what every process under PID (and PID) is doing.
prog_hang_report() {
	local p
	for p in $(prog_descendants "$1") "$1"; do
		[ -d "/proc/$p" ] || continue
		echo "--- pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
		if command -v gdb >/dev/null 2>&1; then
			timeout 60 gdb -batch -p "$p" \
			    -ex 'thread apply all bt 24' 2>/dev/null |
			    grep -E '^(Thread |#)' | grep -v 'in ?? ()$' |
			    head -n 200
		else
			local t
			for t in /proc/"$p"/task/*; do
				echo "thread ${t##*/} $(cat "$t/comm") wchan" \
				    "$(cat "$t/wchan" 2>/dev/null)"
			done
		fi
	done
}

# prog_bounded TAG CMD...: run CMD (its redirections are the caller's) for
# no longer than the run limit and what is left of the test's deadline.
# Sets prog_rc (124 when it had to be killed).
prog_bounded() {
	local tag=$1 limit left pid ticks=0 p
	shift
	left=$((PROG_DEADLINE - (SECONDS - prog_t0)))
	limit=$PROG_RUN_LIMIT
	[ "$left" -lt "$limit" ] && limit=$left
	[ "$limit" -lt 1 ] && limit=1
	"$@" 0<&0 3>&- &
	pid=$!
	while [ -e "/proc/$pid" ] &&
	    [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
		if [ "$ticks" -ge $((limit * 5)) ]; then
			echo "$tag: still running after $limit s: a hang?" \
			    "Backtraces:" >&3
			prog_hang_report "$pid" >&3
			for p in $(prog_descendants "$pid") "$pid"; do
				kill -KILL "$p" 2>/dev/null
			done
			wait "$pid" 2>/dev/null
			prog_rc=124
			return
		fi
		sleep 0.2
		ticks=$((ticks + 1))
	done
	wait "$pid"
	prog_rc=$?
}

# prog_native TAG CMD...
prog_native() {
	local tag=$1 t0=$SECONDS
	shift
	prog_bounded "$tag (native)" "$@" \
	    <"${PROG_STDIN:-/dev/null}" >"$prog_work/$tag.native.out" \
	    2>"$prog_work/$tag.native.err"
	echo "$prog_rc" >"$prog_work/$tag.native.rc"
	echo "$tag: native: exit $prog_rc in $((SECONDS - t0)) s"
	if [ "$prog_rc" -eq 124 ]; then
		sed 's/^/    /' "$prog_work/$tag.native.err"
		prog_abort "$tag: the native run did not finish"
	fi
}

# The lines of usrvm's exit summary (lib/stats.c, usrvm_stats_print).
prog_summary_re='^usrvm: (faults [0-9]|pages filled |resident [0-9]|usrvm_fork [0-9]|budget [0-9]|page-ins [0-9]|page daemon: |files: |faults parked |application events: |fault service time )'

# prog_usrvm TAG MEM CMD...: CMD under usrvm-run --mem MEM --stats, its
# swap file in the work directory (big enough that the commit limit,
# budget + swap, is never what a run hits).
prog_usrvm() {
	local tag=$1 mem=$2 t0=$SECONDS f=$prog_work/$1.usrvm
	shift 2
	prog_bounded "$tag (usrvm)" "$USRVM_RUN" --mem "$mem" \
	    --swap "$prog_work" --swap-size "${PROG_SWAP_SIZE:-2G}" --stats \
	    -- "$@" <"${PROG_STDIN:-/dev/null}" >"$f.out" 2>"$f.all"
	echo "$prog_rc" >"$f.rc"
	grep -E "$prog_summary_re" "$f.all" >"$f.stats"
	grep -vE "$prog_summary_re" "$f.all" >"$f.err"
	# The one reason to skip: usrvm cannot run on this machine.
	if grep -E '^usrvm: (userfaultfd is not permitted|this kernel has no userfaultfd|this kernel.s userfaultfd lacks|a memory budget needs UFFDIO_MOVE)' \
	    "$f.err" >"$prog_work/skip"; then
		echo "SKIP: $prog_name: usrvm cannot run here:"
		cat "$prog_work/skip"
		exit 77
	fi
	echo "$tag: usrvm --mem $mem: exit $prog_rc in $((SECONDS - t0)) s;" \
	    "$(grep -o 'page-ins [0-9]*.*page-outs [0-9]*' "$f.stats")"
	if [ "$prog_rc" -eq 124 ]; then
		echo "    last lines of its stderr:"
		tail -n 20 "$f.all" | sed 's/^/    /'
		prog_fail "$tag: the run under usrvm-run --mem $mem hung" \
		    "(killed after the time limit; backtraces above)"
		: >"$f.hung"	# the checks of its results say no more
	fi
	# A page the runtime could not give back is data lost.
	if grep -Eq 'errors [1-9]|pages lost [1-9]|I/O errors read [1-9]|write [1-9][0-9]*; pages' \
	    "$f.stats"; then
		sed 's/^/    /' "$f.stats"
		prog_fail "$tag: usrvm reports fault errors, I/O errors or" \
		    "lost pages"
	fi
}

# prog_run TAG MEM CMD...: both runs.
prog_run() {
	local tag=$1 mem=$2
	shift 2
	prog_native "$tag" "$@"
	prog_usrvm "$tag" "$mem" "$@"
}

# prog_diff TAG WHAT FILE1 FILE2: the two must be equal.
prog_diff() {
	if ! cmp -s "$3" "$4"; then
		echo "    $2 differs (native < > usrvm), first lines:"
		diff "$3" "$4" | head -n 20 | sed 's/^/    /'
		prog_fail "$1: $2 differs between the native run and the" \
		    "run under usrvm-run"
		return 1
	fi
}

# prog_same TAG: the two runs exited alike and wrote the same bytes.
prog_same() {
	local tag=$1 n=$prog_work/$1.native u=$prog_work/$1.usrvm
	prog_hung "$tag" && return 1
	if [ "$(cat "$n.rc")" != "$(cat "$u.rc")" ]; then
		echo "    stderr under usrvm (last lines):"
		tail -n 20 "$u.err" | sed 's/^/    /'
		prog_fail "$tag: exit status $(cat "$u.rc") under usrvm-run," \
		    "$(cat "$n.rc") without"
		return 1
	fi
	prog_diff "$tag" stdout "$n.out" "$u.out" &&
	    prog_diff "$tag" stderr "$n.err" "$u.err"
}

# prog_hung TAG: the usrvm run had to be killed (and that failure told).
prog_hung() {
	[ -f "$prog_work/$1.usrvm.hung" ]
}

# prog_ok TAG: both runs exited 0.
prog_ok() {
	local k
	for k in native usrvm; do
		[ -f "$prog_work/$1.$k.rc" ] || continue
		[ "$k" = usrvm ] && prog_hung "$1" && continue
		if [ "$(cat "$prog_work/$1.$k.rc")" != 0 ]; then
			echo "    stderr ($k, last lines):"
			tail -n 20 "$prog_work/$1.$k.err" | sed 's/^/    /'
			prog_fail "$1: exit status $(cat "$prog_work/$1.$k.rc")" \
			    "($k)"
		fi
	done
}

# prog_pageouts TAG: the run under usrvm paged out (a budget the program
# fits in tests nothing).
prog_pageouts() {
	local n
	prog_hung "$1" && return 1
	n=$(sed -n 's/^usrvm: page-ins .*page-outs \([0-9]*\) .*/\1/p' \
	    "$prog_work/$1.usrvm.stats")
	if [ -z "$n" ]; then
		prog_fail "$1: no usrvm summary on stderr (did the runtime" \
		    "start in the program? did the program exit normally?)"
		return 1
	fi
	if [ "$n" -eq 0 ]; then
		sed 's/^/    /' "$prog_work/$1.usrvm.stats"
		prog_fail "$1: no page-outs: the budget never forced one"
		return 1
	fi
}
