/*
 * test_amap.c: amap unit tests (libcheck).
 *
 *   - slots across leaf and node boundaries, up to slot 2^36 - 1;
 *   - ppref: split references, partial unref frees exactly the anons
 *     nobody references any more, the last unref frees everything;
 *   - amap_next_used on sparse content, amap_extend (growing the tree);
 *   - a randomized model test (USRVM_TEST_SEED=n replays a seed);
 *   - threads working on disjoint ranges of one amap under its lock.
 *
 * Anon leaks are counted with usrvm_cnt.anons (anon.c keeps it).  That
 * empty leaves and nodes are given back is checked by amap_validate (it
 * panics on an empty subtree).  CK_RUN_CASE=model runs one case.
 *
 * Standalone build (ASan + UBSan):
 *   gcc -std=gnu11 -Wall -Wextra -Werror -O1 -g -fsanitize=address,undefined \
 *     -pthread -Iinclude -Ilib lib/amap.c lib/anon.c lib/kmem.c lib/page.c \
 *     lib/util.c lib/stats.c tests/test_amap.c \
 *     $(pkg-config --cflags --libs check) -o /tmp/test_amap
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amap.h"
#include "anon.h"
#include "kmem.h"
#include "page.h"
#include "stats.h"
#include "usrvm_internal.h"

#define SLOTS_2_36	((size_t)1 << 36)

static void
setup(void)
{
	stats_reset();
	ck_assert_int_eq(amap_sys_init(), 0);
	ck_assert_int_eq(anon_sys_init(), 0);
	ck_assert_int_eq(page_sys_init(), 0);
}

static void
teardown(void)
{
	page_sys_fini();
	anon_sys_fini();
	amap_sys_fini();
}

static int64_t
live_anons(void)
{
	return atomic_load(&usrvm_cnt.anons);
}

static struct vm_anon *
new_anon(void)
{
	struct vm_anon *anon = anon_alloc();

	ck_assert_ptr_nonnull(anon);
	return anon;
}

/* Add a fresh anon at aref slot s (amap locked by the caller). */
static struct vm_anon *
add_new(const struct vm_aref *ar, size_t s)
{
	struct vm_anon *anon = new_anon();

	ck_assert_int_eq(amap_add(ar, s, anon, false), 0);
	return anon;
}

/* ------------------------------------------------------------------ */

START_TEST(test_boundaries)
{
	static const size_t slots[] = {
		0, 1, 63, 64, 65, 127, 128, 2047, 2048, 2049,
		((size_t)1 << 16) - 1, (size_t)1 << 16, (size_t)1 << 21,
		((size_t)1 << 31) + 5, SLOTS_2_36 - 65, SLOTS_2_36 - 64,
		SLOTS_2_36 - 2, SLOTS_2_36 - 1,
	};
	const size_t nslots = sizeof(slots) / sizeof(slots[0]);
	struct vm_anon *anons[sizeof(slots) / sizeof(slots[0])];
	struct vm_anon *v[140];
	struct vm_amap *amap = amap_alloc(SLOTS_2_36);
	struct vm_aref ar = { 0, amap };
	size_t i, s;

	ck_assert_ptr_nonnull(amap);
	ck_assert_uint_eq(amap_nslots(amap), SLOTS_2_36);
	amap_lock(amap);
	ck_assert_uint_eq(amap_refs(amap), 1);
	ck_assert(!amap_shared(amap));
	ck_assert_ptr_null(amap_lookup(&ar, SLOTS_2_36 - 1));
	ck_assert_uint_eq(amap_next_used(&ar, 0, SLOTS_2_36), SIZE_MAX);
	for (i = 0; i < nslots; i++)
		anons[i] = add_new(&ar, slots[i]);
	ck_assert_uint_eq(amap_nused(amap), nslots);
	for (i = 0; i < nslots; i++) {
		ck_assert_ptr_eq(amap_lookup(&ar, slots[i]), anons[i]);
		/* neighbours that are not in the list are empty */
		if (slots[i] > 0 && (i == 0 || slots[i - 1] != slots[i] - 1))
			ck_assert_ptr_null(amap_lookup(&ar, slots[i] - 1));
		if (slots[i] + 1 < SLOTS_2_36 &&
		    (i + 1 == nslots || slots[i + 1] != slots[i] + 1))
			ck_assert_ptr_null(amap_lookup(&ar, slots[i] + 1));
	}
	amap_unlock(amap);
	amap_validate(amap);
	amap_lock(amap);

	/* amap_lookups across leaf boundaries */
	amap_lookups(&ar, 0, v, 140);
	for (s = 0; s < 140; s++) {
		struct vm_anon *want = NULL;
		for (i = 0; i < nslots; i++)
			if (slots[i] == s)
				want = anons[i];
		ck_assert_ptr_eq(v[s], want);
	}
	amap_lookups(&ar, SLOTS_2_36 - 130, v, 130);
	ck_assert_ptr_eq(v[129], anons[nslots - 1]);
	ck_assert_ptr_eq(v[128], anons[nslots - 2]);
	ck_assert_ptr_eq(v[66], anons[nslots - 3]);
	ck_assert_ptr_eq(v[65], anons[nslots - 4]);
	ck_assert_ptr_null(v[64]);
	ck_assert_ptr_null(v[0]);

	/* an aref into the middle: slots are relative to ar_pageoff */
	struct vm_aref mid = { SLOTS_2_36 - 100, amap };
	ck_assert_ptr_eq(amap_lookup(&mid, 99), anons[nslots - 1]);
	ck_assert_uint_eq(amap_next_used(&mid, 0, 100), 35);

	/* next_used walks the sparse content in order, fast */
	s = 0;
	for (i = 0; i < nslots; i++) {
		s = amap_next_used(&ar, s, SLOTS_2_36 - s);
		ck_assert_uint_eq(s, slots[i]);
		s++;
	}
	ck_assert_uint_eq(s, SLOTS_2_36);
	ck_assert_uint_eq(amap_next_used(&ar, 2050, ((size_t)1 << 16) - 2051),
	    SIZE_MAX);
	ck_assert_uint_eq(amap_next_used(&ar, 2050, ((size_t)1 << 16) - 2050),
	    ((size_t)1 << 16) - 1);

	/* replace: the old anon's reference comes back to us */
	struct vm_anon *nw = new_anon();
	ck_assert_int_eq(amap_add(&ar, 64, nw, true), 0);
	ck_assert_ptr_eq(amap_lookup(&ar, 64), nw);
	anon_unref(anons[3]);
	anons[3] = nw;

	/* unadd every other one (the reference is ours to drop) */
	for (i = 0; i < nslots; i += 2) {
		amap_unadd(&ar, slots[i]);
		ck_assert_ptr_null(amap_lookup(&ar, slots[i]));
		anon_unref(anons[i]);
	}
	ck_assert_uint_eq(amap_nused(amap), nslots / 2);
	ck_assert_int_eq(live_anons(), (int64_t)(nslots / 2));
	amap_unlock(amap);
	amap_validate(amap);	/* also: no empty leaf or node kept */
	amap_lock(amap);

	/* a wipe of a range with nothing in it */
	ck_assert_uint_eq(amap_wipe_range(&ar, 3000, ((size_t)1 << 16) - 3001),
	    0);
	/* wipe the top part, then everything */
	ck_assert_uint_eq(amap_wipe_range(&ar, SLOTS_2_36 - 64, 64), 2);
	ck_assert_ptr_null(amap_lookup(&ar, SLOTS_2_36 - 1));
	ck_assert_uint_eq(amap_wipe_range(&ar, 0, SLOTS_2_36),
	    nslots / 2 - 2);
	ck_assert_uint_eq(amap_nused(amap), 0);
	ck_assert_uint_eq(amap_next_used(&ar, 0, SLOTS_2_36), SIZE_MAX);
	ck_assert_int_eq(live_anons(), 0);
	amap_unlock(amap);
	amap_validate(amap);

	/* the storage is reusable after the wipe */
	amap_lock(amap);
	anons[0] = add_new(&ar, SLOTS_2_36 - 1);
	ck_assert_ptr_eq(amap_lookup(&ar, SLOTS_2_36 - 1), anons[0]);
	amap_unlock(amap);
	amap_validate(amap);
	amap_unref(amap, 0, SLOTS_2_36, AMAP_REFALL);
	ck_assert_int_eq(live_anons(), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(test_splitref_ppref)
{
	enum { N = 300 };
	struct vm_amap *amap = amap_alloc(N);
	struct vm_aref a = { 0, amap }, b = { 0, NULL }, c = { 0, NULL };
	struct vm_anon *an[N];
	struct vm_anon *held;

	ck_assert_ptr_nonnull(amap);
	amap_lock(amap);
	for (size_t s = 0; s < N; s++)
		an[s] = add_new(&a, s);
	amap_unlock(amap);
	ck_assert_int_eq(live_anons(), N);

	/* Hold an extra reference on an anon of the middle part. */
	held = an[150];
	held->an_ref++;

	/* Clip into [0,100) [100,200) [200,300). */
	amap_splitref(&a, &b, 100);
	ck_assert_ptr_eq(b.ar_amap, amap);
	ck_assert_uint_eq(b.ar_pageoff, 100);
	amap_splitref(&b, &c, 100);
	ck_assert_ptr_eq(c.ar_amap, amap);
	ck_assert_uint_eq(c.ar_pageoff, 200);
	amap_lock(amap);
	ck_assert_uint_eq(amap_refs(amap), 3);
	ck_assert_ptr_eq(amap_lookup(&c, 0), an[200]);
	ck_assert_ptr_eq(amap_lookup(&b, 50), held);
	amap_unlock(amap);
	amap_validate(amap);

	/* Drop the middle: exactly its anons go. */
	amap_unref(amap, b.ar_pageoff, 100, 0);
	ck_assert_int_eq(live_anons(), 201);	/* 200 + the held one */
	ck_assert_uint_eq(held->an_ref, 1);
	amap_validate(amap);
	amap_lock(amap);
	ck_assert_uint_eq(amap_refs(amap), 2);
	ck_assert_uint_eq(amap_nused(amap), 200);
	for (size_t s = 0; s < N; s++) {
		struct vm_aref abs = { 0, amap };
		if (s >= 100 && s < 200)
			ck_assert_ptr_null(amap_lookup(&abs, s));
		else
			ck_assert_ptr_eq(amap_lookup(&abs, s), an[s]);
	}
	ck_assert_uint_eq(amap_next_used(&a, 99, 200), 99);
	ck_assert_uint_eq(amap_next_used(&a, 100, 200), 200);
	amap_unlock(amap);
	anon_unref(held);
	ck_assert_int_eq(live_anons(), 200);

	/* The front, then the back (last reference: the amap goes). */
	amap_unref(amap, a.ar_pageoff, 100, 0);
	ck_assert_int_eq(live_anons(), 100);
	amap_validate(amap);
	amap_lock(amap);
	ck_assert_uint_eq(amap_refs(amap), 1);
	ck_assert_ptr_null(amap_lookup(&(struct vm_aref){ 0, amap }, 50));
	ck_assert_ptr_null(amap_lookup(&(struct vm_aref){ 0, amap }, 150));
	ck_assert_ptr_eq(amap_lookup(&c, 0), an[200]);
	ck_assert_ptr_eq(amap_lookup(&c, 99), an[299]);
	amap_unlock(amap);
	amap_unref(amap, c.ar_pageoff, 100, 0);
	ck_assert_int_eq(live_anons(), 0);
}
END_TEST

START_TEST(test_partial_ref_shared)
{
	enum { N = 200 };
	struct vm_amap *amap = amap_alloc(N);
	struct vm_aref a = { 0, amap };

	ck_assert_ptr_nonnull(amap);
	amap_lock(amap);
	for (size_t s = 0; s < N; s++)
		add_new(&a, s);
	amap_unlock(amap);

	/* A whole shared reference (fork of a shared entry), then gone. */
	amap_ref(amap, 0, N, AMAP_SHARED | AMAP_REFALL);
	amap_lock(amap);
	ck_assert(amap_shared(amap));
	ck_assert_uint_eq(amap_refs(amap), 2);
	amap_unlock(amap);
	amap_validate(amap);
	amap_unref(amap, 0, N, AMAP_REFALL);
	amap_lock(amap);
	ck_assert(!amap_shared(amap));
	ck_assert_uint_eq(amap_refs(amap), 1);
	ck_assert_uint_eq(amap_nused(amap), N);
	amap_unlock(amap);
	ck_assert_int_eq(live_anons(), N);

	/* A partial reference to [50, 150); then the whole one goes. */
	amap_ref(amap, 50, 100, 0);
	amap_validate(amap);
	amap_unref(amap, 0, N, 0);
	amap_validate(amap);
	ck_assert_int_eq(live_anons(), 100);
	amap_lock(amap);
	ck_assert_uint_eq(amap_refs(amap), 1);
	ck_assert_uint_eq(amap_next_used(&a, 0, N), 50);
	ck_assert_uint_eq(amap_next_used(&a, 150, 50), SIZE_MAX);
	/* the referenced part still works as usual */
	ck_assert_uint_eq(amap_wipe_range(&a, 60, 10), 10);
	amap_unlock(amap);
	ck_assert_int_eq(live_anons(), 90);
	amap_validate(amap);
	amap_unref(amap, 50, 100, 0);
	ck_assert_int_eq(live_anons(), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

START_TEST(test_next_used_extend)
{
	struct vm_amap *amap = amap_alloc(1000);
	struct vm_aref a = { 0, amap }, half = { 500, amap };
	struct vm_anon *x;

	ck_assert_ptr_nonnull(amap);
	amap_lock(amap);
	add_new(&a, 5);
	add_new(&a, 700);
	add_new(&a, 999);
	ck_assert_uint_eq(amap_next_used(&a, 0, 1000), 5);
	ck_assert_uint_eq(amap_next_used(&a, 0, 5), SIZE_MAX);
	ck_assert_uint_eq(amap_next_used(&a, 0, 6), 5);
	ck_assert_uint_eq(amap_next_used(&a, 6, 994), 700);
	ck_assert_uint_eq(amap_next_used(&a, 701, 298), SIZE_MAX);
	ck_assert_uint_eq(amap_next_used(&a, 701, 299), 999);
	ck_assert_uint_eq(amap_next_used(&half, 0, 500), 200);
	ck_assert_uint_eq(amap_next_used(&half, 201, 299), 499);
	amap_unlock(amap);

	/* extend: a deeper tree, old content intact */
	ck_assert_int_eq(amap_extend(amap, ((size_t)1 << 20) - 1000), 0);
	ck_assert_uint_eq(amap_nslots(amap), (size_t)1 << 20);
	amap_validate(amap);
	amap_lock(amap);
	ck_assert_ptr_nonnull(amap_lookup(&a, 999));
	x = add_new(&a, ((size_t)1 << 20) - 1);
	ck_assert_uint_eq(amap_next_used(&a, 1000, ((size_t)1 << 20) - 1000),
	    ((size_t)1 << 20) - 1);
	amap_unlock(amap);
	amap_validate(amap);

	/* again up to 2^36 */
	ck_assert_int_eq(amap_extend(amap, SLOTS_2_36 - ((size_t)1 << 20)), 0);
	amap_validate(amap);
	amap_lock(amap);
	ck_assert_ptr_eq(amap_lookup(&a, ((size_t)1 << 20) - 1), x);
	add_new(&a, SLOTS_2_36 - 1);
	ck_assert_uint_eq(amap_nused(amap), 5);
	ck_assert_uint_eq(amap_wipe_range(&a, 6, SLOTS_2_36 - 7), 3);
	ck_assert_uint_eq(amap_next_used(&a, 6, SLOTS_2_36 - 6),
	    SLOTS_2_36 - 1);
	amap_unlock(amap);
	amap_validate(amap);
	amap_unref(amap, 0, SLOTS_2_36, AMAP_REFALL);
	ck_assert_int_eq(live_anons(), 0);

	/* extend with ppref: the new slots count one reference */
	amap = amap_alloc(128);
	a.ar_amap = amap;
	struct vm_aref b;
	amap_lock(amap);
	for (size_t s = 0; s < 128; s++)
		add_new(&a, s);
	amap_unlock(amap);
	amap_splitref(&a, &b, 64);
	amap_unref(amap, 64, 64, 0);	/* [64, 128) unreferenced */
	ck_assert_int_eq(live_anons(), 64);
	ck_assert_int_eq(amap_extend(amap, 64), 0);
	amap_validate(amap);
	amap_lock(amap);
	add_new(&a, 150);
	amap_unlock(amap);
	/* clip [0,192) at 160 and drop the back: 150 survives */
	amap_splitref(&a, &b, 160);
	/* two references: it cannot grow */
	ck_assert_int_eq(amap_extend(amap, 8), EBUSY);
	ck_assert_uint_eq(amap_nslots(amap), 192);
	amap_unref(amap, 160, 32, 0);
	amap_validate(amap);
	ck_assert_int_eq(live_anons(), 65);
	/* drop [128, 160) via a split of what's left */
	amap_splitref(&a, &b, 128);
	amap_unref(amap, 128, 32, 0);
	ck_assert_int_eq(live_anons(), 64);
	amap_validate(amap);
	amap_unref(amap, 0, 128, 0);
	ck_assert_int_eq(live_anons(), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Randomized model test                                               */
/* ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t
rng(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t
rnd(size_t n)		/* uniform in [0, n) */
{
	return n == 0 ? 0 : rng() % n;
}

/*
 * The model: n model slots i, amap slot i * stride (amap of nslots).
 * A model reference [a, b) is the amap range [f(a), g(b)) with
 * g(b) = nslots when b == n, so [0, n) is the whole amap.
 */
#define MAXN	1500
#define MAXREFS	8

struct mref {
	size_t a, b;		/* model range */
};

static struct model {
	size_t n, stride, nslots;
	struct vm_amap *amap;
	struct vm_anon *anon[MAXN];
	size_t nused;
	struct mref ref[MAXREFS];
	unsigned nref;
	bool shared;
} m;

static uint64_t seed;
static unsigned step;
static unsigned st_rounds, st_lastunref, st_ppfree, st_splits, st_extends;
static unsigned st_maxused;

/* Plain if: a passing ck_assert costs a write to check's log file. */
#define MCHECK(cond, fmt, ...) do {					\
	if (!(cond))							\
		ck_abort_msg("seed %" PRIu64 " step %u: " fmt,		\
		    seed, step, ##__VA_ARGS__);				\
} while (0)

static size_t
m_f(size_t i)
{
	return i * m.stride;
}

static size_t
m_g(size_t b)
{
	return b == m.n ? m.nslots : b * m.stride;
}

static struct vm_aref
m_aref(size_t a)
{
	return (struct vm_aref){ m_f(a), m.amap };
}

static unsigned
m_coverage(size_t i)
{
	unsigned c = 0;

	for (unsigned r = 0; r < m.nref; r++)
		c += m.ref[r].a <= i && i < m.ref[r].b;
	return c;
}

static void
m_check(void)
{
	struct vm_aref ar = m_aref(0);

	amap_validate(m.amap);
	amap_lock(m.amap);
	MCHECK(amap_refs(m.amap) == m.nref, "refs %u want %u",
	    amap_refs(m.amap), m.nref);
	MCHECK(amap_shared(m.amap) == m.shared, "shared %d want %d",
	    amap_shared(m.amap), m.shared);
	MCHECK(amap_nused(m.amap) == m.nused, "nused %zu want %zu",
	    amap_nused(m.amap), m.nused);
	MCHECK(live_anons() == (int64_t)m.nused, "live anons %" PRId64
	    " want %zu", live_anons(), m.nused);
	if (m.stride == 1) {
		static struct vm_anon *v[MAXN];
		amap_lookups(&ar, 0, v, m.n);
		for (size_t i = 0; i < m.n; i++)
			MCHECK(v[i] == m.anon[i], "slot %zu: %p want %p", i,
			    (void *)v[i], (void *)m.anon[i]);
	} else {
		for (size_t i = 0; i < m.n; i++)
			MCHECK(amap_lookup(&ar, m_f(i)) == m.anon[i],
			    "slot %zu (amap %zu)", i, m_f(i));
	}
	/* next_used from a random model slot */
	size_t i0 = rnd(m.n), want = SIZE_MAX;
	for (size_t i = i0; i < m.n; i++) {
		if (m.anon[i] != NULL) {
			want = m_f(i);
			break;
		}
	}
	size_t got = amap_next_used(&ar, m_f(i0), m.nslots - m_f(i0));
	MCHECK(got == want, "next_used from %zu: %zu want %zu", m_f(i0), got,
	    want);
	amap_unlock(m.amap);
}

/* After an unref: anons of slots no reference covers are gone. */
static void
m_drop_uncovered(void)
{
	for (size_t i = 0; i < m.n; i++) {
		if (m.anon[i] != NULL && m_coverage(i) == 0) {
			m.anon[i] = NULL;
			m.nused--;
		}
	}
}

static void
m_new_round(void)
{
	static const size_t strides[] = {
		1, 1, 1, 2, 63, 64, 65, 4099, (size_t)1 << 20,
		((size_t)1 << 27) + 11,
	};

	m.stride = strides[rnd(sizeof(strides) / sizeof(strides[0]))];
	m.n = 1 + rnd(m.stride == 1 ? MAXN : 300);
	m.nslots = m_f(m.n - 1) + 1 + rnd(m.stride);
	m.amap = amap_alloc(m.nslots);
	ck_assert_ptr_nonnull(m.amap);
	memset(m.anon, 0, sizeof(m.anon));
	m.nused = 0;
	m.nref = 1;
	m.ref[0] = (struct mref){ 0, m.n };
	m.shared = false;
}

static void
m_step(void)
{
	unsigned op = rnd(100);
	size_t i, a, b;
	struct vm_aref ar;

	if (op < 35) {			/* add a few, as fault-around does */
		struct mref *r = &m.ref[rnd(m.nref)];
		size_t cnt = 1 + rnd(48);

		ar = m_aref(r->a);
		amap_lock(m.amap);
		for (i = r->a + rnd(r->b - r->a); i < r->b && cnt > 0;
		    i++, cnt--) {
			if (m.anon[i] != NULL)
				continue;
			m.anon[i] = add_new(&ar, m_f(i) - m_f(r->a));
			m.nused++;
		}
		amap_unlock(m.amap);
	} else if (op < 50) {		/* replace/unadd */
		ar = m_aref(0);
		amap_lock(m.amap);
		size_t s = amap_next_used(&ar, m_f(rnd(m.n)), m.nslots);
		if (s == SIZE_MAX)
			s = amap_next_used(&ar, 0, m.nslots);
		if (s == SIZE_MAX) {
			amap_unlock(m.amap);
			return;
		}
		MCHECK(s % m.stride == 0 && m.anon[s / m.stride] != NULL,
		    "next_used found %zu", s);
		i = s / m.stride;
		struct vm_anon *old = m.anon[i];
		if (op < 42) {
			m.anon[i] = new_anon();
			MCHECK(amap_add(&ar, s, m.anon[i], true) == 0, "replace");
		} else {
			amap_unadd(&ar, s);
			m.anon[i] = NULL;
			m.nused--;
		}
		anon_unref(old);
		amap_unlock(m.amap);
	} else if (op < 60) {				/* wipe */
		a = rnd(m.n);
		b = a + 1 + rnd(op < 55 ? 3 : m.n - a);
		if (b > m.n)
			b = m.n;
		size_t want = 0;
		for (i = a; i < b; i++) {
			if (m.anon[i] != NULL) {
				want++;
				m.anon[i] = NULL;
			}
		}
		m.nused -= want;
		ar = m_aref(a);
		amap_lock(m.amap);
		size_t got = amap_wipe_range(&ar, 0, m_g(b) - m_f(a));
		amap_unlock(m.amap);
		MCHECK(got == want, "wipe [%zu,%zu): %zu want %zu", a, b, got,
		    want);
	} else if (op < 72) {				/* ref */
		if (m.nref == MAXREFS)
			return;
		int flags = rnd(3) == 0 ? AMAP_SHARED : 0;
		if (rnd(4) == 0) {
			a = 0;
			b = m.n;
			flags |= AMAP_REFALL;
		} else {
			a = rnd(m.n);
			b = a + 1 + rnd(m.n - a);
		}
		amap_ref(m.amap, m_f(a), m_g(b) - m_f(a), flags);
		m.ref[m.nref++] = (struct mref){ a, b };
		if (flags & AMAP_SHARED)
			m.shared = true;
	} else if (op < 86) {				/* unref */
		unsigned r = rnd(m.nref);
		struct mref x = m.ref[r];
		int flags = x.a == 0 && x.b == m.n && rnd(2) ? AMAP_REFALL : 0;
		size_t before = m.nused;

		if (m.nref == 1 && rnd(10) != 0)
			return;		/* let rounds live a while */

		m.ref[r] = m.ref[--m.nref];
		if (m.nref == 1)
			m.shared = false;
		amap_unref(m.amap, m_f(x.a), m_g(x.b) - m_f(x.a), flags);
		if (m.nref == 0) {
			MCHECK(live_anons() == 0, "last unref left %" PRId64
			    " anons", live_anons());
			m.amap = NULL;
			st_rounds++;
			st_lastunref++;
			return;
		}
		m_drop_uncovered();
		if (m.nused < before)
			st_ppfree++;
	} else if (op < 89) {				/* extend */
		struct mref *x = &m.ref[0];
		size_t k = 1 + rnd(64), nslots;

		if (m.nref != 1 || x->b != m.n || m.n + k > MAXN)
			return;
		nslots = (m.n + k - 1) * m.stride + 1 + rnd(m.stride);
		MCHECK(amap_extend(m.amap, nslots - m.nslots) == 0, "extend");
		MCHECK(amap_nslots(m.amap) == nslots, "extended to %zu",
		    amap_nslots(m.amap));
		m.n += k;
		m.nslots = nslots;
		x->b = m.n;
		st_extends++;
	} else {					/* splitref */
		unsigned r = rnd(m.nref);
		struct mref *x = &m.ref[r];
		struct vm_aref orig, split = { 0, NULL };

		if (m.nref == MAXREFS || x->b - x->a < 2)
			return;
		size_t k = 1 + rnd(x->b - x->a - 1);
		orig = m_aref(x->a);
		amap_splitref(&orig, &split, m_f(x->a + k) - m_f(x->a));
		MCHECK(split.ar_amap == m.amap &&
		    split.ar_pageoff == m_f(x->a + k), "splitref");
		m.ref[m.nref++] = (struct mref){ x->a + k, x->b };
		x->b = x->a + k;
		st_splits++;
	}
}

/* Drop every reference left, checking after each, as at round end. */
static void
m_drain(void)
{
	while (m.nref > 0) {
		struct mref x = m.ref[rnd(m.nref)];

		for (unsigned r = 0; r < m.nref; r++) {
			if (m.ref[r].a == x.a && m.ref[r].b == x.b) {
				m.ref[r] = m.ref[--m.nref];
				break;
			}
		}
		amap_unref(m.amap, m_f(x.a), m_g(x.b) - m_f(x.a), 0);
		if (m.nref == 0)
			break;
		if (m.nref == 1)
			m.shared = false;
		m_drop_uncovered();
		m_check();
	}
	m.amap = NULL;
	st_rounds++;
	MCHECK(live_anons() == 0, "round left %" PRId64 " anons",
	    live_anons());
}

START_TEST(test_model)
{
	const char *env = getenv("USRVM_TEST_SEED");
	const unsigned steps = 30000;
	unsigned round_end = 0;

	seed = env != NULL ? strtoull(env, NULL, 0) : 20261121;
	fprintf(stderr, "test_model: seed %" PRIu64
	    " (USRVM_TEST_SEED=n to replay)\n", seed);
	rng_state = seed;
	m.amap = NULL;
	for (step = 0; step < steps; step++) {
		if (m.amap == NULL) {
			m_new_round();
			round_end = step + 50 + rnd(1500);
		}
		m_step();
		if (m.amap == NULL)
			continue;	/* the last reference went */
		m_check();
		st_maxused = MAX(st_maxused, (unsigned)m.nused);
		if (step >= round_end)
			m_drain();
	}
	if (m.amap != NULL)
		m_drain();
	fprintf(stderr, "test_model: %u steps, %u amaps (%u died mid-round), "
	    "%u splits, %u extends, %u partial unrefs freeing anons, "
	    "up to %u anons\n", steps, st_rounds, st_lastunref, st_splits,
	    st_extends, st_ppfree, st_maxused);
	MCHECK(live_anons() == 0, "leaked %" PRId64 " anons", live_anons());
}
END_TEST

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

#define TH_RANGE	((size_t)1 << 16)
#define TH_WORKERS	4
#define TH_ITERS	10000

static struct vm_amap *th_amap;

struct worker {
	unsigned id;
	uint64_t rs;
	struct vm_anon *mine[TH_RANGE];
	size_t nused;
	bool failed;
};

static uint64_t
wrng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct vm_aref ar = { w->id * TH_RANGE, th_amap };

	for (unsigned it = 0; it < TH_ITERS && !w->failed; it++) {
		/* clustered slots: several per leaf, some far apart */
		size_t s = wrng(&w->rs) % (it & 1 ? 256 : TH_RANGE);
		struct vm_anon *fresh = NULL;

		if (w->mine[s] == NULL && (fresh = anon_alloc()) == NULL) {
			w->failed = true;
			break;
		}
		amap_lock(th_amap);
		if (amap_lookup(&ar, s) != w->mine[s])
			w->failed = true;
		if (fresh != NULL) {
			if (amap_add(&ar, s, fresh, false) != 0)
				w->failed = true;
			w->mine[s] = fresh;
			w->nused++;
		} else if (wrng(&w->rs) % 3 != 0) {
			amap_unadd(&ar, s);
			anon_unref(w->mine[s]);
			w->mine[s] = NULL;
			w->nused--;
		}
		if (amap_lookup(&ar, s) != w->mine[s])
			w->failed = true;
		amap_unlock(th_amap);
	}
	return NULL;
}

static size_t wiped_total, added_total;

static void *
wiper_main(void *arg)
{
	struct vm_aref ar = { TH_WORKERS * TH_RANGE, th_amap };
	uint64_t rs = 0x1234567;
	bool *failed = arg;

	for (unsigned round = 0; round < 200; round++) {
		size_t added = 0;

		amap_lock(th_amap);
		for (unsigned k = 0; k < 50; k++) {
			size_t s = wrng(&rs) % TH_RANGE;
			if (amap_lookup(&ar, s) != NULL)
				continue;
			struct vm_anon *anon = anon_alloc();
			if (anon == NULL || amap_add(&ar, s, anon, false) != 0)
				*failed = true;
			added++;
		}
		amap_unlock(th_amap);
		amap_lock(th_amap);
		size_t got = amap_wipe_range(&ar, 0, TH_RANGE);
		amap_unlock(th_amap);
		if (got != added)
			*failed = true;
		added_total += added;
		wiped_total += got;
	}
	return NULL;
}

START_TEST(test_threads)
{
	static struct worker w[TH_WORKERS];
	pthread_t t[TH_WORKERS + 1];
	bool wiper_failed = false;
	size_t total = 0;

	th_amap = amap_alloc((TH_WORKERS + 1) * TH_RANGE);
	ck_assert_ptr_nonnull(th_amap);
	for (unsigned i = 0; i < TH_WORKERS; i++) {
		w[i].id = i;
		w[i].rs = 0x9e3779b97f4a7c15ull * (i + 1);
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main,
		    &w[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&t[TH_WORKERS], NULL, wiper_main,
	    &wiper_failed), 0);
	for (unsigned i = 0; i <= TH_WORKERS; i++)
		pthread_join(t[i], NULL);
	ck_assert(!wiper_failed);
	ck_assert_uint_gt(wiped_total, 0);
	amap_validate(th_amap);
	amap_lock(th_amap);
	for (unsigned i = 0; i < TH_WORKERS; i++) {
		struct vm_aref ar = { i * TH_RANGE, th_amap };
		ck_assert_msg(!w[i].failed, "worker %u saw a wrong slot", i);
		for (size_t s = 0; s < TH_RANGE; s++)
			ck_assert_ptr_eq(amap_lookup(&ar, s), w[i].mine[s]);
		total += w[i].nused;
	}
	ck_assert_uint_eq(amap_nused(th_amap), total);
	struct vm_aref wr = { TH_WORKERS * TH_RANGE, th_amap };
	ck_assert_uint_eq(amap_next_used(&wr, 0, TH_RANGE), SIZE_MAX);
	amap_unlock(th_amap);
	ck_assert_int_eq(live_anons(), (int64_t)total);
	amap_unref(th_amap, 0, 0, AMAP_REFALL);
	ck_assert_int_eq(live_anons(), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

static void
add_case(Suite *s, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

/* One case per test: CK_RUN_CASE=model runs just the model test. */
static Suite *
amap_suite(void)
{
	Suite *s = suite_create("amap");

	add_case(s, "boundaries", test_boundaries);
	add_case(s, "splitref", test_splitref_ppref);
	add_case(s, "partial_ref", test_partial_ref_shared);
	add_case(s, "next_used_extend", test_next_used_extend);
	add_case(s, "model", test_model);
	add_case(s, "threads", test_threads);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(amap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
