/*
 * test_swapdev.c: the swap device on small file systems of its own, made
 * for the test, so that they really fill up: a loop-mounted ext4 image
 * and a tmpfs, in a mount namespace of the test's own (they go with the
 * process, however it ends).  Mounting needs root; without it, without
 * loop devices or mkfs.ext4, or without a kernel that can page
 * (UFFDIO_MOVE), the whole test is skipped (exit 77) and says why.
 *
 *   reserved  (ext4) the device's blocks are reserved when it is made: a
 *             device larger than its file system fails usrvm_init with
 *             ENOSPC and gives back what it had allocated (a named
 *             file too); one that fits keeps paging, with no write
 *             failing, after another file has taken every block left;
 *   sparse    (tmpfs, where reserving would take the memory at once) the
 *             file system fills up while pages go out: those writes fail
 *             with ENOSPC, the pages stay resident (over the budget), and
 *             every byte written is read back.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "helpers.h"

#define MIB		((size_t)1 << 20)

static char sd_top[] = "/var/tmp/usrvm-swapdev.XXXXXX";
static char sd_img[64], sd_ext4[64], sd_tmpfs[64];
static int sd_mounted;		/* 1: ext4, 2: and tmpfs */
static pid_t sd_pid;		/* the one that mounted (not a case's child) */

static void
sd_cleanup(void)
{
	if (getpid() != sd_pid)
		return;
	/* Detached: a ring of a case that just ended may hold its swap
	 * file a little longer (io_uring lets go of files asynchronously). */
	if (sd_mounted >= 2)
		(void)umount2(sd_tmpfs, MNT_DETACH);
	if (sd_mounted >= 1)	/* the loop device goes with it */
		(void)umount2(sd_ext4, MNT_DETACH);
	sd_mounted = 0;
	(void)rmdir(sd_tmpfs);
	(void)rmdir(sd_ext4);
	(void)unlink(sd_img);
	(void)rmdir(sd_top);
}

static void
sd_skip(const char *why)
{
	fprintf(stderr, "skip: %s\n", why);
	sd_cleanup();
	exit(T_EXIT_SKIP);
}

/* A 16 MiB ext4 file system at sd_ext4, a 4 MiB tmpfs at sd_tmpfs. */
static void
sd_setup(void)
{
	char cmd[512];

	sd_pid = getpid();
	if (geteuid() != 0)
		sd_skip("mounting test file systems needs root");
	if (unshare(CLONE_NEWNS) != 0 ||
	    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		sd_skip("no mount namespace of our own");
	if (mkdtemp(sd_top) == NULL)
		sd_skip("no directory in /var/tmp");
	snprintf(sd_img, sizeof(sd_img), "%s/ext4.img", sd_top);
	snprintf(sd_ext4, sizeof(sd_ext4), "%s/ext4", sd_top);
	snprintf(sd_tmpfs, sizeof(sd_tmpfs), "%s/tmpfs", sd_top);
	if (mkdir(sd_ext4, 0700) != 0 || mkdir(sd_tmpfs, 0700) != 0)
		sd_skip("no directories for the mounts");
	snprintf(cmd, sizeof(cmd), "truncate -s 16M %s && "
	    "mkfs.ext4 -q -F %s >/dev/null 2>&1 && "
	    "mount -o loop %s %s >/dev/null 2>&1", sd_img, sd_img, sd_img,
	    sd_ext4);
	if (system(cmd) != 0)
		sd_skip("cannot make and loop-mount an ext4 image "
		    "(mkfs.ext4, loop devices)");
	sd_mounted = 1;
	if (mount("usrvm-swapdev", sd_tmpfs, "tmpfs", 0, "size=4m") != 0)
		sd_skip("cannot mount a tmpfs");
	sd_mounted = 2;
	atexit(sd_cleanup);
}

static size_t
sd_free(const char *dir)
{
	struct statvfs sv;

	ck_assert_int_eq(statvfs(dir, &sv), 0);
	return (size_t)sv.f_bavail * sv.f_frsize;
}

/*
 * Is dir's free space back to `before`?  A file let go of is freed
 * asynchronously at times (a ring's reference goes after its process
 * has closed it; ext4 reuses blocks once their transaction commits):
 * waits up to 5 s.
 */
static bool
sd_free_back(const char *dir, size_t before)
{
	for (int i = 0; i < 500 && sd_free(dir) != before; i++) {
		sync();
		usleep(10000);
	}
	return sd_free(dir) == before;
}

/* Write the pages of [base, +n pages) at version v, then check them. */
static size_t
sd_round(char *base, size_t n, uint64_t v)
{
	size_t bad = 0;

	for (size_t p = 0; p < n; p++)
		t_page_write(base, p, v);
	for (size_t p = 0; p < n; p++)
		bad += !t_page_is(base, p, v);
	return bad;
}

START_TEST(reserved)
{
	size_t before = sd_free(sd_ext4), n = 8 * MIB / T_PAGE;
	struct usrvm_config cfg;
	struct usrvm_stats st;
	char chunk[64 * 1024], path[96];
	int fd;
	char *base;

	struct stat sb;

	/* Larger than the file system: refused at the start, and what the
	 * file system had allocated for it is given back, in an unlinked
	 * file (a directory) as in a named one. */
	ck_assert_int_eq(usrvm_config_load(&cfg), 0);
	cfg.mem_limit = 2 * MIB;
	cfg.swap_size = 64 * MIB;
	cfg.swap_path = sd_ext4;
	ck_assert_int_eq(usrvm_init(&cfg), -ENOSPC);
	ck_assert(sd_free_back(sd_ext4, before));
	snprintf(path, sizeof(path), "%s/swap", sd_ext4);
	cfg.swap_path = path;
	ck_assert_int_eq(usrvm_init(&cfg), -ENOSPC);
	ck_assert(sd_free_back(sd_ext4, before));
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 0);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(setenv("USRVM_SWAP", sd_ext4, 1), 0);

	/* 8 MiB fits; then another file takes every block left. */
	t_start_budget(2 * MIB, 8 * MIB);
	ck_assert_uint_le(sd_free(sd_ext4), before - 8 * MIB);
	snprintf(path, sizeof(path), "%s/fill", sd_ext4);
	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT, 0600), 0);
	memset(chunk, 0xa5, sizeof(chunk));
	while (write(fd, chunk, sizeof(chunk)) > 0)
		continue;
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_eq(close(fd), 0);

	/* 8 MiB of memory, 4x the budget, written and read twice. */
	base = t_map(usrvm_default_space(), n * T_PAGE);
	ck_assert_uint_eq(sd_round(base, n, 1), 0);
	ck_assert_uint_eq(sd_round(base, n, 2), 0);
	st = t_stats();
	ck_assert_uint_gt(st.pageouts, n / 2);
	ck_assert_uint_gt(st.pageins, 0);
	ck_assert_uint_eq(st.io_errors_write, 0);
	ck_assert_uint_eq(st.io_errors_read, 0);
	ck_assert_int_eq(usrvm_unmap(usrvm_default_space(), base,
	    n * T_PAGE), 0);
	t_stop();
	ck_assert_int_eq(unlink(path), 0);
	ck_assert(sd_free_back(sd_ext4, before));	/* the device went */
	ck_assert_int_eq(unsetenv("USRVM_SWAP"), 0);
}
END_TEST

START_TEST(sparse)
{
	size_t n = 16 * MIB / T_PAGE;
	struct usrvm_stats st;
	char *base;

	/* 32 MiB of swap, sparse, on 4 MiB of tmpfs. */
	ck_assert_int_eq(setenv("USRVM_SWAP", sd_tmpfs, 1), 0);
	t_start_budget(2 * MIB, 32 * MIB);
	base = t_map(usrvm_default_space(), n * T_PAGE);
	ck_assert_uint_eq(sd_round(base, n, 1), 0);
	ck_assert_uint_eq(sd_round(base, n, 2), 0);
	st = t_stats();
	ck_assert_uint_gt(st.io_errors_write, 0);	/* ENOSPC */
	ck_assert_uint_gt(st.pageouts, 0);		/* the first 4 MiB */
	ck_assert_uint_gt(st.pd_grace, 0);		/* the rest stayed */
	ck_assert_uint_eq(st.io_errors_read, 0);
	ck_assert_int_eq(usrvm_unmap(usrvm_default_space(), base,
	    n * T_PAGE), 0);
	t_stop();
	ck_assert_int_eq(unsetenv("USRVM_SWAP"), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("swapdev");
	struct usrvm_config cfg;

	t_require_uffd();
	/* A budget needs UFFDIO_MOVE (Linux 6.8). */
	if (usrvm_config_load(&cfg) != 0)
		return 1;
	cfg.mem_limit = 2 * MIB;
	if (usrvm_init(&cfg) == -ENOSYS) {
		fprintf(stderr, "skip: this kernel cannot page\n");
		return T_EXIT_SKIP;
	}
	usrvm_shutdown();
	sd_setup();
	t_case(s, "reserved", reserved, 120);
	t_case(s, "sparse", sparse, 120);
	return t_run(s, 120);
}
