/*
 * test_fault.c: fault correctness through the real userfaultfd path.
 *
 * Read of never-touched memory gives zeros; writes read back; several
 * threads faulting on the same and on different pages; read-then-write
 * (zero page, then write-protect promotion); system calls reading into
 * and writing from never-touched managed pages; fault-around by advice;
 * resident accounting back to zero after unmap.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define NTHREADS 4

static struct usrvm_stats
stats(void)
{
	struct usrvm_stats st;

	ck_assert_int_eq(usrvm_stats(&st), 0);
	return st;
}

START_TEST(read_zero_write_back)
{
	struct usrvm_space *vs;
	size_t len = 4 << 20;
	uint64_t *p;

	t_start();
	vs = usrvm_default_space();
	p = t_map(vs, len);
	for (size_t i = 0; i < len / 8; i += 509)
		ck_assert_uint_eq(p[i], 0);
	for (size_t i = 0; i < len / 8; i += 7)
		p[i] = t_pattern((uintptr_t)&p[i], i);
	for (size_t i = 0; i < len / 8; i++)
		ck_assert_uint_eq(p[i], i % 7 == 0 ?
		    t_pattern((uintptr_t)&p[i], i) : 0);
	ck_assert_int_eq(usrvm_unmap(vs, p, len), 0);
	struct usrvm_stats st = stats();
	ck_assert_uint_gt(st.faults, 0);
	ck_assert_uint_eq(st.resident, 0);
	ck_assert_uint_eq(st.anons, 0);
	ck_assert_uint_gt(st.resident_peak, 0);
	t_stop();
}
END_TEST

/* Threads writing interleaved pages of one region, then verifying. */
struct wargs {
	char *base;
	size_t npages;
	unsigned t;
	unsigned n;
};

static void *
interleaved_writer(void *arg)
{
	struct wargs *w = arg;

	for (size_t pg = w->t; pg < w->npages; pg += w->n) {
		uint64_t *q = (uint64_t *)(w->base + pg * T_PAGE);
		q[pg % 512] = t_pattern((uintptr_t)q, w->t);
	}
	return NULL;
}

START_TEST(threads_interleaved)
{
	struct usrvm_space *vs;
	pthread_t th[NTHREADS];
	struct wargs w[NTHREADS];
	size_t npages = 16384;
	char *base;

	t_start();
	vs = usrvm_default_space();
	base = t_map(vs, npages * T_PAGE);
	for (unsigned t = 0; t < NTHREADS; t++) {
		w[t] = (struct wargs){ base, npages, t, NTHREADS };
		pthread_create(&th[t], NULL, interleaved_writer, &w[t]);
	}
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	for (size_t pg = 0; pg < npages; pg++) {
		uint64_t *q = (uint64_t *)(base + pg * T_PAGE);
		for (size_t k = 0; k < 512; k++)
			ck_assert_uint_eq(q[k], k == pg % 512 ?
			    t_pattern((uintptr_t)q, pg % NTHREADS) : 0);
	}
	ck_assert_uint_eq(stats().resident, npages);
	ck_assert_int_eq(usrvm_unmap(vs, base, npages * T_PAGE), 0);
	ck_assert_uint_eq(stats().resident, 0);
	t_stop();
}
END_TEST

/* All threads hammer the same pages: duplicates must be harmless. */
static pthread_barrier_t same_barrier;

static void *
same_pages(void *arg)
{
	struct wargs *w = arg;

	pthread_barrier_wait(&same_barrier);
	for (size_t pg = 0; pg < w->npages; pg++) {
		volatile uint64_t *q = (uint64_t *)(w->base + pg * T_PAGE);
		if (w->t % 2 == 0)
			(void)q[0];			/* read: zero page */
		q[1 + w->t] = t_pattern((uintptr_t)q, w->t);
	}
	return NULL;
}

START_TEST(threads_same_pages)
{
	struct usrvm_space *vs;
	pthread_t th[NTHREADS];
	struct wargs w[NTHREADS];
	size_t npages = 4096;
	char *base;

	t_start();
	vs = usrvm_default_space();
	base = t_map(vs, npages * T_PAGE);
	ck_assert_int_eq(usrvm_advise(vs, base, npages * T_PAGE,
	    USRVM_ADV_RANDOM), 0);	/* one page per fault: most contention */
	pthread_barrier_init(&same_barrier, NULL, NTHREADS);
	for (unsigned t = 0; t < NTHREADS; t++) {
		w[t] = (struct wargs){ base, npages, t, NTHREADS };
		pthread_create(&th[t], NULL, same_pages, &w[t]);
	}
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	for (size_t pg = 0; pg < npages; pg++) {
		uint64_t *q = (uint64_t *)(base + pg * T_PAGE);
		ck_assert_uint_eq(q[0], 0);
		for (unsigned t = 0; t < NTHREADS; t++)
			ck_assert_uint_eq(q[1 + t], t_pattern((uintptr_t)q, t));
	}
	ck_assert_uint_eq(stats().resident, npages);
	ck_assert_int_eq(usrvm_unmap(vs, base, npages * T_PAGE), 0);
	pthread_barrier_destroy(&same_barrier);
	t_stop();
}
END_TEST

/* Read first (zero pages, no memory), then write (promotion). */
START_TEST(read_then_write)
{
	struct usrvm_space *vs;
	size_t npages = 2048;
	char *base;
	uint64_t sum = 0;

	t_start();
	vs = usrvm_default_space();
	base = t_map(vs, npages * T_PAGE);
	for (size_t pg = 0; pg < npages; pg++)
		sum += *(volatile uint64_t *)(base + pg * T_PAGE + 8);
	ck_assert_uint_eq(sum, 0);
	struct usrvm_stats st = stats();
	ck_assert_uint_eq(st.resident, 0);	/* zero pages cost nothing */
	ck_assert_uint_ge(st.pages_zero_mapped, npages);
	for (size_t pg = 0; pg < npages; pg += 3)
		*(uint64_t *)(base + pg * T_PAGE) = pg + 1;
	for (size_t pg = 0; pg < npages; pg++)
		ck_assert_uint_eq(*(uint64_t *)(base + pg * T_PAGE),
		    pg % 3 == 0 ? pg + 1 : 0);
	st = stats();
	ck_assert_uint_eq(st.resident, (npages + 2) / 3);
	ck_assert_uint_ge(st.faults_wp, (npages + 2) / 3);
	ck_assert_int_eq(usrvm_unmap(vs, base, npages * T_PAGE), 0);
	ck_assert_uint_eq(stats().resident, 0);
	t_stop();
}
END_TEST

/* The kernel itself touches managed memory: read(2) and write(2). */
START_TEST(syscalls_into_untouched)
{
	struct usrvm_space *vs;
	char path[] = "/tmp/usrvm-test-XXXXXX";
	char buf[3 * T_PAGE], *base;
	int fd;

	t_start();
	vs = usrvm_default_space();
	base = t_map(vs, 64 * T_PAGE);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + 3);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(write(fd, buf, sizeof(buf)), sizeof(buf));

	/* read(2) into never-touched pages, straddling page boundaries. */
	ck_assert_int_eq(pread(fd, base + 10 * T_PAGE + 100, sizeof(buf), 0),
	    sizeof(buf));
	ck_assert_mem_eq(base + 10 * T_PAGE + 100, buf, sizeof(buf));
	/* write(2) from never-touched pages reads zeros. */
	ck_assert_int_eq(pwrite(fd, base + 40 * T_PAGE, 2 * T_PAGE, 0),
	    2 * T_PAGE);
	ck_assert_int_eq(pread(fd, buf, 2 * T_PAGE, 0), 2 * T_PAGE);
	for (size_t i = 0; i < 2 * T_PAGE; i++)
		ck_assert_int_eq(buf[i], 0);
	close(fd);
	ck_assert_int_eq(usrvm_unmap(vs, base, 64 * T_PAGE), 0);
	t_stop();
}
END_TEST

/* Sequential first touch must not cost a round trip per page. */
START_TEST(fault_around_by_advice)
{
	static const int advice[] = { USRVM_ADV_NORMAL, USRVM_ADV_SEQUENTIAL,
	    USRVM_ADV_RANDOM };
	struct usrvm_space *vs;
	size_t npages = 8192;

	t_start();
	vs = usrvm_default_space();
	for (unsigned a = 0; a < 3; a++) {
		char *base = t_map(vs, npages * T_PAGE);
		struct usrvm_stats before = stats(), after;
		ck_assert_int_eq(usrvm_advise(vs, base, npages * T_PAGE,
		    advice[a]), 0);
		for (size_t pg = 0; pg < npages; pg++)
			base[pg * T_PAGE] = (char)pg;
		for (size_t pg = 0; pg < npages; pg++)
			ck_assert_int_eq(base[pg * T_PAGE], (char)pg);
		after = stats();
		uint64_t zf = after.faults_zero - before.faults_zero;
		if (advice[a] == USRVM_ADV_RANDOM)
			ck_assert_uint_eq(zf, npages);
		else
			ck_assert_msg(zf <= npages / 32, "%llu zero-fill "
			    "faults for %zu sequential pages (advice %d)",
			    (unsigned long long)zf, npages, advice[a]);
		ck_assert_int_eq(usrvm_unmap(vs, base, npages * T_PAGE), 0);
	}
	t_stop();
}
END_TEST

/* Several spaces at once, each its own address range. */
START_TEST(several_spaces)
{
	struct usrvm_space *vs[4];
	uint64_t *p[4];

	t_start();
	for (int i = 0; i < 4; i++) {
		vs[i] = usrvm_space_create((size_t)1 << 30);
		ck_assert_ptr_nonnull(vs[i]);
		p[i] = t_map(vs[i], 1 << 20);
		ck_assert((char *)p[i] >= (char *)usrvm_space_base(vs[i]));
		p[i][0] = 100 + i;
	}
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(p[i][0], 100 + i);
		ck_assert_int_eq(usrvm_space_destroy(vs[i]), 0);
	}
	struct usrvm_stats st = stats();
	ck_assert_uint_eq(st.spaces, 1);	/* the default space */
	ck_assert_uint_eq(st.resident, 0);
	t_stop();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("fault");
	TCase *tc = tcase_create("fault");

	t_require_uffd();
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, read_zero_write_back);
	tcase_add_test(tc, threads_interleaved);
	tcase_add_test(tc, threads_same_pages);
	tcase_add_test(tc, read_then_write);
	tcase_add_test(tc, syscalls_into_untouched);
	tcase_add_test(tc, fault_around_by_advice);
	tcase_add_test(tc, several_spaces);
	suite_add_tcase(s, tc);
	return t_run(s, 120);
}
