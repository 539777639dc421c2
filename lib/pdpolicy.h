/*
 * pdpolicy.h: the page replacement policy (NetBSD's uvm_pdpolicy), as pure
 * logic over page descriptors: no locks, no kernel, no I/O.  The page
 * daemon (pdaemon.c) calls it under the page queue lock and carries out
 * what it decides; the tests drive it from traces with no kernel in the
 * loop (tests/test_pdpolicy.c).
 *
 * Two queues, UVM's:
 *   active    pages the application can reach (mapped at their address);
 *   inactive  pages taken away from the application and kept in a frame:
 *             the next access to one faults, and that fault is the
 *             reference bit a CPU would have set (pdp_reactivate).
 * A page found on the inactive queue's head has not been used since it
 * was deactivated: it is the victim (clean: dropped; dirty: paged out).
 *
 * Targets, in pages, from the budget:
 *   freetarg  the daemon works until this many pages are free;
 *   freemin   it is woken when fewer than this are free;
 *   the inactive queue is kept at a third of the pages on both queues
 *   (UVM's default), and never shorter than what must be freed.
 */
#ifndef USRVM_PDPOLICY_H
#define USRVM_PDPOLICY_H

#include <stddef.h>

struct vm_page;

/* pg_pq: which queue a page is on (guarded by the page queue lock) */
#define PQ_NONE		0
#define PQ_ACTIVE	1
#define PQ_INACTIVE	2

struct pdp_queue {
	struct vm_page *q_head;		/* oldest */
	struct vm_page *q_tail;		/* newest */
	size_t q_len;
};

struct pdpolicy {
	struct pdp_queue p_active;
	struct pdp_queue p_inactive;
	size_t p_budget;		/* pages */
	size_t p_freemin;
	size_t p_freetarg;
};

void pdp_init(struct pdpolicy *p, size_t budget);

/* A page became resident, or was used while inactive: active tail. */
void pdp_activate(struct pdpolicy *p, struct vm_page *pg);
/* Active -> inactive tail (the page was taken away). */
void pdp_deactivate(struct pdpolicy *p, struct vm_page *pg);
/* Off its queue (freed, or busy with I/O). */
void pdp_dequeue(struct pdpolicy *p, struct vm_page *pg);
/* An active page that could not be taken away: to the active tail. */
void pdp_requeue(struct pdpolicy *p, struct vm_page *pg);

/* The oldest page of each queue, or NULL. */
struct vm_page *pdp_active_head(const struct pdpolicy *p);
struct vm_page *pdp_inactive_head(const struct pdpolicy *p);

/*
 * pdp_balance: with `resident` pages resident, how many pages to free
 * from the inactive queue (*nfree) and how many to move from the active
 * queue to the inactive queue first (*ndeact).
 */
void pdp_balance(const struct pdpolicy *p, size_t resident, size_t *nfree,
    size_t *ndeact);

/* Is the daemon needed (fewer than freemin pages free)? */
int pdp_needed(const struct pdpolicy *p, size_t resident);

#endif /* USRVM_PDPOLICY_H */
