/*
 * object.h: memory objects and their pagers, the lower layer (UVM's
 * uvm_object.h and uvm_pager.h).
 *
 * PART 1: INTERFACE.  A map entry's lower layer is an object at an offset
 * (e->object, e->offset).  An object owns its resident pages, indexed by
 * offset, and reaches its backing store through its pager's operations.
 * The fault routine's case 2 asks the object for pages (pgo_get); the page
 * daemon and usrvm_sync give them back (pgo_put).
 *
 * Implementations, each in lib/pager/: the vnode pager (files) and the
 * aobj (swap-backed shared anonymous memory).  Private
 * anonymous memory has no object: its lower layer is zero fill, done by
 * the fault routine itself, as in UVM.
 *
 * PART 2: WHERE AN OBJECT'S PAGES LIVE (object.c; ARCHITECTURE.md).  The
 * resident pages of an object are the pages of a memfd, its page cache.
 * Each map entry of the object is a view: the memfd mapped MAP_SHARED at
 * the entry's addresses, so a write through one view is in every other
 * at once, with no copy.  The runtime reaches the pages through its own
 * window (the memfd mapped once, unregistered), where the pager's I/O
 * goes.  A descriptor (struct vm_page, pg_obj/pg_offset) stands for each
 * page the memfd holds, and the memfd holds a page only while it has one:
 *   - filled: the descriptor is inserted busy, the pager reads into the
 *     window, and views see the page only through a fault the runtime
 *     serves (views trap minor faults: the page is in the memfd but not
 *     mapped there), which waits while the page is busy;
 *   - freed: the page is punched out of the memfd (FALLOC_FL_PUNCH_HOLE),
 *     which unmaps it from every view at once, then the descriptor goes.
 * Every view maps a page write-protected unless it is dirty; the first
 * write through any view is a write-protect fault that marks it dirty
 * (PG_CLEAN cleared).  Cleaning write-protects the page in every view
 * first (the object keeps its views), so no write goes unseen.
 *
 * Locking: vo_lock guards the object's pages, their flags and the
 * fields marked so; it comes after the amap lock in the lock order
 * (usrvm_internal.h).
 */
#ifndef USRVM_OBJECT_H
#define USRVM_OBJECT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm_object;
struct vm_page;

/* pgo_get / pgo_put flags (UVM's PGO_*) */
#define PGO_SYNCIO	0x01	/* put: write now and wait for the device */
#define PGO_RANDOM	0x02	/* get: the entry's advice is RANDOM */
#define PGO_SEQUENTIAL	0x04	/* get: ... SEQUENTIAL */

struct uvm_pagerops {
	/* A new reference to the object (a map entry maps it). */
	void (*pgo_reference)(struct vm_object *obj);
	/* Drop one; at zero the pager may cache or free the object. */
	void (*pgo_detach)(struct vm_object *obj);
	/*
	 * Get pages [offset, offset + *npages) for a fault: pages[centeridx]
	 * is the one it needs, the others its window.  Missing pages are
	 * read in; what comes back is busy, for the caller to map and
	 * unbusy, and *npages says how many (the pager decides how much of
	 * the window is worth it).
	 * => object locked on entry; unlocked on return.
	 * => 0, ERESTART (it waited for a busy page: look again),
	 *    FAULT_PARK (the budget is full), ENXIO (past the end of the
	 *    backing store), EIO or ENOMEM.
	 */
	int (*pgo_get)(struct vm_object *obj, uint64_t offset,
	    struct vm_page **pages, unsigned *npages, unsigned centeridx,
	    int access, int flags);
	/*
	 * Write back the pages of [start, end): with PGO_SYNCIO now, on
	 * the caller's thread, waiting for the device (object unlocked);
	 * without, soon, by the pager's own thread (never sleeps: any lock
	 * may be held, as the page daemon holds the object's).
	 * => 0 or EIO (pages stay dirty: nothing is dropped).
	 */
	int (*pgo_put)(struct vm_object *obj, uint64_t start, uint64_t end,
	    int flags);
	/*
	 * In a fork(2) child, where no runtime runs: show the object from
	 * byte off at [va, va + len) with protection prot some way the
	 * kernel serves alone; private: the child's writes there stay its
	 * own.  => 0 or an errno.
	 */
	int (*pgo_forked)(struct vm_object *obj, uintptr_t va, size_t len,
	    uint64_t off, int prot, bool private);
	/*
	 * Optional: pg has just been made dirty (vo_lock held): a copy of
	 * it the pager keeps per page (the aobj's swap slot) is stale.
	 */
	void (*pgo_dirtied)(struct vm_object *obj, struct vm_page *pg);
};

struct object_view;

struct vm_object {
	pthread_mutex_t vo_lock;
	const struct uvm_pagerops *vo_pgops;	/* constant */
	unsigned vo_refs;			/* the pager's lock */
	uint64_t vo_npages;			/* resident pages: vo_lock */
	uint64_t vo_size;			/* bytes (page multiple): constant */
	int vo_memfd;				/* the page cache: constant */
	char *vo_window;			/* the runtime's view of it */
	struct vm_page ***vo_pages;		/* index: vo_lock */
	uint64_t vo_ndirty;			/* dirty pages: vo_lock */
	uint64_t vo_dirty_ns;			/* oldest dirtying: vo_lock */
	struct object_view *vo_views;		/* vo_lock */
};

/*
 * object.c: an object's page cache (PART 2).
 *
 * object_init: an empty cache of size bytes (a page multiple; 0 is an
 * object no page of which exists).  => 0 or an errno.
 * object_fini: free every page (the pager has written the dirty ones
 * back: what is left is dropped) and the cache.
 */
int object_init(struct vm_object *obj, const struct uvm_pagerops *ops,
    uint64_t size);
void object_fini(struct vm_object *obj);

/* The page at byte offset off, or NULL.  vo_lock held. */
struct vm_page *object_lookup(struct vm_object *obj, uint64_t off);
/* The offset of the first resident page in [off, end), or end (a chunk
 * of the index that was never used is passed over whole).  vo_lock held. */
uint64_t object_next(struct vm_object *obj, uint64_t off, uint64_t end);
/*
 * object_get_resident: pgo_get's first step.  *wantp (pages asked for)
 * is cut to what the object holds from off.  If the page at off is
 * resident, busy it and the resident pages after it, up to *wantp in
 * all and none busy already, into pages[]; *np says how many (0: off is
 * not resident).  => 0 (vo_lock held); ERESTART: the page was busy, and
 * this waited for it (look again); ENXIO: off is past the object (both
 * with vo_lock dropped).
 */
int object_get_resident(struct vm_object *obj, uint64_t off,
    struct vm_page **pages, unsigned *wantp, unsigned *np);
/*
 * object_dirty_run: the run of dirty pages, none busy, from off (up to
 * max, before end), busied for a write-back (PG_BUSY | PG_PAGEIO) into
 * run[].  => how many (0: the page at off is missing, busy or clean).
 * object_run_done: the write-back of run[0..n) is over.  vo_lock held.
 */
unsigned object_dirty_run(struct vm_object *obj, uint64_t off, uint64_t end,
    struct vm_page **run, unsigned max);
void object_run_done(struct vm_page **run, unsigned n);
/*
 * object_insert: n new descriptors for pages [off, off + n pages),
 * busy and clean, none of which is resident yet: pages[] gets them.
 * Their resident count must have been reserved (page_reserve).
 * => n, or fewer if descriptors ran out.  vo_lock held.
 */
unsigned object_insert(struct vm_object *obj, uint64_t off,
    struct vm_page **pages, unsigned n);
/*
 * object_page_free: drop a page from the cache (every view loses it) and
 * give its resident count back.  Not busy, or busy by the caller.
 * vo_lock held.
 */
void object_page_free(struct vm_object *obj, struct vm_page *pg);
/* The same for n pages, one punch for each run of consecutive ones. */
void object_pages_free(struct vm_object *obj, struct vm_page **pages,
    unsigned n);
/* Mark a page dirty (PG_CLEAN cleared, counted).  vo_lock held. */
void object_page_dirty(struct vm_object *obj, struct vm_page *pg);
/* Mark a page clean again (its bytes are on the backing store). */
void object_page_clean(struct vm_object *obj, struct vm_page *pg);
/* Address of a page's bytes in the runtime's window. */
static inline void *
object_window(struct vm_object *obj, uint64_t off)
{
	return obj->vo_window + off;
}

/*
 * Views: the addresses where map entries show the object.
 * object_view_add: [va, va + len) shows the object from byte off.
 * => 0 or ENOMEM.  object_view_remove: [va, va + len) no longer does
 * (a part of a view may go: the rest stays).  vo_lock held by neither's
 * caller.  object_wprotect: write-protect pages [off, off + len) in
 * every view (before they are cleaned); vo_lock held.  => 0, or the
 * pmap's error (EAGAIN: an application event stayed unread): then they
 * must stay dirty.
 */
int object_view_add(struct vm_object *obj, uintptr_t va, size_t len,
    uint64_t off);
void object_view_remove(struct vm_object *obj, uintptr_t va, size_t len);
int object_wprotect(struct vm_object *obj, uint64_t off, size_t len);

#endif /* USRVM_OBJECT_H */
