/*
 * page.h: page descriptors (UVM's struct vm_page) and the busy protocol.
 *
 * A descriptor stands for one managed page of memory.  Its identity is one
 * of: free (in a pool), owned by an anon (pg_anon), or owned by an object
 * at an offset (pg_obj, pg_offset).  Where its bytes live depends on the
 * owner (ARCHITECTURE.md): an exclusive anon's bytes live at the address
 * it is mapped at (pg_va), in the kernel's private anonymous page; object
 * pages live in the object's cache.
 *
 * Busy protocol: a page under I/O or being installed has PG_BUSY set by its
 * owner, who does the work unlocked.  Anyone else who needs it sets
 * PG_WANTED and sleeps on the page's wait channel (page_wait); the owner
 * clears PG_BUSY and calls page_wakeup().  A page freed while busy gets
 * PG_RELEASED instead, and the busy owner frees it when done.
 *
 * Locking: pg_flags and the identity fields are guarded by the owner's
 * lock (the amap lock for anon pages, the object lock for object pages).
 */
#ifndef USRVM_PAGE_H
#define USRVM_PAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm_anon;
struct vm_object;

#define PG_BUSY		0x0001	/* owner is installing or doing I/O */
#define PG_WANTED	0x0002	/* someone sleeps on it */
#define PG_RELEASED	0x0004	/* freed while busy: owner frees it */
#define PG_CLEAN	0x0008	/* equals its backing store copy */
#define PG_ZERO		0x0010	/* known to be all zeros */

struct vm_page {
	uint32_t pg_flags;		/* PG_*: owner's lock */
	uint32_t pg_wire_count;		/* owner's lock */
	struct vm_anon *pg_anon;	/* owning anon, or NULL */
	struct vm_object *pg_obj;	/* owning object, or NULL */
	uint64_t pg_offset;		/* byte offset in pg_obj */
	uintptr_t pg_va;		/* where an anon page's bytes live */
	struct vm_page *pg_qnext;	/* page queues (page daemon) */
	struct vm_page *pg_qprev;
};

int page_sys_init(void);
void page_sys_fini(void);

/* Allocate n descriptors (PG_BUSY set) for the fault path; never sleeps. */
unsigned page_alloc_batch(struct vm_page **v, unsigned n);
void page_free(struct vm_page *pg);

/*
 * Sleep until pg is no longer busy.  `lock` (the owner's lock, held on
 * entry) is dropped while sleeping and NOT retaken: the caller must look
 * the page up again (UVM's UVM_UNLOCK_AND_WAIT).
 */
void page_wait(struct vm_page *pg, pthread_mutex_t *lock);
/* Clear PG_BUSY|PG_WANTED and wake sleepers.  Owner's lock held. */
void page_unbusy(struct vm_page *pg);

/* Resident page accounting for stats and the budget. */
void page_resident_add(long n);

#endif /* USRVM_PAGE_H */
