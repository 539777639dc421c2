/*
 * test_api.c: every API error path, and that a failed call changes
 * nothing (the same memory still reads back, the map is unchanged).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define RW	(USRVM_PROT_READ | USRVM_PROT_WRITE)
#define PA	(USRVM_MAP_PRIVATE | USRVM_MAP_ANON)

static struct usrvm_space *vs;
static char *sentinel;		/* a mapped page whose bytes must survive */

static void
setup(void)
{
	t_start();
	vs = usrvm_default_space();
	sentinel = t_map(vs, 4 * T_PAGE);
	memset(sentinel, 0x5a, 4 * T_PAGE);
}

static void
unchanged(void)
{
	struct usrvm_stats st;

	for (size_t i = 0; i < 4 * T_PAGE; i++)
		ck_assert_int_eq((unsigned char)sentinel[i], 0x5a);
	ck_assert_int_eq(usrvm_stats(&st), 0);
	ck_assert_uint_eq(st.resident, 4);
}

static void
map_fails(void *hint, size_t len, int prot, int flags, int fd, off_t off,
    int expect)
{
	struct usrvm_stats before, after;

	usrvm_stats(&before);
	errno = 0;
	ck_assert_ptr_null(usrvm_map(vs, hint, len, prot, flags, fd, off));
	ck_assert_msg(errno == expect, "usrvm_map(%p, %zu, %#x, %#x, %d, %ld):"
	    " errno %s, expected %s", hint, len, prot, flags, fd, (long)off,
	    strerrorname_np(errno), strerrorname_np(expect));
	usrvm_stats(&after);
	ck_assert_uint_eq(before.map_entries, after.map_entries);
	unchanged();
}

START_TEST(map_errors)
{
	char *base = usrvm_space_base(vs);
	size_t size = usrvm_space_size(vs);
	int dir;

	setup();
	base = usrvm_space_base(vs);
	size = usrvm_space_size(vs);
	map_fails(NULL, 0, RW, PA, -1, 0, EINVAL);		/* zero len */
	map_fails(NULL, 100, RW, PA, -1, 0, EINVAL);		/* unaligned */
	map_fails(base + 1, T_PAGE, RW, PA | USRVM_MAP_FIXED, -1, 0, EINVAL);
	map_fails(NULL, T_PAGE, RW, USRVM_MAP_ANON, -1, 0, EINVAL);
	map_fails(NULL, T_PAGE, RW, PA | USRVM_MAP_SHARED, -1, 0, EINVAL);
	map_fails(NULL, T_PAGE, RW, PA | 0x100, -1, 0, EINVAL); /* unknown */
	map_fails(NULL, T_PAGE, 0x4, PA, -1, 0, EINVAL);	/* bad prot */
	map_fails(NULL, T_PAGE, RW | USRVM_PROT_MAX(USRVM_PROT_READ), PA, -1,
	    0, EACCES);					/* beyond max */
	map_fails(NULL, T_PAGE, RW, PA, 3, 0, EINVAL);	/* anon with fd */
	map_fails(NULL, T_PAGE, RW, PA, -1, T_PAGE, EINVAL); /* anon offset */
	map_fails(NULL, T_PAGE, RW, USRVM_MAP_PRIVATE, -1, 0, EBADF);
	map_fails(NULL, T_PAGE, RW, USRVM_MAP_PRIVATE, 0, 123, EINVAL);
	dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	map_fails(NULL, T_PAGE, RW, USRVM_MAP_PRIVATE, dir, 0, ENODEV);
	close(dir);
	map_fails(NULL, T_PAGE, RW, USRVM_MAP_SHARED | USRVM_MAP_ANON, -1,
	    T_PAGE, EINVAL);			/* shared anon offset */
	/* FIXED outside the space, partly outside, over a mapping. */
	map_fails(base + size, T_PAGE, RW, PA | USRVM_MAP_FIXED, -1, 0, EINVAL);
	map_fails(base + size - T_PAGE, 2 * T_PAGE, RW, PA | USRVM_MAP_FIXED,
	    -1, 0, EINVAL);
	map_fails(sentinel + T_PAGE, T_PAGE, RW, PA | USRVM_MAP_FIXED, -1, 0,
	    EEXIST);
	map_fails(sentinel + 3 * T_PAGE, 2 * T_PAGE, RW, PA | USRVM_MAP_FIXED,
	    -1, 0, EEXIST);				/* overlaps the end */
	map_fails(NULL, T_PAGE, RW | (USRVM_PROT_READ << 16), PA, -1, 0,
	    EINVAL);				/* max bits without the flag */
	/* Larger than the space. */
	map_fails(NULL, size + T_PAGE, RW, PA, -1, 0, ENOMEM);
	/* Foreign space pointers. */
	errno = 0;
	ck_assert_ptr_null(usrvm_map(NULL, NULL, T_PAGE, RW, PA, -1, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(usrvm_map((struct usrvm_space *)sentinel, NULL,
	    T_PAGE, RW, PA, -1, 0));
	ck_assert_int_eq(errno, EINVAL);
	t_stop();
}
END_TEST

START_TEST(range_errors)
{
	char *outside;

	setup();
	outside = (char *)usrvm_space_base(vs) + usrvm_space_size(vs);
	/* unmap */
	ck_assert_int_eq(usrvm_unmap(vs, sentinel + 1, T_PAGE), -EINVAL);
	ck_assert_int_eq(usrvm_unmap(vs, sentinel, 1), -EINVAL);
	ck_assert_int_eq(usrvm_unmap(vs, sentinel, 0), -EINVAL);
	ck_assert_int_eq(usrvm_unmap(vs, outside, T_PAGE), -EINVAL);
	ck_assert_int_eq(usrvm_unmap(NULL, sentinel, T_PAGE), -EINVAL);
	ck_assert_int_eq(usrvm_unmap((void *)&vs, sentinel, T_PAGE), -EINVAL);
	/* protect */
	ck_assert_int_eq(usrvm_protect(vs, sentinel + 1, T_PAGE, RW), -EINVAL);
	ck_assert_int_eq(usrvm_protect(vs, sentinel, T_PAGE, 0x10), -EINVAL);
	ck_assert_int_eq(usrvm_protect(vs, outside, T_PAGE, RW), -EINVAL);
	ck_assert_int_eq(usrvm_protect(vs, sentinel + 4 * T_PAGE, T_PAGE, RW),
	    -ENOMEM);				/* a hole */
	ck_assert_int_eq(usrvm_protect(vs, sentinel, 5 * T_PAGE, RW),
	    -ENOMEM);				/* runs into a hole */
	/* advise */
	ck_assert_int_eq(usrvm_advise(vs, sentinel, T_PAGE, 99), -EINVAL);
	ck_assert_int_eq(usrvm_advise(vs, sentinel, 5 * T_PAGE,
	    USRVM_ADV_RANDOM), -ENOMEM);
	ck_assert_int_eq(usrvm_advise(vs, sentinel, 5 * T_PAGE,
	    USRVM_ADV_DONTNEED), -ENOMEM);
	ck_assert_int_eq(usrvm_advise(vs, sentinel + 3, T_PAGE,
	    USRVM_ADV_NORMAL), -EINVAL);
	/* inherit */
	ck_assert_int_eq(usrvm_inherit(vs, sentinel, T_PAGE, 17), -EINVAL);
	ck_assert_int_eq(usrvm_inherit(vs, outside, T_PAGE, USRVM_INH_SHARE),
	    -EINVAL);
	unchanged();
	t_stop();
}
END_TEST

START_TEST(max_protection)
{
	char *p;

	setup();
	p = usrvm_map(vs, NULL, 2 * T_PAGE,
	    USRVM_PROT_READ | USRVM_PROT_MAX(USRVM_PROT_READ), PA, -1, 0);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p[0], 0);		/* readable */
	ck_assert_int_eq(usrvm_protect(vs, p, T_PAGE, RW), -EACCES);
	/* A maximum can be lowered but never raised. */
	ck_assert_int_eq(usrvm_protect(vs, p, T_PAGE,
	    USRVM_PROT_NONE | USRVM_PROT_MAX(USRVM_PROT_NONE)), 0);
	ck_assert_int_eq(usrvm_protect(vs, p, T_PAGE, USRVM_PROT_READ),
	    -EACCES);
	ck_assert_int_eq(usrvm_protect(vs, p, T_PAGE,
	    USRVM_PROT_READ | USRVM_PROT_MAX(USRVM_PROT_READ)), -EACCES);
	/* A failed protect over two entries changes neither. */
	ck_assert_int_eq(usrvm_protect(vs, p, 2 * T_PAGE, USRVM_PROT_READ),
	    -EACCES);
	ck_assert_int_eq(p[T_PAGE], 0);		/* still readable */
	ck_assert_int_eq(usrvm_unmap(vs, p, 2 * T_PAGE), 0);
	unchanged();
	t_stop();
}
END_TEST

START_TEST(space_errors)
{
	struct usrvm_space *s;

	setup();
	errno = 0;
	ck_assert_ptr_null(usrvm_space_create(0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(usrvm_space_create((size_t)1 << 60));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(usrvm_space_destroy(NULL), -EINVAL);
	ck_assert_int_eq(usrvm_space_destroy((void *)sentinel), -EINVAL);
	ck_assert_int_eq(usrvm_space_destroy(vs), -EBUSY);	/* default */
	s = usrvm_space_create(T_PAGE);		/* rounded up */
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_ge(usrvm_space_size(s), T_PAGE);
	ck_assert_int_eq(usrvm_space_destroy(s), 0);
	ck_assert_int_eq(usrvm_space_destroy(s), -EINVAL);	/* twice */
	ck_assert_ptr_null(usrvm_space_base(s));
	ck_assert_int_eq(usrvm_stats(NULL), -EINVAL);
	ck_assert_int_eq(usrvm_init(NULL), -EBUSY);	/* already running */
	unchanged();
	t_stop();
	/* Not running: nothing works, nothing crashes. */
	ck_assert_ptr_null(usrvm_default_space());
	ck_assert_ptr_null(usrvm_space_create(1 << 30));
	ck_assert_int_eq(errno, EINVAL);
	usrvm_shutdown();			/* twice is fine */
}
END_TEST

/* Successful operations change exactly what they say. */
START_TEST(unmap_partial_and_holes)
{
	char *p;

	setup();
	p = t_map(vs, 16 * T_PAGE);
	for (int i = 0; i < 16; i++)
		p[i * T_PAGE] = (char)(i + 1);
	/* Punch the middle out, then a range that is mostly hole. */
	ck_assert_int_eq(usrvm_unmap(vs, p + 4 * T_PAGE, 4 * T_PAGE), 0);
	ck_assert_int_eq(usrvm_unmap(vs, p + 6 * T_PAGE, 4 * T_PAGE), 0);
	for (int i = 0; i < 16; i++)
		if (i < 4 || i >= 10)
			ck_assert_int_eq(p[i * T_PAGE], i + 1);
	struct usrvm_stats st;
	usrvm_stats(&st);
	ck_assert_uint_eq(st.resident, 4 + 10);	/* sentinel + survivors */
	/* Reuse the hole with a fixed mapping: fresh zeros. */
	ck_assert_ptr_eq(usrvm_map(vs, p + 4 * T_PAGE, 6 * T_PAGE, RW,
	    PA | USRVM_MAP_FIXED, -1, 0), p + 4 * T_PAGE);
	for (int i = 4; i < 10; i++)
		ck_assert_int_eq(p[i * T_PAGE], 0);
	ck_assert_int_eq(usrvm_unmap(vs, p, 16 * T_PAGE), 0);
	unchanged();
	t_stop();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");

	t_require_uffd();
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, map_errors);
	tcase_add_test(tc, range_errors);
	tcase_add_test(tc, max_protection);
	tcase_add_test(tc, space_errors);
	tcase_add_test(tc, unmap_partial_and_holes);
	suite_add_tcase(s, tc);
	return t_run(s, 60);
}
