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
 * Where an anon page's bytes are (docs/DESIGN.md, "Page states"):
 *   mapped   at pg_va, where the application reaches them (active queue);
 *   staged   in frame pg_frame (PG_STAGED): taken away from the
 *            application by the page daemon (inactive queue), being
 *            written to swap, or just read from swap;
 * and an anon with no page is on swap (an_swslot) or known to be zeros.
 * PG_CLEAN: the anon's swap slot holds the same bytes, and the mapped
 * page is write-protected so that the first write is seen (it makes the
 * page dirty and frees the slot).
 *
 * Locking: pg_flags, pg_frame and the identity fields are guarded by the
 * owner's lock (the amap lock for anon pages, the object lock for object
 * pages); pg_pq and the queue links by the page queue lock, taken after
 * the owner's lock.
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
#define PG_PAGEIO	0x0020	/* busy with swap I/O (not a zero fill) */
#define PG_STAGED	0x0040	/* bytes in pg_frame, not at pg_va */
#define PG_FAULTED	0x0080	/* faulted on while busy: wake pg_va */
#define PG_LOANED	0x0100	/* staged and lent (loan.c): off the queues */
#define PG_COPIED	0x0200	/* being copied out: pg_frame holds it */

#define FRAME_NONE	UINT32_MAX

struct vm_page {
	uint32_t pg_flags;		/* PG_*: owner's lock */
	uint32_t pg_wire_count;		/* owner's lock */
	struct vm_anon *pg_anon;	/* owning anon, or NULL */
	struct vm_object *pg_obj;	/* owning object, or NULL */
	uint64_t pg_offset;		/* byte offset in pg_obj */
	uintptr_t pg_va;		/* where an anon page is mapped */
	uint32_t pg_frame;		/* frame of a staged page */
	uint8_t pg_pq;			/* PQ_*: page queue lock */
	struct vm_page *pg_qnext;	/* page queues (page daemon) */
	struct vm_page *pg_qprev;
};

int page_sys_init(void);
void page_sys_fini(void);

/* Allocate n descriptors (PG_BUSY set) for the fault path; never sleeps. */
unsigned page_alloc_batch(struct vm_page **v, unsigned n);
void page_free(struct vm_page *pg);
/* In a fork(2) child: new locks; the objects' pages are the parent's. */
void page_fork_child(void);

/*
 * Sleep until pg is no longer busy.  `lock` (the owner's lock, held on
 * entry) is dropped while sleeping and NOT retaken: the caller must look
 * the page up again (UVM's UVM_UNLOCK_AND_WAIT).
 */
void page_wait(struct vm_page *pg, pthread_mutex_t *lock);
/* Clear PG_BUSY|PG_WANTED and wake sleepers.  Owner's lock held. */
void page_unbusy(struct vm_page *pg);

/*
 * Resident pages and the budget.
 *
 * page_reserve: count up to `want` pages resident before they become
 * visible (at least `min`, else none); returns how many.  Without a
 * budget, always `want`.  With one, the total never passes the budget
 * (plus what the page daemon grants when it cannot free anything); a
 * caller that gets less than `min` parks its fault (pdaemon_park).
 * page_resident_add(-n) gives pages back.
 */
size_t page_reserve(size_t want, size_t min);
void page_resident_add(long n);
size_t page_resident(void);
size_t page_budget(void);		/* 0: none */
void page_budget_set(size_t pages);
void page_budget_grace(size_t pages);	/* pdaemon.c: allow more */

/*
 * Commit accounting (seed 000: no OOM killer).  Private anonymous
 * mappings commit their size when made; with a budget the total may not
 * pass budget + swap, so that a fault always finds somewhere to put a
 * page.  => 0 or ENOMEM.
 */
int page_commit(size_t pages);
void page_uncommit(size_t pages);
void page_commit_limit_set(size_t pages);	/* 0: no limit */
size_t page_commit_limit(void);

/*
 * The page queues (pdpolicy.h), under the page queue lock.  Owner's lock
 * held (lock order: amap -> page queues).
 */
void page_activate(struct vm_page *pg);
void page_deactivate(struct vm_page *pg);
void page_dequeue(struct vm_page *pg);
void pageq_lock(void);
void pageq_unlock(void);
struct pdpolicy *pageq_policy(void);	/* page queue lock held */

#endif /* USRVM_PAGE_H */
