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
# Every page went through the budget: evictions, and all 10241 pages
# written back (some twice: a page written during its write-back).
wrote=$(echo "$out" | sed -n 's/.*wrote back \([0-9]*\) pages.*/\1/p')
evicted=$(echo "$out" | sed -n 's/.*evicted \([0-9]*\) clean.*/\1/p')
[ "${wrote:-0}" -ge 10241 ] ||
	{ echo "FAIL: $wrote pages written back, want 10241 or more"; exit 1; }
[ "${evicted:-0}" -ge 1000 ] ||
	{ echo "FAIL: $evicted pages evicted, want 1000 or more"; exit 1; }
out=$("$xor" --mem 10M "$dir/f") || { echo "FAIL: second run: $out"; exit 1; }
echo "$out"
cmp "$dir/f" "$dir/orig" || { echo "FAIL: xor twice is not the original"; exit 1; }
echo "test_xor: passed"
