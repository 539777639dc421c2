/*
 * anon.h: anonymous pages (UVM's struct vm_anon).
 *
 * An anon is one page of anonymous memory, referenced from amap slots.
 * States: resident with no swap slot; resident with a slot (clean: can
 * be dropped without I/O); only on swap (an_page == NULL, an_swslot);
 * zeros (an_page == NULL, no slot: a page evicted while all zero); lost
 * (an_swslot == SWSLOT_LOST: its swap read failed; accesses get SIGBUS).
 *
 * Locking: an_ref, an_page and an_swslot are guarded by the lock of the
 * amap(s) holding the anon (amaps that share anons share one lock);
 * an_lock points at that lock, so the page daemon, which finds anons
 * from their pages, can take it.
 */
#ifndef USRVM_ANON_H
#define USRVM_ANON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm_page;

struct vm_anon {
	uint32_t an_ref;		/* amap slots referencing it */
	uint32_t an_swslot;		/* swap slot, 0: none */
	struct vm_page *an_page;	/* resident page, or NULL */
	pthread_mutex_t *an_lock;	/* the lock of its amap(s) */
};

int anon_sys_init(void);
void anon_sys_fini(void);

/* n new anons (an_ref = 1, no page, no slot); never sleeps. */
unsigned anon_alloc_batch(struct vm_anon **v, unsigned n);
struct vm_anon *anon_alloc(void);

/*
 * Drop one reference; at zero the anon is freed (anon_free).  Amap lock
 * held.
 */
void anon_unref(struct vm_anon *anon);

/*
 * Free an anon with no references: its page (unless busy: then the page is
 * marked PG_RELEASED and the busy owner finishes the job with
 * anon_release) and its swap slot.  Amap lock held.
 */
void anon_free(struct vm_anon *anon);

/* The busy owner of a released anon's page frees both.  Amap lock held. */
void anon_release(struct vm_anon *anon);

/*
 * anon_dropswap: the anon's page is about to differ from its swap copy
 * (a write, or zeros put in): free the slot.  Amap lock held.
 */
void anon_dropswap(struct vm_anon *anon);

/* anon_page_free: free the anon's page and its frame (if staged), no
 * longer resident; a lent page goes to its loan instead (loan.c).  Amap
 * lock held; the page is not on a queue. */
void anon_page_free(struct vm_anon *anon);

/*
 * anon_stage_out: move the anon's mapped page from its address into a
 * frame (staged, inactive): the address is about to lose it while the
 * anon lives on elsewhere.  anon_stage_copy copies a page the kernel
 * will not move and leaves a duplicate; anon_peek copies the page into a
 * new frame and leaves it where it is.  Amap locked.  0 or ENOMEM/the
 * pmap's error.
 */
int anon_stage_out(struct vm_anon *anon);
int anon_stage_copy(struct vm_anon *anon);
int anon_peek(struct vm_anon *anon, uint32_t *fp);

#endif /* USRVM_ANON_H */
