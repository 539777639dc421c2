/*
 * test_aobj.c: shared anonymous memory (USRVM_MAP_SHARED|USRVM_MAP_ANON,
 * the aobj pager).
 *
 * Every page written holds one 64-bit word repeated, made from the
 * page's index and a version: a page is checked whole, against a model
 * of which version each page should hold (0: never written, zeros).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define RW		(USRVM_PROT_READ | USRVM_PROT_WRITE)
#define SA		(USRVM_MAP_SHARED | USRVM_MAP_ANON)
#define MIB		((size_t)1 << 20)

static char *
t_smap(struct usrvm_space *vs, size_t len)
{
	char *p = usrvm_map(vs, NULL, len, RW, SA, -1, 0);

	ck_assert_msg(p != NULL, "usrvm_map(SHARED|ANON): %s",
	    strerror(errno));
	return p;
}

/* The address in space `to` of address p of space `from`. */
static char *
t_same(struct usrvm_space *from, struct usrvm_space *to, char *p)
{
	return (char *)usrvm_space_base(to) +
	    (p - (char *)usrvm_space_base(from));
}

/* ------------------------------------------------------------------ */

/*
 * Zeros at first; a write through one mapping is in every other at
 * once: the two entries a clip leaves, and a space usrvm_fork made (SHARE
 * is a shared mapping's default).  The object lives while any mapping
 * does, and its commit goes back with the last.
 */
START_TEST(shared_between_spaces)
{
	struct usrvm_space *p, *c;
	uint64_t committed;
	char *a, *b;

	t_start_budget(64 * MIB, 0);
	committed = t_stats().committed;
	ck_assert_ptr_nonnull(p = usrvm_space_create(256 * MIB));
	a = t_smap(p, 64 * T_PAGE);
	ck_assert_uint_eq(t_stats().aobjs, 1);
	ck_assert_uint_eq(t_stats().committed, committed + 64);
	for (size_t pg = 0; pg < 64; pg++)
		ck_assert(t_page_is(a, pg, 0));
	for (size_t pg = 0; pg < 64; pg += 2)
		t_page_write(a, pg, 1);
	/* Two entries of one object. */
	ck_assert_int_eq(usrvm_protect(p, a + 32 * T_PAGE, 32 * T_PAGE,
	    USRVM_PROT_READ), 0);
	ck_assert_int_eq(usrvm_protect(p, a + 32 * T_PAGE, 32 * T_PAGE, RW),
	    0);

	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	b = t_same(p, c, a);
	ck_assert_uint_eq(t_stats().aobjs, 1);
	for (size_t pg = 0; pg < 64; pg++)
		ck_assert(t_page_is(b, pg, pg % 2 == 0 ? 1 : 0));
	t_page_write(b, 1, 2);			/* the child's write ... */
	ck_assert(t_page_is(a, 1, 2));		/* ... is the parent's */
	t_page_write(a, 40, 3);
	ck_assert(t_page_is(b, 40, 3));

	/* The parent goes; the child keeps the memory. */
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	ck_assert(t_page_is(b, 1, 2));
	ck_assert(t_page_is(b, 40, 3));
	ck_assert(t_page_is(b, 2, 1));
	ck_assert_uint_eq(t_stats().aobjs, 1);
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	ck_assert_uint_eq(t_stats().aobjs, 0);
	ck_assert_uint_eq(t_stats().committed, committed);
	t_stop();
}
END_TEST

/* NONE leaves a hole in the child, ZERO fresh private memory, COPY a
 * private (copy-on-write) view of the object. */
START_TEST(inheritance)
{
	struct usrvm_space *p, *c;
	uint64_t committed;
	char *a, *b;

	t_start_budget(64 * MIB, 0);
	ck_assert_ptr_nonnull(p = usrvm_space_create(256 * MIB));
	a = t_smap(p, 16 * T_PAGE);
	t_page_write(a, 0, 1);
	ck_assert_int_eq(usrvm_inherit(p, a, 16 * T_PAGE, USRVM_INH_NONE), 0);
	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	ck_assert_uint_eq(t_stats().map_entries, 1);	/* the parent's */
	ck_assert_int_eq(usrvm_space_destroy(c), 0);

	committed = t_stats().committed;
	ck_assert_int_eq(usrvm_inherit(p, a, 16 * T_PAGE, USRVM_INH_ZERO), 0);
	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	ck_assert_uint_eq(t_stats().committed, committed + 16);
	b = t_same(p, c, a);
	ck_assert(t_page_is(b, 0, 0));
	t_page_write(b, 0, 2);			/* its own */
	ck_assert(t_page_is(a, 0, 1));
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	ck_assert_uint_eq(t_stats().committed, committed);
	/* COPY: a private view of the object, committed like private
	 * memory: its writes are its own, the parent's show where it has
	 * not written. */
	ck_assert_int_eq(usrvm_inherit(p, a, 16 * T_PAGE, USRVM_INH_COPY), 0);
	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	ck_assert_uint_eq(t_stats().committed, committed + 16);
	b = t_same(p, c, a);
	ck_assert(t_page_is(b, 0, 1));
	t_page_write(b, 0, 3);
	ck_assert(t_page_is(a, 0, 1));
	t_page_write(a, 1, 4);
	ck_assert(t_page_is(b, 1, 4));
	t_page_write(a, 0, 5);
	ck_assert(t_page_is(b, 0, 3));
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	ck_assert_uint_eq(t_stats().committed, committed);
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	t_stop();
}
END_TEST

/* What cannot be committed is refused, with nothing made. */
START_TEST(commit)
{
	struct usrvm_stats st;

	t_start_budget(4 * MIB, 4 * MIB);
	st = t_stats();
	errno = 0;
	ck_assert_ptr_null(usrvm_map(usrvm_default_space(), NULL, 64 * MIB,
	    RW, SA, -1, 0));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_uint_eq(t_stats().committed, st.committed);
	ck_assert_uint_eq(t_stats().aobjs, 0);
	t_stop();
}
END_TEST

/* Pages read but never written are zeros, and are dropped with no
 * write when the budget needs them. */
START_TEST(zeros_cost_no_io)
{
	struct usrvm_space *vs;
	const size_t n = 4096;			/* 16 MiB through 2 MiB */
	struct usrvm_stats st;
	char *a;

	t_start_budget(2 * MIB, 0);
	vs = usrvm_default_space();
	a = t_smap(vs, n * T_PAGE);
	for (size_t pg = 0; pg < n; pg++)
		ck_assert(t_page_is(a, pg, 0));
	st = t_stats();
	ck_assert_uint_eq(st.pageouts, 0);
	ck_assert_uint_gt(st.evict_clean, 0);
	ck_assert_uint_le(st.resident_peak, 2 * MIB / T_PAGE + 64);
	ck_assert_int_eq(usrvm_unmap(vs, a, n * T_PAGE), 0);
	t_stop();
}
END_TEST

/*
 * Eight times the budget, written and read by four threads through two
 * spaces' mappings of one object: each thread owns the pages whose index
 * is its number modulo 4, writes a page through one space and checks it
 * through the other, and every page is checked at the end.  Everything
 * swapped goes back when the spaces go.
 */
#define ET_PAGES	8192		/* 32 MiB */
#define ET_THREADS	4
#define ET_ROUNDS	3

static char *et_a, *et_b;
static uint64_t et_v[ET_PAGES];
static _Atomic unsigned et_bad;

static void *
et_thread(void *arg)
{
	size_t t = (size_t)arg;
	uint64_t seed = t_seed(7) + t;

	for (int r = 0; r < ET_ROUNDS; r++)
		for (size_t pg = t; pg < ET_PAGES; pg += ET_THREADS) {
			char *w = t_rand(&seed) % 2 ? et_a : et_b;
			char *o = w == et_a ? et_b : et_a;
			if (!t_page_is(o, pg, et_v[pg]))
				et_bad++;
			et_v[pg]++;
			t_page_write(w, pg, et_v[pg]);
			if (t_rand(&seed) % 4 == 0 &&
			    !t_page_is(o, pg, et_v[pg]))
				et_bad++;
		}
	return NULL;
}

START_TEST(evict_threads)
{
	struct usrvm_space *p, *c;
	pthread_t th[ET_THREADS];
	struct usrvm_stats st;

	t_start_budget(4 * MIB, 0);
	ck_assert_ptr_nonnull(p = usrvm_space_create(256 * MIB));
	et_a = t_smap(p, ET_PAGES * T_PAGE);
	ck_assert_ptr_nonnull(c = usrvm_fork(p));
	et_b = t_same(p, c, et_a);
	for (size_t t = 0; t < ET_THREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, et_thread,
		    (void *)t), 0);
	for (size_t t = 0; t < ET_THREADS; t++)
		pthread_join(th[t], NULL);
	ck_assert_uint_eq(et_bad, 0);
	for (size_t pg = 0; pg < ET_PAGES; pg++) {
		ck_assert_msg(t_page_is(et_a, pg, et_v[pg]), "page %zu", pg);
		ck_assert_msg(t_page_is(et_b, pg, et_v[pg]), "page %zu", pg);
	}
	st = t_stats();
	ck_assert_uint_gt(st.pageouts, 0);
	ck_assert_uint_gt(st.pageins, 0);
	ck_assert_uint_eq(st.faults_error, 0);
	ck_assert_uint_le(st.resident_peak, 4 * MIB / T_PAGE + 256);
	ck_assert_int_eq(usrvm_space_destroy(p), 0);
	ck_assert_int_eq(usrvm_space_destroy(c), 0);
	st = t_drained();
	ck_assert_uint_eq(st.aobjs, 0);
	ck_assert_uint_eq(st.swap_slots_used, 0);
	ck_assert_uint_eq(st.resident, 0);
	t_stop();
}
END_TEST

/* Fill n pages at version v, through a budget much smaller: the first
 * pages are out on swap by the end. */
static void
fill(char *a, size_t n, uint64_t v)
{
	for (size_t pg = 0; pg < n; pg++)
		t_page_write(a, pg, v);
}

/*
 * Injected errors: a failed page-out retires its slots and the pages are
 * written elsewhere, with nothing lost; a failed page-in loses that page
 * alone (SIGBUS there, every other page intact).
 */
START_TEST(io_errors)
{
	struct usrvm_space *vs;
	const size_t n = 4096;
	struct usrvm_stats st;
	char *a;

	t_start_budget(2 * MIB, 0);
	vs = usrvm_default_space();
	a = t_smap(vs, n * T_PAGE);
	ck_assert_int_eq(usrvm_inject(USRVM_INJECT_SWAP_WRITE, EIO, 1), 0);
	fill(a, n, 1);
	st = t_stats();
	ck_assert_uint_ge(st.io_errors_write, 1);
	ck_assert_uint_ge(st.swap_slots_bad, 1);
	for (size_t pg = 0; pg < n; pg++)
		ck_assert_msg(t_page_is(a, pg, 1), "page %zu", pg);

	fill(a, n, 2);		/* page 0 is on swap again */
	ck_assert_int_eq(usrvm_inject(USRVM_INJECT_SWAP_READ, EIO, 1), 0);
	ck_assert_msg(t_sigbus(a), "no SIGBUS for a failed page-in");
	st = t_stats();
	ck_assert_uint_eq(st.io_errors_read, 1);
	ck_assert_uint_eq(st.pages_lost, 1);
	ck_assert_msg(t_sigbus(a), "a lost page must stay lost");
	for (size_t pg = 1; pg < n; pg++)
		ck_assert_msg(t_page_is(a, pg, 2), "page %zu", pg);
	ck_assert_int_eq(usrvm_unmap(vs, a, n * T_PAGE), 0);
	st = t_drained();
	ck_assert_uint_eq(st.aobjs, 0);
	ck_assert_uint_eq(st.swap_slots_used, 0);
	t_stop();
}
END_TEST

/*
 * fork(2): the child gets a copy of the memory as it was, resident and
 * swapped pages alike; what it writes stays its own.
 */
START_TEST(fork_child)
{
	struct usrvm_space *vs;
	const size_t n = 2048;
	int status;
	pid_t pid;
	char *a;

	t_start_budget(2 * MIB, 0);
	vs = usrvm_default_space();
	a = t_smap(vs, n * T_PAGE);
	fill(a, n, 5);
	ck_assert_uint_gt(t_stats().pageouts, 0);
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		for (size_t pg = 0; pg < n; pg++)
			if (!t_page_is(a, pg, 5))
				_exit(1);
		t_page_write(a, 0, 6);
		_exit(t_page_is(a, 0, 6) ? 0 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(status == 0, "the fork child saw other contents (%#x)",
	    status);
	for (size_t pg = 0; pg < n; pg++)
		ck_assert(t_page_is(a, pg, 5));
	ck_assert_int_eq(usrvm_unmap(vs, a, n * T_PAGE), 0);
	t_stop();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("aobj");

	t_require_uffd();
#define CASE(fn) t_case(s, #fn, fn, 120)
	CASE(shared_between_spaces);
	CASE(inheritance);
	CASE(commit);
	CASE(zeros_cost_no_io);
	CASE(evict_threads);
	CASE(io_errors);
	t_case_forks(s, "fork_child", fork_child, 120);
#undef CASE
	return t_run(s, 120);
}
