#!/bin/bash
#
# test_git.sh: git building and checking a repository of 300 commits of
# generated files (a deterministic fast-import stream with fixed dates, so
# both runs must make the same object ids), each step natively and under
# usrvm-run, with a budget below what the step's process allocates:
#
#   fast-import                                      1 MiB  (~4 MiB)
#   fsck --full --strict                             2 MiB  (~9 MiB)
#   log --stat, log -p                               2 MiB (~11 MiB)
#   blame                                            1 MiB  (~4 MiB)
#   pack-objects: two threads, delta search          8 MiB (~22 MiB)
#   gc: forks repack, pack-objects, prune...         1 MiB  (~4 MiB)
#
# Outputs are compared; a pack by the objects it holds (index-pack
# --strict checks every one), since the deltas two threads find may differ
# from run to run.  Every step must page out.
#
#	test_git.sh USRVM_RUN

. "$(dirname "$0")/lib.sh"
prog_init git "$@"
prog_need git awk

W=$prog_work
cd "$W" || exit 1
export GIT_CEILING_DIRECTORIES=$(dirname "$W")
export GIT_CONFIG_NOSYSTEM=1 HOME=$W GIT_AUTHOR_DATE=@1700000000 \
    GIT_COMMITTER_DATE=@1700000000
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY
git config --global init.defaultBranch main
git config --global gc.auto 0
git config --global core.pager cat

# 300 commits, each rewriting 6 of 60 files of 500-800 lines: most lines
# stay, some change in every commit, so there are deltas to find.
awk -v NC=300 -v NF=60 '
function rnd() { seed = (seed * 1103515245 + 12345) % 2147483648; return seed }
function body(f, c,   n, i, s) {
	s = ""
	n = 500 + (f * 37) % 300
	for (i = 0; i < n; i++) {
		if ((i + f + c) % 17 == 0)
			s = s sprintf("line %d of file %d, commit %d: %d\n", i,
			    f, c, rnd())
		else
			s = s sprintf("line %d of file %d: %d %d %d\n", i, f,
			    (i * 7919 + f) % 100003, (i * i + f) % 65521, i * f)
	}
	return s
}
BEGIN {
	seed = 1
	for (c = 1; c <= NC; c++) {
		printf "commit refs/heads/main\n"
		printf "committer Usrvm Test <test@example.org> %d +0000\n",
		    1700000000 + c * 60
		msg = sprintf("commit %d\n", c)
		printf "data %d\n%s", length(msg), msg
		for (k = 0; k < 6; k++) {
			f = (c * 7 + k * 13) % NF
			d = body(f, c)
			printf "M 100644 inline dir%d/file%d.txt\n", f % 5, f
			printf "data %d\n%s\n", length(d), d
		}
	}
}' >"$W/stream" || prog_abort "cannot write the fast-import stream"

# Two repositories from the same stream: ref natively, usr under usrvm.
git init -q "$W/ref" && git init -q "$W/usr" || prog_abort "git init failed"
PROG_STDIN=$W/stream prog_native import git -C "$W/ref" fast-import --quiet
PROG_STDIN=$W/stream prog_usrvm import 1M git -C "$W/usr" fast-import --quiet
prog_ok import
prog_pageouts import
for r in ref usr; do
	git -C "$W/$r" rev-list --objects --all >"$W/$r.objects" 2>&1 ||
	    prog_fail "import: cannot list the objects of $r"
done
prog_diff import "objects imported" "$W/ref.objects" "$W/usr.objects"
[ "$(wc -l <"$W/ref.objects")" -eq 3900 ] ||
    prog_fail "import: the reference repository has not 3900 objects"
git -C "$W/usr" fsck --full --strict --no-dangling >"$W/usr.fsck" 2>&1 ||
    prog_fail "import: fsck finds the repository built under usrvm-run" \
    "broken: $(head -n 5 "$W/usr.fsck")"

# Read-only steps, each twice on the reference repository.
step() {
	local tag=$1 mem=$2
	shift 2
	prog_run "$tag" "$mem" git -C "$W/ref" "$@"
	prog_ok "$tag"
	prog_same "$tag"
	prog_pageouts "$tag"
}
step fsck 2M fsck --full --strict --no-dangling
step log 2M log --stat --format='%H %an %ad %s'
step log-p 2M log -p --format='%H %s'
step blame 1M blame -s HEAD -- dir0/file0.txt
[ "$(grep -c '^[0-9a-f]\{40\} ' "$W/log.native.out")" -eq 300 ] ||
    prog_fail "log: the native log has not 300 commits"

# pack-objects: the same objects, each intact.
pack=(pack-objects --all --revs --window=50 --depth=50 --no-reuse-delta
    --threads=2 --stdout)
prog_run pack 8M git -C "$W/ref" "${pack[@]}"
prog_ok pack
prog_pageouts pack
for k in native usrvm; do
	if git -C "$W/ref" index-pack --strict -o "$W/$k.idx" \
	    "$W/pack.$k.out" >/dev/null 2>"$W/$k.index-pack"; then
		git show-index <"$W/$k.idx" | awk '{ print $2 }' | sort \
		    >"$W/$k.packed"
	else
		sed 's/^/    /' "$W/$k.index-pack"
		prog_fail "pack: git index-pack refuses the $k pack"
		: >"$W/$k.packed"
	fi
done
prog_diff pack "objects in the pack" "$W/native.packed" "$W/usrvm.packed"
[ "$(wc -l <"$W/native.packed")" -eq 3900 ] ||
    prog_fail "pack: the native pack has not 3900 objects"

# gc (repack, pack-objects, prune, reflog...: processes it forks, each
# under the same budget) on copies of the reference repository.
cp -a "$W/ref" "$W/gc-native" && cp -a "$W/ref" "$W/gc-usrvm" ||
    prog_abort "cannot copy the repository"
prog_native gc git -C "$W/gc-native" gc --quiet
prog_usrvm gc 1M git -C "$W/gc-usrvm" gc --quiet
prog_ok gc
prog_same gc
prog_pageouts gc
for k in native usrvm; do
	git -C "$W/gc-$k" fsck --full --strict --no-dangling \
	    >"$W/gc-$k.fsck" 2>&1 ||
	    prog_fail "gc: fsck finds the $k repository broken after gc:" \
	    "$(head -n 5 "$W/gc-$k.fsck")"
	git -C "$W/gc-$k" count-objects -v |
	    grep -E '^(count|in-pack|packs):' >"$W/gc-$k.objects"
	git -C "$W/gc-$k" rev-list --objects --all >"$W/gc-$k.list"
done
prog_diff gc "object counts after gc" "$W/gc-native.objects" \
    "$W/gc-usrvm.objects"
prog_diff gc "objects after gc" "$W/gc-native.list" "$W/gc-usrvm.list"
prog_end
