#!/usr/bin/env bash
# tools/setup.sh: install what building and testing usrvm needs (Debian 12),
# if it is missing.  Sourced by demo.sh and test.sh; safe to run twice.
set -euo pipefail

usrvm_packages=(build-essential cmake pkg-config liburing-dev check python3 time
    # tests/programs: real programs run under usrvm-run.
    libpython3.11-testsuite sqlite3 git stress-ng)

usrvm_setup() {
	local missing=()
	for p in "${usrvm_packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "setup: installing ${missing[*]}"
		local sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
		    --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# usrvm_build DIR [cmake options...]
usrvm_build() {
	local dir=$1
	shift
	cmake -S "$USRVM_ROOT" -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)"
}

USRVM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
