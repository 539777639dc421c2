#!/bin/bash
# Record the fault traces tests/test_pdpolicy.c replays: real programs
# under usrvm-run with a small budget, each fault that brought an
# anonymous page in or back written by the runtime (USRVM_TRACE,
# lib/trace.h), then gzipped.  The budgets here are the ones the test
# replays them with.
#
#   tests/traces/record.sh build/tools/usrvm-run
#
# Needs python3 and sqlite3.  The traces differ from run to run (the
# fault threads and the page daemon run concurrently): the test asserts
# what holds for any of them.
set -euo pipefail
run=${1:?usage: record.sh path/to/usrvm-run}
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A dict of tuples, strings and lists, walked, sorted by another key,
# dropped, then a list of strings: every object a malloc.
cat > "$tmp/dict.py" <<'PY'
import sys
n = int(sys.argv[1])
d = {}
for i in range(n):
    k = 'k%d' % i
    d[k] = (i, k * 2, [i, i + 1])
t = 0
for k, v in d.items():
    t += len(v[1]) + v[2][1]
order = sorted(d, key=lambda k: (d[k][0] * 7919) % 1000003)
del d
s = [str(i) * (i % 7) for i in range(n)]
print(t, order[0], order[-1], sum(map(len, s)))
PY
USRVM_TRACE="$tmp/python.trace" PYTHONMALLOC=malloc \
    "$run" --mem 8M -- python3 "$tmp/dict.py" 60000
gzip -9 -c "$tmp/python.trace" > "$dir/python.trace.gz"

# An in-memory table, an index over a hashed key, scans and deletes.
USRVM_TRACE="$tmp/sqlite.trace" "$run" --mem 8M -- sqlite3 :memory: \
    "CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v TEXT);
     WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
       WHERE x < 60000) INSERT INTO t SELECT x,
       printf('%08x', (x * 2654435761) % 4294967296),
       printf('%.*c', x % 200, 'v') FROM c;
     CREATE INDEX tk ON t(k);
     SELECT count(*), sum(length(v)) FROM t WHERE k > '40000000';
     DELETE FROM t WHERE id % 3 = 0;
     SELECT count(*), min(k), max(k) FROM t;"
gzip -9 -c "$tmp/sqlite.trace" > "$dir/sqlite.trace.gz"
ls -l "$dir"/*.trace.gz
