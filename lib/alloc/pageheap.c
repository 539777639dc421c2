/*
 * pageheap.c: runs of pages for the allocator (see pageheap.h).
 *
 * Free spans sit in two sets of lists, dirty (pages may hold old bytes and
 * be resident) and zero (given back to the pager, or never touched),
 * each bucketed by length: one list per length below PH_NLIST pages, and
 * one list (index 0) for everything longer.  An allocation takes the
 * smallest dirty span that fits, else the smallest zero span, else grows
 * the heap: reusing resident pages costs nothing, and faulting in zero
 * pages costs a fault each.  Freed spans coalesce with free neighbours;
 * the page map's entries for the first and last page of every span are
 * always current, which is all coalescing reads.  Interior entries are
 * only current for SMALL spans (free finds an object's span from any of
 * its pages).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc.h"
#include "kmem.h"
#include "pageheap.h"
#include "usrvm_internal.h"

#define PH_NLIST	128

struct ph_lists {
	struct span *pl_head[PH_NLIST];
	uint64_t pl_nonempty[PH_NLIST / 64];	/* bit b: pl_head[b] set */
};

static struct {
	pthread_mutex_t ph_lock;
	struct usrvm_space *ph_space;
	struct ph_lists ph_dirty;	/* free spans, possibly resident */
	struct ph_lists ph_zero;	/* free spans reading as zero */
	size_t ph_dirty_pages;		/* pages in ph_dirty */
	size_t ph_zero_pages;		/* pages in ph_zero */
	size_t ph_dirty_max;		/* give back beyond this many */
	size_t ph_inuse_pages;		/* SMALL, LARGE and MAPPED */
	bool ph_decaying;		/* one thread gives pages back */
	_Atomic uintptr_t ph_map_next;	/* where the next MAPPED block goes */
	struct pool ph_span_pool;
} ph = {
	.ph_lock = PTHREAD_MUTEX_INITIALIZER,
};

struct ph_index ph_index;

/* ------------------------------------------------------------------ */
/* The page map                                                        */
/* ------------------------------------------------------------------ */

static inline size_t
ph_page(uintptr_t va)
{
	return atop(va - ph_index.pi_base);
}

static void
ph_map_set(size_t page, struct span *sp)
{
	atomic_store_explicit(&ph_index.pi_map[page], sp, memory_order_release);
}

/* Map a span's first and last pages to it.  => ph_lock held. */
static void
ph_map_ends(struct span *sp)
{
	ph_map_set(ph_page(sp->sp_start), sp);
	ph_map_set(ph_page(sp->sp_start) + sp->sp_npages - 1, sp);
}




/* ------------------------------------------------------------------ */
/* Free lists                                                          */
/* ------------------------------------------------------------------ */

static inline unsigned
ph_bucket(size_t npages)
{
	return npages < PH_NLIST ? (unsigned)npages : 0;
}

/* Put a free span on its list and map its ends.  => ph_lock held. */
static void
ph_insert(struct span *sp)
{
	struct ph_lists *pl = sp->sp_zero ? &ph.ph_zero : &ph.ph_dirty;
	unsigned b = ph_bucket(sp->sp_npages);

	sp->sp_state = SPAN_FREE;
	sp->sp_prev = NULL;
	sp->sp_next = pl->pl_head[b];
	if (sp->sp_next != NULL)
		sp->sp_next->sp_prev = sp;
	pl->pl_head[b] = sp;
	pl->pl_nonempty[b / 64] |= (uint64_t)1 << (b % 64);
	*(sp->sp_zero ? &ph.ph_zero_pages : &ph.ph_dirty_pages) +=
	    sp->sp_npages;
	ph_map_ends(sp);
}

/* Take a free span off its list.  => ph_lock held. */
static void
ph_remove(struct span *sp)
{
	struct ph_lists *pl = sp->sp_zero ? &ph.ph_zero : &ph.ph_dirty;
	unsigned b = ph_bucket(sp->sp_npages);

	KASSERT(sp->sp_state == SPAN_FREE);
	if (sp->sp_prev != NULL)
		sp->sp_prev->sp_next = sp->sp_next;
	else
		pl->pl_head[b] = sp->sp_next;
	if (sp->sp_next != NULL)
		sp->sp_next->sp_prev = sp->sp_prev;
	if (pl->pl_head[b] == NULL)
		pl->pl_nonempty[b / 64] &= ~((uint64_t)1 << (b % 64));
	*(sp->sp_zero ? &ph.ph_zero_pages : &ph.ph_dirty_pages) -=
	    sp->sp_npages;
}

/*
 * The smallest span in `pl` of at least `npages` pages.  Exact-length
 * lists are found through their bitmap; the long list is searched for
 * its best fit.  => ph_lock held; NULL if none.
 */
static struct span *
ph_find(struct ph_lists *pl, size_t npages)
{
	struct span *best = NULL;

	for (unsigned b = ph_bucket(npages); b != 0 && b < PH_NLIST;) {
		uint64_t w = pl->pl_nonempty[b / 64] >> (b % 64);
		if (w != 0)
			return pl->pl_head[b + (unsigned)__builtin_ctzll(w)];
		b = (b / 64 + 1) * 64;
	}
	for (struct span *sp = pl->pl_head[0]; sp != NULL; sp = sp->sp_next)
		if (sp->sp_npages >= npages &&
		    (best == NULL || sp->sp_npages < best->sp_npages))
			best = sp;
	return best;
}

static struct span *
ph_span_get(void)
{
	return pool_get(&ph.ph_span_pool, NULL);
}

/*
 * Merge a span leaving use with its free neighbours and put it on a
 * free list.  => ph_lock held.
 */
static void
ph_release(struct span *sp)
{
	size_t first = ph_page(sp->sp_start);
	size_t last = first + sp->sp_npages - 1;
	struct span *nb;

	if (first > 0 && (nb = ph_lookup((void *)(sp->sp_start -
	    PAGE_SIZE))) != NULL && nb->sp_state == SPAN_FREE &&
	    nb->sp_start + ptoa(nb->sp_npages) == sp->sp_start) {
		ph_remove(nb);
		sp->sp_start = nb->sp_start;
		sp->sp_npages += nb->sp_npages;
		sp->sp_zero &= nb->sp_zero;
		pool_put(&ph.ph_span_pool, nb);
	}
	if (last + 1 < atop(ph_index.pi_size) && (nb = atomic_load_explicit(
	    &ph_index.pi_map[last + 1], memory_order_relaxed)) != NULL &&
	    nb->sp_state == SPAN_FREE && nb->sp_start ==
	    sp->sp_start + ptoa(sp->sp_npages)) {
		ph_remove(nb);
		sp->sp_npages += nb->sp_npages;
		sp->sp_zero &= nb->sp_zero;
		pool_put(&ph.ph_span_pool, nb);
	}
	ph_insert(sp);
}

/*
 * Split free span `sp` (off its lists) after its first `npages` pages:
 * the rest becomes a new span, returned.  => ph_lock held; NULL if no
 * descriptor could be had (sp unchanged).
 */
static struct span *
ph_split(struct span *sp, size_t npages)
{
	struct span *rest;

	if ((rest = ph_span_get()) == NULL)
		return NULL;
	rest->sp_start = sp->sp_start + ptoa(npages);
	rest->sp_npages = sp->sp_npages - npages;
	rest->sp_zero = sp->sp_zero;
	sp->sp_npages = npages;
	return rest;
}

/*
 * Cut the first `npages` pages off free span `sp` (off its list); the
 * rest goes back on a list.  => ph_lock held; NULL if no descriptor
 * could be had (sp is then back on its list).
 */
static struct span *
ph_carve(struct span *sp, size_t npages)
{
	struct span *rest;

	if (sp->sp_npages == npages)
		return sp;
	if ((rest = ph_split(sp, npages)) == NULL) {
		ph_insert(sp);
		return NULL;
	}
	ph_insert(rest);
	return sp;
}

/* ------------------------------------------------------------------ */
/* Growth and giving back                                              */
/* ------------------------------------------------------------------ */

/*
 * Map len bytes of private zero-fill memory in the heap's space, at
 * `hint` (exactly there if fixed), as the allocator's own call into
 * usrvm.  => the address, or NULL with errno.
 */
static void *
ph_vm_map(uintptr_t hint, size_t len, bool fixed)
{
	void *va;

	alloc_in_vm = true;
	va = usrvm_map(ph.ph_space, (void *)hint, len, USRVM_PROT_ALL,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON | (fixed ? USRVM_MAP_FIXED :
	    0), -1, 0);
	alloc_in_vm = false;
	return va;
}

/* Unmap [va, va + len) of the heap's space, the same way. */
static void
ph_vm_unmap(uintptr_t va, size_t len)
{
	alloc_in_vm = true;
	(void)usrvm_unmap(ph.ph_space, (void *)va, len);
	alloc_in_vm = false;
}

/*
 * Map a new segment big enough for `npages` aligned to `align`, and add
 * it to the free lists.  => ph_lock held (dropped and retaken around the
 * mapping).  0 or ENOMEM.
 */
static int
ph_grow(size_t npages, size_t align)
{
	size_t need = ptoa(npages) + align - PAGE_SIZE, len;
	struct span *sp;
	void *va;

	len = (need + PH_SEGMENT - 1) / PH_SEGMENT * PH_SEGMENT;
	if ((sp = ph_span_get()) == NULL)
		return ENOMEM;
	pthread_mutex_unlock(&ph.ph_lock);
	va = ph_vm_map(0, len, false);
	if (va == NULL && errno == ENOMEM && len > need) {
		/* Not commit enough for a whole segment: what is needed. */
		len = need;
		va = ph_vm_map(0, len, false);
	}
	pthread_mutex_lock(&ph.ph_lock);
	if (va == NULL) {
		pool_put(&ph.ph_span_pool, sp);
		return ENOMEM;
	}
	sp->sp_start = (uintptr_t)va;
	sp->sp_npages = atop(len);
	sp->sp_zero = true;
	ph_release(sp);
	return 0;
}

/*
 * Give a free span's pages back to the pager: the pages and their swap
 * slots are freed and the range reads as zeros.  The span is BUSY (off
 * the lists, not coalescable) while ph_lock is dropped.  => ph_lock held.
 */
static void
ph_giveback(struct span *sp)
{
	int error;

	ph_remove(sp);
	sp->sp_state = SPAN_BUSY;
	pthread_mutex_unlock(&ph.ph_lock);
	alloc_in_vm = true;
	error = usrvm_advise(ph.ph_space, (void *)sp->sp_start,
	    ptoa(sp->sp_npages), USRVM_ADV_DONTNEED);
	alloc_in_vm = false;
	pthread_mutex_lock(&ph.ph_lock);
	if (error == 0)
		sp->sp_zero = true;
	ph_release(sp);
}

/*
 * Give back dirty free pages, longest spans first, until at most
 * `target` are left.  => ph_lock held; bytes given back.
 */
static size_t
ph_decay(size_t target)
{
	size_t given = 0;

	if (ph.ph_decaying)
		return 0;
	ph.ph_decaying = true;
	while (ph.ph_dirty_pages > target) {
		struct span *sp = ph.ph_dirty.pl_head[0];
		for (struct span *s = sp; s != NULL; s = s->sp_next)
			if (s->sp_npages > sp->sp_npages)
				sp = s;
		for (unsigned b = PH_NLIST - 1; sp == NULL && b > 0; b--)
			sp = ph.ph_dirty.pl_head[b];
		if (sp == NULL)
			break;
		given += ptoa(sp->sp_npages);
		ph_giveback(sp);
	}
	ph.ph_decaying = false;
	return given;
}

/*
 * Unmap every free span, giving its commit charge back: the heap could
 * not grow, and what it holds free may be what is missing.  Spans are
 * taken off the lists (BUSY, their ends unmapped in the page map) in
 * batches, and unmapped with ph_lock dropped.  => ph_lock held; bytes.
 */
static size_t
ph_unmap_free_locked(void)
{
	struct span *v[64], *sp;
	size_t given = 0;
	unsigned n;

	do {
		n = 0;
		for (int z = 0; z < 2; z++) {
			struct ph_lists *pl = z ? &ph.ph_zero : &ph.ph_dirty;
			for (unsigned b = 0; b < PH_NLIST && n < 64; b++) {
				while (n < 64 && (sp = pl->pl_head[b]) != NULL) {
					ph_remove(sp);
					sp->sp_state = SPAN_BUSY;
					ph_map_set(ph_page(sp->sp_start), NULL);
					ph_map_set(ph_page(sp->sp_start) +
					    sp->sp_npages - 1, NULL);
					v[n++] = sp;
				}
			}
		}
		pthread_mutex_unlock(&ph.ph_lock);
		for (unsigned i = 0; i < n; i++)
			ph_vm_unmap(v[i]->sp_start, ptoa(v[i]->sp_npages));
		pthread_mutex_lock(&ph.ph_lock);
		for (unsigned i = 0; i < n; i++) {
			given += ptoa(v[i]->sp_npages);
			pool_put(&ph.ph_span_pool, v[i]);
		}
	} while (n == 64);
	return given;
}

size_t
ph_unmap_free(void)
{
	size_t given;

	pthread_mutex_lock(&ph.ph_lock);
	given = ph_unmap_free_locked();
	pthread_mutex_unlock(&ph.ph_lock);
	return given;
}

size_t
ph_trim(void)
{
	size_t given;

	pthread_mutex_lock(&ph.ph_lock);
	given = ph_decay(0);
	pthread_mutex_unlock(&ph.ph_lock);
	return given;
}

/* ------------------------------------------------------------------ */
/* Spans                                                               */
/* ------------------------------------------------------------------ */

int
ph_init(struct usrvm_space *space, size_t dirty_max)
{
	size_t npages;

	ph.ph_space = space;
	ph_index.pi_size = usrvm_space_size(space);
	npages = atop(ph_index.pi_size);
	ph_index.pi_map = mmap(NULL, npages * sizeof(*ph_index.pi_map),
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_NORESERVE, -1, 0);
	if (ph_index.pi_map == MAP_FAILED)
		return errno;
	ph_index.pi_class = mmap(NULL, npages, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ph_index.pi_class == MAP_FAILED) {
		munmap(ph_index.pi_map, npages * sizeof(*ph_index.pi_map));
		return errno;
	}
	ph.ph_dirty_max = atop(dirty_max);
	pool_init(&ph.ph_span_pool, "span", sizeof(struct span), 64, 512);
	/* Last: ph_owns() is true from here on. */
	ph_index.pi_base = (uintptr_t)usrvm_space_base(space);
	return 0;
}

struct span *
ph_alloc(size_t npages, size_t align, int state, unsigned cls, bool *zero)
{
	size_t want = npages + atop(align) - 1, lead;
	struct span *sp, *tail;

	KASSERT(state == SPAN_SMALL || state == SPAN_LARGE);
	pthread_mutex_lock(&ph.ph_lock);
	while ((sp = ph_find(&ph.ph_dirty, want)) == NULL &&
	    (sp = ph_find(&ph.ph_zero, want)) == NULL) {
		if (ph_grow(npages, align) != 0 &&
		    (ph_unmap_free_locked() == 0 ||
		    ph_grow(npages, align) != 0)) {
			pthread_mutex_unlock(&ph.ph_lock);
			errno = ENOMEM;
			return NULL;
		}
	}
	ph_remove(sp);
	lead = atop(((sp->sp_start + align - 1) & ~(align - 1)) -
	    sp->sp_start);
	if (lead > 0) {
		/* Keep the aligned tail; the head goes back. */
		if ((tail = ph_split(sp, lead)) == NULL) {
			ph_insert(sp);
			goto nomem;
		}
		ph_insert(sp);
		sp = tail;
	}
	if (ph_carve(sp, npages) == NULL)
		goto nomem;
	sp->sp_state = (uint8_t)state;
	sp->sp_class = (uint8_t)cls;
	*zero = sp->sp_zero;
	ph.ph_inuse_pages += npages;
	if (state == SPAN_SMALL) {
		for (size_t i = 0; i < npages; i++) {
			ph_map_set(ph_page(sp->sp_start) + i, sp);
			atomic_store_explicit(&ph_index.pi_class[ph_page(
			    sp->sp_start) + i], (uint8_t)(cls + 1),
			    memory_order_relaxed);
		}
	} else {
		ph_map_ends(sp);
	}
	pthread_mutex_unlock(&ph.ph_lock);
	return sp;
nomem:
	pthread_mutex_unlock(&ph.ph_lock);
	errno = ENOMEM;
	return NULL;
}

void
ph_free(struct span *sp)
{
	KASSERT(sp->sp_state == SPAN_SMALL || sp->sp_state == SPAN_LARGE);
	pthread_mutex_lock(&ph.ph_lock);
	if (sp->sp_state == SPAN_SMALL)
		for (size_t i = 0; i < sp->sp_npages; i++)
			atomic_store_explicit(&ph_index.pi_class[ph_page(
			    sp->sp_start) + i], 0, memory_order_relaxed);
	ph.ph_inuse_pages -= sp->sp_npages;
	sp->sp_zero = false;
	ph_release(sp);
	if (ph.ph_dirty_pages > ph.ph_dirty_max)
		(void)ph_decay(ph.ph_dirty_max / 2);
	pthread_mutex_unlock(&ph.ph_lock);
}

/* ------------------------------------------------------------------ */
/* Blocks with their own mapping                                       */
/* ------------------------------------------------------------------ */

void *
ph_map(size_t len, size_t align)
{
	size_t mlen = round_page(len), extra = align > PAGE_SIZE ?
	    align - PAGE_SIZE : 0;
	struct span *sp;
	uintptr_t va, start, hint;

	if (mlen < len || mlen + extra < mlen || (sp = ph_span_get()) ==
	    NULL) {
		errno = ENOMEM;
		return NULL;
	}
	/* Blocks with their own mapping go in the upper half of the space,
	 * each with as much room after it as it has, so that realloc can
	 * often grow it where it is (ph_extend); segments, in the lower. */
	hint = atomic_load_explicit(&ph.ph_map_next, memory_order_relaxed);
	if (hint == 0)
		hint = ph_index.pi_base + ph_index.pi_size / 2;
	va = (uintptr_t)ph_vm_map(hint, mlen + extra, false);
	if (va == 0 && errno == ENOMEM)		/* no room above the hint */
		va = (uintptr_t)ph_vm_map(0, mlen + extra, false);
	if (va != 0)
		atomic_store_explicit(&ph.ph_map_next, va + 2 * (mlen + extra),
		    memory_order_relaxed);
	if (va != 0 && extra > 0) {
		start = (va + align - 1) & ~(align - 1);
		if (start > va)
			ph_vm_unmap(va, start - va);
		if (va + extra > start)
			ph_vm_unmap(start + mlen, va + extra - start);
		va = start;
	}
	if (va == 0) {
		pool_put(&ph.ph_span_pool, sp);
		errno = ENOMEM;
		return NULL;
	}
	sp->sp_start = va;
	sp->sp_npages = atop(mlen);
	sp->sp_state = SPAN_MAPPED;
	pthread_mutex_lock(&ph.ph_lock);
	ph.ph_inuse_pages += sp->sp_npages;
	ph_map_ends(sp);
	pthread_mutex_unlock(&ph.ph_lock);
	return (void *)va;
}

/*
 * ph_extend: grow a LARGE or MAPPED span where it is to `npages` pages,
 * taking the pages that follow it (a free span's, or with a mapping of
 * their own).  => true if done; false (unchanged) if they are not free.
 */
bool
ph_extend(struct span *sp, size_t npages)
{
	size_t extra = npages - sp->sp_npages;
	uintptr_t end = sp->sp_start + ptoa(sp->sp_npages);
	struct span *nb;
	void *va;

	KASSERT(npages > sp->sp_npages);
	if (end + ptoa(extra) > ph_index.pi_base + ph_index.pi_size ||
	    end + ptoa(extra) < end)
		return false;
	if (sp->sp_state == SPAN_MAPPED) {
		va = ph_vm_map(end, ptoa(extra), true);
		if (va == NULL)
			return false;
		pthread_mutex_lock(&ph.ph_lock);
	} else {
		KASSERT(sp->sp_state == SPAN_LARGE);
		pthread_mutex_lock(&ph.ph_lock);
		nb = atomic_load_explicit(&ph_index.pi_map[ph_page(end)],
		    memory_order_relaxed);
		if (nb == NULL || nb->sp_state != SPAN_FREE ||
		    nb->sp_start != end || nb->sp_npages < extra) {
			pthread_mutex_unlock(&ph.ph_lock);
			return false;
		}
		ph_remove(nb);
		if (ph_carve(nb, extra) == NULL) {
			pthread_mutex_unlock(&ph.ph_lock);
			return false;
		}
		pool_put(&ph.ph_span_pool, nb);
	}
	/* The old last page is inside the span now. */
	ph_map_set(ph_page(end) - 1, sp->sp_npages > 1 ? NULL : sp);
	sp->sp_npages = npages;
	ph_map_set(ph_page(end) + extra - 1, sp);
	ph.ph_inuse_pages += extra;
	pthread_mutex_unlock(&ph.ph_lock);
	return true;
}

void
ph_unmap(struct span *sp)
{
	KASSERT(sp->sp_state == SPAN_MAPPED);
	/* Clear the entries first: once unmapped, the range can be handed
	 * out again, and its new owner's entries must not be wiped. */
	pthread_mutex_lock(&ph.ph_lock);
	ph_map_set(ph_page(sp->sp_start), NULL);
	ph_map_set(ph_page(sp->sp_start) + sp->sp_npages - 1, NULL);
	ph.ph_inuse_pages -= sp->sp_npages;
	pthread_mutex_unlock(&ph.ph_lock);
	ph_vm_unmap(sp->sp_start, ptoa(sp->sp_npages));
	pool_put(&ph.ph_span_pool, sp);
}

/* ------------------------------------------------------------------ */
/* Fork and statistics                                                 */
/* ------------------------------------------------------------------ */

void
ph_fork_prepare(void)
{
	pthread_mutex_lock(&ph.ph_lock);
}

void
ph_fork_parent(void)
{
	pthread_mutex_unlock(&ph.ph_lock);
}

void
ph_fork_child(void)
{
	pthread_mutex_unlock(&ph.ph_lock);
}

void
ph_usage(size_t *inuse, size_t *free_resident, size_t *free_zero)
{
	pthread_mutex_lock(&ph.ph_lock);
	*inuse = ptoa(ph.ph_inuse_pages);
	*free_resident = ptoa(ph.ph_dirty_pages);
	*free_zero = ptoa(ph.ph_zero_pages);
	pthread_mutex_unlock(&ph.ph_lock);
}
