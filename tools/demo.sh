#!/usr/bin/env bash
# tools/demo.sh: install what is missing, build, and run the main job: a
# program whose memory is managed by usrvm, then what the runtime did.
set -euo pipefail
. "$(dirname "$0")/setup.sh"
usrvm_setup
dir="$USRVM_ROOT/build"
usrvm_build "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
    >/dev/null
echo "== usrvm-demo: 256 MiB of private anonymous memory, 4 threads"
"$dir/tools/usrvm-demo" "${1:-256M}"
