/*
 * swap_kernel.c: the kernel contender's setting for the swap case, and
 * the cleanup of everything the case creates outside its own memory.
 *
 * The kernel pages out only under pressure: its contender's child runs
 * in a memory cgroup (v1) whose limit is the budget, with a swap file of
 * SK_SWAP_FACTOR times the working set, both made here before the runs.
 * Twice, not just enough: once swap is more than half full
 * (vm_swap_full()) the kernel frees a page's swap slot when it swaps the
 * page in, so every later eviction writes the page again.  With the
 * working set plus 256 MiB (1.25 GiB for 1 GiB against 256 MiB: 60%
 * used), the kernel wrote 754,000 pages per run instead of 262,000 and
 * its sequential re-read fell from 38,000-50,000 to 12,500 pages/s.
 * Twice the set is also the swap usrvm has by default at the default
 * sizes (8 x the budget).
 *
 * The cgroup is made under the bench's own memory cgroup, so the child
 * stays inside whatever limits and accounting contain the bench (from
 * the root cgroup: /sys/fs/cgroup/memory/usrvm-bench-PID).
 *
 * A swap file left active or a cgroup left behind outlive the bench, so
 * every way out removes them: the normal end, the failure paths, and
 * SIGHUP, SIGINT and SIGTERM, whose handler kills the running child,
 * cleans up and lets the signal kill the bench.  The cleanup uses only
 * async-signal-safe calls (kill, waitpid, swapoff, unlink, rmdir, write),
 * and the rest of the program calls it, changes what it removes, and
 * forks with those signals blocked, so that the handler never sees a
 * half-made state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "swap.h"

#define SK_SWAP_FACTOR	2	/* swap file: times the working set */

static char sk_cgdir[PATH_MAX];		/* the cgroup made; "" none */
static char sk_swapfile[PATH_MAX];	/* the swap file made; "" none */
static volatile pid_t sk_child;		/* a child not yet reaped; 0 none */

static const int sk_signals[] = { SIGHUP, SIGINT, SIGTERM };
#define SK_NSIGNALS	(sizeof(sk_signals) / sizeof(sk_signals[0]))

/*
 * sk_block: block the cleanup's signals; *old: the mask to restore.
 */
static void
sk_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < SK_NSIGNALS; i++)
		sigaddset(&set, sk_signals[i]);
	sigprocmask(SIG_BLOCK, &set, old);
}

static void
sk_unblock(const sigset_t *old)
{
	sigprocmask(SIG_SETMASK, old, NULL);
}

/*
 * sk_say: "usrvm-bench swap: cleanup: WHAT PATH: errno N" on stderr,
 * made and written with async-signal-safe calls only (the signal
 * handler calls it).
 */
static void
sk_say(const char *what, const char *path, int err)
{
	const char *part[] = {
		BENCH_PROG " swap: cleanup: ", what, " ", path, ": errno "
	};
	char msg[PATH_MAX + 128], num[16];
	size_t len = 0, i = sizeof(num);

	for (size_t k = 0; k < sizeof(part) / sizeof(part[0]); k++) {
		size_t n = strlen(part[k]);

		if (n > sizeof(msg) - sizeof(num) - 1 - len)
			n = sizeof(msg) - sizeof(num) - 1 - len;
		memcpy(msg + len, part[k], n);
		len += n;
	}
	do {
		num[--i] = (char)('0' + err % 10);
		err /= 10;
	} while (err != 0 && i > 0);
	memcpy(msg + len, num + i, sizeof(num) - i);
	len += sizeof(num) - i;
	msg[len++] = '\n';
	if (write(STDERR_FILENO, msg, len) < 0)
		return;		/* nowhere else to say it */
}

/*
 * sk_cleanup: kill and reap a running child, then remove the swap file
 * and the cgroup.  The cleanup's signals are blocked, or it runs in
 * their handler.
 */
static void
sk_cleanup(void)
{
	pid_t child = sk_child;

	if (child > 0) {
		kill(child, SIGKILL);
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
		sk_child = 0;
	}
	if (sk_swapfile[0] != '\0') {
		/*
		 * The children are gone: their swap is free, this is quick.
		 * EINVAL: not swapped on yet.  A file still in use as swap
		 * is left where swapoff can find it.
		 */
		if (swapoff(sk_swapfile) != 0 && errno != EINVAL)
			sk_say("swapoff (file left in place)", sk_swapfile,
			    errno);
		else if (unlink(sk_swapfile) != 0)
			sk_say("unlink", sk_swapfile, errno);
		sk_swapfile[0] = '\0';
	}
	if (sk_cgdir[0] != '\0') {
		/*
		 * A reaped child can still be leaving the cgroup for a
		 * moment (EBUSY): try for about a second.
		 */
		struct timespec ms10 = { 0, 10 * 1000 * 1000 };
		int tries = 0;

		while (rmdir(sk_cgdir) != 0) {
			if (errno != EBUSY || ++tries == 100) {
				sk_say("rmdir", sk_cgdir, errno);
				break;
			}
			nanosleep(&ms10, NULL);
		}
		sk_cgdir[0] = '\0';
	}
}

static void
sk_on_signal(int sig)
{
	int saved = errno;

	sk_cleanup();
	errno = saved;
	/* SA_RESETHAND: delivered, with the default action, on return. */
	raise(sig);
}

void
sw_kernel_cleanup(void)
{
	sigset_t old;

	sk_block(&old);
	sk_cleanup();
	sk_unblock(&old);
}

/*
 * sk_write: write the string s into the file at dir/name.
 * => 0 or an errno value.
 */
static int
sk_write(const char *dir, const char *name, const char *s)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, error = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path))
		return ENAMETOOLONG;
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return errno;
	n = write(fd, s, strlen(s));
	if (n < 0)
		error = errno;
	else if ((size_t)n != strlen(s))
		error = EIO;
	close(fd);
	return error;
}

/*
 * sk_read_u64: the number after `key` (a line "KEY N") in the file at
 * dir/name, or its first number if key is NULL.  0 if not found.
 */
static uint64_t
sk_read_u64(const char *dir, const char *name, const char *key)
{
	char path[PATH_MAX], line[256];
	size_t klen = key != NULL ? strlen(key) : 0;
	uint64_t v = 0;
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path) || (f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (key == NULL) {
			v = strtoull(line, NULL, 10);
			break;
		}
		if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			v = strtoull(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/*
 * sk_memcg_parent: the directory of the bench's own memory cgroup: the
 * mount point of the cgroup v1 hierarchy holding the memory controller,
 * and the path /proc/self/cgroup gives in it.
 * => 0, or -1 with *why set.
 */
static int
sk_memcg_parent(char *dir, size_t len, const char **why)
{
	char mnt[PATH_MAX] = "", line[PATH_MAX + 64];
	struct mntent *me;
	FILE *f;
	int found = 0;

	if ((f = setmntent("/proc/self/mounts", "re")) == NULL) {
		*why = "cannot read /proc/self/mounts";
		return -1;
	}
	while ((me = getmntent(f)) != NULL) {
		if (strcmp(me->mnt_type, "cgroup") == 0 &&
		    hasmntopt(me, "memory") != NULL) {
			snprintf(mnt, sizeof(mnt), "%s", me->mnt_dir);
			break;
		}
	}
	endmntent(f);
	if (mnt[0] == '\0') {
		*why = "no cgroup v1 memory controller is mounted";
		return -1;
	}
	/* Lines "ID:CONTROLLERS:PATH"; CONTROLLERS a comma list. */
	if ((f = fopen("/proc/self/cgroup", "re")) == NULL) {
		*why = "cannot read /proc/self/cgroup";
		return -1;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *ctl = strchr(line, ':'), *path, *tok, *save;

		if (ctl == NULL || (path = strchr(++ctl, ':')) == NULL)
			continue;
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		for (tok = strtok_r(ctl, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			if (strcmp(tok, "memory") == 0) {
				/* The root is "/": no double slash. */
				snprintf(dir, len, "%s%s", mnt,
				    strcmp(path, "/") == 0 ? "" : path);
				found = 1;
				break;
			}
		}
	}
	fclose(f);
	if (!found) {
		*why = "the bench is in no cgroup of the memory controller";
		return -1;
	}
	return 0;
}

/*
 * sk_make_cgroup: make the cgroup, its limit the budget.  The kernel's
 * default swappiness, for the cgroup too.  memory.memsw (the limit of
 * memory plus swap), where the kernel has it, stays unlimited: the
 * working set must be able to go to swap.
 * => 0, or -1 with why[] set.
 */
static int
sk_make_cgroup(const struct sw_opts *o, char *why, size_t len)
{
	char parent[PATH_MAX - 32], num[32];
	const char *reason;
	int error;

	if (sk_memcg_parent(parent, sizeof(parent), &reason) != 0) {
		snprintf(why, len, "%s", reason);
		return -1;
	}
	snprintf(sk_cgdir, sizeof(sk_cgdir), "%s/usrvm-bench-%ld", parent,
	    (long)getpid());
	if (mkdir(sk_cgdir, 0755) != 0) {
		snprintf(why, len, "cannot make the memory cgroup %s: %s",
		    sk_cgdir, strerror(errno));
		sk_cgdir[0] = '\0';
		return -1;
	}
	snprintf(num, sizeof(num), "%zu", o->mem);
	if ((error = sk_write(sk_cgdir, "memory.limit_in_bytes", num)) != 0) {
		snprintf(why, len, "cannot set %s/memory.limit_in_bytes: %s",
		    sk_cgdir, strerror(error));
		return -1;
	}
	error = sk_write(sk_cgdir, "memory.swappiness", "60");
	if (error != 0 && error != ENOENT) {
		snprintf(why, len, "cannot set %s/memory.swappiness: %s",
		    sk_cgdir, strerror(error));
		return -1;
	}
	return 0;
}

/*
 * sk_make_swap: make the swap file (a unique name in --swap-dir, all its
 * blocks allocated, as swapon requires), write the swap header mkswap
 * would (version 1, no bad pages, no label), and swapon it.
 * => 0, or -1 with why[] set.
 */
static int
sk_make_swap(const struct sw_opts *o, char *why, size_t len)
{
	const size_t ps = bench_pagesize, size = o->size * SK_SWAP_FACTOR;
	uint32_t *info;
	char *hdr;
	int fd, error;

	snprintf(sk_swapfile, sizeof(sk_swapfile),
	    "%s/usrvm-bench-swap-%ld-XXXXXX", o->swap_dir, (long)getpid());
	if ((fd = mkostemp(sk_swapfile, O_CLOEXEC)) < 0) {
		snprintf(why, len, "cannot make a swap file in %s: %s",
		    o->swap_dir, strerror(errno));
		sk_swapfile[0] = '\0';
		return -1;
	}
	if ((error = posix_fallocate(fd, 0, (off_t)size)) != 0) {
		snprintf(why, len, "cannot allocate %zu MiB for %s: %s",
		    size >> 20, sk_swapfile, strerror(error));
		close(fd);
		return -1;
	}
	if ((hdr = calloc(1, ps)) == NULL) {
		snprintf(why, len, "no memory for a swap header");
		close(fd);
		return -1;
	}
	/* struct swap_header_v1_2 (linux/swap.h): words after 1 KiB. */
	info = (uint32_t *)(hdr + 1024);
	info[0] = 1;				/* version */
	info[1] = (uint32_t)(size / ps - 1);	/* last_page */
	memcpy(hdr + ps - 10, "SWAPSPACE2", 10);
	error = pwrite(fd, hdr, ps, 0) == (ssize_t)ps && fsync(fd) == 0 ? 0 :
	    errno != 0 ? errno : EIO;
	free(hdr);
	close(fd);
	if (error != 0) {
		snprintf(why, len, "cannot write the header of %s: %s",
		    sk_swapfile, strerror(error));
		return -1;
	}
	if (swapon(sk_swapfile, 0) != 0) {
		snprintf(why, len, "swapon %s: %s%s", sk_swapfile,
		    strerror(errno), errno == EINVAL ? " (the file system of "
		    "--swap-dir may not hold swap files: tmpfs, some btrfs "
		    "and network file systems do not)" : "");
		return -1;
	}
	return 0;
}

int
sw_kernel_setup(const struct sw_opts *o)
{
	struct sigaction sa;
	char why[PATH_MAX + 256];
	sigset_t old;
	int error = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sk_on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < SK_NSIGNALS; i++)
		sigaddset(&sa.sa_mask, sk_signals[i]);
	for (size_t i = 0; i < SK_NSIGNALS; i++)
		sigaction(sk_signals[i], &sa, NULL);

	if (geteuid() != 0) {
		snprintf(why, sizeof(why), "not root (swapon and a memory "
		    "cgroup need root)");
		goto out;
	}
	sk_block(&old);
	error = sk_make_cgroup(o, why, sizeof(why));
	if (error == 0)
		error = sk_make_swap(o, why, sizeof(why));
	sk_unblock(&old);
out:
	if (error != 0) {
		printf("swap kernel skipped: %s\n", why);
		sw_kernel_cleanup();
	}
	return error;
}

const char *
sw_kernel_describe(const struct sw_opts *o, char *buf, size_t len)
{
	char mem[32], swap[32];

	snprintf(buf, len, "child in memory cgroup %s (limit %s), swap file "
	    "%s (%s)", sk_cgdir, bench_size_str(o->mem, mem, sizeof(mem)),
	    sk_swapfile, bench_size_str(o->size * SK_SWAP_FACTOR, swap,
	    sizeof(swap)));
	return buf;
}

int
sw_kernel_join(const char *prog, const char *who)
{
	char pid[32];
	int error;

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	if ((error = sk_write(sk_cgdir, "cgroup.procs", pid)) != 0) {
		fprintf(stderr, "%s: %s: cannot join the memory cgroup %s: "
		    "%s\n", prog, who, sk_cgdir, strerror(error));
		return -1;
	}
	return 0;
}

void
sw_kernel_stats(struct sw_kstats *ks)
{
	ks->pswpin = sk_read_u64("/proc", "vmstat", "pswpin");
	ks->pswpout = sk_read_u64("/proc", "vmstat", "pswpout");
	ks->peak = sk_read_u64(sk_cgdir, "memory.max_usage_in_bytes", NULL);
	ks->oom_kills = sk_read_u64(sk_cgdir, "memory.oom_control",
	    "oom_kill");
}

void
sw_kernel_reset_peak(void)
{
	sk_write(sk_cgdir, "memory.max_usage_in_bytes", "0");
}

pid_t
sw_child_start(void)
{
	pid_t parent = getpid(), pid;
	sigset_t old;

	sk_block(&old);
	if ((pid = fork()) == 0) {
		/* Not the bench's handler: the cleanup is the parent's. */
		for (size_t i = 0; i < SK_NSIGNALS; i++)
			signal(sk_signals[i], SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	} else if (pid > 0) {
		sk_child = pid;
	}
	sk_unblock(&old);
	return pid;
}

int
sw_child_wait(pid_t pid)
{
	siginfo_t si;
	sigset_t old;
	int status = 0;

	/*
	 * Wait with the signals open, but reap with them blocked: a
	 * handler must never kill a pid that was reaped and reused.
	 */
	while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) != 0 &&
	    errno == EINTR)
		;
	sk_block(&old);
	waitpid(pid, &status, 0);
	sk_child = 0;
	sk_unblock(&old);
	return status;
}
