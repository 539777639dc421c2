/*
 * test_events.c: the application's own madvise, munmap, mremap and mmap
 * inside managed memory leave no stale state behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"

#define RW	(USRVM_PROT_READ | USRVM_PROT_WRITE)
#define PA	(USRVM_MAP_PRIVATE | USRVM_MAP_ANON)

static struct usrvm_stats
stats(void)
{
	struct usrvm_stats st;

	ck_assert_int_eq(usrvm_stats(&st), 0);
	return st;
}

/*
 * The event's handler may still be running when the application's call
 * returns (the kernel waits only until the event is read): wait for the
 * counter to settle, up to a second.
 */
static void
wait_resident(uint64_t want)
{
	for (int i = 0; i < 1000 && stats().resident != want; i++)
		usleep(1000);
	ck_assert_uint_eq(stats().resident, want);
}

static void
fill(char *p, size_t npages, uint64_t tag)
{
	for (size_t i = 0; i < npages; i++)
		*(uint64_t *)(p + i * T_PAGE) = t_pattern((uintptr_t)p +
		    i * T_PAGE, tag);
}

static void
check(char *p, size_t npages, uint64_t tag)
{
	for (size_t i = 0; i < npages; i++)
		ck_assert_uint_eq(*(uint64_t *)(p + i * T_PAGE),
		    t_pattern((uintptr_t)p + i * T_PAGE, tag));
}

START_TEST(app_madvise_dontneed)
{
	struct usrvm_space *vs;
	char *p;

	t_start();
	vs = usrvm_default_space();
	p = t_map(vs, 64 * T_PAGE);
	fill(p, 64, 1);
	wait_resident(64);
	ck_assert_int_eq(madvise(p + 16 * T_PAGE, 16 * T_PAGE,
	    MADV_DONTNEED), 0);
	wait_resident(48);
	ck_assert_uint_ge(stats().events_remove, 1);
	for (size_t i = 16; i < 32; i++)
		ck_assert_uint_eq(*(uint64_t *)(p + i * T_PAGE), 0);
	check(p, 16, 1);
	check(p + 32 * T_PAGE, 32, 1);
	/* The discarded pages work as new memory. */
	fill(p + 16 * T_PAGE, 16, 2);
	check(p + 16 * T_PAGE, 16, 2);
	ck_assert_int_eq(usrvm_unmap(vs, p, 64 * T_PAGE), 0);
	wait_resident(0);
	ck_assert_uint_eq(stats().anons, 0);
	t_stop();
}
END_TEST

START_TEST(app_munmap)
{
	struct usrvm_space *vs;
	char *p, *q;

	t_start();
	vs = usrvm_default_space();
	p = t_map(vs, 32 * T_PAGE);
	fill(p, 32, 1);
	ck_assert_int_eq(munmap(p + 8 * T_PAGE, 8 * T_PAGE), 0);
	wait_resident(24);
	ck_assert_uint_ge(stats().events_unmap, 1);
	check(p, 8, 1);
	check(p + 16 * T_PAGE, 16, 1);
	/* The range is the runtime's again: it can be mapped. */
	q = usrvm_map(vs, p + 8 * T_PAGE, 8 * T_PAGE, RW,
	    PA | USRVM_MAP_FIXED, -1, 0);
	ck_assert_ptr_eq(q, p + 8 * T_PAGE);
	for (size_t i = 0; i < 8; i++)
		ck_assert_uint_eq(*(uint64_t *)(q + i * T_PAGE), 0);
	fill(q, 8, 3);
	check(q, 8, 3);
	ck_assert_int_eq(usrvm_unmap(vs, p, 32 * T_PAGE), 0);
	wait_resident(0);
	t_stop();
}
END_TEST

START_TEST(app_mremap_out)
{
	struct usrvm_space *vs;
	char *p, *dst, *moved;

	t_start();
	vs = usrvm_default_space();
	p = t_map(vs, 32 * T_PAGE);
	fill(p, 16, 1);				/* pages 16..31 untouched */
	dst = mmap(NULL, 16 * T_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	ck_assert_ptr_ne(dst, MAP_FAILED);
	moved = mremap(p + 8 * T_PAGE, 16 * T_PAGE, 16 * T_PAGE,
	    MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ck_assert_ptr_eq(moved, dst);
	wait_resident(8);
	ck_assert_uint_ge(stats().events_remap, 1);
	/* The moved pages kept their bytes; untouched ones are plain
	 * kernel memory now (they read zero, no fault reaches usrvm). */
	for (size_t i = 0; i < 8; i++)
		ck_assert_uint_eq(*(uint64_t *)(dst + i * T_PAGE),
		    t_pattern((uintptr_t)p + (8 + i) * T_PAGE, 1));
	for (size_t i = 8; i < 16; i++) {
		ck_assert_uint_eq(*(uint64_t *)(dst + i * T_PAGE), 0);
		dst[i * T_PAGE] = 1;
	}
	check(p, 8, 1);
	munmap(dst, 16 * T_PAGE);
	ck_assert_int_eq(usrvm_unmap(vs, p, 32 * T_PAGE), 0);
	wait_resident(0);
	t_stop();
}
END_TEST

START_TEST(app_mmap_over)
{
	struct usrvm_space *vs;
	char *p, *mine;

	t_start();
	vs = usrvm_default_space();
	p = t_map(vs, 16 * T_PAGE);
	fill(p, 16, 1);
	mine = mmap(p + 4 * T_PAGE, 4 * T_PAGE, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ck_assert_ptr_eq(mine, p + 4 * T_PAGE);
	mine[0] = 7;
	wait_resident(12);
	/* The runtime keeps out of the application's mapping. */
	errno = 0;
	ck_assert_ptr_null(usrvm_map(vs, mine, T_PAGE, RW, PA | USRVM_MAP_FIXED,
	    -1, 0));
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_int_eq(usrvm_unmap(vs, p, 16 * T_PAGE), 0);
	ck_assert_int_eq(mine[0], 7);		/* not clobbered */
	munmap(mine, 4 * T_PAGE);
	wait_resident(0);
	t_stop();
}
END_TEST

START_TEST(advise_dontneed_and_free)
{
	struct usrvm_space *vs;
	char *p;

	t_start();
	vs = usrvm_default_space();
	p = t_map(vs, 32 * T_PAGE);
	fill(p, 32, 1);
	ck_assert_int_eq(usrvm_advise(vs, p, 8 * T_PAGE, USRVM_ADV_DONTNEED),
	    0);
	ck_assert_int_eq(usrvm_advise(vs, p + 8 * T_PAGE, 8 * T_PAGE,
	    USRVM_ADV_FREE), 0);
	wait_resident(16);
	for (size_t i = 0; i < 16; i++)
		ck_assert_uint_eq(*(uint64_t *)(p + i * T_PAGE), 0);
	check(p + 16 * T_PAGE, 16, 1);
	ck_assert_int_eq(usrvm_advise(vs, p, 32 * T_PAGE, USRVM_ADV_WILLNEED),
	    0);
	ck_assert_int_eq(usrvm_unmap(vs, p, 32 * T_PAGE), 0);
	wait_resident(0);
	t_stop();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("events");

	t_require_uffd();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, app_madvise_dontneed);
	tcase_add_test(tc, app_munmap);
	tcase_add_test(tc, app_mremap_out);
	tcase_add_test(tc, app_mmap_over);
	tcase_add_test(tc, advise_dontneed_and_free);
	suite_add_tcase(s, tc);
	return t_run(s, 60);
}
