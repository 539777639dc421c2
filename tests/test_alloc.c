/*
 * test_alloc.c: the allocator (lib/alloc/) over a usrvm space: every size
 * class, alignment, realloc, calloc, blocks freed by other threads, and
 * contents surviving eviction to swap under a budget.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "alloc/sizeclass.h"
#include "helpers.h"

#define MIN(a, b)	((a) < (b) ? (a) : (b))
/* For loops: libcheck's ck_assert logs every call it makes. */
#define A_ASSERT(c) \
	do { if (!(c)) ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c); \
	} while (0)

static void
a_start(size_t mem)
{
	if (mem != 0)
		t_start_budget(mem, 0);
	else
		t_start();
	ck_assert_int_eq(alloc_init(usrvm_default_space(), 1 << 20), 0);
}

/* Fill a block with bytes derived from its address and a tag. */
static void
a_fill(void *p, size_t n, uint64_t tag)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(((uintptr_t)p + i) * 31 + tag);
}

static void
a_check(const void *p, size_t n, uint64_t tag)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)(((uintptr_t)p + i) * 31 + tag))
			ck_abort_msg("block %p byte %zu of %zu: %u", p, i, n,
			    b[i]);
}

START_TEST(sizeclass_table)
{
	size_t prev = 0;

	sc_init();
	for (unsigned c = 0; c < SC_NCLASS; c++) {
		const struct sizeclass *sc = &sc_table[c];
		ck_assert_uint_gt(sc->sc_size, prev);
		ck_assert_uint_eq(sc->sc_size % 16, 0);
		/* No more than 25% internal waste over the previous class. */
		if (prev >= 128)
			ck_assert_uint_le(sc->sc_size - prev, prev / 4);
		ck_assert_uint_le(sc->sc_nobj, SC_MAXOBJ);
		ck_assert_uint_ge(sc->sc_nobj, 1);
		ck_assert_uint_le((sc->sc_pages * T_PAGE) % sc->sc_size * 8,
		    sc->sc_pages * T_PAGE);
		ck_assert_uint_le(sc->sc_batch, SC_TCACHE_MAXBATCH);
		/* Every request size maps to the smallest class that fits. */
		for (size_t n = prev + 1; n <= sc->sc_size; n++)
			A_ASSERT(sc_class(n) == c);
		/* The offset -> index division is exact over the span. */
		for (size_t off = 0; off < sc->sc_pages * T_PAGE; off++)
			if (sc_index(c, off) != off / sc->sc_size)
				ck_abort_msg("class %u offset %zu", c, off);
		prev = sc->sc_size;
	}
	ck_assert_uint_eq(prev, SC_MAXSIZE);
	ck_assert_uint_eq(sc_class(0), 0);
}
END_TEST

/* Many blocks of every size up to 64 KiB, written, checked, freed. */
START_TEST(every_size)
{
	enum { N = 40 };
	void *v[N];

	a_start(0);
	for (size_t size = 1; size <= 65536; size += size < 512 ? 1 :
	    size / 16) {
		for (unsigned i = 0; i < N; i++) {
			v[i] = alloc_malloc(size);
			A_ASSERT(v[i] != NULL && alloc_owns(v[i]));
			A_ASSERT((uintptr_t)v[i] % 16 == 0);
			A_ASSERT(alloc_usable_size(v[i]) >= size);
			a_fill(v[i], size, size + i);
		}
		for (unsigned i = 0; i < N; i++) {
			a_check(v[i], size, size + i);
			for (unsigned j = i + 1; j < N; j++)
				A_ASSERT(v[j] != v[i]);
		}
		for (unsigned i = 0; i < N; i += 2)
			alloc_free(v[i]);
		for (unsigned i = 1; i < N; i += 2) {
			a_check(v[i], size, size + i);
			alloc_free(v[i]);
		}
	}
	t_stop();
}
END_TEST

START_TEST(alignment)
{
	a_start(0);
	for (size_t align = 1; align <= (1 << 20); align <<= 1) {
		size_t sizes[] = { 1, 24, align, align + 1, 3 * align,
		    40000, 2 << 20 };
		for (unsigned k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
			void *p = alloc_memalign(align, sizes[k]);
			ck_assert_ptr_nonnull(p);
			ck_assert_uint_eq((uintptr_t)p % align, 0);
			ck_assert_uint_ge(alloc_usable_size(p), sizes[k]);
			a_fill(p, sizes[k], align);
			a_check(p, sizes[k], align);
			alloc_free(p);
		}
	}
	errno = 0;
	ck_assert_ptr_null(alloc_memalign(24, 10));
	ck_assert_int_eq(errno, EINVAL);
	t_stop();
}
END_TEST

/* Bytes that depend on their offset only (realloc moves them). */
static void
a_fillpos(char *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		p[i] = (char)(i * 131 + 7);
}

static void
a_checkpos(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (char)(i * 131 + 7))
			ck_abort_msg("block %p byte %zu of %zu", (void *)p, i,
			    n);
}

START_TEST(realloc_grow_shrink)
{
	size_t size = 1;
	char *p;

	a_start(0);
	p = alloc_malloc(size);
	a_fillpos(p, 0, size);
	/* Grow through every kind of block, keeping the old bytes. */
	while (size < (8 << 20)) {
		size_t next = size * 3 / 2 + 1;
		char *q = alloc_realloc(p, next);
		ck_assert_ptr_nonnull(q);
		ck_assert_uint_ge(alloc_usable_size(q), next);
		a_checkpos(q, size);
		a_fillpos(q, size, next);
		p = q;
		size = next;
	}
	/* And shrink back. */
	while (size > 1) {
		size_t next = size / 3 + 1;
		char *q = alloc_realloc(p, next);
		ck_assert_ptr_nonnull(q);
		a_checkpos(q, next);
		p = q;
		size = next;
	}
	ck_assert_ptr_null(alloc_realloc(p, 0));	/* frees */
	p = alloc_realloc(NULL, 100);
	ck_assert_ptr_nonnull(p);
	alloc_free(p);
	t_stop();
}
END_TEST

START_TEST(calloc_zero)
{
	size_t sizes[] = { 8, 1000, 32768, 40000, 300000, 3 << 20 };

	a_start(0);
	/* Dirty blocks of each size, freed, then calloc'd again. */
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
			unsigned char *p = alloc_malloc(sizes[k]);
			memset(p, 0xa5, sizes[k]);
			alloc_free(p);
			p = alloc_calloc(1, sizes[k]);
			ck_assert_ptr_nonnull(p);
			for (size_t i = 0; i < sizes[k]; i++)
				A_ASSERT(p[i] == 0);
			memset(p, 0x5a, sizes[k]);
			alloc_free(p);
		}
	}
	errno = 0;
	ck_assert_ptr_null(alloc_calloc(SIZE_MAX / 2, 3));
	ck_assert_int_eq(errno, ENOMEM);
	t_stop();
}
END_TEST

/*
 * Threads allocate, pass blocks through a shared ring, and free the
 * blocks other threads allocated, checking their contents first.
 */
#define XT_THREADS	4
#define XT_RING		4096
#define XT_ROUNDS	200000

static void *xt_ring[XT_RING];
static size_t xt_size[XT_RING];
static pthread_mutex_t xt_lock = PTHREAD_MUTEX_INITIALIZER;

static void *
xt_main(void *arg)
{
	uint64_t rng = (uintptr_t)arg * 7919 + 1;

	for (unsigned r = 0; r < XT_ROUNDS; r++) {
		size_t size = 1 + t_rand(&rng) % (t_rand(&rng) % 8 == 0 ?
		    200000 : 600);
		void *p = alloc_malloc(size), *old;
		size_t oldsize;
		unsigned slot = (unsigned)(t_rand(&rng) % XT_RING);

		A_ASSERT(p != NULL);
		a_fill(p, MIN(size, 64), size);
		pthread_mutex_lock(&xt_lock);
		old = xt_ring[slot];
		oldsize = xt_size[slot];
		xt_ring[slot] = p;
		xt_size[slot] = size;
		pthread_mutex_unlock(&xt_lock);
		if (old != NULL) {
			a_check(old, MIN(oldsize, 64), oldsize);
			alloc_free(old);
		}
	}
	alloc_thread_flush();
	return NULL;
}

START_TEST(cross_thread)
{
	pthread_t t[XT_THREADS];
	struct alloc_stats st;

	a_start(0);
	for (uintptr_t i = 0; i < XT_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, xt_main,
		    (void *)i), 0);
	for (unsigned i = 0; i < XT_THREADS; i++)
		pthread_join(t[i], NULL);
	for (unsigned i = 0; i < XT_RING; i++)
		if (xt_ring[i] != NULL) {
			a_check(xt_ring[i], MIN(xt_size[i], 64), xt_size[i]);
			alloc_free(xt_ring[i]);
		}
	alloc_thread_flush();
	alloc_stats(&st);
	/* What is left in use: at most the spans the classes keep. */
	ck_assert_uint_le(st.as_inuse, SC_NCLASS * 128 * T_PAGE);
	ck_assert_uint_gt(alloc_trim() + st.as_free_zero, 0);
	t_stop();
}
END_TEST

/*
 * A heap 6 times the budget: blocks of mixed sizes survive eviction, and
 * freeing cold blocks pages nothing in.
 */
START_TEST(under_budget)
{
	enum { NB = 30000 };
	static void *v[NB];
	static size_t sz[NB];
	uint64_t rng = t_seed(99);
	struct usrvm_stats before, after;

	a_start(16 << 20);
	for (unsigned i = 0; i < NB; i++) {
		sz[i] = 1 + t_rand(&rng) % (i % 100 == 0 ? 300000 : 5000);
		v[i] = alloc_malloc(sz[i]);
		A_ASSERT(v[i] != NULL);
		a_fill(v[i], sz[i], i);
	}
	for (unsigned i = 0; i < NB; i++)
		a_check(v[i], sz[i], i);
	usrvm_stats(&before);
	ck_assert_uint_gt(before.pageouts, 0);
	/* Free the first half, which has gone cold: no page-ins. */
	for (unsigned i = 0; i < NB / 2; i++)
		alloc_free(v[i]);
	alloc_thread_flush();
	usrvm_stats(&after);
	ck_assert_uint_eq(after.pageins, before.pageins);
	for (unsigned i = NB / 2; i < NB; i++) {
		a_check(v[i], sz[i], i);
		alloc_free(v[i]);
	}
	t_stop();
}
END_TEST

/* Budget + swap spent: malloc fails with ENOMEM, and recovers. */
START_TEST(enomem)
{
	void *v[64];
	unsigned n = 0;

	a_start(4 << 20);	/* 4 MiB + 32 MiB of swap */
	errno = 0;
	while (n < 64 && (v[n] = alloc_malloc(2 << 20)) != NULL)
		n++;
	ck_assert_uint_lt(n, 64);
	ck_assert_uint_gt(n, 4);
	ck_assert_int_eq(errno, ENOMEM);
	alloc_free(v[--n]);
	v[n] = alloc_malloc(2 << 20);
	ck_assert_ptr_nonnull(v[n]);
	while (n > 0)
		alloc_free(v[--n]);
	t_stop();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("alloc");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "sizeclass_table", sizeclass_table },
		{ "every_size", every_size },
		{ "alignment", alignment },
		{ "realloc_grow_shrink", realloc_grow_shrink },
		{ "calloc_zero", calloc_zero },
		{ "cross_thread", cross_thread },
		{ "under_budget", under_budget },
		{ "enomem", enomem },
	};

	t_require_uffd();
	/* One case per test: CK_RUN_CASE=name runs one. */
	for (unsigned i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		TCase *tc = tcase_create(cases[i].name);
		_tcase_add_test(tc, cases[i].test, 0, 0, 0, 1);
		suite_add_tcase(s, tc);
	}
	return t_run(s, 300);
}
