/*
 * test_map_tree.c: unit and randomized model tests of lib/map_tree.c.
 *
 * Links standalone with map_tree.c only (usrvm_panic is defined here).
 * The model test replays random inserts, removes, in-place resizes,
 * lookups and free-space searches against a sorted array of intervals
 * with a brute-force search, validating the tree after every operation.
 * It always runs a fixed seed, plus USRVM_TEST_SEED when that is set; the
 * seed is printed on any failure.
 */

#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usrvm_internal.h"
#include "map.h"
#include "map_tree.h"

#define KB	((uintptr_t)1024)
#define MB	(1024 * KB)
#define GB	(1024 * MB)
#define PG	((uintptr_t)PAGE_SIZE)
/* the highest page boundary */
#define TOP	(UINTPTR_MAX & ~(uintptr_t)PAGE_MASK)

#define FIXED_SEED	0x5eed0001u

/* the seed and step of the model run in progress, for failure messages */
static uint64_t cur_seed, cur_step;
static bool cur_seed_valid;

/*
 * Assertions for hot loops.  libcheck's ck_assert records every passing
 * assertion (a write to its message file), far too slow for the model
 * test; these report failures only.  MCHECK adds the seed and step.
 */
#define CHECK(cond, ...) do {						\
	if (!(cond))							\
		ck_abort_msg(__VA_ARGS__);				\
} while (0)
#define MCHECK(cond, fmt, ...) do {					\
	if (!(cond))							\
		ck_abort_msg("seed %" PRIu64 " step %" PRIu64 ": " fmt	\
		    " (rerun with USRVM_TEST_SEED=%" PRIu64 ")",	\
		    cur_seed, cur_step, ##__VA_ARGS__, cur_seed);	\
} while (0)

void
usrvm_panic(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "usrvm_panic: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	if (cur_seed_valid)
		fprintf(stderr, "(model test seed %" PRIu64
		    "; rerun with USRVM_TEST_SEED=%" PRIu64 ")\n",
		    cur_seed, cur_seed);
	abort();
}

/* ---------------------------------------------------------------- */
/* helpers */

static struct vm_map_entry *
ent(uintptr_t start, uintptr_t end)
{
	struct vm_map_entry *e = calloc(1, sizeof(*e));

	CHECK(e != NULL, "calloc failed");
	e->start = start;
	e->end = end;
	return e;
}

static struct vm_map_entry *
ins(struct map_tree *t, uintptr_t start, uintptr_t end)
{
	struct vm_map_entry *e = ent(start, end);

	map_tree_insert(t, e);
	map_tree_validate(t);
	return e;
}

static void
rm(struct map_tree *t, struct vm_map_entry *e)
{

	map_tree_remove(t, e);
	map_tree_validate(t);
	ck_assert_ptr_null(e->prev);
	ck_assert_ptr_null(e->next);
	free(e);
}

static void
free_all(struct map_tree *t)
{

	while (t->mt_root != NULL)
		rm(t, t->mt_root);
	ck_assert_uint_eq(t->mt_nentries, 0);
	ck_assert_ptr_null(t->mt_first);
	ck_assert_ptr_null(t->mt_last);
}

/* findspace expecting success at `want' */
#define FS_OK(t, hint, len, align, want) do {				\
	uintptr_t _a = 0xdeadbeef;					\
	ck_assert_msg(map_tree_findspace((t), (hint), (len), (align),	\
	    &_a), "findspace(%#jx, %#jx, %#jx) failed",			\
	    (uintmax_t)(hint), (uintmax_t)(len), (uintmax_t)(align));	\
	ck_assert_msg(_a == (uintptr_t)(want),				\
	    "findspace(%#jx, %#jx, %#jx) = %#jx, expected %#jx",	\
	    (uintmax_t)(hint), (uintmax_t)(len), (uintmax_t)(align),	\
	    (uintmax_t)_a, (uintmax_t)(want));				\
} while (0)

/* findspace expecting failure (and *out untouched) */
#define FS_NONE(t, hint, len, align) do {				\
	uintptr_t _a = 0xdeadbeef;					\
	ck_assert_msg(!map_tree_findspace((t), (hint), (len), (align),	\
	    &_a), "findspace(%#jx, %#jx, %#jx) = %#jx, expected none",	\
	    (uintmax_t)(hint), (uintmax_t)(len), (uintmax_t)(align),	\
	    (uintmax_t)_a);						\
	ck_assert_uint_eq(_a, 0xdeadbeef);				\
} while (0)

/* ---------------------------------------------------------------- */
/* unit tests */

START_TEST(test_empty)
{
	struct map_tree t;
	const uintptr_t min = 0x10000, max = 0x10000 + 16 * MB;

	map_tree_init(&t, min, max);
	map_tree_validate(&t);
	ck_assert_ptr_null(t.mt_root);
	ck_assert_ptr_null(map_tree_lookup(&t, min));
	ck_assert_ptr_null(map_tree_lookup_le(&t, max));

	FS_OK(&t, 0, PG, PG, min);
	FS_OK(&t, min + 5 * PG, PG, PG, min + 5 * PG);
	FS_OK(&t, max - PG, PG, PG, max - PG);
	/* hint beyond the range: wraps to the lowest */
	FS_OK(&t, max, PG, PG, min);
	FS_OK(&t, UINTPTR_MAX, PG, PG, min);
	/* unaligned hint rounds up */
	FS_OK(&t, min + 1, PG, PG, min + PG);
	/* len equal to the whole range */
	FS_OK(&t, 0, max - min, PG, min);
	FS_OK(&t, min + PG, max - min, PG, min);
	FS_NONE(&t, 0, max - min + PG, PG);
	FS_NONE(&t, 0, SIZE_MAX, PG);
	/* alignment: min is 64 KiB aligned but not 2 MiB aligned */
	FS_OK(&t, 0, PG, 64 * KB, min);
	FS_OK(&t, min + PG, PG, 64 * KB, min + 64 * KB);
	FS_OK(&t, 0, PG, 2 * MB, 2 * MB);
	FS_OK(&t, 0, 14 * MB, 2 * MB, 2 * MB);
	FS_NONE(&t, 0, 16 * MB, 2 * MB);	/* aligned, it no longer fits */
	/* past the last 2 MiB boundary that fits: wraps to the lowest */
	FS_OK(&t, 14 * MB + PG, 2 * MB, 2 * MB, 2 * MB);
	FS_OK(&t, 0, max - 2 * MB, 2 * MB, 2 * MB);
}
END_TEST

START_TEST(test_empty_degenerate)
{
	struct map_tree t;

	/* an empty range fits nothing */
	map_tree_init(&t, 0x100000, 0x100000);
	map_tree_validate(&t);
	FS_NONE(&t, 0, PG, PG);
	/* len 0 is refused */
	map_tree_init(&t, 0, 16 * MB);
	FS_NONE(&t, 0, 0, PG);
}
END_TEST

START_TEST(test_insert_lookup)
{
	struct map_tree t;
	struct vm_map_entry *a, *b, *c;

	map_tree_init(&t, 0x100000, 0x200000);
	b = ins(&t, 0x140000, 0x150000);
	a = ins(&t, 0x100000, 0x110000);	/* at min: gap 0 */
	c = ins(&t, 0x1f0000, 0x200000);	/* up to max */
	ck_assert_uint_eq(t.mt_nentries, 3);
	ck_assert_ptr_eq(t.mt_first, a);
	ck_assert_ptr_eq(t.mt_last, c);
	ck_assert_ptr_eq(a->next, b);
	ck_assert_ptr_eq(b->next, c);
	ck_assert_ptr_eq(c->prev, b);
	ck_assert_ptr_eq(b->prev, a);
	ck_assert_ptr_null(a->prev);
	ck_assert_ptr_null(c->next);

	ck_assert_ptr_eq(map_tree_lookup(&t, 0x100000), a);
	ck_assert_ptr_eq(map_tree_lookup(&t, 0x10ffff), a);
	ck_assert_ptr_null(map_tree_lookup(&t, 0x110000));
	ck_assert_ptr_null(map_tree_lookup(&t, 0x13ffff));
	ck_assert_ptr_eq(map_tree_lookup(&t, 0x140000), b);
	ck_assert_ptr_eq(map_tree_lookup(&t, 0x14ffff), b);
	ck_assert_ptr_null(map_tree_lookup(&t, 0x150000));
	ck_assert_ptr_eq(map_tree_lookup(&t, 0x1fffff), c);
	ck_assert_ptr_null(map_tree_lookup(&t, 0x200000));
	ck_assert_ptr_null(map_tree_lookup(&t, 0));
	ck_assert_ptr_null(map_tree_lookup(&t, UINTPTR_MAX));

	ck_assert_ptr_null(map_tree_lookup_le(&t, 0));
	ck_assert_ptr_null(map_tree_lookup_le(&t, 0xfffff));
	ck_assert_ptr_eq(map_tree_lookup_le(&t, 0x100000), a);
	ck_assert_ptr_eq(map_tree_lookup_le(&t, 0x13ffff), a);
	ck_assert_ptr_eq(map_tree_lookup_le(&t, 0x140000), b);
	ck_assert_ptr_eq(map_tree_lookup_le(&t, 0x1effff), b);
	ck_assert_ptr_eq(map_tree_lookup_le(&t, 0x1f0000), c);
	ck_assert_ptr_eq(map_tree_lookup_le(&t, UINTPTR_MAX), c);

	/* gaps: [0x110000, 0x140000) 192K, [0x150000, 0x1f0000) 640K */
	ck_assert_uint_eq(t.mt_root->tnode.tn_maxgap, 0xa0000);
	FS_OK(&t, 0, PG, PG, 0x110000);
	FS_OK(&t, 0, 0x30000, PG, 0x110000);
	FS_OK(&t, 0, 0x30000 + PG, PG, 0x150000);
	FS_OK(&t, 0, 0xa0000, PG, 0x150000);
	FS_NONE(&t, 0, 0xa0000 + PG, PG);	/* larger than any gap */
	FS_OK(&t, 0x120000, 0x20000, PG, 0x120000);
	FS_OK(&t, 0x120000, 0x20000 + PG, PG, 0x150000);
	FS_OK(&t, 0x145000, PG, PG, 0x150000);	/* hint inside b */
	FS_OK(&t, 0x1f8000, PG, PG, 0x110000);	/* hint inside c: wraps */
	FS_OK(&t, 0, PG, 64 * KB, 0x110000);
	FS_OK(&t, 0x111000, PG, 64 * KB, 0x120000);
	FS_OK(&t, 0x131000, 0x10000, 64 * KB, 0x150000);
	FS_NONE(&t, 0, PG, 2 * MB);		/* 0x200000 is max */

	free_all(&t);
}
END_TEST

START_TEST(test_remove)
{
	struct map_tree t;
	struct vm_map_entry *e[8];
	int i;

	/* entries at 1M + i*1M, each 512K long, gaps 512K (first gap 1M) */
	map_tree_init(&t, 0, 16 * MB);
	for (i = 0; i < 8; i++)
		e[i] = ins(&t, (uintptr_t)(i + 1) * MB,
		    (uintptr_t)(i + 1) * MB + 512 * KB);
	FS_OK(&t, 0, MB, PG, 0);
	FS_OK(&t, 512 * KB, 512 * KB, PG, 512 * KB);
	FS_OK(&t, MB, 512 * KB + PG, PG, 8 * MB + 512 * KB);

	/* remove a middle entry: its successor's gap becomes 1.5M */
	rm(&t, e[3]);
	FS_OK(&t, MB, MB + 512 * KB, PG, 3 * MB + 512 * KB);
	FS_NONE(&t, MB, 7 * MB + 512 * KB + PG, PG);
	/* remove the first: the next one's gap reaches back to min */
	rm(&t, e[0]);
	FS_OK(&t, 0, 2 * MB, PG, 0);
	ck_assert_ptr_eq(t.mt_first, e[1]);
	ck_assert_ptr_null(e[1]->prev);
	/* remove the last: the trailing space grows */
	rm(&t, e[7]);
	ck_assert_ptr_eq(t.mt_last, e[6]);
	ck_assert_ptr_null(e[6]->next);
	FS_OK(&t, 8 * MB, 8 * MB + 512 * KB, PG, 7 * MB + 512 * KB);
	/* remove the root repeatedly (two-children case) */
	while (t.mt_nentries > 0) {
		rm(&t, t.mt_root);
		if (t.mt_nentries > 0)
			ck_assert_ptr_null(t.mt_root->tnode.tn_parent);
	}
	ck_assert_ptr_null(t.mt_root);
	FS_OK(&t, 0, 16 * MB, PG, 0);
}
END_TEST

START_TEST(test_fixup)
{
	struct map_tree t;
	struct vm_map_entry *a, *b, *c;

	map_tree_init(&t, 0, 4 * MB);
	a = ins(&t, 1 * MB, 1 * MB + 64 * KB);
	b = ins(&t, 2 * MB, 2 * MB + 64 * KB);
	c = ins(&t, 3 * MB, 3 * MB + 64 * KB);
	(void)c;
	FS_OK(&t, 0, MB, PG, 0);
	FS_NONE(&t, 0, MB + PG, PG);

	/* grow a down to min: gap 0 before a */
	a->start = 0;
	map_tree_fixup(&t, a);
	map_tree_validate(&t);
	FS_OK(&t, 0, PG, PG, 1 * MB + 64 * KB);

	/* shrink a's end: the gap before b (a's successor) grows */
	a->end = 64 * KB;
	map_tree_fixup(&t, a);
	map_tree_validate(&t);
	FS_OK(&t, 0, MB + 512 * KB, PG, 64 * KB);
	FS_OK(&t, 0, 2 * MB - 64 * KB, PG, 64 * KB);
	FS_NONE(&t, 0, 2 * MB - 64 * KB + PG, PG);

	/* grow b up to c: the gap before c becomes 0 */
	b->end = 3 * MB;
	map_tree_fixup(&t, b);
	map_tree_validate(&t);
	FS_OK(&t, 2 * MB, PG, PG, 3 * MB + 64 * KB);

	/* shrink b from the front */
	b->start = 2 * MB + 512 * KB;
	map_tree_fixup(&t, b);
	map_tree_validate(&t);
	FS_OK(&t, 0, 2 * MB + 448 * KB, PG, 64 * KB);
	FS_OK(&t, 0, MB / 2, 2 * MB, 2 * MB);
	FS_NONE(&t, 0, 2 * MB, 2 * MB);	/* no 2M-aligned 2M hole */
	free_all(&t);
}
END_TEST

START_TEST(test_full_range)
{
	struct map_tree t;
	struct vm_map_entry *e;

	map_tree_init(&t, 0x400000, 0x800000);
	e = ins(&t, 0x400000, 0x800000);
	ck_assert_ptr_eq(map_tree_lookup(&t, 0x7ff000), e);
	FS_NONE(&t, 0, PG, PG);
	FS_NONE(&t, 0x400000, PG, PG);
	FS_NONE(&t, 0x800000, PG, PG);
	/* free one page at each end */
	e->start += PG;
	e->end -= PG;
	map_tree_fixup(&t, e);
	map_tree_validate(&t);
	FS_OK(&t, 0, PG, PG, 0x400000);
	FS_OK(&t, 0x401000, PG, PG, 0x7ff000);
	FS_NONE(&t, 0, 2 * PG, PG);
	free_all(&t);
}
END_TEST

START_TEST(test_hint_beyond_last)
{
	struct map_tree t;

	map_tree_init(&t, 0, 64 * MB);
	ins(&t, 0, 4 * MB);
	ins(&t, 8 * MB, 12 * MB);
	ins(&t, 16 * MB, 20 * MB);
	/* hint past the last entry: the trailing space */
	FS_OK(&t, 30 * MB, MB, PG, 30 * MB);
	FS_OK(&t, 30 * MB + 1, MB, 2 * MB, 32 * MB);
	FS_OK(&t, 60 * MB, 4 * MB, PG, 60 * MB);
	/* no room at or above hint: lowest overall */
	FS_OK(&t, 61 * MB, 4 * MB, PG, 4 * MB);
	FS_OK(&t, 61 * MB, 5 * MB, PG, 20 * MB);
	FS_OK(&t, 64 * MB, PG, PG, 4 * MB);
	/* trailing space exactly */
	FS_OK(&t, 0, 44 * MB, PG, 20 * MB);
	FS_NONE(&t, 0, 44 * MB + PG, PG);
	FS_OK(&t, 0, 44 * MB, 4 * MB, 20 * MB);
	FS_NONE(&t, 0, 44 * MB, 8 * MB);
	/* 2 MiB alignment inside the gaps */
	FS_OK(&t, 5 * MB, 2 * MB, 2 * MB, 6 * MB);
	FS_OK(&t, 6 * MB + PG, 2 * MB, 2 * MB, 12 * MB);
	FS_OK(&t, 5 * MB, 3 * MB, 2 * MB, 12 * MB);
	free_all(&t);
}
END_TEST

START_TEST(test_alignment)
{
	struct map_tree t;

	/* gaps that are large enough unaligned but not aligned */
	map_tree_init(&t, 0, 64 * MB);
	ins(&t, 0, 1 * MB + PG);
	ins(&t, 3 * MB, 5 * MB + PG);		/* gap [1M+4K, 3M) */
	ins(&t, 7 * MB + PG, 8 * MB);		/* gap [5M+4K, 7M+4K) */
	ins(&t, 10 * MB + 64 * KB, 11 * MB);	/* gap [8M, 10M+64K) */
	ins(&t, 11 * MB + 128 * KB, 64 * MB);	/* gap [11M, 11M+128K) */
	FS_OK(&t, 0, 2 * MB - PG, PG, 1 * MB + PG);
	/* aligned, g1 and g2 are too short */
	FS_OK(&t, 0, 2 * MB - PG, 64 * KB, 8 * MB);
	FS_OK(&t, 0, 2 * MB - 64 * KB, 64 * KB, 1 * MB + 64 * KB);
	FS_OK(&t, 0, 2 * MB - 64 * KB + PG, 64 * KB, 5 * MB + 64 * KB);
	FS_OK(&t, 0, MB, 2 * MB, 2 * MB);
	FS_OK(&t, 0, MB + PG, 2 * MB, 6 * MB);
	FS_OK(&t, 0, 2 * MB, 2 * MB, 8 * MB);
	FS_OK(&t, 8 * MB + PG, 2 * MB, 2 * MB, 8 * MB);	/* wraps */
	FS_NONE(&t, 0, 2 * MB + 128 * KB, PG);
	FS_OK(&t, 0, 2 * MB + 64 * KB, 64 * KB, 8 * MB);
	FS_OK(&t, 9 * MB, 64 * KB, 64 * KB, 9 * MB);
	FS_OK(&t, 10 * MB + 4 * KB, 64 * KB, 64 * KB, 11 * MB);
	FS_OK(&t, 10 * MB + 4 * KB, 64 * KB, 128 * KB, 11 * MB);
	FS_OK(&t, 11 * MB + 4 * KB, 64 * KB, 128 * KB, 1 * MB + 128 * KB);
	/* maxgap 2M+64K >= len, yet no hole holds a 16M boundary */
	FS_NONE(&t, 0, PG, 16 * MB);
	free_all(&t);
}
END_TEST

START_TEST(test_top_of_space)
{
	struct map_tree t;
	const uintptr_t min = TOP + PG - 16 * MB;	/* 16M aligned */

	/* the range ends at the last page: rounding up must not wrap */
	map_tree_init(&t, min, TOP);
	FS_OK(&t, 0, PG, PG, min);
	FS_OK(&t, UINTPTR_MAX, PG, PG, min);
	FS_OK(&t, TOP - PG, PG, PG, TOP - PG);
	FS_OK(&t, TOP - PG + 1, PG, PG, min);
	FS_OK(&t, TOP - 3 * MB, MB, 2 * MB, min + 14 * MB);
	FS_OK(&t, TOP - MB, MB, 2 * MB, min);	/* next 2M boundary is 0 */
	FS_OK(&t, UINTPTR_MAX - 5, PG, 2 * MB, min);
	FS_OK(&t, 0, 16 * MB - PG, PG, min);
	FS_OK(&t, 0, 16 * MB - PG, 2 * MB, min);
	FS_NONE(&t, 0, 16 * MB, PG);
	FS_NONE(&t, 0, SIZE_MAX, PG);
	FS_NONE(&t, 0, SIZE_MAX - PAGE_MASK, PG);
	ins(&t, min, min + MB);
	ins(&t, TOP - MB, TOP);
	ck_assert_ptr_nonnull(map_tree_lookup(&t, TOP - 1));
	ck_assert_ptr_null(map_tree_lookup(&t, TOP));
	ck_assert_ptr_null(map_tree_lookup(&t, UINTPTR_MAX));
	ck_assert_ptr_eq(map_tree_lookup_le(&t, UINTPTR_MAX), t.mt_last);
	/* free: [min + 1M, TOP - 1M), 14M - 4K */
	FS_OK(&t, UINTPTR_MAX, PG, PG, min + MB);
	FS_OK(&t, TOP - 2 * MB, MB, PG, TOP - 2 * MB);
	FS_OK(&t, TOP - 2 * MB + PG, MB, PG, min + MB);
	FS_OK(&t, 0, 14 * MB - PG, PG, min + MB);
	FS_NONE(&t, 0, 14 * MB, PG);
	FS_OK(&t, 0, 12 * MB, 2 * MB, min + 2 * MB);
	FS_NONE(&t, 0, 13 * MB, 2 * MB);
	free_all(&t);

	/* the whole address space */
	map_tree_init(&t, 0, TOP);
	FS_OK(&t, 0, TOP, PG, 0);
	FS_OK(&t, UINTPTR_MAX, TOP, PG, 0);
	FS_NONE(&t, 0, TOP + 1, PG);
	FS_OK(&t, 1, TOP - PG, PG, PG);
	FS_OK(&t, 1, TOP - PG, 2 * MB, 0);
	ins(&t, 0, PG);
	FS_OK(&t, 0, TOP - PG, PG, PG);
	FS_NONE(&t, 0, TOP - PG, 2 * MB);
	free_all(&t);
}
END_TEST

START_TEST(test_balance)
{
	struct map_tree t;
	struct vm_map_entry *e;
	const int n = 4096;
	int i;

	/* ascending, then descending inserts: height stays logarithmic */
	map_tree_init(&t, 0, (uintptr_t)4 * n * PG);
	for (i = 0; i < n; i++)
		map_tree_insert(&t, ent((uintptr_t)2 * i * PG,
		    (uintptr_t)(2 * i + 1) * PG));
	map_tree_validate(&t);
	ck_assert_int_le(t.mt_root->tnode.tn_height, 18);	/* 1.44 lg n */
	for (i = 2 * n - 1; i >= n; i--)
		map_tree_insert(&t, ent((uintptr_t)2 * i * PG,
		    (uintptr_t)(2 * i + 1) * PG));
	map_tree_validate(&t);
	ck_assert_uint_eq(t.mt_nentries, 2 * n);
	ck_assert_int_le(t.mt_root->tnode.tn_height, 20);
	/* every other entry removed: gaps of 3 pages appear */
	FS_NONE(&t, 0, 2 * PG, PG);
	e = map_tree_lookup(&t, (uintptr_t)2 * 1000 * PG);
	ck_assert_ptr_nonnull(e);
	rm(&t, e);
	FS_OK(&t, 0, 2 * PG, PG, (uintptr_t)1999 * PG);
	free_all(&t);
}
END_TEST

/*
 * Performance guards for the two prunings of the search.  Each search
 * below visits O(log n) nodes with the pruning and O(n) without it, so a
 * regression turns these into minutes (and a check timeout).
 */
#define SCALE_N		(1 << 16)
#define SCALE_SEARCHES	200000

/* maxgap pruning: one-page holes everywhere but one 7-page hole */
START_TEST(test_findspace_scales_maxgap)
{
	struct map_tree t;
	const int n = SCALE_N;
	struct vm_map_entry **v;
	uintptr_t want = (uintptr_t)2 * (n - 9) * PG, a;
	int i;

	v = calloc(n, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	map_tree_init(&t, 0, (uintptr_t)2 * n * PG + GB);
	for (i = 0; i < n; i++) {
		v[i] = ent((uintptr_t)2 * i * PG + PG,
		    (uintptr_t)2 * i * PG + 2 * PG);
		map_tree_insert(&t, v[i]);
	}
	/* the big hole: drop 3 entries, 7 pages free from `want' */
	for (i = n - 9; i < n - 6; i++)
		map_tree_remove(&t, v[i]);
	map_tree_validate(&t);
	for (i = 0; i < SCALE_SEARCHES; i++)
		CHECK(map_tree_findspace(&t, (uintptr_t)(i % n) * PG,
		    4 * PG, PG, &a) && a == want, "findspace #%d: %#jx", i,
		    (uintmax_t)a);
	for (i = 0; i < n; i++)
		if (i < n - 9 || i >= n - 6)
			map_tree_remove(&t, v[i]);
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
	map_tree_validate(&t);
}
END_TEST

/* hint pruning: every hole fits, the search must skip those below hint */
START_TEST(test_findspace_scales_hint)
{
	struct map_tree t;
	const int n = SCALE_N;
	struct vm_map_entry **v;
	uintptr_t h, want, a;
	int i;

	/* entry i is page 9i+8; hole i is pages [9i, 9i+8) */
	v = calloc(n, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	map_tree_init(&t, 0, (uintptr_t)9 * n * PG + GB);
	for (i = 0; i < n; i++) {
		v[i] = ent((uintptr_t)(9 * i + 8) * PG,
		    (uintptr_t)(9 * i + 9) * PG);
		map_tree_insert(&t, v[i]);
	}
	map_tree_validate(&t);
	for (i = 0; i < SCALE_SEARCHES; i++) {
		/* a page number */
		h = (uintptr_t)i * 7919 % ((uintptr_t)9 * n);
		want = h % 9 <= 4 ? h : (h / 9 + 1) * 9;
		CHECK(map_tree_findspace(&t, h * PG, 4 * PG, PG, &a) &&
		    a == want * PG, "findspace(page %#jx) = %#jx",
		    (uintmax_t)h, (uintmax_t)a);
	}
	for (i = 0; i < n; i++) {
		map_tree_remove(&t, v[i]);
		free(v[i]);
	}
	free(v);
	map_tree_validate(&t);
}
END_TEST

/* ---------------------------------------------------------------- */
/* the randomized model test */

typedef unsigned __int128 u128;

struct model_iv {
	uintptr_t s, e;
	struct vm_map_entry *ent;
};

struct model {
	uintptr_t min, max;
	size_t n;
	struct model_iv iv[1024];
};

static uint64_t rng_state;

/* what a run exercised, so a broken generator cannot pass silently */
static struct {
	size_t max_n;			/* largest population */
	unsigned fs_above;		/* findspace found >= hint */
	unsigned fs_wrapped;		/* found below hint (second pass) */
	unsigned fs_none;		/* nothing fits */
	unsigned fs_pruned_none;	/* nothing fits, though maxgap >= len */
	unsigned resizes;
} stats;

static uint64_t
rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* uniform in [0, n); n > 0 */
static uint64_t
rnd_below(uint64_t n)
{

	return rnd() % n;
}

/* uniform in [lo, hi] */
static uint64_t
rnd_range(uint64_t lo, uint64_t hi)
{

	if (hi - lo == UINT64_MAX)
		return rnd();
	return lo + rnd_below(hi - lo + 1);
}

/* the first interval with e > addr */
static size_t
model_first_after(const struct model *m, uintptr_t addr)
{
	size_t lo = 0, hi = m->n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (m->iv[mid].e <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
model_free(const struct model *m, u128 a, u128 len)
{
	size_t i;

	if (a < m->min || a + len > m->max)
		return false;
	i = model_first_after(m, (uintptr_t)a);
	return i == m->n || m->iv[i].s >= a + len;
}

static u128
roundup128(u128 x, u128 align)
{

	return (x + align - 1) / align * align;
}

/*
 * Brute force: the lowest fit at or above h is either h rounded up or
 * some interval's end rounded up (otherwise a - align would fit too), so
 * try those candidates in increasing order.
 */
static bool
model_fit_from(const struct model *m, uintptr_t hint, size_t len,
    size_t align, uintptr_t *out)
{
	u128 c0, c;
	size_t i;

	c0 = roundup128(MAX(hint, m->min), align);
	if (model_free(m, c0, len)) {
		*out = (uintptr_t)c0;
		return true;
	}
	for (i = 0; i < m->n; i++) {
		c = roundup128(m->iv[i].e, align);
		if (c > c0 && model_free(m, c, len)) {
			*out = (uintptr_t)c;
			return true;
		}
	}
	return false;
}

static bool
model_findspace(const struct model *m, uintptr_t hint, size_t len,
    size_t align, uintptr_t *out)
{

	if (len == 0)
		return false;
	return model_fit_from(m, hint, len, align, out) ||
	    model_fit_from(m, m->min, len, align, out);
}

static void
model_insert(struct model *m, struct vm_map_entry *e)
{
	size_t i = model_first_after(m, e->start);

	MCHECK(m->n < sizeof(m->iv) / sizeof(m->iv[0]), "model full");
	memmove(&m->iv[i + 1], &m->iv[i], (m->n - i) * sizeof(m->iv[0]));
	m->iv[i] = (struct model_iv){ e->start, e->end, e };
	m->n++;
}

static void
model_remove(struct model *m, size_t i)
{

	memmove(&m->iv[i], &m->iv[i + 1], (m->n - i - 1) * sizeof(m->iv[0]));
	m->n--;
}

/* the model and the tree hold the same intervals in the same order */
static void
model_compare(const struct model *m, const struct map_tree *t)
{
	const struct vm_map_entry *e = t->mt_first;
	size_t i;

	map_tree_validate(t);
	MCHECK(t->mt_nentries == m->n, "tree has %zu entries, model %zu",
	    t->mt_nentries, m->n);
	for (i = 0; i < m->n; i++, e = e->next)
		MCHECK(e == m->iv[i].ent && e->start == m->iv[i].s &&
		    e->end == m->iv[i].e, "entry %zu: tree %p [%#jx, %#jx), "
		    "model %p [%#jx, %#jx)", i, (void *)e, (uintmax_t)e->start,
		    (uintmax_t)e->end, (void *)m->iv[i].ent,
		    (uintmax_t)m->iv[i].s, (uintmax_t)m->iv[i].e);
	MCHECK(e == NULL, "tree list longer than the model");
}

/* a random page-aligned address around [min, max), sometimes outside */
static uintptr_t
rnd_addr(const struct model *m)
{
	uint64_t r = rnd_below(100);
	size_t i;

	if (r < 5)
		return (uintptr_t)rnd();
	if (r < 10)
		return m->max + PG * rnd_below(4);
	if (r < 15)
		return m->min - MIN(m->min, PG * rnd_below(4));
	if (r < 40 && m->n > 0) {
		/* at or near an entry boundary */
		i = rnd_below(m->n);
		return (rnd() & 1 ? m->iv[i].s : m->iv[i].e) +
		    PG * rnd_range(0, 2) - PG;
	}
	return m->min + trunc_page(rnd_below(m->max - m->min));
}

/* a random length: mostly small, sometimes up to or past the range */
static size_t
rnd_len(const struct model *m)
{
	uint64_t r = rnd_below(100);
	size_t range = m->max - m->min;

	if (r < 50)
		return PG * rnd_range(1, 16);
	if (r < 75)
		return PG * rnd_range(1, 1024);
	if (r < 85)
		return round_page(rnd_below(range) + 1);
	if (r < 90)
		return range - PG * rnd_below(3);
	if (r < 93)
		return range + PG;
	if (r < 96)
		return SIZE_MAX - PG * rnd_below(3) - rnd_below(2) * PAGE_MASK;
	/* not page sized */
	return PG * rnd_range(1, 64) + rnd_below(PG);
}

static size_t
rnd_align(void)
{
	static const size_t aligns[] = {
		PAGE_SIZE, PAGE_SIZE, PAGE_SIZE, 2 * PAGE_SIZE,
		64 * 1024, 64 * 1024, 2 * 1024 * 1024, 2 * 1024 * 1024,
		1024 * 1024 * 1024,
	};

	return aligns[rnd_below(sizeof(aligns) / sizeof(aligns[0]))];
}

/* insert a random range into a random free hole */
static void
op_insert(struct model *m, struct map_tree *t, size_t target)
{
	uintptr_t a, lo, hi, len, maxlen;
	size_t i;
	struct vm_map_entry *e;

	if (m->n >= target || m->n >= sizeof(m->iv) / sizeof(m->iv[0]) - 1)
		return;
	if (rnd_below(4) == 0) {
		/* where findspace puts it, as map_enter does */
		len = round_page(rnd_len(m));
		if (len == 0 || !map_tree_findspace(t, rnd_addr(m), len,
		    rnd_align(), &a))
			return;
		hi = a + len;
	} else {
		a = m->min + trunc_page(rnd_below(m->max - m->min));
		i = model_first_after(m, a);
		if (i < m->n && m->iv[i].s <= a)
			return;			/* inside an entry */
		lo = a;
		hi = i < m->n ? m->iv[i].s : m->max;
		maxlen = hi - lo;
		switch (rnd_below(4)) {
		case 0:
		case 1:
			len = PG * rnd_range(1, 8);
			break;
		case 2:
			len = PG * rnd_range(1, 600);
			break;
		default:
			len = round_page(rnd_below(maxlen) + 1);
			break;
		}
		hi = lo + MIN(len, maxlen);
	}
	e = ent(a, hi);
	map_tree_insert(t, e);
	model_insert(m, e);
}

static void
op_remove(struct model *m, struct map_tree *t)
{
	size_t i;
	struct vm_map_entry *e;

	if (m->n == 0)
		return;
	i = rnd_below(m->n);
	e = m->iv[i].ent;
	map_tree_remove(t, e);
	MCHECK(e->prev == NULL && e->next == NULL, "removed entry linked");
	model_remove(m, i);
	free(e);
}

/* move one or both ends of an entry within its neighbours, then fixup */
static void
op_resize(struct model *m, struct map_tree *t)
{
	size_t i;
	uintptr_t lo, hi, s, e;
	struct model_iv *iv;

	if (m->n == 0)
		return;
	i = rnd_below(m->n);
	iv = &m->iv[i];
	lo = i > 0 ? m->iv[i - 1].e : m->min;
	hi = i + 1 < m->n ? m->iv[i + 1].s : m->max;
	s = iv->s;
	e = iv->e;
	switch (rnd_below(3)) {
	case 0:		/* start */
		s = lo + PG * rnd_below((e - lo) / PG);
		break;
	case 1:		/* end */
		e = s + PG * rnd_range(1, (hi - s) / PG);
		break;
	default:	/* both */
		s = lo + PG * rnd_below((hi - lo) / PG);
		e = s + PG * rnd_range(1, (hi - s) / PG);
		break;
	}
	iv->s = iv->ent->start = s;
	iv->e = iv->ent->end = e;
	map_tree_fixup(t, iv->ent);
	stats.resizes++;
}

static void
op_findspace(struct model *m, struct map_tree *t)
{
	uintptr_t hint = rnd_addr(m), got = 0, want = 0;
	size_t len = rnd_len(m), align = rnd_align();
	bool gok, wok;

	if (rnd_below(8) == 0)
		hint += rnd_below(PG);		/* unaligned */
	gok = map_tree_findspace(t, hint, len, align, &got);
	wok = model_findspace(m, hint, len, align, &want);
	if (!wok)
		stats.fs_none++;
	if (!wok && t->mt_root != NULL && t->mt_root->tnode.tn_maxgap >= len)
		stats.fs_pruned_none++;
	if (wok && want >= hint)
		stats.fs_above++;
	if (wok && want < hint)
		stats.fs_wrapped++;
	MCHECK(gok == wok && (!gok || got == want), "findspace(hint %#jx, "
	    "len %#zx, align %#zx) = %d %#jx, model %d %#jx (n %zu)",
	    (uintmax_t)hint, len, align, gok,
	    (uintmax_t)got, wok, (uintmax_t)want, m->n);
}

static void
op_lookup(struct model *m, struct map_tree *t)
{
	uintptr_t addr = rnd_addr(m) + (rnd() & 1 ? rnd_below(PG) : 0);
	size_t i = model_first_after(m, addr);
	struct vm_map_entry *in, *le;

	in = (i < m->n && m->iv[i].s <= addr) ? m->iv[i].ent : NULL;
	/* the last interval with s <= addr */
	if (i < m->n && m->iv[i].s <= addr)
		le = m->iv[i].ent;
	else
		le = i > 0 ? m->iv[i - 1].ent : NULL;
	MCHECK(map_tree_lookup(t, addr) == in, "lookup(%#jx)",
	    (uintmax_t)addr);
	MCHECK(map_tree_lookup_le(t, addr) == le, "lookup_le(%#jx)",
	    (uintmax_t)addr);
}

static void
model_run(uint64_t seed, uintptr_t min, uintptr_t max, uint64_t steps)
{
	static struct model m;
	struct map_tree t;
	size_t target = 0;
	uint64_t step, r;

	cur_seed = seed;
	cur_seed_valid = true;
	rng_state = seed ^ min ^ (max << 1);
	memset(&m, 0, sizeof(m));
	m.min = min;
	m.max = max;
	map_tree_init(&t, min, max);
	memset(&stats, 0, sizeof(stats));

	for (step = 0; step < steps; step++) {
		cur_step = step;
		/*
		 * The population drifts between empty and ~700 entries
		 * (fewer when the range fills up): a large target in even
		 * phases, a large or a tiny one in odd phases.
		 */
		if (step % 1500 == 0)
			target = (step / 1500) % 2 == 0 || rnd_below(2) ?
			    rnd_range(100, 700) : rnd_range(0, 8);
		r = rnd_below(100);
		if (r < 35)
			op_insert(&m, &t, target);
		else if (r < 50 || (r < 60 && m.n > target))
			op_remove(&m, &t);
		else if (r < 65)
			op_resize(&m, &t);
		else if (r < 90)
			op_findspace(&m, &t);
		else
			op_lookup(&m, &t);
		model_compare(&m, &t);
		stats.max_n = MAX(stats.max_n, m.n);
	}
	if (getenv("USRVM_TEST_VERBOSE") != NULL)
		fprintf(stderr, "model [%#jx, %#jx): max_n %zu, findspace "
		    "above %u wrapped %u none %u (maxgap >= len %u), "
		    "resizes %u\n", (uintmax_t)min, (uintmax_t)max,
		    stats.max_n, stats.fs_above, stats.fs_wrapped,
		    stats.fs_none, stats.fs_pruned_none, stats.resizes);
	MCHECK(stats.max_n >= 40 && stats.fs_above > 100 &&
	    stats.fs_wrapped > 10 && stats.fs_none > 10 &&
	    stats.resizes > 100, "the run exercised too little");
	while (m.n > 0) {
		op_remove(&m, &t);
		model_compare(&m, &t);
	}
	cur_seed_valid = false;
}

static void
model_run_all(uint64_t seed)
{

	model_run(seed, 0x10000, 0x10000 + 256 * MB, 12000);
	model_run(seed, 0, 64 * MB, 12000);
	model_run(seed, TOP - 256 * MB, TOP, 12000);
	model_run(seed, 0, TOP, 6000);
	model_run(seed, 0x7f0000000000, 0x7f0000000000 + 8 * MB, 6000);
}

START_TEST(test_model_fixed)
{

	model_run_all(FIXED_SEED);
}
END_TEST

START_TEST(test_model_env)
{
	const char *s = getenv("USRVM_TEST_SEED");
	uint64_t seed;

	if (s == NULL || *s == '\0')
		return;
	seed = strtoull(s, NULL, 0);
	fprintf(stderr, "test_map_tree: model seed %" PRIu64 "\n", seed);
	model_run_all(seed);
}
END_TEST

static Suite *
map_tree_suite(void)
{
	Suite *s = suite_create("map_tree");
	TCase *tc;

	tc = tcase_create("unit");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_empty_degenerate);
	tcase_add_test(tc, test_insert_lookup);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_fixup);
	tcase_add_test(tc, test_full_range);
	tcase_add_test(tc, test_hint_beyond_last);
	tcase_add_test(tc, test_alignment);
	tcase_add_test(tc, test_top_of_space);
	tcase_add_test(tc, test_balance);
	tcase_add_test(tc, test_findspace_scales_maxgap);
	tcase_add_test(tc, test_findspace_scales_hint);
	suite_add_tcase(s, tc);

	tc = tcase_create("model");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_model_fixed);
	tcase_add_test(tc, test_model_env);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(map_tree_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
