#!/usr/bin/env bash
# tools/test.sh: install what is missing, build, and run every test: plain,
# with AddressSanitizer + UBSan, and with ThreadSanitizer.  Exit status 0
# only if all three pass.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
usrvm_setup

status=0
for variant in plain asan tsan; do
	dir="$USRVM_ROOT/build-test-$variant"
	opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON)
	[ "$variant" = asan ] && opts+=(-DUSRVM_SANITIZE=ON)
	[ "$variant" = tsan ] && opts+=(-DUSRVM_TSAN=ON)
	echo "== build ($variant)"
	usrvm_build "$dir" "${opts[@]}" >/dev/null
	echo "== test ($variant)"
	export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	export TSAN_OPTIONS="halt_on_error=1 suppressions=$USRVM_ROOT/tests/tsan.supp"
	(cd "$dir" && ctest --output-on-failure --timeout 600) || status=1
done
if [ $status -eq 0 ]; then
	echo "all tests passed (plain, ASan+UBSan, TSan)"
fi
exit $status
