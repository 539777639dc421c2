/*
 * alloc.h: the usrvm allocator: malloc over one usrvm space, built for a
 * pager (what libusrvm-preload.so puts under an unmodified program).
 *
 * Small requests (up to SC_MAXSIZE) are served from per-thread caches of
 * free objects, refilled from and flushed to one central free list per
 * size class; larger ones get whole pages from the page heap, and the
 * largest a mapping of their own (pageheap.h).  Every piece of free-list
 * and size bookkeeping lives outside the managed pages: the thread
 * caches are arrays of pointers in unmanaged memory, the central lists
 * are bitmaps in the span descriptors.  malloc and free therefore never
 * touch the block itself, and a cold free does not page anything in
 * (glibc, mimalloc and tcmalloc link free blocks through their first
 * word: each free of a swapped-out block is a page-in).
 *
 * Thread safety: every function may be called from any thread.  A block
 * may be freed by another thread than the one that allocated it.
 */
#ifndef USRVM_ALLOC_H
#define USRVM_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

struct usrvm_space;

/*
 * Set when the allocator itself calls into usrvm (mapping, unmapping or
 * giving pages back): a malloc reached from there must not come back in
 * (the preload hands it to the fallback allocator).
 */
extern __thread bool alloc_in_vm __attribute__((tls_model("initial-exec")));

/*
 * Start over `space` (the allocator owns its whole range).  Free pages
 * beyond `dirty_max` bytes are given back to the pager.  0 or an errno.
 */
int alloc_init(struct usrvm_space *space, size_t dirty_max);

/* Is p in the allocator's range (O(1))?  False before alloc_init. */
bool alloc_owns(const void *p);

/* NULL with errno ENOMEM when the heap cannot grow. */
void *alloc_malloc(size_t size);
void *alloc_calloc(size_t n, size_t size);
/* align: a power of two (EINVAL otherwise). */
void *alloc_memalign(size_t align, size_t size);
void *alloc_realloc(void *p, size_t size);
/* p: NULL, or a block of this allocator. */
void alloc_free(void *p);
/* The usable size of a block of this allocator. */
size_t alloc_usable_size(const void *p);

/* Give every free page back to the pager; bytes given back. */
size_t alloc_trim(void);
/* The calling thread's cache goes back to the central lists. */
void alloc_thread_flush(void);

/* Around fork(2): take every allocator lock, then release it. */
void alloc_fork_prepare(void);
void alloc_fork_parent(void);
void alloc_fork_child(void);

struct alloc_stats {
	size_t as_inuse;	/* bytes in spans handed out */
	size_t as_free_resident;	/* free pages not yet given back */
	size_t as_free_zero;	/* free pages reading as zero */
};
void alloc_stats(struct alloc_stats *st);

#endif /* USRVM_ALLOC_H */
