/*
 * test_swap.c: the memory budget, the page daemon and the swap device.
 *
 * Working sets several times the budget, several threads, every word of
 * every page checked against what was last written there (the expected
 * contents live in ordinary memory, outside the runtime); errors injected
 * into the swap I/O (usrvm_inject), showing that no written byte is lost
 * and that a failed read costs exactly the page it was for; commit
 * accounting refusing what cannot fit.
 *
 * USRVM_STRESS_SECONDS (default 3) bounds the randomized test; longer on
 * demand.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "helpers.h"

#define MIB		((size_t)1 << 20)
#define WORDS		(T_PAGE / sizeof(uint64_t))

/* A page's contents: every word derived from the page and its version. */
static inline uint64_t
sw_word(size_t page, uint64_t version, size_t w)
{
	return t_pattern(page * T_PAGE, version) + w * 0x100000001b3ull;
}

static void
sw_write(char *base, size_t page, uint64_t version)
{
	uint64_t *p = (uint64_t *)(base + page * T_PAGE);

	for (size_t w = 0; w < WORDS; w++)
		p[w] = sw_word(page, version, w);
}

/* => true if the page holds exactly version's contents */
static bool
sw_check(const char *base, size_t page, uint64_t version)
{
	const uint64_t *p = (const uint64_t *)(base + page * T_PAGE);

	for (size_t w = 0; w < WORDS; w++)
		if (p[w] != sw_word(page, version, w))
			return false;
	return true;
}

/* As sw_check, version 0 being a page never written (or dropped): zeros. */
static bool
sw_check_v(const char *base, size_t page, uint64_t version)
{
	const uint64_t *p = (const uint64_t *)(base + page * T_PAGE);

	if (version != 0)
		return sw_check(base, page, version);
	for (size_t w = 0; w < WORDS; w++)
		if (p[w] != 0)
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* 8x the budget, four threads                                         */
/* ------------------------------------------------------------------ */

struct sw_job {
	char *base;
	size_t npages;
	uint64_t *version;	/* per page; each thread owns page % 4 */
	unsigned id, nthreads;
	size_t bad;
	uint64_t seed;
};

static void *
sw_worker(void *arg)
{
	struct sw_job *j = arg;
	uint64_t rs = j->seed;

	/* Write every page of ours, then read them all back in order. */
	for (size_t p = j->id; p < j->npages; p += j->nthreads)
		sw_write(j->base, p, j->version[p] = 1);
	for (size_t p = j->id; p < j->npages; p += j->nthreads)
		j->bad += !sw_check(j->base, p, j->version[p]);
	/* Random: read (any page: the others' are stable now? no: only
	 * ours), verify, and rewrite one in four with a new version. */
	for (size_t i = 0; i < j->npages; i++) {
		size_t p = (t_rand(&rs) % (j->npages / j->nthreads)) *
		    j->nthreads + j->id;
		j->bad += !sw_check(j->base, p, j->version[p]);
		if (t_rand(&rs) % 4 == 0)
			sw_write(j->base, p, ++j->version[p]);
	}
	return NULL;
}

START_TEST(swap_8x_threads)
{
	size_t budget = 4 * MIB, ws = 8 * budget, npages = ws / T_PAGE;
	struct sw_job jobs[4];
	pthread_t th[4];
	uint64_t *version = calloc(npages, sizeof(*version));
	uint64_t seed = t_seed(0x5eed);
	struct usrvm_stats st;
	size_t bad = 0;
	char *base;

	t_start_budget(budget, 0);
	base = t_map(usrvm_default_space(), ws);
	for (unsigned i = 0; i < 4; i++) {
		jobs[i] = (struct sw_job){ .base = base, .npages = npages,
		    .version = version, .id = i, .nthreads = 4,
		    .seed = seed + i };
		pthread_create(&th[i], NULL, sw_worker, &jobs[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		bad += jobs[i].bad;
	}
	/* Everything again, one thread, in order. */
	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, version[p]);
	st = t_stats();
	ck_assert_msg(bad == 0, "%zu pages read back wrong", bad);
	ck_assert_uint_gt(st.pageouts, npages / 2);
	ck_assert_uint_gt(st.pageins, npages / 2);
	ck_assert_msg(st.resident_peak <= budget / T_PAGE + st.pd_grace,
	    "resident peak %llu pages over the budget of %zu",
	    (unsigned long long)st.resident_peak, budget / T_PAGE);
	ck_assert_uint_eq(st.pages_lost, 0);
	ck_assert_int_eq(usrvm_unmap(usrvm_default_space(), base, ws), 0);
	st = t_drained();
	ck_assert_uint_eq(st.swap_slots_used, 0);
	ck_assert_uint_eq(st.resident, 0);
	t_stop();
	free(version);
}
END_TEST

/* ------------------------------------------------------------------ */
/* fork(2): the child pages on its own                                 */
/* ------------------------------------------------------------------ */

/* In a fork child: no libcheck; a line on stderr and exit status 1. */
#define SW_CHILD_CHECK(c, ...) do {					\
	if (!(c)) {							\
		fprintf(stderr, "child: " __VA_ARGS__);			\
		fputc('\n', stderr);					\
		_exit(1);						\
	}								\
} while (0)

static void
sw_fork_child(char *base, size_t npages, size_t budget)
{
	struct usrvm_stats a, b;
	size_t bad = 0, more_len = budget / 2;
	char *more;

	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, 1);
	SW_CHILD_CHECK(bad == 0, "%zu pages differ from the parent's", bad);
	SW_CHILD_CHECK(usrvm_stats(&a) == 0, "usrvm_stats");
	/* Everything rewritten and read back: paged through the child's
	 * own budget, device and threads. */
	for (size_t p = 0; p < npages; p++)
		sw_write(base, p, 2);
	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, 2);
	SW_CHILD_CHECK(bad == 0, "%zu pages read back wrong", bad);
	more = usrvm_map(usrvm_default_space(), NULL, more_len,
	    USRVM_PROT_READ | USRVM_PROT_WRITE, USRVM_MAP_PRIVATE |
	    USRVM_MAP_ANON, -1, 0);
	SW_CHILD_CHECK(more != NULL, "usrvm_map: %s", strerror(errno));
	for (size_t p = 0; p < more_len / T_PAGE; p++)
		sw_write(more, p, 3);
	for (size_t p = 0; p < more_len / T_PAGE; p++)
		bad += !sw_check(more, p, 3);
	SW_CHILD_CHECK(bad == 0, "%zu new pages read back wrong", bad);
	SW_CHILD_CHECK(usrvm_stats(&b) == 0, "usrvm_stats");
	SW_CHILD_CHECK(b.pageouts - a.pageouts > npages / 2 &&
	    b.pageins - a.pageins > npages / 2, "%llu pages out, %llu in",
	    (unsigned long long)(b.pageouts - a.pageouts),
	    (unsigned long long)(b.pageins - a.pageins));
	SW_CHILD_CHECK(b.resident <= budget / T_PAGE + b.pd_grace,
	    "%llu pages resident, budget %zu",
	    (unsigned long long)b.resident, budget / T_PAGE);
	/* Every slot it refers to is its own, and goes with the memory. */
	SW_CHILD_CHECK(usrvm_unmap(usrvm_default_space(), base,
	    npages * T_PAGE) == 0 && usrvm_unmap(usrvm_default_space(), more,
	    more_len) == 0, "usrvm_unmap");
	for (int i = 0; i < 1000 && usrvm_stats(&b) == 0 &&
	    (b.swap_slots_used != 0 || b.resident != 0); i++)
		usleep(10000);
	SW_CHILD_CHECK(b.swap_slots_used == 0 && b.resident == 0,
	    "%llu slots used, %llu pages resident after unmapping all",
	    (unsigned long long)b.swap_slots_used,
	    (unsigned long long)b.resident);
	usrvm_shutdown();
	_exit(0);
}

/*
 * A process with seven eighths of its memory on swap or staged forks.
 * The child finds every page as it was, then pages on its own: rewrites
 * and reads everything back through its own budget and swap device,
 * maps more, and frees every slot when it unmaps; the parent rewrites its
 * copy meanwhile, and its slots are untouched by the child's.
 */
START_TEST(swap_fork_child)
{
	size_t budget = 4 * MIB, ws = 8 * budget, npages = ws / T_PAGE;
	struct usrvm_stats st;
	size_t bad = 0;
	int status;
	char *base;
	pid_t pid;

	t_start_budget(budget, 0);
	base = t_map(usrvm_default_space(), ws);
	for (size_t p = 0; p < npages; p++)
		sw_write(base, p, 1);
	st = t_stats();
	ck_assert_uint_gt(st.swap_slots_used, npages / 2);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		sw_fork_child(base, npages, budget);
	for (size_t p = npages; p-- > 0;)
		sw_write(base, p, 4);
	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, 4);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %#x", status);
	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, 4);
	ck_assert_msg(bad == 0, "%zu pages read back wrong", bad);
	ck_assert_int_eq(usrvm_unmap(usrvm_default_space(), base, ws), 0);
	st = t_drained();
	ck_assert_uint_eq(st.swap_slots_used, 0);
	ck_assert_uint_eq(st.resident, 0);
	t_stop();
}
END_TEST

/*
 * fork(2) of a busy process: while the forking thread holds every map
 * lock, other threads keep faulting and raising madvise events, and the
 * forking thread faults too (an atfork handler of the application's,
 * registered before the runtime's and so run after it, reads memory that
 * is out on swap: fb_prepare, registered in main).  A fault thread that waited for a map lock then would
 * leave the forking thread's fault unread: the process would hang.
 */
#define FB_THREADS	6
#define FB_FORKS	12

static struct {
	char *base;		/* FB_THREADS stripes, then the cold part */
	size_t stripe, cold;	/* pages */
	uint64_t *version;	/* per page of the stripes; 0: zeros */
	atomic_bool stop;
	atomic_ulong touched;	/* cold pages read by the atfork handler */
} fb;

static void
fb_prepare(void)
{
	const volatile char *cold;
	unsigned long sum = 0;

	if (fb.base == NULL)
		return;
	cold = fb.base + FB_THREADS * fb.stripe * T_PAGE;
	for (size_t p = 0; p < fb.cold; p += 7)
		sum += cold[p * T_PAGE];
	(void)sum;
	atomic_fetch_add(&fb.touched, 1);
}

static void *
fb_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	size_t first = t * fb.stripe, bad = 0;
	uint64_t rs = t + 1;

	while (!atomic_load(&fb.stop)) {
		size_t p = first + t_rand(&rs) % fb.stripe;
		char *page = fb.base + p * T_PAGE;

		bad += !sw_check_v(fb.base, p, fb.version[p]);
		if (t == 0 && fb.version[p] != 0) {
			/* The application's own madvise: an event, which must
			 * be applied before this thread's next fault there is
			 * served (it reads zeros, not what it wrote), fork or
			 * no fork; and reads of zeros, faults that need no
			 * memory, and so go on while the page daemon is paused
			 * for a fork. */
			if (madvise(page, T_PAGE, MADV_DONTNEED) == 0)
				fb.version[p] = 0;
		} else {
			sw_write(fb.base, p, ++fb.version[p]);
		}
	}
	return (void *)(uintptr_t)bad;
}

START_TEST(swap_fork_busy)
{
	size_t budget = 4 * MIB, npages;
	pthread_t th[FB_THREADS];
	size_t bad = 0;

	fb.stripe = 1024;		/* 4 MiB a thread */
	fb.cold = 1024;
	npages = FB_THREADS * fb.stripe + fb.cold;
	t_start_budget(budget, 0);
	fb.version = calloc(FB_THREADS * fb.stripe, sizeof(uint64_t));
	ck_assert_ptr_nonnull(fb.version);
	fb.base = t_map(usrvm_default_space(), npages * T_PAGE);
	for (size_t p = FB_THREADS * fb.stripe; p < npages; p++)
		sw_write(fb.base, p, 1);
	for (unsigned t = 0; t < FB_THREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, fb_thread,
		    (void *)(uintptr_t)t), 0);
	for (int k = 0; k < FB_FORKS; k++) {
		int status;
		pid_t pid;

		usleep(20000);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			/* The cold part is as written; the child pages (two
			 * stripes are twice its budget). */
			for (size_t p = FB_THREADS * fb.stripe; p < npages; p++)
				bad += !sw_check(fb.base, p, 1);
			SW_CHILD_CHECK(bad == 0, "%zu cold pages differ", bad);
			for (size_t p = 0; p < 2 * fb.stripe; p++)
				sw_write(fb.base, p, 7);
			for (size_t p = 0; p < 2 * fb.stripe; p++)
				bad += !sw_check(fb.base, p, 7);
			SW_CHILD_CHECK(bad == 0, "%zu pages read back wrong",
			    bad);
			_exit(0);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child %d status %#x", k, status);
	}
	atomic_store(&fb.stop, true);
	for (unsigned t = 0; t < FB_THREADS; t++) {
		void *r;
		ck_assert_int_eq(pthread_join(th[t], &r), 0);
		bad += (size_t)(uintptr_t)r;
	}
	ck_assert_msg(bad == 0, "%zu pages read wrong while forking", bad);
	for (size_t p = 0; p < FB_THREADS * fb.stripe; p++)
		bad += !sw_check_v(fb.base, p, fb.version[p]);
	ck_assert_msg(bad == 0, "%zu pages read back wrong", bad);
	ck_assert_uint_ge(atomic_load(&fb.touched), FB_FORKS);
	ck_assert_uint_gt(t_stats().events_remove, 0);
	fb.base = NULL;		/* fb_prepare: nothing to read any more */
	t_stop();
}
END_TEST

/* ------------------------------------------------------------------ */
/* sequential advice reads ahead                                       */
/* ------------------------------------------------------------------ */

START_TEST(swap_sequential_readahead)
{
	size_t budget = 4 * MIB, ws = 8 * budget, npages = ws / T_PAGE;
	struct usrvm_stats a, b;
	size_t bad = 0;
	char *base;

	t_start_budget(budget, 0);
	base = t_map(usrvm_default_space(), ws);
	ck_assert_int_eq(usrvm_advise(usrvm_default_space(), base, ws,
	    USRVM_ADV_SEQUENTIAL), 0);
	for (size_t p = 0; p < npages; p++)
		sw_write(base, p, 7);
	a = t_stats();
	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, 7);
	b = t_stats();
	ck_assert_msg(bad == 0, "%zu pages read back wrong", bad);
	ck_assert_uint_gt(b.pageins - a.pageins, npages / 2);
	/* Pages written together were evicted together to adjacent slots
	 * and come back many to a read. */
	ck_assert_msg((b.pageins - a.pageins) >= 8 * (b.swap_reads -
	    a.swap_reads), "%llu pages in %llu reads: no read-ahead",
	    (unsigned long long)(b.pageins - a.pageins),
	    (unsigned long long)(b.swap_reads - a.swap_reads));
	ck_assert_uint_gt(b.swap_write_max, 16);
	t_stop();
}
END_TEST

/*
 * Read-only memory pages out too: the kernel moves no page out of it, so
 * the daemon copies and drops (stage_copy).  Written, protected READ,
 * then read twice through a budget an eighth of it: every page intact,
 * and the stats show page-outs, not pages the daemon gave up on.
 */
START_TEST(swap_readonly)
{
	size_t budget = 2 * MIB, ws = 8 * budget, npages = ws / T_PAGE;
	struct usrvm_space *vs;
	struct usrvm_stats st;
	size_t bad = 0;
	char *base;

	t_start_budget(budget, 0);
	vs = usrvm_default_space();
	base = t_map(vs, ws);
	for (size_t p = 0; p < npages; p++)
		sw_write(base, p, 3);
	ck_assert_int_eq(usrvm_protect(vs, base, ws, USRVM_PROT_READ), 0);
	for (int round = 0; round < 2; round++)
		for (size_t p = 0; p < npages; p++)
			bad += !sw_check(base, p, 3);
	st = t_stats();
	ck_assert_msg(bad == 0, "%zu pages read back wrong", bad);
	ck_assert_uint_gt(st.pageins, npages);
	ck_assert_uint_eq(st.faults_error, 0);
	ck_assert_uint_le(st.resident_peak, budget / T_PAGE + 64 + 256);
	t_stop();
}
END_TEST

/* ------------------------------------------------------------------ */
/* randomized: sequence numbers, map/unmap churn                       */
/* ------------------------------------------------------------------ */

#define CH_REGIONS	8		/* per thread */
#define CH_THREADS	3

struct ch_region {
	char *base;
	size_t npages;
	uint64_t *seq;			/* per page; 0: never written */
};

struct ch_job {
	struct ch_region r[CH_REGIONS];
	uint64_t seed, deadline_ns, secs;
	size_t bad, ops;
};

static uint64_t
ch_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Go on?  Until the deadline, and then, up to twice as long again, until
 * some page has been faulted on while it was being written (a slow run,
 * under a sanitizer, may need longer to see one).
 */
static bool
ch_going(const struct ch_job *j)
{
	uint64_t secs = j->secs;
	uint64_t now = ch_now();
	struct usrvm_stats st;

	if (now < j->deadline_ns)
		return true;
	return now < j->deadline_ns + 2 * secs * 1000000000u &&
	    usrvm_stats(&st) == 0 && st.pageout_kept == 0;
}

/* A page never written reads as zeros; otherwise its last version. */
static bool
ch_check(const struct ch_region *r, size_t p)
{
	return sw_check_v(r->base, p, r->seq[p]);
}

static void
ch_map(struct ch_region *r, uint64_t *rs)
{
	r->npages = 64 + t_rand(rs) % 512;
	r->base = t_map(usrvm_default_space(), r->npages * T_PAGE);
	r->seq = calloc(r->npages, sizeof(*r->seq));
	/* Half the regions start written through, half start as zeros. */
	if (t_rand(rs) % 2 == 0)
		for (size_t p = 0; p < r->npages; p++)
			sw_write(r->base, p, r->seq[p] = 1);
}

static void
ch_unmap(struct ch_region *r)
{
	ck_assert_int_eq(usrvm_unmap(usrvm_default_space(), r->base,
	    r->npages * T_PAGE), 0);
	free(r->seq);
}

static void *
ch_worker(void *arg)
{
	struct ch_job *j = arg;
	uint64_t rs = j->seed;

	for (unsigned i = 0; i < CH_REGIONS; i++)
		ch_map(&j->r[i], &rs);
	while (ch_going(j)) {
		struct ch_region *r = &j->r[t_rand(&rs) % CH_REGIONS];
		unsigned op = (unsigned)(t_rand(&rs) % 100);
		size_t p = t_rand(&rs) % r->npages;

		j->ops++;
		if (op < 50) {
			j->bad += !ch_check(r, p);
		} else if (op < 98) {
			j->bad += !ch_check(r, p);	/* read before write */
			sw_write(r->base, p, ++r->seq[p]);
		} else {
			/* Every page checked, then the region replaced. */
			for (size_t q = 0; q < r->npages; q++)
				j->bad += !ch_check(r, q);
			ch_unmap(r);
			ch_map(r, &rs);
		}
	}
	for (unsigned i = 0; i < CH_REGIONS; i++) {
		for (size_t q = 0; q < j->r[i].npages; q++)
			j->bad += !ch_check(&j->r[i], q);
		ch_unmap(&j->r[i]);
	}
	return NULL;
}

START_TEST(swap_churn)
{
	const char *e = getenv("USRVM_STRESS_SECONDS");
	uint64_t secs = e != NULL ? strtoull(e, NULL, 10) : 3;
	uint64_t seed = t_seed(0xc0ffee);
	struct ch_job jobs[CH_THREADS];
	pthread_t th[CH_THREADS];
	struct usrvm_stats st;
	size_t bad = 0, ops = 0;

	/* About 3 x 8 x 320 pages = 30 MiB live: a budget of 4 MiB is 1/8
	 * (swap for the largest case, 3 x 8 x 576 pages, and the budget). */
	t_start_budget(4 * MIB, 64 * MIB);
	for (unsigned i = 0; i < CH_THREADS; i++) {
		jobs[i] = (struct ch_job){ .seed = seed * 31 + i,
		    .deadline_ns = ch_now() + secs * 1000000000u,
		    .secs = secs };
		pthread_create(&th[i], NULL, ch_worker, &jobs[i]);
	}
	for (unsigned i = 0; i < CH_THREADS; i++) {
		pthread_join(th[i], NULL);
		bad += jobs[i].bad;
		ops += jobs[i].ops;
	}
	st = t_drained();
	fprintf(stderr, "churn: %zu operations, %llu page-outs, %llu "
	    "page-ins, %llu pages faulted on while being written, peak %llu "
	    "pages\n", ops, (unsigned long long)st.pageouts,
	    (unsigned long long)st.pageins,
	    (unsigned long long)st.pageout_kept,
	    (unsigned long long)st.resident_peak);
	ck_assert_msg(bad == 0, "%zu reads returned the wrong contents", bad);
	ck_assert_uint_gt(st.pageouts, 0);
	/* Writes (and reads) raced page-outs, and lost nothing (above). */
	ck_assert_uint_gt(st.pageout_kept, 0);
	ck_assert_uint_gt(st.pageins, 0);
	ck_assert_uint_eq(st.swap_slots_used, 0);
	ck_assert_uint_eq(st.resident, 0);
	ck_assert_uint_eq(st.committed, 0);
	t_stop();
}
END_TEST

/* ------------------------------------------------------------------ */
/* injected errors                                                     */
/* ------------------------------------------------------------------ */

START_TEST(swap_write_errors)
{
	size_t budget = 2 * MIB, ws = 8 * budget, npages = ws / T_PAGE;
	struct usrvm_stats st;
	size_t bad = 0;
	char *base;

	t_start_budget(budget, 0);
	ck_assert_int_eq(usrvm_inject(USRVM_INJECT_SWAP_WRITE, EIO, 5), 0);
	base = t_map(usrvm_default_space(), ws);
	for (size_t p = 0; p < npages; p++)
		sw_write(base, p, 3);
	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, 3);
	st = t_stats();
	ck_assert_msg(bad == 0, "%zu pages lost to failed writes", bad);
	ck_assert_uint_eq(st.io_errors_write, 5);
	ck_assert_uint_gt(st.swap_slots_bad, 0);
	ck_assert_uint_eq(st.pages_lost, 0);
	t_stop();
}
END_TEST

static __thread sigjmp_buf sw_jmp;

static void
sw_sigbus(int sig)
{
	(void)sig;
	siglongjmp(sw_jmp, 1);
}

/* Read page p, catching SIGBUS.  => 1 page good, 0 wrong, -1 SIGBUS */
static int
sw_probe(const char *base, size_t p, uint64_t version)
{
	if (sigsetjmp(sw_jmp, 1) != 0)
		return -1;
	return sw_check(base, p, version) ? 1 : 0;
}

/*
 * The runtime with a budget of budget, a working set of ws with advice
 * adv, every page written (version 9), most of it out on swap, and
 * SIGBUS caught by sw_probe.  => its base.
 */
static char *
sw_swapped_set(size_t budget, size_t ws, int adv)
{
	struct sigaction sa = { .sa_handler = sw_sigbus };
	char *base;

	t_start_budget(budget, 0);
	base = t_map(usrvm_default_space(), ws);
	ck_assert_int_eq(usrvm_advise(usrvm_default_space(), base, ws, adv),
	    0);
	for (size_t p = 0; p < ws / T_PAGE; p++)
		sw_write(base, p, 9);
	sigaction(SIGBUS, &sa, NULL);
	return base;
}

START_TEST(swap_read_error)
{
	size_t budget = 2 * MIB, ws = 8 * budget, npages = ws / T_PAGE;
	size_t lost = 0, bad = 0, lostpage = SIZE_MAX;
	struct usrvm_stats st;
	char *base;

	/* Random advice: one page per read, so one failed read is one
	 * page. */
	base = sw_swapped_set(budget, ws, USRVM_ADV_RANDOM);
	ck_assert_int_eq(usrvm_inject(USRVM_INJECT_SWAP_READ, EIO, 1), 0);
	for (size_t p = 0; p < npages; p++) {
		int r = sw_probe(base, p, 9);
		if (r < 0) {
			lost++;
			lostpage = p;
		}
		bad += r == 0;
	}
	st = t_stats();
	ck_assert_msg(lost == 1 && bad == 0, "lost %zu pages, %zu wrong "
	    "(expected exactly one lost, none wrong)", lost, bad);
	ck_assert_uint_eq(st.pages_lost, 1);
	ck_assert_uint_eq(st.io_errors_read, 1);
	/* It stays lost; every other page is still right. */
	ck_assert_int_eq(sw_probe(base, lostpage, 9), -1);
	for (size_t p = 0; p < npages; p++)
		bad += p != lostpage && sw_probe(base, p, 9) != 1;
	ck_assert_uint_eq(bad, 0);
	signal(SIGBUS, SIG_DFL);
	t_stop();
}
END_TEST

/*
 * A read that fails while another thread waits for one of the pages it
 * was reading ahead: that thread is woken, faults again and reads its
 * page itself.  Each round starts two threads at once on two pages of
 * one swapped-out run; exactly the pages whose reads failed are lost.
 */
struct sw_racer {
	const char *base;
	size_t page;
	pthread_barrier_t *bar;
	int r;
};

static void *
sw_racer(void *arg)
{
	struct sw_racer *r = arg;

	pthread_barrier_wait(r->bar);
	r->r = sw_probe(r->base, r->page, 9);
	return NULL;
}

START_TEST(swap_read_error_readahead)
{
	size_t budget = 2 * MIB, ws = 8 * budget, npages = ws / T_PAGE;
	size_t lost = 0, bad = 0, rounds = 32;
	struct usrvm_stats st;
	pthread_barrier_t bar;
	char *base;

	base = sw_swapped_set(budget, ws, USRVM_ADV_SEQUENTIAL);
	pthread_barrier_init(&bar, NULL, 2);
	for (size_t k = 0; k < rounds; k++) {
		/* The first half of the set, written first: out on swap. */
		struct sw_racer r[2] = {
			{ base, k * (npages / 2 / rounds), &bar, 0 },
			{ base, k * (npages / 2 / rounds) + 2, &bar, 0 },
		};
		pthread_t t[2];
		ck_assert_int_eq(usrvm_inject(USRVM_INJECT_SWAP_READ, EIO, 1),
		    0);
		for (int i = 0; i < 2; i++)
			pthread_create(&t[i], NULL, sw_racer, &r[i]);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
	}
	pthread_barrier_destroy(&bar);
	/* Every page, once more: a lost one stays lost, no other is. */
	for (size_t p = 0; p < npages; p++) {
		int r = sw_probe(base, p, 9);
		lost += r < 0;
		bad += r == 0;
	}
	signal(SIGBUS, SIG_DFL);
	st = t_stats();
	ck_assert_msg(bad == 0, "%zu pages wrong", bad);
	ck_assert_uint_gt(lost, 0);
	ck_assert_uint_eq(st.pages_lost, lost);
	ck_assert_uint_eq(st.io_errors_read, lost);
	t_stop();
}
END_TEST

START_TEST(swap_full)
{
	size_t budget = 2 * MIB, ws = 4 * budget, npages = ws / T_PAGE;
	struct usrvm_stats st;
	size_t bad = 0;
	char *base;

	/* The device claims to be full for a while: pages stay resident,
	 * the daemon lets faults over the budget rather than hang them. */
	t_start_budget(budget, 0);
	ck_assert_int_eq(usrvm_inject(USRVM_INJECT_SWAP_FULL, ENOSPC,
	    1000000), 0);
	base = t_map(usrvm_default_space(), ws);
	for (size_t p = 0; p < npages; p++)
		sw_write(base, p, 5);
	st = t_stats();
	ck_assert_uint_gt(st.pd_swapfull, 0);
	ck_assert_uint_gt(st.pd_grace, 0);
	ck_assert_uint_eq(st.pageouts, 0);
	/* Room again: paging resumes, nothing was lost. */
	ck_assert_int_eq(usrvm_inject(USRVM_INJECT_SWAP_FULL, ENOSPC, 0), 0);
	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, 5);
	for (size_t p = 0; p < npages; p++)
		sw_write(base, p, 6);
	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, 6);
	st = t_stats();
	ck_assert_uint_eq(bad, 0);
	ck_assert_uint_gt(st.pageouts, 0);
	t_stop();
}
END_TEST

/* ------------------------------------------------------------------ */
/* commit accounting and configuration                                 */
/* ------------------------------------------------------------------ */

START_TEST(swap_commit)
{
	struct usrvm_space *vs;
	struct usrvm_stats st;
	void *a, *b;

	/* 4 MiB of budget + 4 MiB of swap (one slot is never used). */
	t_start_budget(4 * MIB, 4 * MIB);
	vs = usrvm_default_space();
	st = t_stats();
	ck_assert_uint_eq(st.commit_limit, 2 * 1024 - 1);
	errno = 0;
	ck_assert_ptr_null(usrvm_map(vs, NULL, 8 * MIB, USRVM_PROT_ALL,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0));
	ck_assert_int_eq(errno, ENOMEM);
	a = t_map(vs, 6 * MIB);
	errno = 0;
	ck_assert_ptr_null(usrvm_map(vs, NULL, 2 * MIB, USRVM_PROT_ALL,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0));
	ck_assert_int_eq(errno, ENOMEM);
	b = t_map(vs, 2 * MIB - T_PAGE);
	/* What was committed can be used: every page, with swap. */
	for (size_t p = 0; p < 6 * MIB / T_PAGE; p++)
		sw_write(a, p, 1);
	for (size_t p = 0; p < (2 * MIB - T_PAGE) / T_PAGE; p++)
		sw_write(b, p, 2);
	for (size_t p = 0; p < 6 * MIB / T_PAGE; p++)
		ck_assert(sw_check(a, p, 1));
	ck_assert_int_eq(usrvm_unmap(vs, a, 6 * MIB), 0);
	st = t_stats();
	ck_assert_uint_eq(st.committed, (2 * MIB - T_PAGE) / T_PAGE);
	a = t_map(vs, 4 * MIB);
	ck_assert_int_eq(usrvm_unmap(vs, a, 2 * MIB), 0);	/* half */
	st = t_stats();
	ck_assert_uint_eq(st.committed, (4 * MIB - T_PAGE) / T_PAGE);
	t_stop();
}
END_TEST

/*
 * The fault trace (USRVM_TRACE, lib/trace.h) the policy's replay tests
 * are recorded with: one word per fault that brought a page in or back,
 * as many of each kind as the counters say, written when the runtime
 * stops.
 */
START_TEST(swap_trace)
{
	size_t budget = 2 * MIB, npages = 4 * budget / T_PAGE;
	char path[] = "/tmp/usrvm-trace.XXXXXX";
	uint64_t kinds[4] = { 0 }, w;
	struct usrvm_config cfg;
	struct usrvm_stats st;
	size_t bad = 0;
	char *base;
	FILE *f;
	int fd;

	ck_assert_int_ge(fd = mkstemp(path), 0);
	close(fd);
	ck_assert_int_eq(usrvm_config_load(&cfg), 0);
	cfg.mem_limit = budget;
	cfg.trace_path = path;
	ck_assert_int_eq(usrvm_init(&cfg), 0);
	base = t_map(usrvm_default_space(), npages * T_PAGE);
	for (size_t p = 0; p < npages; p++)
		sw_write(base, p, 1);
	for (size_t p = 0; p < npages; p++)
		bad += !sw_check(base, p, 1);
	/* A hot eighth (half the budget) among a stream of the rest: the
	 * daemon takes hot pages away, and they are taken back. */
	for (size_t i = 0, cold = npages / 8; i < 20000; i++) {
		size_t p = i % 4 == 3 ? cold++ : (i * 2654435761u) % (npages / 8);
		if (cold == npages)
			cold = npages / 8;
		bad += !sw_check(base, p, 1);
	}
	ck_assert_uint_eq(bad, 0);
	st = t_stats();
	t_stop();

	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	while (fread(&w, sizeof(w), 1, f) == 1) {
		ck_assert_uint_ne(w & 3, 0);
		ck_assert_uint_ge(w >> 2, (uintptr_t)base / T_PAGE);
		ck_assert_uint_lt(w >> 2, (uintptr_t)base / T_PAGE + npages);
		kinds[w & 3]++;
	}
	fclose(f);
	unlink(path);
	fprintf(stderr, "trace: %llu zero fill, %llu read in, %llu taken "
	    "back\n", (unsigned long long)kinds[1],
	    (unsigned long long)kinds[2], (unsigned long long)kinds[3]);
	ck_assert_uint_eq(kinds[1], st.faults_zero);		/* ZERO */
	ck_assert_uint_gt(kinds[2], 0);				/* IN */
	ck_assert_uint_gt(kinds[3], 0);				/* BACK */
	ck_assert_uint_eq(kinds[3], st.pd_reactivations);
	ck_assert_uint_le(kinds[2] + kinds[3], st.faults_upper);
}
END_TEST

START_TEST(swap_config)
{
	struct usrvm_config cfg;

	setenv("USRVM_MEM", "lots", 1);
	ck_assert_int_eq(usrvm_config_load(&cfg), -EINVAL);
	setenv("USRVM_MEM", "100K", 1);
	ck_assert_int_eq(usrvm_config_load(&cfg), -EINVAL);
	setenv("USRVM_MEM", "64M", 1);
	setenv("USRVM_SWAP_SIZE", "1Q", 1);
	ck_assert_int_eq(usrvm_config_load(&cfg), -EINVAL);
	unsetenv("USRVM_SWAP_SIZE");
	setenv("USRVM_SWAP", "", 1);
	ck_assert_int_eq(usrvm_config_load(&cfg), -EINVAL);
	setenv("USRVM_SWAP", "/nonexistent/usrvm/swap", 1);
	ck_assert_int_eq(usrvm_config_load(&cfg), 0);
	ck_assert_uint_eq(cfg.mem_limit, 64 * MIB);
	ck_assert_int_eq(usrvm_init(&cfg), -ENOENT);
	unsetenv("USRVM_SWAP");
	unsetenv("USRVM_MEM");
	cfg.swap_path = NULL;
	cfg.mem_limit = 100;
	ck_assert_int_eq(usrvm_init(&cfg), -EINVAL);
}
END_TEST

int
main(void)
{
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "8x", swap_8x_threads },
		{ "readahead", swap_sequential_readahead },
		{ "churn", swap_churn },
		{ "write_errors", swap_write_errors },
		{ "read_error", swap_read_error },
		{ "read_error_readahead", swap_read_error_readahead },
		{ "full", swap_full },
		{ "readonly", swap_readonly },
		{ "commit", swap_commit },
		{ "config", swap_config },
		{ "trace", swap_trace },
	};
	Suite *s = suite_create("swap");

	/* Before the runtime's handlers (t_require_uffd): run after them. */
	if (pthread_atfork(fb_prepare, NULL, NULL) != 0)
		return 1;
	t_require_uffd();
	/* One case each: CK_RUN_CASE=churn runs one. */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 240);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	t_case_forks(s, "fork_child", swap_fork_child, 240);
	t_case_forks(s, "fork_busy", swap_fork_busy, 240);
	return t_run(s, 240);
}
