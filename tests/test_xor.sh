#!/bin/bash
# test_xor.sh USRVM_XOR: a file changed in place through a usrvm mapping
# under a budget a quarter of its size, twice: the first run changes
# every byte (the file differs), the second gives the original back.
set -u -o pipefail
xor=$1
dir=$(mktemp -d "${USRVM_TEST_DIR:-.}/usrvm-xor.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
# 40 MiB and 123 bytes: a partial last page.
head -c $((40 * 1048576 + 123)) /dev/urandom >"$dir/f" || exit 1
cp "$dir/f" "$dir/orig" || exit 1
out=$("$xor" --mem 10M "$dir/f") || { echo "FAIL: first run: $out"; exit 1; }
echo "$out"
if cmp -s "$dir/f" "$dir/orig"; then
	echo "FAIL: the file did not change"
	exit 1
fi
if [ "$(stat -c %s "$dir/f")" != $((40 * 1048576 + 123)) ]; then
	echo "FAIL: the file's size changed"
	exit 1
fi
# Every page went through the budget: evictions, and every page written.
echo "$out" | grep -Eq 'wrote back (1024[0-9]|10[3-9][0-9][0-9]|1[1-9][0-9]{3}) pages' ||
	{ echo "FAIL: not every page was written back"; exit 1; }
echo "$out" | grep -Eq 'evicted [1-9][0-9]{3,} clean' ||
	{ echo "FAIL: nothing was evicted"; exit 1; }
out=$("$xor" --mem 10M "$dir/f") || { echo "FAIL: second run: $out"; exit 1; }
echo "$out"
cmp "$dir/f" "$dir/orig" || { echo "FAIL: xor twice is not the original"; exit 1; }
echo "test_xor: passed"
