#!/bin/bash
#
# test_usrvm_run.sh: usrvm-run's command line, exit statuses and --stats,
# and how a preloaded program takes a malformed USRVM_* variable.
#
#	test_usrvm_run.sh USRVM_RUN PRELOAD TEST_PRELOAD
#
# TEST_PRELOAD is tests/test_preload, whose "prog" mode is a small program
# that writes and checks 24 MiB of heap, exits 3 if its malloc is not
# usrvm's, and prints "preload ok".  Exit status: 0 pass, 1 fail, 77 skip
# (no userfaultfd here: the preload runs the program on glibc's malloc).

set -u
if [ $# -ne 3 ]; then
	echo "usage: $0 USRVM_RUN PRELOAD TEST_PRELOAD" >&2
	exit 2
fi
run=$(realpath "$1") && preload=$(realpath "$2") && prog=$(realpath "$3") ||
    exit 1
unset LD_PRELOAD USRVM_MEM USRVM_SWAP USRVM_SWAP_SIZE USRVM_STATS \
    USRVM_PRELOAD USRVM_RESERVE USRVM_VERBOSE USRVM_FAULT_THREADS
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_usrvm_run.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

failures=0
name=
fail() {
	echo "FAIL: $name: $*"
	sed 's/^/    stderr: /' "$tmp/err"
	failures=$((failures + 1))
}

# t NAME STATUS CMD...: run CMD (30 s at most), its output in $tmp/out and
# $tmp/err, and check its exit status.
t() {
	local want=$2 got
	name=$1
	shift 2
	timeout -k 5 30 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	got=$?
	[ "$got" -eq "$want" ] || fail "exit status $got, expected $want"
}
err_has() {
	grep -qF -- "$1" "$tmp/err" || fail "stderr lacks '$1'"
}
err_lines() {
	local n
	n=$(wc -l <"$tmp/err")
	[ "$n" -eq "$1" ] || fail "$n lines on stderr, expected $1"
}
out_is() {
	[ "$(cat "$tmp/out")" = "$1" ] ||
	    fail "stdout is '$(cat "$tmp/out")', expected '$1'"
}
usage_shown() {
	err_has "usage: usrvm-run [--mem SIZE]"
}

# Is the preload able to run here at all?
LD_PRELOAD=$preload "$prog" prog >"$tmp/out" 2>"$tmp/err"
status=$?
if grep -qE "preload: cannot start \((Operation not permitted|Function not implemented)\)" "$tmp/err"; then
	echo "skip: the preload cannot start here: $(cat "$tmp/err")"
	exit 77
fi
if [ "$status" -ne 0 ]; then
	echo "FAIL: $prog prog under $preload: status $status: $(cat "$tmp/err")"
	exit 1
fi

# ---- The command line: status 2, the usage, and what was wrong ----------
t unknown-option 2 "$run" --bogus true
err_has "usrvm-run: unknown option: --bogus"
usage_shown
t missing-program 2 "$run"
err_has "usrvm-run: missing program"
usage_shown
t missing-program-after-options 2 "$run" --mem 8M --stats --
err_has "usrvm-run: missing program"
t missing-size 2 "$run" --mem
err_has "usrvm-run: missing size after: --mem"
t mem-not-a-size 2 "$run" --mem lots true
err_has "usrvm-run: --mem 'lots': expected a size of at least 1M"
usage_shown
t mem-too-small 2 "$run" --mem 100K true
err_has "usrvm-run: --mem '100K': expected a size of at least 1M"
t mem-equals-not-a-size 2 "$run" --mem=12Q true
err_has "usrvm-run: --mem '12Q'"
t mem-negative 2 "$run" --mem -5M true
err_has "usrvm-run: --mem '-5M'"
t swap-size-not-a-size 2 "$run" --swap-size lots true
err_has "usrvm-run: --swap-size 'lots': expected a size"
t swap-size-equals 2 "$run" --swap-size=1X true
err_has "usrvm-run: --swap-size '1X'"
t swap-missing 2 "$run" --swap
err_has "usrvm-run: missing path after: --swap"
t swap-empty 2 "$run" --swap= true
err_has "usrvm-run: missing path after: --swap"
t no-preload 2 env USRVM_PRELOAD=/nonexistent/libusrvm-preload.so "$run" true
err_has "usrvm-run: cannot find libusrvm-preload.so"

# ---- Running the program: its status, as a shell gives it ---------------
t not-found 127 "$run" /nonexistent/program
err_has "usrvm-run: /nonexistent/program: No such file or directory"
t not-in-path 127 "$run" usrvm-no-such-program-here
err_has "usrvm-run: usrvm-no-such-program-here: No such file or directory"
touch "$tmp/not-executable"
t not-executable 126 "$run" "$tmp/not-executable"
err_has "usrvm-run: $tmp/not-executable: Permission denied"
t exit-0 0 "$run" true
err_lines 0
t exit-42 42 "$run" sh -c 'exit 42'
t sigterm 143 "$run" sh -c 'kill -TERM $$'
t sigkill 137 "$run" sh -c 'kill -KILL $$'
# usrvm-run itself ignores the terminal's SIGINT while it waits; the
# program gets it as usual.
t parent-ignores-sigint 5 "$run" sh -c 'kill -INT $PPID; sleep 0.2; exit 5'
t child-gets-sigint 130 "$run" sh -c 'kill -INT $$'
# Options end at the program: what follows is the program's.
t program-arguments 0 "$run" sh -c 'echo "$1 $2"' sh --mem --bogus
out_is "--mem --bogus"
t double-dash 0 "$run" -- sh -c 'echo "$0"' --stats
out_is "--stats"

# ---- What the program is given ------------------------------------------
t environment 0 "$run" --mem 8M --swap-size=64M --swap "$tmp" \
    sh -c 'echo "$USRVM_MEM $USRVM_SWAP_SIZE $USRVM_SWAP ${USRVM_STATS-unset}"'
out_is "8M 64M $tmp unset"
t ld-preload-set 0 "$run" sh -c 'echo "$LD_PRELOAD"'
case $(cat "$tmp/out") in
*/libusrvm-preload.so) [ -r "$(cat "$tmp/out")" ] ||
    fail "LD_PRELOAD '$(cat "$tmp/out")' is not readable" ;;
*) fail "LD_PRELOAD is '$(cat "$tmp/out")'" ;;
esac
t ld-preload-kept 0 env LD_PRELOAD=libm.so.6 USRVM_PRELOAD="$preload" \
    "$run" sh -c 'echo "$LD_PRELOAD"'
out_is "$preload:libm.so.6"
t preloaded 0 "$run" --mem 4M "$prog" prog
out_is "preload ok"
err_lines 0

# ---- --stats: the summary, from the program only ------------------------
t stats 0 "$run" --stats --mem 8M --swap-size 64M --swap "$tmp" "$prog" prog
out_is "preload ok"
err_has "usrvm: page-ins "
err_has "usrvm: faults "
err_has "usrvm: budget 2048 pages"
err_has "swap slots "
err_has " of 16383"
[ -z "$(ls -A "$tmp" | grep -v -e '^out$' -e '^err$' -e '^not-executable$')" ] ||
    fail "the swap file was left in $tmp: $(ls -A "$tmp")"
# The program's children (here: the same program, spawned) keep quiet.
t stats-not-children 0 "$run" --stats "$prog" prog-spawn
out_is "preload ok
preload ok"
n=$(grep -c "usrvm: page-ins " "$tmp/err")
[ "$n" -eq 1 ] || fail "$n summaries, expected 1"
# Killed: it says so instead.
t stats-killed 137 "$run" --stats sh -c 'kill -9 $$'
err_has "usrvm-run: sh killed by signal 9 (Killed): no summary"
# A program that ends with _exit (after a vfork child did): one summary.
t stats-_exit 0 "$run" --stats "$prog" prog-exit
out_is "preload ok"
n=$(grep -c "usrvm: page-ins " "$tmp/err")
[ "$n" -eq 1 ] || fail "$n summaries, expected 1"

# ---- A malformed variable: named, its default kept, the program runs ----
malformed='usrvm: running with the default for what is malformed'
for v in lots 100K; do
	t "preload-USRVM_MEM=$v" 0 env LD_PRELOAD="$preload" USRVM_MEM=$v \
	    "$prog" prog
	out_is "preload ok"
	err_lines 2
	[ "$(sed -n 1p "$tmp/err")" = "usrvm: USRVM_MEM='$v': expected 0 (no budget) or a size of at least 1M: digits with an optional K, M, G or T suffix" ] ||
	    fail "first line: $(sed -n 1p "$tmp/err")"
	[ "$(sed -n 2p "$tmp/err")" = "$malformed" ] ||
	    fail "second line: $(sed -n 2p "$tmp/err")"
done
t usrvm-run-USRVM_MEM=lots 0 env USRVM_MEM=lots "$run" "$prog" prog
out_is "preload ok"
err_lines 2
err_has "usrvm: USRVM_MEM='lots': expected"
err_has "$malformed"
t preload-USRVM_SWAP_SIZE=lots 0 env LD_PRELOAD="$preload" USRVM_MEM=8M \
    USRVM_SWAP_SIZE=lots "$prog" prog
out_is "preload ok"
err_lines 2
err_has "usrvm: USRVM_SWAP_SIZE='lots': expected a size up to 16T"
err_has "$malformed"

if [ "$failures" -ne 0 ]; then
	echo "$failures failed"
	exit 1
fi
echo "all passed"
exit 0
