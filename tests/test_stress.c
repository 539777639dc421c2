/*
 * test_stress.c: threads faulting while other threads unmap, remap,
 * discard, re-protect and re-advise the same address ranges.
 *
 * Slots of memory, each guarded by a rwlock: faulting threads hold it for
 * reading while they write and verify pages; changing threads hold it for
 * writing while they change the slot's mapping.  So every map change
 * runs concurrently with faults on the other slots (and on the same map
 * and amaps), and each page's contents are always predictable:
 *   state 0: never written since the slot's last reset: reads 0 (or the
 *            pattern, if a writer is between its store and its state
 *            update);
 *   state 1: reads the pattern of the slot's generation.
 * Runs USRVM_STRESS_SECONDS (default 4) seconds.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "map.h"
#include "space.h"

#define NSLOTS		16
#define SLOT_PAGES	64
#define NFAULTERS	4
#define NCHANGERS	2
#define RW		(USRVM_PROT_READ | USRVM_PROT_WRITE)
#define PA		(USRVM_MAP_PRIVATE | USRVM_MAP_ANON)

struct slot {
	pthread_rwlock_t lock;
	char *base;
	uint64_t gen;				/* lock (write) */
	_Atomic uint8_t state[SLOT_PAGES];
};

static struct slot slots[NSLOTS];
static struct usrvm_space *vs;
static _Atomic bool stop;
static _Atomic uint64_t nverified, nchanges;
static uint64_t seed0;

static uint64_t
value(struct slot *s, size_t pg)
{
	return t_pattern((uintptr_t)s->base + pg * T_PAGE, s->gen);
}

static void *
faulter(void *arg)
{
	uint64_t rs = seed0 + (uintptr_t)arg * 7919;

	while (!atomic_load(&stop)) {
		struct slot *s = &slots[t_rand(&rs) % NSLOTS];
		pthread_rwlock_rdlock(&s->lock);
		for (int k = 0; k < 32; k++) {
			size_t pg = t_rand(&rs) % SLOT_PAGES;
			/* Several faulters store the same value into a
			 * word other threads load: relaxed atomics, so the
			 * test itself is race-free (ThreadSanitizer). */
			uint64_t *w = (uint64_t *)(s->base + pg * T_PAGE) +
			    (t_rand(&rs) % 4) * 64;
			uint64_t want = value(s, pg), got;
			if (atomic_load_explicit(&s->state[pg],
			    memory_order_acquire) == 1) {
				got = __atomic_load_n(w, __ATOMIC_RELAXED);
				if (got != want) {
					fprintf(stderr, "slot %ld page %zu: "
					    "%#llx, want %#llx\n",
					    (long)(s - slots), pg,
					    (unsigned long long)got,
					    (unsigned long long)want);
					abort();
				}
				atomic_fetch_add(&nverified, 1);
			} else if (t_rand(&rs) % 2) {
				got = __atomic_load_n(w, __ATOMIC_RELAXED);
				if (got != 0 && got != want)
					abort();
			} else {
				/* Every word a writer may use gets it. */
				for (int q = 0; q < 4; q++)
					__atomic_store_n((uint64_t *)(s->base +
					    pg * T_PAGE) + q * 64, want,
					    __ATOMIC_RELAXED);
				atomic_store_explicit(&s->state[pg], 1,
				    memory_order_release);
			}
		}
		pthread_rwlock_unlock(&s->lock);
	}
	return NULL;
}

static void
slot_reset(struct slot *s, size_t first, size_t n)
{
	for (size_t i = first; i < first + n; i++)
		atomic_store(&s->state[i], 0);
}

static void
must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "stress: %s failed\n", what);
		abort();
	}
}

static void *
changer(void *arg)
{
	uint64_t rs = seed0 ^ ((uintptr_t)arg * 104729);

	while (!atomic_load(&stop)) {
		struct slot *s = &slots[t_rand(&rs) % NSLOTS];
		size_t half = SLOT_PAGES / 2 * T_PAGE;
		pthread_rwlock_wrlock(&s->lock);
		switch (t_rand(&rs) % 5) {
		case 0:		/* unmap all, map again in place */
			must(usrvm_unmap(vs, s->base, SLOT_PAGES * T_PAGE) ==
			    0, "unmap");
			must(usrvm_map(vs, s->base, SLOT_PAGES * T_PAGE, RW,
			    PA | USRVM_MAP_FIXED, -1, 0) == s->base, "map");
			s->gen++;
			slot_reset(s, 0, SLOT_PAGES);
			break;
		case 1:		/* the back half only: a clipped amap */
			must(usrvm_unmap(vs, s->base + half, half) == 0,
			    "unmap half");
			must(usrvm_map(vs, s->base + half, half, RW,
			    PA | USRVM_MAP_FIXED, -1, 0) == s->base + half,
			    "map half");
			/* pages keep their generation's pattern: only the
			 * back half reads zero now */
			slot_reset(s, SLOT_PAGES / 2, SLOT_PAGES / 2);
			break;
		case 2:		/* discard a quarter */
			must(usrvm_advise(vs, s->base + half / 2, half,
			    USRVM_ADV_DONTNEED) == 0, "dontneed");
			slot_reset(s, SLOT_PAGES / 4, SLOT_PAGES / 2);
			break;
		case 3:		/* protect round trip (clips, merges) */
			must(usrvm_protect(vs, s->base + T_PAGE, 3 * T_PAGE,
			    USRVM_PROT_READ) == 0, "protect r");
			must(usrvm_protect(vs, s->base + T_PAGE, 3 * T_PAGE,
			    RW) == 0, "protect rw");
			break;
		default:	/* advice changes the fault-around window */
			must(usrvm_advise(vs, s->base, SLOT_PAGES * T_PAGE,
			    (int)(t_rand(&rs) % 3)) == 0, "advise");
			break;
		}
		pthread_rwlock_unlock(&s->lock);
		atomic_fetch_add(&nchanges, 1);
	}
	return NULL;
}

START_TEST(fault_while_changing)
{
	pthread_t f[NFAULTERS], c[NCHANGERS];
	const char *e = getenv("USRVM_STRESS_SECONDS");
	unsigned seconds = e != NULL ? (unsigned)atoi(e) : 4;
	struct usrvm_stats st;

	seed0 = t_seed(0x5eed);
	t_start();
	vs = usrvm_default_space();
	for (int i = 0; i < NSLOTS; i++) {
		pthread_rwlock_init(&slots[i].lock, NULL);
		slots[i].base = t_map(vs, SLOT_PAGES * T_PAGE);
	}
	for (uintptr_t i = 0; i < NFAULTERS; i++)
		pthread_create(&f[i], NULL, faulter, (void *)i);
	for (uintptr_t i = 0; i < NCHANGERS; i++)
		pthread_create(&c[i], NULL, changer, (void *)i);
	sleep(seconds);
	atomic_store(&stop, true);
	for (int i = 0; i < NFAULTERS; i++)
		pthread_join(f[i], NULL);
	for (int i = 0; i < NCHANGERS; i++)
		pthread_join(c[i], NULL);

	map_validate(&vs->vs_map);
	for (int i = 0; i < NSLOTS; i++) {
		struct slot *s = &slots[i];
		for (size_t pg = 0; pg < SLOT_PAGES; pg++)
			if (atomic_load(&s->state[pg]) == 1)
				ck_assert_uint_eq(*(uint64_t *)(s->base +
				    pg * T_PAGE), value(s, pg));
		ck_assert_int_eq(usrvm_unmap(vs, s->base, SLOT_PAGES * T_PAGE),
		    0);
	}
	usrvm_stats(&st);
	fprintf(stderr, "stress: %u s, %llu pages verified, %llu changes, "
	    "%llu faults (%llu duplicates)\n", seconds,
	    (unsigned long long)nverified, (unsigned long long)nchanges,
	    (unsigned long long)st.faults, (unsigned long long)st.faults_dup);
	ck_assert_uint_gt(nverified, 1000);
	ck_assert_uint_gt(nchanges, 100);
	ck_assert_uint_eq(st.faults_error, 0);
	ck_assert_uint_eq(st.resident, 0);
	ck_assert_uint_eq(st.anons, 0);
	t_stop();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("stress");

	t_require_uffd();
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, fault_while_changing);
	suite_add_tcase(s, tc);
	return t_run(s, 600);
}
