/*
 * dup.c: the write-protected duplicates.
 *
 * An anon's page is at one address at a time.  Taking away a page the
 * kernel will not move out (a private view of an object, a read-only
 * entry: UFFDIO_MOVE's EINVAL; a page shared with a fork(2) child:
 * EBUSY) means copying it and leaving it where it is: a write-protected
 * duplicate, memory the kernel holds for the process that no vm_page
 * describes.  The runtime leaves one only where it goes soon or is
 * bounded (anon_stage_copy): a write there, whose new anon takes it
 * over; an address about to lose its page; a page lent.
 * Each is recorded here by its address and counted (pages_dup), beside
 * the resident pages, not among them: the page daemon cannot take one
 * back (docs/DESIGN.md, "Duplicates").  It goes when an install at its
 * address takes it over (EEXIST: it becomes that page), or when its
 * range loses its pages (an unmap, DONTNEED, the space
 * destroyed, the application's own munmap or madvise).
 *
 * A table of addresses: open addressing, linear probing, deletion by
 * backward shift, fixed at the start for dup_max duplicates (twice the
 * budget's pages), at most half full.  A duplicate past dup_max is not
 * counted, and that is logged once.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "dup.h"
#include "kmem.h"
#include "page.h"
#include "stats.h"
#include "usrvm_internal.h"

static pthread_mutex_t dup_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *dup_tab;		/* page addresses; 0: empty */
static size_t dup_cap;			/* a power of two, >= 2 * dup_max */
static size_t dup_max;
static _Atomic size_t dup_n;		/* entries; read unlocked: 0 */
static bool dup_full_logged;

int
dup_sys_init(size_t max)
{
	size_t c = 1024;

	while (c < 2 * max)
		c *= 2;
	if ((dup_tab = kmem_zalloc(c * sizeof(*dup_tab))) == NULL)
		return ENOMEM;
	dup_cap = c;
	dup_max = max;
	atomic_store(&dup_n, 0);
	dup_full_logged = false;
	return 0;
}

void
dup_sys_fini(void)
{
	size_t n = atomic_load(&dup_n);

	if (n != 0) {
		usrvm_log(USRVM_LOG_ERR, "%zu duplicates still counted at "
		    "the end", n);
		CNT_ADD(pages_dup, -(int64_t)n);
	}
	kmem_free(dup_tab, dup_cap * sizeof(*dup_tab));
	dup_tab = NULL;
	dup_cap = dup_max = 0;
	atomic_store(&dup_n, 0);
}

void
dup_fork_child(void)
{
	FORK_REINIT_MUTEX(&dup_lock);
}

static size_t
dup_hash(uintptr_t va)
{
	return (size_t)((uint64_t)atop(va) * 0x9e3779b97f4a7c15ull >> 20) &
	    (dup_cap - 1);
}

/* The slot holding va, or the empty one it would go in.  Locked. */
static size_t
dup_find(uintptr_t va)
{
	size_t h = dup_hash(va);

	while (dup_tab[h] != 0 && dup_tab[h] != va)
		h = (h + 1) & (dup_cap - 1);
	return h;
}

/* Remove slot h, shifting back the entries its removal would hide.
 * Locked. */
static void
dup_delete(size_t h)
{
	size_t i = h, j = h;

	for (;;) {
		j = (j + 1) & (dup_cap - 1);
		if (dup_tab[j] == 0)
			break;
		size_t k = dup_hash(dup_tab[j]);
		/* Does j's home lie cyclically in (i, j]?  Then it stays. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		dup_tab[i] = dup_tab[j];
		i = j;
	}
	dup_tab[i] = 0;
	atomic_fetch_sub_explicit(&dup_n, 1, memory_order_relaxed);
	CNT_ADD(pages_dup, -1);
}

void
dup_add(uintptr_t va)
{
	size_t h;

	if (dup_tab == NULL)
		return;
	pthread_mutex_lock(&dup_lock);
	h = dup_find(va);
	if (dup_tab[h] == 0) {
		if (atomic_load_explicit(&dup_n, memory_order_relaxed) >=
		    dup_max) {
			if (!dup_full_logged)
				usrvm_log(USRVM_LOG_ERR, "more than %zu "
				    "write-protected duplicates: the others "
				    "are not counted", dup_max);
			dup_full_logged = true;
		} else {
			dup_tab[h] = va;
			atomic_fetch_add_explicit(&dup_n, 1,
			    memory_order_relaxed);
			CNT_ADD(pages_dup, 1);
		}
	}
	pthread_mutex_unlock(&dup_lock);
}

void
dup_take(uintptr_t va)
{
	size_t h;

	if (atomic_load_explicit(&dup_n, memory_order_relaxed) == 0)
		return;
	pthread_mutex_lock(&dup_lock);
	if (dup_tab != NULL && dup_tab[h = dup_find(va)] != 0)
		dup_delete(h);
	pthread_mutex_unlock(&dup_lock);
}

void
dup_forget(uintptr_t va, size_t len)
{
	uintptr_t end = va + len;

	if (atomic_load_explicit(&dup_n, memory_order_relaxed) == 0)
		return;
	pthread_mutex_lock(&dup_lock);
	if (dup_tab != NULL && atop(len) < dup_cap) {
		for (uintptr_t p = va; p < end; p += PAGE_SIZE) {
			size_t h = dup_find(p);
			if (dup_tab[h] != 0)
				dup_delete(h);
		}
	} else if (dup_tab != NULL) {
		/* A range larger than the table: go through the table.  A
		 * deletion may shift a later entry into this slot: look
		 * again. */
		for (size_t h = 0; h < dup_cap; h++)
			while (dup_tab[h] >= va && dup_tab[h] < end)
				dup_delete(h);
	}
	pthread_mutex_unlock(&dup_lock);
}
