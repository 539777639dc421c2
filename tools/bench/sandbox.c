/*
 * sandbox.c: the memory cgroup, scratch files and children of a case,
 * and their cleanup on every way out (see sandbox.h).
 *
 * A cgroup left behind, a data file of gigabytes or a swap file left
 * active outlive the bench, so every way out removes them: the normal
 * end, the failure paths, and SIGHUP, SIGINT and SIGTERM, whose handler
 * kills the running child, cleans up and lets the signal kill the
 * bench.  The cleanup uses only async-signal-safe calls (kill, waitpid,
 * swapoff, unlink, rmdir, write), and the rest of the program calls it,
 * changes what it removes, and forks with those signals blocked.
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
#include "sandbox.h"

#define SB_MAX_FILES	4

/*
 * What the cleanup removes; changed with the signals blocked.  A file's
 * name is set before it exists (mkostemp fills it in place) and cleared
 * once it is gone; "" is a free slot.
 */
static struct sb_file {
	char path[PATH_MAX];
	bool swap;			/* swapoff before unlink */
} sb_files[SB_MAX_FILES];
static char sb_cgdir[PATH_MAX];		/* the cgroup made; "" none */
static volatile pid_t sb_child;		/* a child not yet reaped; 0 none */
static char sb_cname[32];		/* the case, for messages */

static const int sb_signals[] = { SIGHUP, SIGINT, SIGTERM };
#define SB_NSIGNALS	(sizeof(sb_signals) / sizeof(sb_signals[0]))

/*
 * sb_block: block the cleanup's signals; *old: the mask to restore.
 */
static void
sb_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < SB_NSIGNALS; i++)
		sigaddset(&set, sb_signals[i]);
	sigprocmask(SIG_BLOCK, &set, old);
}

static void
sb_unblock(const sigset_t *old)
{
	sigprocmask(SIG_SETMASK, old, NULL);
}

/*
 * sb_say: "usrvm-bench CASE: cleanup: WHAT PATH: errno N" on stderr,
 * made and written with async-signal-safe calls only (the signal
 * handler calls it).
 */
static void
sb_say(const char *what, const char *path, int err)
{
	const char *part[] = {
		BENCH_PROG " ", sb_cname, ": cleanup: ", what, " ", path,
		": errno "
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
 * sb_clean: kill and reap a running child, then remove the files and
 * the cgroup.  The cleanup's signals are blocked, or it runs in their
 * handler.
 */
static void
sb_clean(void)
{
	pid_t child = sb_child;

	if (child > 0) {
		kill(child, SIGKILL);
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
		sb_child = 0;
	}
	for (size_t i = 0; i < SB_MAX_FILES; i++) {
		struct sb_file *f = &sb_files[i];

		if (f->path[0] == '\0')
			continue;
		/*
		 * The children are gone: their swap is free, this is quick.
		 * EINVAL: not swapped on yet.  A file still in use as swap
		 * is left where swapoff can find it.
		 */
		if (f->swap && swapoff(f->path) != 0 && errno != EINVAL)
			sb_say("swapoff (file left in place)", f->path, errno);
		else if (unlink(f->path) != 0 && errno != ENOENT)
			sb_say("unlink", f->path, errno);
		f->path[0] = '\0';
	}
	if (sb_cgdir[0] != '\0') {
		/*
		 * A reaped child can still be leaving the cgroup for a
		 * moment (EBUSY): try for about a second.
		 */
		struct timespec ms10 = { 0, 10 * 1000 * 1000 };
		int tries = 0;

		while (rmdir(sb_cgdir) != 0) {
			if (errno != EBUSY || ++tries == 100) {
				sb_say("rmdir", sb_cgdir, errno);
				break;
			}
			nanosleep(&ms10, NULL);
		}
		sb_cgdir[0] = '\0';
	}
}

static void
sb_on_signal(int sig)
{
	int saved = errno;

	sb_clean();
	errno = saved;
	/* SA_RESETHAND: delivered, with the default action, on return. */
	raise(sig);
}

void
sb_init(const char *cname)
{
	struct sigaction sa;

	snprintf(sb_cname, sizeof(sb_cname), "%s", cname);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sb_on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < SB_NSIGNALS; i++)
		sigaddset(&sa.sa_mask, sb_signals[i]);
	for (size_t i = 0; i < SB_NSIGNALS; i++)
		sigaction(sb_signals[i], &sa, NULL);
}

void
sb_cleanup(void)
{
	sigset_t old;

	sb_block(&old);
	sb_clean();
	sb_unblock(&old);
}

/* ------------------------------------------------------------------ */
/* settings files                                                      */
/* ------------------------------------------------------------------ */

int
sb_write(const char *dir, const char *name, const char *s)
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

uint64_t
sb_read_u64(const char *dir, const char *name, const char *key)
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

/* ------------------------------------------------------------------ */
/* the memory cgroup                                                   */
/* ------------------------------------------------------------------ */

/*
 * sb_memcg_parent: the directory of the bench's own memory cgroup: the
 * mount point of the cgroup v1 hierarchy holding the memory controller,
 * and the path /proc/self/cgroup gives in it.
 * => 0, or -1 with *why set.
 */
static int
sb_memcg_parent(char *dir, size_t len, const char **why)
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
 * sb_cgroup_create: sb_cgroup_make with the signals blocked.  memory.memsw
 * (the limit of memory plus swap), where the kernel has it, stays
 * unlimited: a working set must be able to go to swap.
 */
static int
sb_cgroup_create(size_t limit, char *why, size_t len)
{
	char parent[PATH_MAX - 32], num[32];
	const char *reason;
	int error;

	if (sb_memcg_parent(parent, sizeof(parent), &reason) != 0) {
		snprintf(why, len, "%s", reason);
		return -1;
	}
	snprintf(sb_cgdir, sizeof(sb_cgdir), "%s/usrvm-bench-%ld", parent,
	    (long)getpid());
	if (mkdir(sb_cgdir, 0755) != 0) {
		snprintf(why, len, "cannot make the memory cgroup %s: %s",
		    sb_cgdir, strerror(errno));
		sb_cgdir[0] = '\0';
		return -1;
	}
	snprintf(num, sizeof(num), "%zu", limit);
	if ((error = sb_write(sb_cgdir, "memory.limit_in_bytes", num)) != 0) {
		snprintf(why, len, "cannot set %s/memory.limit_in_bytes: %s",
		    sb_cgdir, strerror(error));
		return -1;
	}
	error = sb_write(sb_cgdir, "memory.swappiness", "60");
	if (error != 0 && error != ENOENT) {
		snprintf(why, len, "cannot set %s/memory.swappiness: %s",
		    sb_cgdir, strerror(error));
		return -1;
	}
	return 0;
}

int
sb_cgroup_make(size_t limit, char *why, size_t len)
{
	sigset_t old;
	int error;

	if (geteuid() != 0) {
		snprintf(why, len, "not root (a memory cgroup needs root)");
		return -1;
	}
	sb_block(&old);
	error = sb_cgroup_create(limit, why, len);
	sb_unblock(&old);
	return error;
}

const char *
sb_cgroup_dir(void)
{
	return sb_cgdir;
}

int
sb_cgroup_join(const char *prog, const char *who)
{
	char pid[32];
	int error;

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	if ((error = sb_write(sb_cgdir, "cgroup.procs", pid)) != 0) {
		fprintf(stderr, "%s: %s: cannot join the memory cgroup %s: "
		    "%s\n", prog, who, sb_cgdir, strerror(error));
		return -1;
	}
	return 0;
}

uint64_t
sb_cgroup_peak(void)
{
	return sb_read_u64(sb_cgdir, "memory.max_usage_in_bytes", NULL);
}

void
sb_cgroup_reset_peak(void)
{
	sb_write(sb_cgdir, "memory.max_usage_in_bytes", "0");
}

uint64_t
sb_cgroup_oom_kills(void)
{
	return sb_read_u64(sb_cgdir, "memory.oom_control", "oom_kill");
}

/* ------------------------------------------------------------------ */
/* scratch files                                                       */
/* ------------------------------------------------------------------ */

int
sb_file_make(const char *dir, const char *stem, bool swap, int flags,
    char *path, size_t len)
{
	struct sb_file *f = NULL;
	sigset_t old;
	int fd = -1, error = EMFILE;

	sb_block(&old);
	for (size_t i = 0; i < SB_MAX_FILES && f == NULL; i++)
		if (sb_files[i].path[0] == '\0')
			f = &sb_files[i];
	if (f != NULL && (size_t)snprintf(f->path, sizeof(f->path),
	    "%s/%s-%ld-XXXXXX", dir, stem, (long)getpid()) >=
	    sizeof(f->path)) {
		f->path[0] = '\0';
		error = ENAMETOOLONG;
	} else if (f != NULL) {
		f->swap = swap;
		if ((fd = mkostemp(f->path, O_RDWR | O_CLOEXEC | flags)) < 0) {
			error = errno;
			f->path[0] = '\0';
		} else {
			snprintf(path, len, "%s", f->path);
		}
	}
	sb_unblock(&old);
	if (fd < 0)
		errno = error;
	return fd;
}

/* ------------------------------------------------------------------ */
/* children                                                            */
/* ------------------------------------------------------------------ */

pid_t
sb_child_start(void)
{
	pid_t parent = getpid(), pid;
	sigset_t old;

	sb_block(&old);
	if ((pid = fork()) == 0) {
		/* Not the bench's handler: the cleanup is the parent's. */
		for (size_t i = 0; i < SB_NSIGNALS; i++)
			signal(sb_signals[i], SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
	} else if (pid > 0) {
		sb_child = pid;
	}
	sb_unblock(&old);
	return pid;
}

int
sb_child_wait(pid_t pid)
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
	sb_block(&old);
	waitpid(pid, &status, 0);
	sb_child = 0;
	sb_unblock(&old);
	return status;
}

int
sb_run(const char *prog, const char *who, int (*body)(void *arg,
    void *res), void *arg, void *res, size_t len)
{
	uint64_t oom0 = sb_cgdir[0] != '\0' ? sb_cgroup_oom_kills() : 0;
	ssize_t n;
	pid_t pid;
	int fd[2], status;

	if (pipe2(fd, O_CLOEXEC) != 0) {
		fprintf(stderr, "%s: %s: pipe: %s\n", prog, who,
		    strerror(errno));
		return 1;
	}
	fflush(NULL);		/* nothing buffered twice */
	if ((pid = sb_child_start()) == 0) {
		close(fd[0]);
		status = body(arg, res);
		/* Less than PIPE_BUF: written whole, or not at all. */
		if (status == 0 && write(fd[1], res, len) != (ssize_t)len) {
			fprintf(stderr, "%s: %s: writing the result: %s\n",
			    prog, who, strerror(errno));
			status = 1;
		}
		_exit(status);
	}
	close(fd[1]);
	if (pid < 0) {
		fprintf(stderr, "%s: %s: fork: %s\n", prog, who,
		    strerror(errno));
		close(fd[0]);
		return 1;
	}
	while ((n = read(fd[0], res, len)) < 0 && errno == EINTR)
		;
	close(fd[0]);
	status = sb_child_wait(pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	    n == (ssize_t)len)
		return 0;
	if (WIFSIGNALED(status))
		fprintf(stderr, "%s: %s: killed by signal %d (%s)%s\n", prog,
		    who, WTERMSIG(status), strsignal(WTERMSIG(status)),
		    sb_cgdir[0] != '\0' && sb_cgroup_oom_kills() != oom0 ?
		    ": the memory cgroup's OOM killer" : "");
	else
		fprintf(stderr, "%s: %s: failed (exit status %d)\n", prog,
		    who, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 1;
}
