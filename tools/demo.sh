#!/usr/bin/env bash
# tools/demo.sh: install what is missing, build, and run the main job: an
# unmodified program (Python) whose heap lives in usrvm, under a memory
# budget well below its peak, paging to swap, then what the runtime did.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
usrvm_setup
dir="$USRVM_ROOT/build"
usrvm_build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
    >/dev/null
mem="${1:-96M}"
# About 400 MiB of Python objects (a dict of lists of strings), most of
# which goes cold: 20 rounds of lookups in random order in a hot twentieth
# (the first keys made, so their objects share pages), then one pass over
# everything in insertion order, with a checksum of it all.
prog='
import hashlib, random
random.seed(1)
d = {}
for i in range(400000):
    d[i] = [hashlib.sha1(b"%d-%d" % (i, j)).hexdigest() * 4 for j in range(3)]
hot = list(range(len(d) // 20))
random.shuffle(hot)
n = 0
for r in range(20):
    for k in hot:
        n += len(d[k][r % 3])
h = hashlib.sha256()
for k in d:
    for s in d[k]:
        h.update(s.encode())
print("objects:", 3 * len(d), "hot bytes read:", n, "checksum:",
      h.hexdigest()[:16])
'
# Python's own small-object allocator takes its arenas from mmap, not
# malloc: send every object through malloc so the heap is really usrvm's.
export PYTHONMALLOC=malloc
echo "== python3 (PYTHONMALLOC=malloc) with glibc's malloc, no budget:"
/usr/bin/time -f "   %e s, peak resident %M KiB" python3 -c "$prog"
echo "== the same under usrvm-run --mem $mem (swap: an unlinked file in" \
    "\${TMPDIR:-/tmp}):"
/usr/bin/time -f "   %e s, peak resident %M KiB (all of the process)" \
    "$dir/tools/usrvm-run" --mem "$mem" --stats -- python3 -c "$prog"
