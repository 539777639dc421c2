/*
 * test_vnode.c: files mapped through usrvm (the vnode pager).
 *
 * Every page of a test file holds one 64-bit word repeated, made from
 * the page's index and a version (t_pattern): a page is checked whole,
 * and a model says which version each page should hold.  What reached
 * the file is read back with plain pread(2) in another process (a fork
 * child that touches nothing of usrvm).  Files are made in the working
 * directory (USRVM_TEST_DIR overrides it) and removed at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define RW		(USRVM_PROT_READ | USRVM_PROT_WRITE)
#define WORDS		(T_PAGE / 8)

static char t_path[4096];

/* A new file of npages pages at version 1, plus `extra` bytes of a
 * last partial page; its descriptor, opened with `mode`. */
static int
t_file(size_t npages, size_t extra, int mode)
{
	const char *dir = getenv("USRVM_TEST_DIR");
	uint64_t *buf = malloc(T_PAGE);
	int fd;

	snprintf(t_path, sizeof(t_path), "%s/usrvm-vnode-%d-XXXXXX",
	    dir != NULL ? dir : ".", (int)getpid());
	ck_assert_int_ge(fd = mkstemp(t_path), 0);
	for (size_t pg = 0; pg <= npages; pg++) {
		size_t len = pg < npages ? T_PAGE : extra;
		for (size_t i = 0; i < WORDS; i++)
			buf[i] = t_page_word(pg, 1);
		if (len > 0)
			ck_assert_int_eq(pwrite(fd, buf, len,
			    (off_t)(pg * T_PAGE)), (ssize_t)len);
	}
	free(buf);
	if (mode != O_RDWR) {
		close(fd);
		ck_assert_int_ge(fd = open(t_path, mode | O_CLOEXEC), 0);
	}
	return fd;
}

static void
t_file_done(int fd)
{
	close(fd);
	unlink(t_path);
}

/*
 * Does the file at t_path hold versions[pg] in page pg, for every pg <
 * npages (and only `tail` bytes of a last page, when tail > 0)?  Read
 * with pread(2) by a child process, which touches no managed memory:
 * made by _Fork, which runs no fork handlers (the fork cases test those).
 */
static void
t_file_is(const uint64_t *versions, size_t npages)
{
	int status;
	pid_t pid;

	ck_assert_int_ge(pid = _Fork(), 0);
	if (pid == 0) {
		uint64_t buf[WORDS];
		int fd = open(t_path, O_RDONLY);
		if (fd < 0)
			_exit(2);
		for (size_t pg = 0; pg < npages; pg++) {
			if (pread(fd, buf, T_PAGE, (off_t)(pg * T_PAGE)) !=
			    (ssize_t)T_PAGE)
				_exit(3);
			for (size_t i = 0; i < WORDS; i++)
				if (buf[i] != t_page_word(pg, versions[pg])) {
					fprintf(stderr, "file page %zu: %#llx,"
					    " want version %llu\n", pg,
					    (unsigned long long)buf[i],
					    (unsigned long long)versions[pg]);
					_exit(1);
				}
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the file's contents are not what was written (status %#x)",
	    status);
}

static char *
t_fmap(struct usrvm_space *vs, size_t len, int prot, int fd, off_t off)
{
	char *p = usrvm_map(vs, NULL, len, prot, USRVM_MAP_SHARED, fd, off);

	ck_assert_msg(p != NULL, "usrvm_map of a file: %s", strerror(errno));
	return p;
}

/* ------------------------------------------------------------------ */

/* Read, write, sync: the file holds what was written; the fd may go. */
START_TEST(read_write_sync)
{
	struct usrvm_space *vs;
	uint64_t v[64];
	char *p;
	int fd;

	t_start();
	vs = usrvm_default_space();
	fd = t_file(64, 0, O_RDWR);
	p = t_fmap(vs, 64 * T_PAGE, RW, fd, 0);
	close(fd);			/* the mapping keeps the file */
	for (size_t pg = 0; pg < 64; pg++) {
		ck_assert(t_page_is(p, pg, 1));
		v[pg] = 1;
	}
	for (size_t pg = 0; pg < 64; pg += 3) {
		t_page_write(p, pg, 2);
		v[pg] = 2;
	}
	ck_assert_int_eq(usrvm_sync(p, 64 * T_PAGE, USRVM_SYNC_SYNC), 0);
	t_file_is(v, 64);
	ck_assert_uint_gt(t_stats().file_pageouts, 0);
	/* Unmapping writes back too (the object stays cached). */
	t_page_write(p, 1, 3);
	v[1] = 3;
	ck_assert_int_eq(usrvm_unmap(vs, p, 64 * T_PAGE), 0);
	t_stop();			/* every object written back */
	t_file_is(v, 64);
	unlink(t_path);
}
END_TEST

/*
 * Two mappings in one space and one in another space see each other's
 * writes at once, and share one object.
 */
START_TEST(coherent)
{
	struct usrvm_space *vs, *vs2;
	struct usrvm_stats st;
	char *a, *b, *c;
	int fd;

	t_start();
	vs = usrvm_default_space();
	ck_assert_ptr_nonnull(vs2 = usrvm_space_create((size_t)1 << 30));
	fd = t_file(32, 0, O_RDWR);
	a = t_fmap(vs, 32 * T_PAGE, RW, fd, 0);
	b = t_fmap(vs, 16 * T_PAGE, RW, fd, 16 * T_PAGE);  /* a's back half */
	c = t_fmap(vs2, 32 * T_PAGE, RW, fd, 0);
	st = t_stats();
	ck_assert_uint_eq(st.object_misses, 1);
	ck_assert_uint_ge(st.object_hits, 2);
	for (uint64_t round = 2; round < 6; round++) {
		for (size_t pg = 0; pg < 32; pg++) {
			char *w = pg % 3 == 0 ? a : pg % 3 == 1 ? c :
			    pg >= 16 ? b - 16 * T_PAGE : a;
			t_page_write(w, pg, round);
			ck_assert(t_page_is(a, pg, round));
			ck_assert(t_page_is(c, pg, round));
			if (pg >= 16)
				ck_assert(t_page_is(b - 16 * T_PAGE, pg,
				    round));
		}
	}
	ck_assert_int_eq(usrvm_space_destroy(vs2), 0);
	ck_assert_int_eq(usrvm_unmap(vs, a, 32 * T_PAGE), 0);
	ck_assert(t_page_is(b - 16 * T_PAGE, 20, 5));
	ck_assert_int_eq(usrvm_unmap(vs, b, 16 * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/* The end of the file: zeros after it in its last page, SIGBUS past. */

START_TEST(end_of_file)
{
	struct usrvm_space *vs;
	char *p;
	int fd;

	t_start();
	vs = usrvm_default_space();
	fd = t_file(2, 100, O_RDWR);
	/* Writable past the end: refused; read-only: allowed. */
	ck_assert_ptr_null(usrvm_map(vs, NULL, 4 * T_PAGE, RW,
	    USRVM_MAP_SHARED, fd, 0));
	ck_assert_int_eq(errno, EINVAL);
	p = t_fmap(vs, 4 * T_PAGE, USRVM_PROT_READ, fd, 0);
	ck_assert(t_page_is(p, 1, 1));
	ck_assert_uint_eq(((uint64_t *)(p + 2 * T_PAGE))[0], t_page_word(2, 1));
	for (size_t i = 100; i < T_PAGE; i++)
		ck_assert_int_eq(p[2 * T_PAGE + i], 0);
	ck_assert_msg(t_sigbus(p + 3 * T_PAGE), "no SIGBUS past the end");
	/* Its maximum protection has no write (past the end). */
	ck_assert_int_eq(usrvm_protect(vs, p, T_PAGE, RW), -EACCES);
	ck_assert_int_eq(usrvm_unmap(vs, p, 4 * T_PAGE), 0);

	/* Writable within the file: the partial page is written back up to
	 * the end of the file, never beyond. */
	p = t_fmap(vs, 3 * T_PAGE, RW, fd, 0);
	p[2 * T_PAGE + 1] = 0x5a;
	p[2 * T_PAGE + 200] = 0x5b;	/* past the end: stays in memory */
	ck_assert_int_eq(usrvm_sync(p, 3 * T_PAGE, USRVM_SYNC_SYNC), 0);
	{
		struct stat sb;
		unsigned char c = 0;
		ck_assert_int_eq(fstat(fd, &sb), 0);
		ck_assert_int_eq(sb.st_size, 2 * T_PAGE + 100);
		ck_assert_int_eq(pread(fd, &c, 1, 2 * T_PAGE + 1), 1);
		ck_assert_int_eq(c, 0x5a);
	}
	ck_assert_int_eq(usrvm_unmap(vs, p, 3 * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/*
 * The file truncated underneath a mapping: pages past the new end give
 * SIGBUS when read in, and a dirty one there is dropped at write-back,
 * not written to make the file longer again; the rest works on.
 */
START_TEST(truncated)
{
	struct usrvm_space *vs;
	uint64_t v[4] = { 1, 2, 1, 1 };
	struct stat sb;
	char *p;
	int fd;

	t_start();
	vs = usrvm_default_space();
	fd = t_file(16, 0, O_RDWR);
	p = t_fmap(vs, 16 * T_PAGE, RW, fd, 0);
	ck_assert(t_page_is(p, 1, 1));
	t_page_write(p, 12, 5);
	ck_assert_int_eq(ftruncate(fd, 4 * T_PAGE + 100), 0);
	ck_assert_msg(t_sigbus(p + 10 * T_PAGE), "no SIGBUS past the new end");
	t_page_write(p, 1, 2);
	ck_assert(t_page_is(p, 1, 2));
	ck_assert_int_eq(usrvm_sync(p, 16 * T_PAGE, USRVM_SYNC_SYNC), 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	ck_assert_int_eq(sb.st_size, 4 * T_PAGE + 100);
	t_file_is(v, 4);
	ck_assert_uint_eq(t_stats().faults_error, 1);
	ck_assert_int_eq(usrvm_unmap(vs, p, 16 * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/* Bad arguments: an error and no mapping. */
START_TEST(bad_input)
{
	struct usrvm_space *vs;
	struct usrvm_stats st;
	int fd, ro, wo, dir, fds;
	char *p;

	t_start();
	vs = usrvm_default_space();
	fd = t_file(4, 0, O_RDWR);
	ck_assert_int_ge(ro = open(t_path, O_RDONLY), 0);
	ck_assert_int_ge(wo = open(t_path, O_WRONLY), 0);
	ck_assert_int_ge(dir = open(".", O_RDONLY | O_DIRECTORY), 0);
	fds = t_count_fds();
#define REFUSED(prot, flags, f, off, err) do {				\
		errno = 0;						\
		ck_assert_ptr_null(usrvm_map(vs, NULL, 4 * T_PAGE, prot,	\
		    flags, f, off));					\
		ck_assert_int_eq(errno, err);				\
	} while (0)
	REFUSED(RW, USRVM_MAP_SHARED, -1, 0, EBADF);
	REFUSED(RW, USRVM_MAP_SHARED, 1000, 0, EBADF);	/* not open */
	REFUSED(USRVM_PROT_READ, USRVM_MAP_SHARED, dir, 0, ENODEV);
	REFUSED(USRVM_PROT_READ, USRVM_MAP_SHARED, wo, 0, EACCES);
	REFUSED(RW, USRVM_MAP_SHARED, ro, 0, EACCES);
	REFUSED(USRVM_PROT_READ, USRVM_MAP_SHARED, fd, 100, EINVAL);
	REFUSED(USRVM_PROT_READ, USRVM_MAP_SHARED, fd, -4096, EINVAL);
	REFUSED(USRVM_PROT_READ, USRVM_MAP_SHARED | USRVM_MAP_ANON, fd, 0,
	    EINVAL);
	REFUSED(USRVM_PROT_READ, USRVM_MAP_PRIVATE, wo, 0, EACCES);
	REFUSED(RW, USRVM_MAP_PRIVATE, dir, 0, ENODEV);
#undef REFUSED
	/* No side effect: no entry, no object, no commit, no descriptor. */
	st = t_stats();
	ck_assert_uint_eq(st.map_entries, 0);
	ck_assert_uint_eq(st.objects, 0);
	ck_assert_uint_eq(st.committed, 0);
	ck_assert_int_eq(t_count_fds(), fds);
	/* Read-only descriptor: readable, never writable. */
	p = t_fmap(vs, 4 * T_PAGE, USRVM_PROT_READ, ro, 0);
	ck_assert(t_page_is(p, 3, 1));
	ck_assert_int_eq(usrvm_protect(vs, p, 4 * T_PAGE, RW), -EACCES);
	ck_assert_int_eq(usrvm_sync(p + 1, T_PAGE, USRVM_SYNC_SYNC), -EINVAL);
	ck_assert_int_eq(usrvm_sync(p, T_PAGE, 0), -EINVAL);
	ck_assert_int_eq(usrvm_sync(p, T_PAGE, USRVM_SYNC_SYNC |
	    USRVM_SYNC_ASYNC), -EINVAL);
	ck_assert_int_eq(usrvm_sync(p + 4 * T_PAGE, T_PAGE, USRVM_SYNC_SYNC),
	    -ENOMEM);
	ck_assert_int_eq(usrvm_unmap(vs, p, 4 * T_PAGE), 0);
	close(ro);
	close(wo);
	close(dir);
	t_stop();
	t_file_done(fd);
}
END_TEST

/*
 * A file 8 times the budget, read and written at random by 4 threads,
 * every page checked whole against the model on every read; then synced
 * and checked on the file.  Each thread owns the pages p with
 * p % NTHREADS == its number, so the model needs no lock.
 */
#define BIG_PAGES	8192		/* 32 MiB */
#define BIG_BUDGET	((size_t)4 << 20)
#define BIG_THREADS	4

static char *big;
static uint64_t big_v[BIG_PAGES];
static uint64_t big_seed;
static _Atomic uint64_t big_checked;

static void *
big_worker(void *arg)
{
	uintptr_t me = (uintptr_t)arg;
	uint64_t rs = big_seed * 31 + me + 1;

	for (int k = 0; k < 6000; k++) {
		size_t pg = (t_rand(&rs) % (BIG_PAGES / BIG_THREADS)) *
		    BIG_THREADS + me;
		if (!t_page_is(big, pg, big_v[pg])) {
			fprintf(stderr, "page %zu: %#llx, want version %llu\n",
			    pg, (unsigned long long)((uint64_t *)(big + pg *
			    T_PAGE))[0], (unsigned long long)big_v[pg]);
			abort();
		}
		atomic_fetch_add(&big_checked, 1);
		if (t_rand(&rs) % 3 == 0) {
			t_page_write(big, pg, big_v[pg] + 1);
			big_v[pg]++;
		}
	}
	return NULL;
}

/* The workers over the mapping p (big), then every page checked. */
static void
big_run(char *p)
{
	pthread_t t[BIG_THREADS];

	big = p;
	for (uintptr_t i = 0; i < BIG_THREADS; i++)
		pthread_create(&t[i], NULL, big_worker, (void *)i);
	for (int i = 0; i < BIG_THREADS; i++)
		pthread_join(t[i], NULL);
	for (size_t pg = 0; pg < BIG_PAGES; pg++)
		ck_assert_msg(t_page_is(big, pg, big_v[pg]), "page %zu", pg);
}

START_TEST(larger_than_budget)
{
	struct usrvm_stats st;
	struct usrvm_space *vs;
	int fd;

	big_seed = t_seed(7);
	t_start_budget(BIG_BUDGET, 0);
	vs = usrvm_default_space();
	fd = t_file(BIG_PAGES, 0, O_RDWR);
	for (size_t pg = 0; pg < BIG_PAGES; pg++)
		big_v[pg] = 1;
	big_run(t_fmap(vs, BIG_PAGES * T_PAGE, RW, fd, 0));
	ck_assert_int_eq(usrvm_sync(big, BIG_PAGES * T_PAGE, USRVM_SYNC_SYNC),
	    0);
	t_file_is(big_v, BIG_PAGES);
	st = t_stats();
	fprintf(stderr, "larger_than_budget: %llu pages checked; read %llu "
	    "pages in %llu reads, %llu written back, %llu clean evicted, "
	    "peak resident %llu of %zu\n",
	    (unsigned long long)big_checked,
	    (unsigned long long)st.file_pageins,
	    (unsigned long long)st.file_reads,
	    (unsigned long long)st.file_pageouts,
	    (unsigned long long)st.evict_file,
	    (unsigned long long)st.resident_peak, BIG_BUDGET / T_PAGE);
	ck_assert_uint_gt(st.evict_file, BIG_PAGES);
	ck_assert_uint_gt(st.file_pageouts, 0);
	ck_assert_uint_eq(st.faults_error, 0);
	ck_assert_uint_le(st.resident_peak, BIG_BUDGET / T_PAGE + 64 + 256);
	ck_assert_int_eq(usrvm_unmap(vs, big, BIG_PAGES * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/*
 * Read-ahead: two threads each read their part of a file three times the
 * budget in order, twice over, while a third reads and writes pages of
 * the last part at random, every page checked whole.  The streams must
 * be read ahead (neither the other stream nor the random faults between
 * their faults may break them), within the budget.  Then a stream is
 * started and its mapping unmapped and the runtime stopped at once,
 * with its read-ahead still queued or in flight.
 */
#define RA_PART		2048		/* pages: 8 MiB */
#define RA_BUDGET	((size_t)8 << 20)

static char *ra_map;
static uint64_t ra_v[3 * RA_PART];

static void *
ra_worker(void *arg)
{
	uintptr_t me = (uintptr_t)arg;
	uint64_t rs = big_seed * 7 + me;

	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < RA_PART; i++) {
			size_t pg = me * RA_PART + (me < 2 ? i :
			    t_rand(&rs) % RA_PART);
			if (!t_page_is(ra_map, pg, ra_v[pg])) {
				fprintf(stderr, "page %zu: %#llx, want version "
				    "%llu\n", pg, (unsigned long long)
				    ((uint64_t *)(ra_map + pg * T_PAGE))[0],
				    (unsigned long long)ra_v[pg]);
				abort();
			}
			if (me == 2 && t_rand(&rs) % 2 == 0) {
				t_page_write(ra_map, pg, ra_v[pg] + 1);
				ra_v[pg]++;
			}
		}
	return NULL;
}

START_TEST(read_ahead)
{
	struct usrvm_space *vs;
	struct usrvm_stats st;
	volatile uint64_t sink = 0;
	pthread_t t[3];
	char *p;
	int fd;

	big_seed = t_seed(11);
	t_start_budget(RA_BUDGET, 0);
	vs = usrvm_default_space();
	fd = t_file(3 * RA_PART, 0, O_RDWR);
	for (size_t pg = 0; pg < 3 * RA_PART; pg++)
		ra_v[pg] = 1;
	ra_map = t_fmap(vs, 3 * RA_PART * T_PAGE, RW, fd, 0);
	for (uintptr_t i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, ra_worker, (void *)i);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	st = t_stats();
	fprintf(stderr, "read_ahead: read %llu pages in %llu reads, %llu of "
	    "them read ahead; peak resident %llu of %zu\n",
	    (unsigned long long)st.file_pageins,
	    (unsigned long long)st.file_reads,
	    (unsigned long long)st.file_ra_pages,
	    (unsigned long long)st.resident_peak, RA_BUDGET / T_PAGE);
	/* Each stream reads its part twice: most of it ahead. */
	ck_assert_uint_gt(st.file_ra_pages, 2 * RA_PART);
	ck_assert_uint_eq(st.faults_error, 0);
	ck_assert_uint_le(st.resident_peak, RA_BUDGET / T_PAGE + 64 + 256);
	ck_assert_int_eq(usrvm_sync(ra_map, 3 * RA_PART * T_PAGE,
	    USRVM_SYNC_SYNC), 0);
	t_file_is(ra_v, 3 * RA_PART);
	ck_assert_int_eq(usrvm_unmap(vs, ra_map, 3 * RA_PART * T_PAGE), 0);

	/* Read-ahead still going when its mapping and the runtime go. */
	p = t_fmap(vs, 3 * RA_PART * T_PAGE, USRVM_PROT_READ, fd, 0);
	for (size_t pg = 0; pg < 1024; pg++)
		sink += *(volatile uint64_t *)(p + pg * T_PAGE);
	ck_assert_int_eq(usrvm_unmap(vs, p, 3 * RA_PART * T_PAGE), 0);
	(void)sink;
	t_stop();
	t_file_done(fd);
}
END_TEST

/*
 * Read-ahead follows the access pattern: a random reader pays for exactly
 * the pages it touches (one page a read, nothing read ahead), a
 * sequential one grows to large reads and has pages read ahead of it,
 * RANDOM advice pins a sequential reader to one page a read, SEQUENTIAL
 * advice starts at the largest window.  Parts of one file, each cold,
 * under a budget that holds it all.
 */
#define RX_PART		1024		/* pages: 4 MiB */

/* Read pages order[0..n) of part `part`: the file's reads meanwhile. */
static struct usrvm_stats
rx_read(const char *map, size_t part, const size_t *order, size_t n)
{
	struct usrvm_stats a, b;
	size_t bad = 0;

	/* The read-ahead of the part before, done first (2 s at most). */
	a = t_stats();
	for (int i = 0; i < 100; i++) {
		usleep(20000);
		b = t_stats();
		if (b.file_reads == a.file_reads)
			break;
		a = b;
	}

	for (size_t i = 0; i < n; i++) {
		size_t pg = part * RX_PART + order[i];
		bad += !t_page_is((char *)map, pg, 1);
	}
	ck_assert_msg(bad == 0, "%zu pages read wrong", bad);
	b = t_stats();
	b.file_pageins -= a.file_pageins;
	b.file_reads -= a.file_reads;
	b.file_ra_pages -= a.file_ra_pages;
	fprintf(stderr, "read_ahead_adapts: part %zu: %zu faults, %llu "
	    "pages in %llu reads, %llu read ahead\n", part, n,
	    (unsigned long long)b.file_pageins,
	    (unsigned long long)b.file_reads,
	    (unsigned long long)b.file_ra_pages);
	return b;
}

START_TEST(read_ahead_adapts)
{
	static size_t order[RX_PART];
	struct usrvm_space *vs;
	struct usrvm_stats st;
	uint64_t rs = t_seed(12);
	size_t n;
	char *map;
	int fd;

	t_start_budget((size_t)64 << 20, 0);
	vs = usrvm_default_space();
	fd = t_file(7 * RX_PART, 0, O_RDONLY);
	map = usrvm_map(vs, NULL, 7 * RX_PART * T_PAGE, USRVM_PROT_READ,
	    USRVM_MAP_SHARED, fd, 0);
	ck_assert_ptr_nonnull(map);
	ck_assert_int_eq(usrvm_advise(vs, map + 1 * RX_PART * T_PAGE,
	    RX_PART * T_PAGE, USRVM_ADV_RANDOM), 0);
	ck_assert_int_eq(usrvm_advise(vs, map + 2 * RX_PART * T_PAGE,
	    RX_PART * T_PAGE, USRVM_ADV_SEQUENTIAL), 0);

	/* Part 0, default advice: every 4th page, shuffled: no fault is
	 * where an earlier read ended. */
	n = RX_PART / 4;
	for (size_t i = 0; i < n; i++)
		order[i] = 4 * i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = t_rand(&rs) % (i + 1), tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	st = rx_read(map, 0, order, n);
	ck_assert_uint_eq(st.file_pageins, n);
	ck_assert_uint_eq(st.file_reads, n);
	ck_assert_uint_eq(st.file_ra_pages, 0);

	/* Part 1, RANDOM advice, in order: one page a read all the same. */
	for (size_t i = 0; i < RX_PART; i++)
		order[i] = i;
	st = rx_read(map, 1, order, RX_PART);
	ck_assert_uint_eq(st.file_pageins, RX_PART);
	ck_assert_uint_eq(st.file_reads, RX_PART);
	ck_assert_uint_eq(st.file_ra_pages, 0);

	/* Part 2, SEQUENTIAL advice: the largest window from the first
	 * fault, 256 pages a read (and on ahead of the reader, by up to 8
	 * windows: into parts 3 to 5, which nothing reads). */
	st = rx_read(map, 2, order, RX_PART);
	ck_assert_uint_ge(st.file_pageins, RX_PART);
	ck_assert_uint_ge(st.file_pageins, 128 * st.file_reads);

	/* Part 6, the last, default advice, in order: the reads grow, and
	 * pages are read ahead of the reader. */
	st = rx_read(map, 6, order, RX_PART);
	ck_assert_uint_eq(st.file_pageins, RX_PART);
	ck_assert_uint_le(st.file_reads, RX_PART / 16);
	ck_assert_uint_gt(st.file_ra_pages, 0);

	ck_assert_int_eq(usrvm_unmap(vs, map, 7 * RX_PART * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/*
 * Views and write-back under threads: four writers, each owning the pages
 * p % 4 == its number, write through one view and check through another
 * (in another space), under a budget of a quarter of the file, while one
 * thread keeps syncing and another keeps mapping, reading and unmapping
 * a third view.  Every check is exact; at the end the file must hold the
 * model.
 */
#define MT_PAGES	2048
#define MT_WRITERS	4

static char *mt_a, *mt_b;
static uint64_t mt_v[MT_PAGES];
static _Atomic unsigned mt_writers_left;
static int mt_fd;

static void *
mt_writer(void *arg)
{
	uintptr_t me = (uintptr_t)arg;
	uint64_t rs = big_seed * 17 + me + 1;

	for (int k = 0; k < 3000; k++) {
		size_t pg = (t_rand(&rs) % (MT_PAGES / MT_WRITERS)) *
		    MT_WRITERS + me;
		char *w = k % 2 ? mt_a : mt_b, *r = k % 2 ? mt_b : mt_a;
		if (!t_page_is(r, pg, mt_v[pg]))
			abort();
		t_page_write(w, pg, mt_v[pg] + 1);
		mt_v[pg]++;
		if (!t_page_is(r, pg, mt_v[pg]))
			abort();
	}
	atomic_fetch_sub(&mt_writers_left, 1);
	return NULL;
}

static void *
mt_syncer(void *arg)
{
	int n = 0;

	(void)arg;
	while (atomic_load(&mt_writers_left) > 0)
		if (usrvm_sync(mt_a, MT_PAGES * T_PAGE, n++ % 2 ?
		    USRVM_SYNC_SYNC : USRVM_SYNC_ASYNC) != 0)
			abort();
	return NULL;
}

static void *
mt_mapper(void *arg)
{
	struct usrvm_space *vs = arg;
	volatile uint64_t sink = 0;

	while (atomic_load(&mt_writers_left) > 0) {
		char *c = usrvm_map(vs, NULL, MT_PAGES * T_PAGE,
		    USRVM_PROT_READ, USRVM_MAP_SHARED, mt_fd, 0);
		if (c == NULL)
			abort();
		for (size_t pg = 0; pg < MT_PAGES; pg += 61)
			sink += *(volatile uint64_t *)(c + pg * T_PAGE);
		if (usrvm_unmap(vs, c, MT_PAGES * T_PAGE) != 0)
			abort();
	}
	(void)sink;
	return NULL;
}

START_TEST(views_threads)
{
	pthread_t w[MT_WRITERS], syncer, mapper;
	struct usrvm_space *vs, *vs2;
	struct usrvm_stats st;

	big_seed = t_seed(11);
	t_start_budget((size_t)1 << 20, 0);
	vs = usrvm_default_space();
	ck_assert_ptr_nonnull(vs2 = usrvm_space_create((size_t)1 << 30));
	mt_fd = t_file(MT_PAGES, 0, O_RDWR);
	for (size_t pg = 0; pg < MT_PAGES; pg++)
		mt_v[pg] = 1;
	mt_a = t_fmap(vs, MT_PAGES * T_PAGE, RW, mt_fd, 0);
	mt_b = t_fmap(vs2, MT_PAGES * T_PAGE, RW, mt_fd, 0);
	atomic_store(&mt_writers_left, MT_WRITERS);
	for (uintptr_t i = 0; i < MT_WRITERS; i++)
		pthread_create(&w[i], NULL, mt_writer, (void *)i);
	pthread_create(&syncer, NULL, mt_syncer, NULL);
	pthread_create(&mapper, NULL, mt_mapper, vs);
	for (int i = 0; i < MT_WRITERS; i++)
		pthread_join(w[i], NULL);
	pthread_join(syncer, NULL);
	pthread_join(mapper, NULL);
	for (size_t pg = 0; pg < MT_PAGES; pg++)
		ck_assert(t_page_is(mt_a, pg, mt_v[pg]));
	ck_assert_int_eq(usrvm_sync(mt_b, MT_PAGES * T_PAGE,
	    USRVM_SYNC_SYNC), 0);
	t_file_is(mt_v, MT_PAGES);
	st = t_stats();
	fprintf(stderr, "views_threads: %llu write-protect faults, %llu pages "
	    "written back in %llu writes, %llu clean evicted, %llu read\n",
	    (unsigned long long)st.faults_wp,
	    (unsigned long long)st.file_pageouts,
	    (unsigned long long)st.file_writes,
	    (unsigned long long)st.evict_file,
	    (unsigned long long)st.file_pageins);
	ck_assert_uint_eq(st.faults_error, 0);
	ck_assert_uint_gt(st.evict_file, 0);
	ck_assert_int_eq(usrvm_space_destroy(vs2), 0);
	ck_assert_int_eq(usrvm_unmap(vs, mt_a, MT_PAGES * T_PAGE), 0);
	t_stop();
	t_file_done(mt_fd);
}
END_TEST

/* Injected errors: a failed read is SIGBUS for that access and caches
 * nothing; a failed write-back keeps the page dirty and says EIO once. */
START_TEST(io_errors)
{
	struct usrvm_space *vs;
	uint64_t v[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	char *p;
	int fd;

	t_start();
	vs = usrvm_default_space();
	fd = t_file(8, 0, O_RDWR);
	p = t_fmap(vs, 8 * T_PAGE, RW, fd, 0);
	ck_assert_int_eq(usrvm_inject(USRVM_INJECT_FILE_READ, EIO, 1), 0);
	ck_assert_msg(t_sigbus(p + 4 * T_PAGE), "no SIGBUS for a failed read");
	ck_assert_uint_eq(t_stats().file_errors_read, 1);
	ck_assert(t_page_is(p, 5, 1));	/* the error was injected once */

	t_page_write(p, 2, 7);
	v[2] = 7;
	ck_assert_int_eq(usrvm_inject(USRVM_INJECT_FILE_WRITE, EIO, 1), 0);
	ck_assert_int_eq(usrvm_sync(p, 8 * T_PAGE, USRVM_SYNC_SYNC), -EIO);
	ck_assert_uint_eq(t_stats().file_errors_write, 1);
	ck_assert(t_page_is(p, 2, 7));	/* nothing dropped */
	ck_assert_int_eq(usrvm_sync(p, 8 * T_PAGE, USRVM_SYNC_SYNC), 0);
	t_file_is(v, 8);
	ck_assert_int_eq(usrvm_unmap(vs, p, 8 * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/*
 * fork(2): the child sees every page of a file mapping as the parent
 * left it, whether resident, dirty or evicted, and the parent's object
 * is left alone.
 */
START_TEST(fork_child)
{
	struct usrvm_space *vs;
	uint64_t v[2048];
	int fd, status;
	char *p;
	pid_t pid;

	t_start_budget((size_t)4 << 20, 0);
	vs = usrvm_default_space();
	fd = t_file(2048, 0, O_RDWR);
	p = t_fmap(vs, 2048 * T_PAGE, RW, fd, 0);
	for (size_t pg = 0; pg < 2048; pg++) {
		t_page_write(p, pg, 2 + pg % 3);
		v[pg] = 2 + pg % 3;
	}
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		for (size_t pg = 0; pg < 2048; pg++)
			if (!t_page_is(p, pg, v[pg]))
				_exit(1);
		t_page_write(p, 0, 9);	/* the child's own: to the file */
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(status == 0, "the fork child saw other contents (%#x)",
	    status);
	for (size_t pg = 1; pg < 2048; pg++)
		ck_assert(t_page_is(p, pg, v[pg]));
	ck_assert_uint_eq(t_stats().faults_error, 0);
	ck_assert_int_eq(usrvm_unmap(vs, p, 2048 * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/* usrvm_fork shares a file mapping (SHARE, its default); COPY of one
 * gives the child a private view of the file (see private_fork). */
START_TEST(usrvm_fork_shares)
{
	struct usrvm_space *vs, *child;
	char *p, *q;
	int fd;

	t_start_budget((size_t)8 << 20, 0);
	vs = usrvm_default_space();
	fd = t_file(64, 0, O_RDWR);
	p = t_fmap(vs, 64 * T_PAGE, RW, fd, 0);
	t_page_write(p, 3, 2);
	ck_assert_ptr_nonnull(child = usrvm_fork(vs));
	q = (char *)usrvm_space_base(child) +
	    (p - (char *)usrvm_space_base(vs));
	ck_assert(t_page_is(q, 3, 2));
	t_page_write(q, 4, 3);			/* the child's write ... */
	ck_assert(t_page_is(p, 4, 3));		/* ... is the parent's */
	t_page_write(p, 5, 4);
	ck_assert(t_page_is(q, 5, 4));
	ck_assert_int_eq(usrvm_space_destroy(child), 0);
	ck_assert(t_page_is(p, 4, 3));
	ck_assert_int_eq(usrvm_unmap(vs, p, 64 * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/* ------------------------------------------------------------------ */
/* private (copy-on-write) mappings                                    */
/* ------------------------------------------------------------------ */

static char *
t_pmap(struct usrvm_space *vs, size_t len, int prot, int fd)
{
	char *p = usrvm_map(vs, NULL, len, prot, USRVM_MAP_PRIVATE, fd, 0);

	ck_assert_msg(p != NULL, "private usrvm_map of a file: %s",
	    strerror(errno));
	return p;
}

/*
 * A private mapping shows the file until it writes a page; its writes
 * stay its own (not in the file, not in a shared mapping, not in another
 * private mapping); a write through a shared mapping shows in the pages
 * it has not written; DONTNEED gives the file's pages back.  A
 * descriptor open for reading only is enough.
 */
START_TEST(private_cow)
{
	struct usrvm_space *vs;
	uint64_t v[64], pv[64];
	char *s, *p, *p2;
	int fd, ro;

	t_start();
	vs = usrvm_default_space();
	fd = t_file(64, 0, O_RDWR);
	ck_assert_int_ge(ro = open(t_path, O_RDONLY | O_CLOEXEC), 0);
	s = t_fmap(vs, 64 * T_PAGE, RW, fd, 0);
	p = t_pmap(vs, 64 * T_PAGE, RW, ro);
	p2 = t_pmap(vs, 64 * T_PAGE, USRVM_PROT_READ, fd);
	for (size_t pg = 0; pg < 64; pg++) {
		ck_assert(t_page_is(p, pg, 1));
		v[pg] = pv[pg] = 1;
	}
	for (size_t pg = 0; pg < 64; pg += 2) {	/* read ones and fresh ones */
		t_page_write(p, pg, 5);
		pv[pg] = 5;
	}
	ck_assert_uint_ge(t_stats().faults_cow, 32);
	for (size_t pg = 0; pg < 64; pg += 3) {	/* the file changes */
		t_page_write(s, pg, 7);
		v[pg] = 7;
		if (pg % 2 != 0)
			pv[pg] = 7;	/* unwritten here: the file's page */
	}
	for (size_t pg = 0; pg < 64; pg++) {
		ck_assert_msg(t_page_is(p, pg, pv[pg]), "private page %zu",
		    pg);
		ck_assert(t_page_is(p2, pg, v[pg]));
		ck_assert(t_page_is(s, pg, v[pg]));
	}
	ck_assert_int_eq(usrvm_sync(p, 64 * T_PAGE, USRVM_SYNC_SYNC), 0);
	ck_assert_int_eq(usrvm_sync(s, 64 * T_PAGE, USRVM_SYNC_SYNC), 0);
	t_file_is(v, 64);
	ck_assert_int_eq(usrvm_advise(vs, p, 32 * T_PAGE, USRVM_ADV_DONTNEED),
	    0);
	for (size_t pg = 0; pg < 64; pg++)
		ck_assert(t_page_is(p, pg, pg < 32 ? v[pg] : pv[pg]));
	ck_assert_uint_eq(t_stats().faults_error, 0);
	ck_assert_int_eq(usrvm_unmap(vs, p, 64 * T_PAGE), 0);
	ck_assert_int_eq(usrvm_unmap(vs, p2, 64 * T_PAGE), 0);
	ck_assert_int_eq(usrvm_unmap(vs, s, 64 * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
	close(ro);
}
END_TEST

/*
 * A private mapping of a file 8 times the budget, read and written at
 * random by 4 threads (big_worker), every page checked: its own pages
 * page out to swap and come back, and the file never changes.
 */
START_TEST(private_larger_than_budget)
{
	uint64_t *file_v = malloc(sizeof(big_v));
	struct usrvm_stats st;
	struct usrvm_space *vs;
	int fd;

	big_seed = t_seed(13);
	t_start_budget(BIG_BUDGET, 0);
	vs = usrvm_default_space();
	fd = t_file(BIG_PAGES, 0, O_RDONLY);
	for (size_t pg = 0; pg < BIG_PAGES; pg++)
		big_v[pg] = file_v[pg] = 1;
	big_run(t_pmap(vs, BIG_PAGES * T_PAGE, RW, fd));
	st = t_stats();
	fprintf(stderr, "private_larger_than_budget: %llu pages checked; "
	    "%llu copied on write, %llu file pages read, %llu swapped out, "
	    "%llu in, peak resident %llu of %zu\n",
	    (unsigned long long)big_checked,
	    (unsigned long long)st.faults_cow,
	    (unsigned long long)st.file_pageins,
	    (unsigned long long)st.pageouts,
	    (unsigned long long)st.pageins,
	    (unsigned long long)st.resident_peak, BIG_BUDGET / T_PAGE);
	ck_assert_uint_gt(st.faults_cow, 0);
	ck_assert_uint_gt(st.pageouts, 0);
	ck_assert_uint_gt(st.pageins, 0);
	ck_assert_uint_eq(st.file_pageouts, 0);
	ck_assert_uint_eq(st.faults_error, 0);
	ck_assert_uint_le(st.resident_peak, BIG_BUDGET / T_PAGE + 64 + 256);
	ck_assert_int_eq(usrvm_unmap(vs, big, BIG_PAGES * T_PAGE), 0);
	st = t_drained();
	ck_assert_uint_eq(st.swap_slots_used, 0);
	t_stop();
	t_file_is(file_v, BIG_PAGES);
	t_file_done(fd);
	free(file_v);
}
END_TEST

/*
 * fork(2) of a private mapping: the child sees it as it is, written pages
 * (resident or swapped) and the file's, and its writes stay its own.
 */
START_TEST(fork_child_private)
{
	struct usrvm_space *twin;
	struct usrvm_loan *loan;
	uint64_t pv[1024], ndup;
	int fd, status;
	pid_t pid;
	char *p, *q, *r;

	t_start_budget((size_t)1 << 20, 0);
	fd = t_file(1024, 0, O_RDWR);
	p = t_pmap(usrvm_default_space(), 1024 * T_PAGE, RW, fd);
	for (size_t pg = 0; pg < 1024; pg++) {
		pv[pg] = pg % 3 == 0 ? 1 : 2 + pg % 5;
		if (pv[pg] != 1)
			t_page_write(p, pg, pv[pg]);
	}
	/* A space forked from this one reads pages resident in the view
	 * (they cannot move there: it copies them), and read-only pages
	 * lent leave write-protected duplicates at their addresses (the
	 * kernel moves no page out of a read-only entry).  The fork(2) child's memory is a copy of this process's:
	 * it has the same duplicates, and counts them. */
	for (size_t pg = 0; pg < 128; pg++)
		ck_assert(t_page_is(p, pg, pv[pg]));
	ck_assert_ptr_nonnull(twin = usrvm_fork(usrvm_default_space()));
	q = (char *)usrvm_space_base(twin) +
	    (p - (char *)usrvm_space_base(usrvm_default_space()));
	for (size_t pg = 0; pg < 128; pg++)
		ck_assert(t_page_is(q, pg, pv[pg]));
	r = t_map(usrvm_default_space(), 16 * T_PAGE);
	for (size_t pg = 0; pg < 16; pg++)
		t_page_write(r, pg, 5);
	ck_assert_int_eq(usrvm_protect(usrvm_default_space(), r,
	    16 * T_PAGE, USRVM_PROT_READ), 0);
	ck_assert_int_eq(usrvm_loan(usrvm_default_space(), r, 16 * T_PAGE,
	    &loan), 0);
	ck_assert_uint_gt(ndup = t_stats().pages_dup, 0);
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		struct usrvm_stats st;
		if (usrvm_stats(&st) != 0 || st.pages_dup != ndup)
			_exit(2);
		for (size_t pg = 0; pg < 16; pg++)
			if (!t_page_is(r, pg, 5))
				_exit(1);
		for (size_t pg = 0; pg < 1024; pg++)
			if (!t_page_is(p, pg, pv[pg]))
				_exit(1);
		t_page_write(p, 0, 9);	/* the child's own */
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(status == 0, "the fork child saw other contents, or "
	    "counted other duplicates (%#x)", status);
	ck_assert_int_eq(usrvm_unloan(loan), 0);
	ck_assert_int_eq(usrvm_space_destroy(twin), 0);
	for (size_t pg = 0; pg < 1024; pg++)
		ck_assert(t_page_is(p, pg, pv[pg]));
	for (size_t pg = 0; pg < 16; pg++)
		ck_assert(t_page_is(r, pg, 5));
	ck_assert_int_eq(usrvm_unmap(usrvm_default_space(), r,
	    16 * T_PAGE), 0);
	ck_assert_uint_eq(t_stats().pages_dup, 0);	/* gone with r */
	ck_assert_int_eq(usrvm_unmap(usrvm_default_space(), p,
	    1024 * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/* The end of a private_fork case: the view unmapped (the spaces forked
 * from it destroyed already), no anon is left, and no duplicate counted. */
static void
private_fork_done(struct usrvm_space *vs, char *p, size_t npages, int fd)
{
	struct usrvm_stats st;

	ck_assert_int_eq(usrvm_unmap(vs, p, npages * T_PAGE), 0);
	st = t_drained();
	ck_assert_uint_eq(st.pages_dup, 0);
	ck_assert_uint_eq(st.anons, 0);
	t_stop();
	t_file_done(fd);
}

/*
 * usrvm_fork of private mappings.  usrvm_fork copies one (COPY): the
 * child sees the private mapping as it is, then
 * each side's writes stay its own, and a page neither wrote shows the
 * file; it refuses SHARE of one (ENOTSUP) and leaves zeros as asked.
 * COPY of a shared mapping gives the child a private view: its writes
 * stay its own, the parent's show where it has not written.
 */
START_TEST(private_fork)
{
	struct usrvm_stats st;
	struct usrvm_space *vs, *child;
	uint64_t pv[1024];
	char *p, *s, *q;
	int fd;

	t_start_budget((size_t)1 << 20, 0);
	vs = usrvm_default_space();
	fd = t_file(1024, 0, O_RDWR);
	p = t_pmap(vs, 1024 * T_PAGE, RW, fd);
	for (size_t pg = 0; pg < 1024; pg++) {
		pv[pg] = pg % 3 == 0 ? 1 : 2 + pg % 5;
		if (pv[pg] != 1)
			t_page_write(p, pg, pv[pg]);
	}

	/* COPY of the private view, through the budget (2 MiB: half of
	 * it), every page checked on both sides after writes on both. */
	ck_assert_ptr_nonnull(child = usrvm_fork(vs));
	q = (char *)usrvm_space_base(child) +
	    (p - (char *)usrvm_space_base(vs));
	for (size_t pg = 0; pg < 1024; pg++)
		ck_assert(t_page_is(q, pg, pv[pg]));
	for (size_t pg = 0; pg < 1024; pg += 2)
		t_page_write(q, pg, 20);	/* the child's own */
	for (size_t pg = 1; pg < 1024; pg += 4)
		t_page_write(p, pg, 30);	/* the parent's own */
	for (size_t pg = 0; pg < 1024; pg++) {
		ck_assert(t_page_is(q, pg, pg % 2 == 0 ? 20 : pv[pg]));
		ck_assert(t_page_is(p, pg, pg % 4 == 1 ? 30 : pv[pg]));
	}
	st = t_stats();
	fprintf(stderr, "private_fork: %llu pages out, %llu in, %llu copied "
	    "on write or read, %llu moved between spaces, %llu unmovable, "
	    "%llu duplicates now, %llu granted over the budget\n",
	    (unsigned long long)st.pageouts, (unsigned long long)st.pageins,
	    (unsigned long long)st.faults_cow,
	    (unsigned long long)st.faults_cow_move,
	    (unsigned long long)st.pd_unmovable,
	    (unsigned long long)st.pages_dup,
	    (unsigned long long)st.pd_grace);
	/* The kernel moves no page out of a private view: the child's reads
	 * of the parent's pages copied them (anons of the child's own,
	 * paged through the budget), leaving no duplicate behind. */
	ck_assert_uint_gt(st.faults_cow, 0);
	ck_assert_uint_eq(st.faults_cow_move, 0);
	ck_assert_uint_eq(st.pages_dup, 0);
	ck_assert_int_eq(usrvm_space_destroy(child), 0);
	for (size_t pg = 0; pg < 1024; pg++)
		ck_assert(t_page_is(p, pg, pg % 4 == 1 ? 30 : pv[pg]));
	ck_assert_int_eq(usrvm_inherit(vs, p, 1024 * T_PAGE, USRVM_INH_SHARE),
	    0);
	ck_assert_ptr_null(usrvm_fork(vs));	/* SHARE of a private view */
	ck_assert_int_eq(errno, ENOTSUP);
	ck_assert_int_eq(usrvm_inherit(vs, p, 1024 * T_PAGE, USRVM_INH_ZERO),
	    0);
	s = t_fmap(vs, 64 * T_PAGE, RW, fd, 0);
	ck_assert_int_eq(usrvm_inherit(vs, s, 64 * T_PAGE, USRVM_INH_COPY),
	    0);
	t_page_write(s, 1, 3);
	ck_assert_ptr_nonnull(child = usrvm_fork(vs));
	q = (char *)usrvm_space_base(child) +
	    (p - (char *)usrvm_space_base(vs));
	ck_assert_uint_eq(((volatile uint64_t *)(q + 5 * T_PAGE))[0], 0);
	q = (char *)usrvm_space_base(child) +
	    (s - (char *)usrvm_space_base(vs));
	ck_assert(t_page_is(q, 1, 3));
	t_page_write(q, 2, 8);			/* the child's own */
	ck_assert(t_page_is(s, 2, 1));
	t_page_write(s, 4, 6);			/* unwritten in the child */
	ck_assert(t_page_is(q, 4, 6));
	t_page_write(s, 2, 4);			/* written in the child */
	ck_assert(t_page_is(q, 2, 8));
	ck_assert_int_eq(usrvm_space_destroy(child), 0);
	ck_assert_uint_eq(t_stats().faults_error, 0);
	ck_assert_int_eq(usrvm_unmap(vs, s, 64 * T_PAGE), 0);
	private_fork_done(vs, p, 1024, fd);
}
END_TEST

/*
 * The same under threads: a private view forked with usrvm_fork, two
 * threads in each space, through a budget smaller than the pages the
 * spaces share.  The lower half is never written after the fork: both
 * spaces read it at random; its shared pages cannot move from one
 * space's view to the other's (the kernel moves no page out of a private
 * view), so a read copies them, and the page daemon copies them out.
 * Each thread also writes and reads back a quarter of the upper half in
 * its own space.  Every read is checked; the daemon never finds itself
 * with nothing to free, and write-protected duplicates stay within one
 * per thread (a write's, until its copy is installed).
 */
#define PFT_PAGES	1024
#define PFT_THREADS	4
#define PFT_BUDGET	((size_t)1 << 20)

struct pft_arg {
	char *base;		/* the thread's space's view */
	unsigned id;
	uint64_t seed;
	long bad;
	atomic_bool *stop;
};

/* The fork's value of page pg: written before it (2 + pg % 5) or the
 * file's (1). */
static uint64_t
pft_old(size_t pg)
{
	return pg % 3 == 0 ? 1 : 2 + pg % 5;
}

static void *
pft_run(void *v)
{
	struct pft_arg *a = v;
	size_t half = PFT_PAGES / 2, q = half / PFT_THREADS;
	size_t own = half + a->id * q;
	uint64_t ver = 100;

	while (!atomic_load(a->stop)) {
		size_t pg = t_rand(&a->seed) % half;
		size_t mine = own + t_rand(&a->seed) % q;

		a->bad += !t_page_is(a->base, pg, pft_old(pg));
		t_page_write(a->base, mine, ver + mine);
		a->bad += !t_page_is(a->base, mine, ver + mine);
		ver += 1000;
	}
	return NULL;
}

START_TEST(private_fork_threads)
{
	struct pft_arg args[PFT_THREADS];
	pthread_t th[PFT_THREADS];
	struct usrvm_space *vs, *child;
	struct usrvm_stats st;
	atomic_bool stop = false;
	uint64_t dup_max = 0;
	char *p, *q;
	int fd;

	t_start_budget(PFT_BUDGET, 0);
	vs = usrvm_default_space();
	fd = t_file(PFT_PAGES, 0, O_RDWR);
	p = t_pmap(vs, PFT_PAGES * T_PAGE, RW, fd);
	for (size_t pg = 0; pg < PFT_PAGES; pg++)
		if (pft_old(pg) != 1)
			t_page_write(p, pg, pft_old(pg));
	ck_assert_ptr_nonnull(child = usrvm_fork(vs));
	q = (char *)usrvm_space_base(child) +
	    (p - (char *)usrvm_space_base(vs));
	for (unsigned i = 0; i < PFT_THREADS; i++) {
		args[i] = (struct pft_arg){ .base = i % 2 ? q : p,
		    .id = i, .seed = 77 + i, .stop = &stop };
		ck_assert_int_eq(pthread_create(&th[i], NULL, pft_run,
		    &args[i]), 0);
	}
	for (int k = 0; k < 150; k++) {		/* 1.5 s */
		usleep(10000);
		st = t_stats();
		if (st.pages_dup > dup_max)
			dup_max = st.pages_dup;
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < PFT_THREADS; i++) {
		struct timespec dl;

		/* A thread left waiting in a fault: the runtime's state,
		 * twice, a second apart (what still moves), then fail. */
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 60;
		if (pthread_timedjoin_np(th[i], NULL, &dl) != 0) {
			(void)usrvm_stats_print(STDERR_FILENO);
			sleep(1);
			(void)usrvm_stats_print(STDERR_FILENO);
			ck_abort_msg("thread %u still in a fault 60 s after "
			    "the others were told to stop", i);
		}
		ck_assert_int_eq(args[i].bad, 0);
	}
	st = t_stats();
	fprintf(stderr, "private_fork_threads: up to %llu duplicates, %llu "
	    "resident at most, %llu moved between spaces, %llu copied on "
	    "write, %llu pages out\n", (unsigned long long)dup_max,
	    (unsigned long long)st.resident_peak,
	    (unsigned long long)st.faults_cow_move,
	    (unsigned long long)st.faults_cow,
	    (unsigned long long)st.pageouts);
	ck_assert_uint_le(dup_max, PFT_THREADS);
	ck_assert_uint_eq(st.faults_error, 0);
	ck_assert_uint_eq(st.pd_grace, 0);
	ck_assert_uint_le(st.resident_peak, PFT_BUDGET / T_PAGE);
	ck_assert_int_eq(usrvm_space_destroy(child), 0);
	for (size_t pg = 0; pg < PFT_PAGES / 2; pg++)
		ck_assert(t_page_is(p, pg, pft_old(pg)));
	private_fork_done(vs, p, PFT_PAGES, fd);
}
END_TEST

/*
 * The application's own madvise(DONTNEED) of a private view while the
 * page daemon copies the same pages out (the kernel moves none out of a
 * private view: the daemon drops them with a MADV_DONTNEED of its own,
 * whose event the runtime must tell from the application's).  Two
 * threads write, drop and read pages of their halves through a small
 * budget; a dropped page must read as the file's again, every time.
 */
#define PMR_PAGES	512
#define PMR_THREADS	2

struct pmr_arg {
	char *base;
	size_t first;
	uint64_t seed;
	uint64_t ver[PMR_PAGES / PMR_THREADS];	/* 1: the file's */
	long bad, dropped;
	atomic_bool *stop;
};

static void *
pmr_run(void *v)
{
	struct pmr_arg *a = v;
	size_t n = PMR_PAGES / PMR_THREADS;
	uint64_t next = 1;

	for (size_t i = 0; i < n; i++)
		a->ver[i] = 1;
	while (!atomic_load(a->stop)) {
		size_t i = t_rand(&a->seed) % n, pg = a->first + i;

		if (a->ver[i] != 1 && t_rand(&a->seed) % 4 == 0) {
			if (madvise(a->base + pg * T_PAGE, T_PAGE,
			    MADV_DONTNEED) == 0) {
				a->ver[i] = 1;
				a->dropped++;
			}
		} else if (t_rand(&a->seed) % 2 == 0) {
			a->ver[i] = ++next;	/* never 1 again */
			t_page_write(a->base, pg, a->ver[i]);
		}
		a->bad += !t_page_is(a->base, pg, a->ver[i]);
	}
	return NULL;
}

START_TEST(private_madvise_pageout)
{
	struct pmr_arg args[PMR_THREADS];
	pthread_t th[PMR_THREADS];
	atomic_bool stop = false;
	struct usrvm_stats st;
	char *p;
	int fd;

	t_start_budget((size_t)1 << 20, 0);
	fd = t_file(PMR_PAGES, 0, O_RDWR);
	p = t_pmap(usrvm_default_space(), PMR_PAGES * T_PAGE, RW, fd);
	for (unsigned i = 0; i < PMR_THREADS; i++) {
		args[i] = (struct pmr_arg){ .base = p,
		    .first = i * (PMR_PAGES / PMR_THREADS), .seed = 5 + i,
		    .stop = &stop };
		ck_assert_int_eq(pthread_create(&th[i], NULL, pmr_run,
		    &args[i]), 0);
	}
	usleep(1500000);
	atomic_store(&stop, true);
	for (unsigned i = 0; i < PMR_THREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_msg(args[i].bad == 0, "thread %u: %ld reads wrong",
		    i, args[i].bad);
		ck_assert_int_gt(args[i].dropped, 0);
	}
	st = t_stats();
	ck_assert_uint_gt(st.pageouts, 0);	/* each copied out first */
	ck_assert_int_eq(usrvm_unmap(usrvm_default_space(), p,
	    PMR_PAGES * T_PAGE), 0);
	t_stop();
	t_file_done(fd);
}
END_TEST

/* Dirty pages reach the file within USRVM_DIRTY_AGE, unasked; and a
 * process that exits without usrvm_shutdown loses none. */
START_TEST(dirty_age_and_exit)
{
	struct usrvm_config cfg;
	uint64_t v[16];
	int fd, status, error;
	char *p;
	pid_t pid;

	ck_assert_int_eq(usrvm_config_load(&cfg), 0);
	cfg.dirty_age_ms = 100;
	if ((error = usrvm_init(&cfg)) == -EPERM || error == -ENOSYS)
		exit(T_EXIT_SKIP);
	ck_assert_int_eq(error, 0);
	fd = t_file(16, 0, O_RDWR);
	p = t_fmap(usrvm_default_space(), 16 * T_PAGE, RW, fd, 0);
	/* The flusher's first write fails: the pages stay dirty, and it
	 * writes them again on its own. */
	ck_assert_int_eq(usrvm_inject(USRVM_INJECT_FILE_WRITE, EIO, 1), 0);
	for (size_t pg = 0; pg < 16; pg++) {
		t_page_write(p, pg, 4);
		v[pg] = 4;
	}
	for (int i = 0; i < 250 && t_stats().file_pageouts < 16; i++)
		usleep(20000);
	ck_assert_uint_eq(t_stats().file_errors_write, 1);
	t_file_is(v, 16);
	usrvm_shutdown();
	close(fd);

	/* A child process maps, writes and exits. */
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		if (usrvm_init(NULL) != 0)
			_exit(2);
		fd = open(t_path, O_RDWR);
		p = usrvm_map(usrvm_default_space(), NULL, 16 * T_PAGE, RW,
		    USRVM_MAP_SHARED, fd, 0);
		if (p == NULL)
			_exit(3);
		for (size_t pg = 0; pg < 16; pg++)
			t_page_write(p, pg, 9);
		exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(status, 0);
	for (size_t pg = 0; pg < 16; pg++)
		v[pg] = 9;
	t_file_is(v, 16);
	unlink(t_path);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("vnode");

	t_require_uffd();
#define CASE(fn) t_case(s, #fn, fn, 120)
	CASE(read_write_sync);
	CASE(coherent);
	CASE(end_of_file);
	CASE(truncated);
	CASE(bad_input);
	CASE(larger_than_budget);
	CASE(read_ahead);
	CASE(read_ahead_adapts);
	CASE(views_threads);
	CASE(io_errors);
	t_case_forks(s, "fork_child", fork_child, 120);
	t_case_forks(s, "fork_child_private", fork_child_private, 120);
	CASE(usrvm_fork_shares);
	CASE(private_cow);
	CASE(private_larger_than_budget);
	CASE(private_fork);
	CASE(private_fork_threads);
	CASE(private_madvise_pageout);
	CASE(dirty_age_and_exit);
#undef CASE
	return t_run(s, 120);
}
