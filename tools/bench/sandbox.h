/*
 * sandbox.h: what a case of usrvm-bench makes outside its own memory,
 * and removes on every way out (signals included): a memory cgroup that
 * holds the kernel contender to the budget, scratch files (a swap file,
 * a data file), and the child process of the run under way, which
 * sb_run starts and collects.  Shared by the swap and file cases.
 *
 * Once sb_init has run, the end of the case calls sb_cleanup, and
 * SIGHUP, SIGINT or SIGTERM kill the running child, clean up and then
 * kill the bench.  Everything here that changes what the cleanup
 * removes does so with those signals blocked, so that the handler never
 * sees a half-made state.
 */
#ifndef BENCH_SANDBOX_H
#define BENCH_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * sb_init: install the handlers; `cname` ("swap") names the case in the
 * cleanup's messages.  Call it before making anything.
 */
void sb_init(const char *cname);
/* Kill a running child, remove the files and the cgroup.  Idempotent. */
void sb_cleanup(void);

/*
 * The memory cgroup (v1), made under the bench's own so that the child
 * stays inside whatever limits and accounts for the bench
 * (/sys/fs/cgroup/memory/usrvm-bench-PID from the root), limited to
 * `limit` bytes, the kernel's default swappiness.
 * sb_cgroup_make => 0, or -1 with why[] set (not root, no memory
 * controller, a file that cannot be written); the cleanup removes what
 * was made.
 */
int sb_cgroup_make(size_t limit, char *why, size_t len);
const char *sb_cgroup_dir(void);
/* In a child: move into the cgroup.  => 0, or -1 (said on stderr). */
int sb_cgroup_join(const char *prog, const char *who);
/* The cgroup's peak usage in bytes since the last reset. */
uint64_t sb_cgroup_peak(void);
void sb_cgroup_reset_peak(void);
/* Processes the cgroup's OOM killer has killed so far. */
uint64_t sb_cgroup_oom_kills(void);

/*
 * sb_file_make: make a file of a unique name "DIR/STEM-PID-XXXXXX",
 * opened O_RDWR | O_CLOEXEC | `flags`, that the cleanup removes (with
 * `swap`: swapoff first, and a file still in use as swap is left where
 * swapoff can find it).  path[]: its name.
 * => the descriptor, or -1 with errno set.
 */
int sb_file_make(const char *dir, const char *stem, bool swap, int flags,
    char *path, size_t len);

/*
 * Children.  sb_child_start: fork; in the child (=> 0) the signals are
 * back to their defaults and the child dies with the bench.
 * sb_child_wait: its wait status, once it has exited (the cleanup kills
 * a child that has not).
 */
pid_t sb_child_start(void);
int sb_child_wait(pid_t pid);

/*
 * sb_run: a run of a case in a child of its own: body(arg, res) fills
 * in the len bytes at res (less than PIPE_BUF), which come back through
 * a pipe, and returns the child's exit status.  `who` ("usrvm run 1")
 * names the run in messages.
 * => 0, with *res the child's; or 1: the child failed, was killed (by
 *    the cgroup's OOM killer, the message says, if it was) or sent
 *    nothing (said on stderr).
 */
int sb_run(const char *prog, const char *who, int (*body)(void *arg,
    void *res), void *arg, void *res, size_t len);

/*
 * sb_write: write the string s into the file at dir/name (a cgroup's or
 * /proc's setting).  => 0 or an errno value.
 * sb_read_u64: the number after `key` (a line "KEY N") in the file at
 * dir/name, or its first number if key is NULL.  0 if not found.
 */
int sb_write(const char *dir, const char *name, const char *s);
uint64_t sb_read_u64(const char *dir, const char *name, const char *key);

#endif /* BENCH_SANDBOX_H */
