/*
 * test_cow.c: usrvm_fork and copy-on-write between spaces, with the real
 * kernel in the loop and a budget far below what the spaces hold, so
 * that shared pages are evicted, swapped and read back while shared.
 *
 * The "model" case is a randomized test: a tree of forks (any space may
 * be forked, any may be destroyed), random writes, reads, unmaps, maps,
 * DONTNEED, protection (read-only runs are not written) and inheritance
 * changes in every space, over private memory and shared anonymous
 * memory (whose pages are cells every space sharing them sees; private
 * memory given SHARE becomes such cells at the next fork); after every step
 * every byte of every mapped page of every space is checked against a
 * per-page model (a page is unmapped, zeros, or filled from a 64-bit
 * value), and in the end, with every space destroyed, no anon, resident
 * page or swap slot may be left.  USRVM_TEST_SEED=n replays a seed,
 * USRVM_TEST_STEPS=n changes the number of steps.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define MIB		((size_t)1 << 20)
#define WORDS		(T_PAGE / sizeof(uint64_t))
#define MIN(a, b)	((a) < (b) ? (a) : (b))

/* Fill a page from v (0: zeros). */
static void
fill(void *page, uint64_t v)
{
	uint64_t *w = page;

	for (size_t i = 0; i < WORDS; i++)
		w[i] = v == 0 ? 0 : v ^ (i * 0x100000001b3ull);
}

/* Does the page hold what fill(page, v) wrote?  Index of the first bad
 * word, or -1. */
static long
check(const void *page, uint64_t v)
{
	const uint64_t *w = page;

	for (size_t i = 0; i < WORDS; i++)
		if (w[i] != (v == 0 ? 0 : v ^ (i * 0x100000001b3ull)))
			return (long)i;
	return -1;
}

/* A space with n pages of private memory filled from tag + i; *basep. */
static struct usrvm_space *
filled_space(size_t n, uint64_t tag, char **basep)
{
	struct usrvm_space *vs = usrvm_space_create(64 * MIB);
	char *b;

	ck_assert_ptr_nonnull(vs);
	b = usrvm_map(vs, NULL, n * T_PAGE, USRVM_PROT_ALL,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0);
	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < n; i++)
		fill(b + i * T_PAGE, tag + i);
	*basep = b;
	return vs;
}

static char *
at(struct usrvm_space *vs, size_t off)
{
	return (char *)usrvm_space_base(vs) + off;
}

/* ------------------------------------------------------------------ */
/* scripted cases                                                      */
/* ------------------------------------------------------------------ */

/* Both sides see the contents of the moment; writes stay on their side. */
START_TEST(cow_basic)
{
	enum { N = 64 };
	struct usrvm_space *p, *c;
	struct usrvm_stats st;
	char *pb, *cb;

	t_start_budget(4 * MIB, 16 * MIB);
	p = filled_space(N, 1000, &pb);

	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	ck_assert_ptr_ne(c, p);
	cb = at(c, (size_t)(pb - at(p, 0)));
	for (size_t i = 0; i < N; i++)
		ck_assert_int_eq(check(cb + i * T_PAGE, 1000 + i), -1);

	/* The parent writes the even pages, the child the odd ones. */
	for (size_t i = 0; i < N; i += 2)
		fill(pb + i * T_PAGE, 2000 + i);
	for (size_t i = 1; i < N; i += 2)
		fill(cb + i * T_PAGE, 3000 + i);
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(check(pb + i * T_PAGE,
		    i % 2 == 0 ? 2000 + i : 1000 + i), -1);
		ck_assert_int_eq(check(cb + i * T_PAGE,
		    i % 2 == 1 ? 3000 + i : 1000 + i), -1);
	}
	st = t_stats();
	ck_assert_uint_eq(st.forks, 1);
	ck_assert_uint_ge(st.amap_copies, 1);
	ck_assert_uint_ge(st.faults_cow, N);

	/* The parent goes; the child keeps every page. */
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	for (size_t i = 0; i < N; i++)
		ck_assert_int_eq(check(cb + i * T_PAGE,
		    i % 2 == 1 ? 3000 + i : 1000 + i), -1);
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	st = t_drained();
	ck_assert_uint_eq(st.anons, 0);
	ck_assert_uint_eq(st.resident, 0);
	t_stop();
}
END_TEST

/* NONE leaves a hole, ZERO zero-fill memory. */
START_TEST(cow_inherit)
{
	enum { N = 16 };
	struct usrvm_space *p, *c;
	char *pb, *cb;
	size_t off;

	t_start_budget(4 * MIB, 16 * MIB);
	p = filled_space(3 * N, 7, &pb);
	ck_assert_int_eq(usrvm_inherit(p, pb + N * T_PAGE, N * T_PAGE,
	    USRVM_INH_NONE), 0);
	ck_assert_int_eq(usrvm_inherit(p, pb + 2 * N * T_PAGE, N * T_PAGE,
	    USRVM_INH_ZERO), 0);

	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	off = (size_t)(pb - at(p, 0));
	cb = at(c, off);
	for (size_t i = 0; i < N; i++)
		ck_assert_int_eq(check(cb + i * T_PAGE, 7 + i), -1);
	/* A hole: advice on it fails as on any unmapped range. */
	ck_assert_int_eq(usrvm_advise(c, cb + N * T_PAGE, N * T_PAGE,
	    USRVM_ADV_WILLNEED), -ENOMEM);
	for (size_t i = 2 * N; i < 3 * N; i++)
		ck_assert_int_eq(check(cb + i * T_PAGE, 0), -1);
	/* The hole can be mapped again, at its offset. */
	ck_assert_ptr_eq(usrvm_map(c, cb + N * T_PAGE, N * T_PAGE,
	    USRVM_PROT_ALL, USRVM_MAP_PRIVATE | USRVM_MAP_ANON |
	    USRVM_MAP_FIXED, -1, 0), cb + N * T_PAGE);
	ck_assert_int_eq(check(cb + N * T_PAGE, 0), -1);

	errno = 0;
	ck_assert_ptr_null(usrvm_fork(NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	t_stop();
}
END_TEST

/*
 * SHARE of private memory: it becomes shared anonymous memory with the
 * same bytes, whether they were resident, in a frame, on swap alone or
 * on swap and shared with a third space (copy-on-write); from then on
 * each side sees the other's writes, and the third keeps its own.  At
 * the end no swap slot is left.
 */
START_TEST(cow_share_private)
{
	enum { N = 2048 };		/* 8 MiB through a 2 MiB budget */
	struct usrvm_space *p, *c, *t;
	struct usrvm_stats st;
	char *pb, *cb, *tb;
	size_t off;

	t_start_budget(2 * MIB, 64 * MIB);
	p = filled_space(N, 100, &pb);
	off = (size_t)(pb - at(p, 0));
	/* A third space shares the first quarter copy-on-write. */
	ck_assert_int_eq(usrvm_inherit(p, pb + N / 4 * T_PAGE,
	    (N - N / 4) * T_PAGE, USRVM_INH_NONE), 0);
	ck_assert_ptr_nonnull(t = usrvm_fork(p));
	tb = at(t, off);
	ck_assert_int_eq(usrvm_inherit(p, pb, N * T_PAGE, USRVM_INH_SHARE),
	    0);
	/* Most pages are out on swap by now; touch a few back in. */
	for (size_t i = 0; i < N; i += 7)
		ck_assert_int_eq(check(pb + i * T_PAGE, 100 + i), -1);
	ck_assert_uint_gt(t_stats().pageouts, 0);

	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	cb = at(c, off);
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(check(cb + i * T_PAGE, 100 + i), -1);
		ck_assert_int_eq(check(pb + i * T_PAGE, 100 + i), -1);
	}
	for (size_t i = 0; i < N; i += 3)
		fill(pb + i * T_PAGE, 5000 + i);
	for (size_t i = 1; i < N; i += 3)
		fill(cb + i * T_PAGE, 9000 + i);
	for (size_t i = 0; i < N; i++) {
		uint64_t v = i % 3 == 0 ? 5000 + i : i % 3 == 1 ? 9000 + i :
		    100 + i;
		ck_assert_int_eq(check(pb + i * T_PAGE, v), -1);
		ck_assert_int_eq(check(cb + i * T_PAGE, v), -1);
		if (i < N / 4)
			ck_assert_int_eq(check(tb + i * T_PAGE, 100 + i), -1);
	}
	/* The child goes: the parent keeps the memory, still right. */
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	for (size_t i = 0; i < N; i += 5)
		ck_assert_int_eq(check(pb + i * T_PAGE, i % 3 == 0 ? 5000 + i :
		    i % 3 == 1 ? 9000 + i : 100 + i), -1);
	ck_assert_int_eq(usrvm_space_destroy(t), 0);
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	st = t_drained();
	ck_assert_uint_eq(st.swap_slots_used, 0);
	ck_assert_uint_eq(st.aobjs, 0);
	ck_assert_uint_eq(st.anons, 0);
	ck_assert_uint_eq(st.faults_error, 0);
	t_stop();
}
END_TEST

/* Without a budget there are no frames to stage shared pages in. */
START_TEST(cow_no_budget)
{
	struct usrvm_space *p;

	t_start();
	ck_assert_ptr_nonnull(p = usrvm_space_create(64 * MIB));
	errno = 0;
	ck_assert_ptr_null(usrvm_fork(p));
	ck_assert_int_eq(errno, ENOTSUP);
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	t_stop();
}
END_TEST

/*
 * Memory mapped just after private memory that has an amap joins its
 * entry, whose amap grows (amap_extend), unless the amap is shared with a
 * fork: then it is an entry of its own.  Under a budget smaller than the
 * two parts together, so that the grown entry's pages go to swap and
 * come back.
 */
START_TEST(cow_extend)
{
	enum { N = 768 };	/* pages per part: 3 MiB */
	struct usrvm_space *p, *c;
	char *pb, *cb, *more;

	t_start_budget(4 * MIB, 32 * MIB);
	p = filled_space(N, 1000, &pb);
	ck_assert_uint_eq(t_stats().map_entries, 1);
	more = usrvm_map(p, pb + N * T_PAGE, N * T_PAGE, USRVM_PROT_ALL,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON | USRVM_MAP_FIXED, -1, 0);
	ck_assert_ptr_eq(more, pb + N * T_PAGE);
	ck_assert_uint_eq(t_stats().map_entries, 1);	/* grown */
	for (size_t i = 0; i < N; i++)
		fill(more + i * T_PAGE, 2000 + i);
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(check(pb + i * T_PAGE, 1000 + i), -1);
		ck_assert_int_eq(check(more + i * T_PAGE, 2000 + i), -1);
	}
	ck_assert_uint_gt(t_stats().pageouts, 0);

	/* Shared with a child, the amap cannot grow. */
	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	cb = at(c, (size_t)(pb - at(p, 0)));
	more = usrvm_map(p, pb + 2 * N * T_PAGE, N * T_PAGE, USRVM_PROT_ALL,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON | USRVM_MAP_FIXED, -1, 0);
	ck_assert_ptr_eq(more, pb + 2 * N * T_PAGE);
	ck_assert_uint_eq(t_stats().map_entries, 3);
	for (size_t i = 0; i < N; i++) {
		fill(more + i * T_PAGE, 3000 + i);
		fill(pb + i * T_PAGE, 4000 + i);
	}
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(check(pb + i * T_PAGE, 4000 + i), -1);
		ck_assert_int_eq(check(pb + (N + i) * T_PAGE, 2000 + i), -1);
		ck_assert_int_eq(check(more + i * T_PAGE, 3000 + i), -1);
		ck_assert_int_eq(check(cb + i * T_PAGE, 1000 + i), -1);
		ck_assert_int_eq(check(cb + (N + i) * T_PAGE, 2000 + i), -1);
	}
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	ck_assert_uint_eq(t_drained().swap_slots_used, 0);
	t_stop();
}
END_TEST

/* DONTNEED in one space gives it zeros and leaves the other's bytes. */
START_TEST(cow_dontneed)
{
	enum { N = 32 };
	struct usrvm_space *p, *c;
	char *pb, *cb;

	t_start_budget(4 * MIB, 16 * MIB);
	p = filled_space(N, 50, &pb);
	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	cb = at(c, (size_t)(pb - at(p, 0)));
	/* The child reads half first: those pages now live at its side. */
	for (size_t i = 0; i < N / 2; i++)
		ck_assert_int_eq(check(cb + i * T_PAGE, 50 + i), -1);
	ck_assert_int_eq(usrvm_advise(p, pb + T_PAGE * 4, T_PAGE * (N - 8),
	    USRVM_ADV_DONTNEED), 0);
	for (size_t i = 0; i < N; i++) {
		bool gone = i >= 4 && i < N - 4;
		ck_assert_int_eq(check(pb + i * T_PAGE, gone ? 0 : 50 + i), -1);
		ck_assert_int_eq(check(cb + i * T_PAGE, 50 + i), -1);
	}
	ck_assert_int_eq(usrvm_advise(c, cb, T_PAGE * N,
	    USRVM_ADV_DONTNEED), 0);
	for (size_t i = 0; i < N; i++) {
		bool gone = i >= 4 && i < N - 4;
		ck_assert_int_eq(check(cb + i * T_PAGE, 0), -1);
		ck_assert_int_eq(check(pb + i * T_PAGE, gone ? 0 : 50 + i), -1);
	}
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	t_stop();
}
END_TEST

/* ------------------------------------------------------------------ */
/* threads in parent and child at once                                 */
/* ------------------------------------------------------------------ */

#define TH_PAGES	1024		/* 4 MiB per space, budget 2 MiB */
#define TH_THREADS	4		/* two per space */

struct th_arg {
	char *base;
	unsigned stripe;		/* writes pages p < TH_PAGES / 2 with
					   p % 2 == stripe */
	uint64_t tag, seed;
	long bad;
};

/* Write our stripe of the first half three times; between pages, read
 * a random page of the second half, which nobody writes after the fork. */
static void *
th_run(void *v)
{
	struct th_arg *a = v;

	for (uint64_t round = 0; round < 3; round++) {
		for (size_t p = a->stripe; p < TH_PAGES / 2; p += 2) {
			size_t q = TH_PAGES / 2 + t_rand(&a->seed) %
			    (TH_PAGES / 2);
			if (check(a->base + q * T_PAGE, 1 + q) != -1)
				a->bad++;
			fill(a->base + p * T_PAGE, a->tag + p + round);
		}
	}
	return NULL;
}

START_TEST(cow_threads)
{
	struct usrvm_space *p, *c;
	struct th_arg args[TH_THREADS];
	pthread_t th[TH_THREADS];
	char *pb, *cb;

	t_start_budget(2 * MIB, 16 * MIB);
	p = filled_space(TH_PAGES, 1, &pb);
	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	cb = at(c, (size_t)(pb - at(p, 0)));

	for (unsigned i = 0; i < TH_THREADS; i++) {
		args[i] = (struct th_arg){
			.base = i < 2 ? pb : cb, .stripe = i % 2,
			.tag = i < 2 ? 100000 : 200000, .seed = 1 + i,
		};
		ck_assert_int_eq(pthread_create(&th[i], NULL, th_run,
		    &args[i]), 0);
	}
	for (unsigned i = 0; i < TH_THREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].bad, 0);
	}
	for (size_t q = 0; q < TH_PAGES / 2; q++) {
		ck_assert_int_eq(check(pb + q * T_PAGE, 100000 + q + 2), -1);
		ck_assert_int_eq(check(cb + q * T_PAGE, 200000 + q + 2), -1);
	}
	for (size_t q = TH_PAGES / 2; q < TH_PAGES; q++) {
		ck_assert_int_eq(check(pb + q * T_PAGE, 1 + q), -1);
		ck_assert_int_eq(check(cb + q * T_PAGE, 1 + q), -1);
	}
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	t_stop();
}
END_TEST

/* Many threads reading the same shared pages from two spaces at once:
 * the pages travel between the spaces; every read must see them. */
struct rd_arg {
	char *base;
	uint64_t seed;
	long bad;
};

static void *
rd_run(void *v)
{
	struct rd_arg *a = v;

	for (int i = 0; i < 20000; i++) {
		size_t q = t_rand(&a->seed) % 64;
		if (check(a->base + q * T_PAGE, 1 + q) != -1)
			a->bad++;
	}
	return NULL;
}

START_TEST(cow_readers)
{
	struct usrvm_space *p, *c;
	struct rd_arg args[4];
	pthread_t th[4];
	char *pb, *cb;

	t_start_budget(2 * MIB, 16 * MIB);
	p = filled_space(64, 1, &pb);
	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	cb = at(c, (size_t)(pb - at(p, 0)));
	for (unsigned i = 0; i < 4; i++) {
		args[i] = (struct rd_arg){ .base = i % 2 ? cb : pb,
		    .seed = 77 + i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, rd_run,
		    &args[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].bad, 0);
	}
	ck_assert_uint_gt(t_stats().faults_cow_move, 0);
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	t_stop();
}
END_TEST

/* ------------------------------------------------------------------ */
/* the model                                                           */
/* ------------------------------------------------------------------ */

#define M_SPACES	8
#define M_REGIONS	4
#define M_SHARED	(M_REGIONS - 1)		/* mapped shared there */
#define M_RPAGES	64			/* pages per region */
#define M_PAGES		(M_REGIONS * M_RPAGES)
#define M_STRIDE	((size_t)4 * MIB)	/* region r at r * stride */
#define M_UNMAPPED	UINT64_MAX
#define M_MAXCELLS	(64 * 1024)

struct mspace {
	struct usrvm_space *vs;		/* NULL: slot free */
	uint64_t val[M_PAGES];		/* M_UNMAPPED, 0 (zeros) or a value */
	int32_t cell[M_PAGES];		/* shared: its value is m_cells[cell];
					   private: -1 */
	uint8_t inh[M_PAGES];
	uint8_t prot[M_PAGES];		/* USRVM_PROT_READ or _ALL */
};

static struct mspace ms[M_SPACES];
static uint64_t m_cells[M_MAXCELLS];	/* pages of shared memory */
static int32_t m_ncells;
static uint64_t m_rng, m_next = 1;
static unsigned long m_step;
static char m_last[128];

/* What page p of s holds (M_UNMAPPED: nothing). */
static uint64_t
m_val(const struct mspace *s, size_t p)
{
	if (s->val[p] == M_UNMAPPED || s->cell[p] < 0)
		return s->val[p];
	return m_cells[s->cell[p]];
}

static char *
m_addr(const struct mspace *s, size_t p)
{
	return at(s->vs, (p / M_RPAGES) * M_STRIDE + (p % M_RPAGES) * T_PAGE);
}

static size_t
m_rnd(size_t n)
{
	return (size_t)(t_rand(&m_rng) % n);
}

/* A random live space, or -1. */
static int
m_pick(void)
{
	int live[M_SPACES], n = 0;

	for (int i = 0; i < M_SPACES; i++)
		if (ms[i].vs != NULL)
			live[n++] = i;
	return n == 0 ? -1 : live[m_rnd((size_t)n)];
}

static void
m_check_all(void)
{
	for (int i = 0; i < M_SPACES; i++) {
		if (ms[i].vs == NULL)
			continue;
		for (size_t p = 0; p < M_PAGES; p++) {
			uint64_t v = m_val(&ms[i], p);
			long w;
			if (v == M_UNMAPPED)
				continue;
			if ((w = check(m_addr(&ms[i], p), v)) != -1)
				ck_abort_msg("step %lu (%s): space %d page %zu "
				    "word %ld: %#llx, expected value %#llx",
				    m_step, m_last, i, p, w,
				    (unsigned long long)((uint64_t *)m_addr(
				    &ms[i], p))[w], (unsigned long long)v);
		}
	}
}

/* A random run of pages inside one region: [*p, *p + *n). */
static void
m_range(size_t *p, size_t *n)
{
	size_t r = m_rnd(M_REGIONS), a = m_rnd(M_RPAGES), b = m_rnd(M_RPAGES);

	if (a > b) {
		size_t t = a;
		a = b;
		b = t;
	}
	*p = r * M_RPAGES + a;
	*n = b - a + 1;
}

/*
 * Map [p, p + n) of s at its place: shared anonymous memory in region
 * M_SHARED (new cells, zeros), private memory elsewhere.
 */
static void
m_map(struct mspace *s, size_t p, size_t n)
{
	bool shared = p / M_RPAGES == M_SHARED;

	ck_assert_ptr_eq(usrvm_map(s->vs, m_addr(s, p), n * T_PAGE,
	    USRVM_PROT_ALL, (shared ? USRVM_MAP_SHARED : USRVM_MAP_PRIVATE) |
	    USRVM_MAP_ANON | USRVM_MAP_FIXED, -1, 0), m_addr(s, p));
	for (size_t k = p; k < p + n; k++) {
		s->val[k] = 0;
		s->cell[k] = -1;
		s->inh[k] = shared ? USRVM_INH_SHARE : USRVM_INH_COPY;
		s->prot[k] = USRVM_PROT_ALL;
		if (shared) {
			ck_assert_int_lt(m_ncells, M_MAXCELLS);
			m_cells[m_ncells] = 0;
			s->cell[k] = m_ncells++;
		}
	}
}

/* A random run of mapped pages of s: [*p, *p + *n).  => false: none
 * where the run was to start. */
static bool
m_mapped_run(const struct mspace *s, size_t *p, size_t *n)
{
	size_t k;

	m_range(p, n);
	for (k = *p; k < *p + *n && s->val[k] != M_UNMAPPED; k++)
		;
	return (*n = k - *p) > 0;
}

static void
m_op(void)
{
	int i = m_pick(), slot;
	struct mspace *s;
	size_t p, n, k;
	unsigned op = (unsigned)m_rnd(100);

	if (i < 0) {
		/* Everything was destroyed: start a new root. */
		for (slot = 0; ms[slot].vs != NULL; slot++)
			;
		s = &ms[slot];
		ck_assert_ptr_nonnull(s->vs = usrvm_space_create(64 * MIB));
		for (size_t r = 0; r < M_REGIONS; r++)
			m_map(s, r * M_RPAGES, M_RPAGES);
		snprintf(m_last, sizeof(m_last), "new root %d", slot);
		return;
	}
	s = &ms[i];
	if (op < 40) {			/* write a few pages */
		m_range(&p, &n);
		for (k = p; k < p + n && k < p + 16; k++) {
			uint64_t v = (m_next++ << 16) | (uint64_t)i << 8 | 1;
			if (s->val[k] == M_UNMAPPED ||
			    s->prot[k] != USRVM_PROT_ALL)
				continue;
			if (s->cell[k] >= 0)
				m_cells[s->cell[k]] = v;
			else
				s->val[k] = v;
			fill(m_addr(s, k), v);
		}
		snprintf(m_last, sizeof(m_last), "write %d [%zu, +%zu)", i, p,
		    MIN(n, (size_t)16));
	} else if (op < 55) {		/* fork */
		for (slot = 0; slot < M_SPACES && ms[slot].vs != NULL; slot++)
			;
		if (slot == M_SPACES) {
			snprintf(m_last, sizeof(m_last), "fork: full");
			return;
		}
		ck_assert_ptr_nonnull(ms[slot].vs = usrvm_fork(s->vs));
		/* Private memory shared with the child became shared
		 * memory, in the parent too. */
		for (p = 0; p < M_PAGES; p++) {
			if (s->val[p] == M_UNMAPPED || s->cell[p] >= 0 ||
			    s->inh[p] != USRVM_INH_SHARE)
				continue;
			ck_assert_int_lt(m_ncells, M_MAXCELLS);
			m_cells[m_ncells] = s->val[p];
			s->cell[p] = m_ncells++;
		}
		for (p = 0; p < M_PAGES; p++) {
			uint64_t v = s->val[p];
			int32_t c = s->cell[p];
			if (v != M_UNMAPPED && s->inh[p] == USRVM_INH_NONE)
				v = M_UNMAPPED;
			else if (v != M_UNMAPPED && s->inh[p] == USRVM_INH_ZERO)
				v = 0, c = -1;	/* private zeros */
			ms[slot].val[p] = v;
			ms[slot].cell[p] = v == M_UNMAPPED ? -1 : c;
			ms[slot].inh[p] = s->inh[p];
			ms[slot].prot[p] = s->prot[p];
		}
		snprintf(m_last, sizeof(m_last), "fork %d -> %d", i, slot);
	} else if (op < 63) {		/* destroy */
		ck_assert_int_eq(usrvm_space_destroy(s->vs), 0);
		s->vs = NULL;
		snprintf(m_last, sizeof(m_last), "destroy %d", i);
	} else if (op < 73) {		/* unmap */
		m_range(&p, &n);
		ck_assert_int_eq(usrvm_unmap(s->vs, m_addr(s, p), n * T_PAGE),
		    0);
		for (k = p; k < p + n; k++) {
			s->val[k] = M_UNMAPPED;
			s->cell[k] = -1;
		}
		snprintf(m_last, sizeof(m_last), "unmap %d [%zu, +%zu)", i, p,
		    n);
	} else if (op < 83) {		/* map the first hole of a region */
		size_t r = m_rnd(M_REGIONS);
		for (p = r * M_RPAGES; p < (r + 1) * M_RPAGES &&
		    s->val[p] != M_UNMAPPED; p++)
			;
		for (n = 0; p + n < (r + 1) * M_RPAGES &&
		    s->val[p + n] == M_UNMAPPED; n++)
			;
		if (n == 0) {
			snprintf(m_last, sizeof(m_last), "map: no hole");
			return;
		}
		m_map(s, p, n);
		snprintf(m_last, sizeof(m_last), "map %d [%zu, +%zu)", i, p, n);
	} else if (op < 87) {		/* protect a mapped run */
		int pr = m_rnd(2) ? USRVM_PROT_READ : USRVM_PROT_ALL;
		if (!m_mapped_run(s, &p, &n)) {
			snprintf(m_last, sizeof(m_last), "protect: unmapped");
			return;
		}
		ck_assert_int_eq(usrvm_protect(s->vs, m_addr(s, p), n * T_PAGE,
		    pr), 0);
		for (k = p; k < p + n; k++)
			s->prot[k] = (uint8_t)pr;
		snprintf(m_last, sizeof(m_last), "protect %d [%zu, +%zu) %d",
		    i, p, n, pr);
	} else if (op < 91) {		/* DONTNEED a mapped run */
		if (!m_mapped_run(s, &p, &n)) {
			snprintf(m_last, sizeof(m_last), "dontneed: unmapped");
			return;
		}
		ck_assert_int_eq(usrvm_advise(s->vs, m_addr(s, p), n * T_PAGE,
		    USRVM_ADV_DONTNEED), 0);
		for (k = p; k < p + n; k++)	/* shared memory keeps its */
			if (s->cell[k] < 0)
				s->val[k] = 0;
		snprintf(m_last, sizeof(m_last), "dontneed %d [%zu, +%zu)", i,
		    p, n);
	} else {			/* inheritance of a mapped run */
		/* Any, but shared memory is not copied here (a private
		 * view of it shows the other side's writes where it has
		 * not written: not in this model), and is shared instead. */
		static const int inh[] = { USRVM_INH_NONE, USRVM_INH_ZERO,
		    USRVM_INH_COPY, USRVM_INH_SHARE };
		bool shared = false;
		int h;
		m_range(&p, &n);
		for (k = p; k < p + n; k++)
			if (s->val[k] != M_UNMAPPED && s->cell[k] >= 0)
				shared = true;
		h = inh[m_rnd(4)];
		if (h == USRVM_INH_COPY && shared)
			h = USRVM_INH_SHARE;
		ck_assert_int_eq(usrvm_inherit(s->vs, m_addr(s, p), n * T_PAGE,
		    h), 0);
		for (k = p; k < p + n; k++)
			if (s->val[k] != M_UNMAPPED)
				s->inh[k] = (uint8_t)h;
		snprintf(m_last, sizeof(m_last), "inherit %d [%zu, +%zu) %d",
		    i, p, n, h);
	}
}

static unsigned long
env_steps(unsigned long dflt)
{
	const char *s = getenv("USRVM_TEST_STEPS");

	return s != NULL ? strtoul(s, NULL, 0) : dflt;
}

START_TEST(cow_model)
{
	unsigned long steps = env_steps(600);
	struct usrvm_stats st;

	m_rng = t_seed(0xc0ffee);
	t_start_budget(1 * MIB, 16 * MIB);
	for (m_step = 0; m_step < steps; m_step++) {
		m_op();
		m_check_all();
	}
	st = t_stats();
	if (getenv("USRVM_TEST_STATS") != NULL)
		usrvm_stats_print(2);
	ck_assert_uint_gt(st.forks, 0);
	ck_assert_uint_gt(st.faults_cow, 0);
	ck_assert_uint_gt(st.pageouts, 0);
	ck_assert_uint_gt(st.pageins, 0);
	/* Shared pages, read-only runs included, are paged like the
	 * others: the daemon never found nothing to free. */
	ck_assert_uint_eq(st.pd_grace, 0);
	for (int i = 0; i < M_SPACES; i++)
		if (ms[i].vs != NULL)
			ck_assert_int_eq(usrvm_space_destroy(ms[i].vs), 0);
	st = t_drained();
	ck_assert_msg(st.anons == 0 && st.aobjs == 0 && st.resident == 0 &&
	    st.swap_slots_used == 0, "left after every space went: %llu "
	    "anons, %llu shared objects, %llu resident, %llu swap slots",
	    (unsigned long long)st.anons, (unsigned long long)st.aobjs,
	    (unsigned long long)st.resident,
	    (unsigned long long)st.swap_slots_used);
	t_stop();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cow");
	struct {
		const char *name;
		const TTest *fn;
	} cases[] = {
		{ "basic", cow_basic },
		{ "inherit", cow_inherit },
		{ "share_private", cow_share_private },
		{ "no_budget", cow_no_budget },
		{ "extend", cow_extend },
		{ "dontneed", cow_dontneed },
		{ "threads", cow_threads },
		{ "readers", cow_readers },
		{ "model", cow_model },
	};

	t_require_uffd();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_test(tc, cases[i].fn);
		suite_add_tcase(s, tc);
	}
	return t_run(s, 240);
}
