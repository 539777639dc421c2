/*
 * pageheap.h: the allocator's page heap: runs of pages ("spans") carved
 * out of usrvm memory, and the page map that finds a span from an address.
 *
 * Every piece of bookkeeping lives outside the managed pages: span
 * descriptors come from the runtime's pools, the page map and the class
 * map are plain unmanaged memory.  Freeing a block never touches the
 * block, so a cold free never pages anything in.
 *
 * Spans: FREE (in the free lists; sp_zero says whether every page reads
 * as zero), SMALL (objects of one size class), LARGE (one block of whole
 * pages), MAPPED (one block with a usrvm mapping of its own), BUSY (taken
 * out of the free lists while its pages are being discarded).
 *
 * The page heap grows by usrvm_map()ing segments of PH_SEGMENT bytes of
 * the heap space; their commit charge is what makes malloc fail with
 * ENOMEM when budget + swap are spent.  Free pages are given back to the
 * pager (usrvm_advise DONTNEED: the page and its swap slot are freed and
 * the range reads as zeros) once more than ph_dirty_max of them have
 * piled up, largest spans first.  Blocks of PH_MAPPED_MIN bytes or more
 * get a mapping of their own and unmap it when freed.  When commit runs
 * out, the free spans are unmapped, to give their charge to what is asked.
 *
 * Locking: ph_lock guards the free lists and spans' fields; page-map
 * entries are written under it and read without it (an allocated block's
 * entries do not change until it is freed).  ph_lock is never held
 * across usrvm_map/unmap/advise; those calls run with alloc_in_vm set,
 * so that what they allocate goes to the fallback, never back in here.
 */
#ifndef USRVM_PAGEHEAP_H
#define USRVM_PAGEHEAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sizeclass.h"

#define PH_SEGMENT	((size_t)4 << 20)	/* heap growth step */
#define PH_MAPPED_MIN	((size_t)1 << 20)	/* own mapping from here */

enum span_state {
	SPAN_FREE = 1,
	SPAN_SMALL,
	SPAN_LARGE,
	SPAN_MAPPED,
	SPAN_BUSY,
};

struct span {
	uintptr_t sp_start;		/* first byte */
	size_t sp_npages;
	struct span *sp_next;		/* free list or class partial list */
	struct span *sp_prev;
	uint8_t sp_state;		/* enum span_state */
	uint8_t sp_class;		/* SMALL: its size class */
	uint8_t sp_zero;		/* FREE: every page reads as zero */
	uint8_t sp_onlist;		/* SMALL: on the class partial list */
	uint16_t sp_nfree;		/* SMALL: free objects in sp_free */
	uint16_t sp_nobj;		/* SMALL: objects in the span */
	uint64_t sp_free[SC_MAXOBJ / 64];	/* SMALL: 1 = object free */
};

struct usrvm_space;

/* Set up over `space` (its whole reserved range).  0 or an errno. */
int ph_init(struct usrvm_space *space, size_t dirty_max);

/*
 * The index from an address to its span, read on every free (inline):
 * written by ph_init (pi_base last) and under the page heap's lock.
 */
struct ph_index {
	uintptr_t pi_base;		/* the heap space's range; 0: none */
	size_t pi_size;
	_Atomic(struct span *) *pi_map;	/* page -> span (unmanaged) */
	_Atomic uint8_t *pi_class;	/* page -> SMALL class + 1, or 0 */
};
extern struct ph_index ph_index;

/* Is p inside the heap's range?  (O(1); false before ph_init.) */
static inline bool
ph_owns(const void *p)
{
	return (uintptr_t)p - ph_index.pi_base < ph_index.pi_size;
}

/* The span owning the block at p (its first page), or NULL. */
static inline struct span *
ph_lookup(const void *p)
{
	return atomic_load_explicit(&ph_index.pi_map[((uintptr_t)p -
	    ph_index.pi_base) >> 12], memory_order_acquire);
}

/* The size class + 1 of the page holding p, 0 if not a SMALL span. */
static inline unsigned
ph_pageclass(const void *p)
{
	return atomic_load_explicit(&ph_index.pi_class[((uintptr_t)p -
	    ph_index.pi_base) >> 12], memory_order_relaxed);
}

/*
 * A span of `npages` pages aligned to `align` bytes (a power of two, at
 * least a page), in state `state` (SMALL: class `cls`, every page mapped
 * to the span; LARGE: its first and last pages).  *zero says whether it
 * reads as zeros.  NULL with ENOMEM when the heap cannot grow.
 */
struct span *ph_alloc(size_t npages, size_t align, int state, unsigned cls,
    bool *zero);

/* Return a SMALL or LARGE span's pages to the heap. */
void ph_free(struct span *sp);

/*
 * A block of at least `len` bytes with a mapping of its own, aligned to
 * `align` (a power of two).  NULL with errno ENOMEM.  It reads as zeros.
 */
void *ph_map(size_t len, size_t align);
/*
 * Grow a LARGE or MAPPED span in place to npages (> its size): true if
 * the pages after it could be had, false (nothing changed) if not.
 */
bool ph_extend(struct span *sp, size_t npages);
/* Unmap a MAPPED span's block. */
void ph_unmap(struct span *sp);

/* Unmap every free span, giving its commit charge back.  => bytes. */
size_t ph_unmap_free(void);

/* Give every free page back to the pager now (malloc_trim).  => bytes. */
size_t ph_trim(void);

/* Allocator locks around fork (the child must not inherit one held). */
void ph_fork_prepare(void);
void ph_fork_parent(void);
void ph_fork_child(void);

/* Bytes in spans handed out (SMALL, LARGE, MAPPED), and held free. */
void ph_usage(size_t *inuse, size_t *free_resident, size_t *free_zero);

#endif /* USRVM_PAGEHEAP_H */
