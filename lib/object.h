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
 * Implementations, each in lib/pager/: the aobj (swap-backed anonymous
 * object: shared anonymous memory) and the vnode pager (files).  Private
 * anonymous memory has no object: its lower layer is zero fill, done by
 * the fault routine itself, as in UVM.  Until the first pager exists,
 * usrvm_map refuses mappings that need an object (ENOTSUP) and the fault
 * routine asserts that an entry has none.
 *
 * Locking: vo_lock guards the object's pages and fields; it comes after
 * the amap lock in the lock order (usrvm_internal.h).
 */
#ifndef USRVM_OBJECT_H
#define USRVM_OBJECT_H

#include <pthread.h>
#include <stdint.h>

struct vm_object;
struct vm_page;

/* pgo_get / pgo_put flags (UVM's PGO_*) */
#define PGO_LOCKED	0x01	/* get: resident pages only, never sleep */
#define PGO_SYNCIO	0x02	/* put: wait for the I/O */
#define PGO_CLEANIT	0x04	/* put: write dirty pages back */
#define PGO_FREE	0x08	/* put: free the pages after */
#define PGO_DEACTIVATE	0x10	/* put: move the pages to the inactive queue */

struct uvm_pagerops {
	/* A new reference to the object (a map entry maps it). */
	void (*pgo_reference)(struct vm_object *obj);
	/* Drop one; at zero the pager may cache or free the object. */
	void (*pgo_detach)(struct vm_object *obj);
	/*
	 * Get pages [offset, offset + npages): pages[centeridx] is the one
	 * the fault needs, the others are read-ahead.  With PGO_LOCKED only
	 * resident pages are returned (NULL elsewhere) and nothing sleeps;
	 * otherwise missing pages are read in (busy until their I/O is done).
	 * => object locked on entry; unlocked on return unless PGO_LOCKED.
	 * => 0, EAGAIN (PGO_LOCKED: the center page is not resident) or EIO.
	 */
	int (*pgo_get)(struct vm_object *obj, uint64_t offset,
	    struct vm_page **pages, unsigned *npages, unsigned centeridx,
	    int access, int flags);
	/*
	 * Write back and/or free the pages of [start, end) (PGO_*).
	 * => object locked on entry, unlocked on return.
	 * => 0 or EIO (pages stay dirty: nothing is dropped).
	 */
	int (*pgo_put)(struct vm_object *obj, uint64_t start, uint64_t end,
	    int flags);
};

struct vm_object {
	pthread_mutex_t vo_lock;
	const struct uvm_pagerops *vo_pgops;	/* constant */
	unsigned vo_refs;			/* vo_lock */
	uint64_t vo_npages;			/* resident pages: vo_lock */
};

#endif /* USRVM_OBJECT_H */
