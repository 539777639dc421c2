#!/usr/bin/env bash
# tools/demo.sh: install what is missing, build, and run the main job: a
# program whose memory is managed by usrvm, then what the runtime did.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
usrvm_setup
dir="$USRVM_ROOT/build"
usrvm_build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
    >/dev/null
export USRVM_MEM="${USRVM_MEM:-64M}"
echo "== usrvm-demo: ${1:-256M} of private anonymous memory, 4 threads," \
    "under a budget of $USRVM_MEM with swap"
"$dir/tools/usrvm-demo" "${1:-256M}"
