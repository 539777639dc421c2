/*
 * pdaemon.c: the page daemon (see pdaemon.h).
 *
 * A pass:
 *   1. reap finished page-outs;
 *   2. ask the policy how many pages to free and how many to deactivate;
 *   3. deactivate: move pages from the application's addresses into
 *      frames (UFFDIO_MOVE, no copy; where the kernel moves none, a
 *      private view of an object or a read-only entry, a copy and a
 *      drop instead), active -> inactive queue;
 *   4. scan the inactive queue from its head (the pages unused longest):
 *      clean pages (their swap copy is current) and all-zero pages are
 *      dropped at once; dirty ones are marked busy and collected into
 *      clusters, each written to one contiguous run of swap slots
 *      assigned now (UVM's swap clustering);
 *   5. wake the faults parked for memory once there is some.
 *
 * Locks: the daemon finds pages on the queues and needs their owner's
 * lock, which comes before the page queue lock: it only tries it (UVM's
 * habit) and passes the page over if it is taken.  A page on a queue has
 * a live anon (freeing one takes the queue lock to dequeue its page), so
 * its lock can be reached while the queue lock is held.  Pages are moved
 * in and out of the application only with their owner's lock held, so a
 * fault always sees a page either mapped or staged, never in between.
 *
 * No dirty byte is dropped: a page is only freed once its bytes are on
 * swap (write completed), are all zero, or were already there (clean).
 * A write that fails marks its slots bad and puts the pages back on the
 * inactive queue, to be written elsewhere.  A full device leaves pages
 * where they are; the daemon goes on with others.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "amap.h"
#include "anon.h"
#include "fault/pmap.h"
#include "frame.h"
#include "kmem.h"
#include "object.h"
#include "page.h"
#include "pager/aobj.h"
#include "pager/pgio.h"
#include "pager/swap.h"
#include "pdaemon.h"
#include "pdpolicy.h"
#include "stats.h"
#include "usrvm_internal.h"

#define PD_WRITES	16		/* clusters in flight */
#define PD_PARK_MAX	1024		/* parked faults */
#define PD_BATCH	64		/* pages per trip to the queues */
#define PD_GRACE	64		/* pages granted when stuck */
#define PD_STUCK	20		/* passes with no progress: stuck */
/*
 * Frames the daemon leaves to the faults (page-ins, copy-on-write).
 * Frames are the budget plus a margin (init.c), so it never matters
 * while pages can leave; when they cannot (the swap device is full), the
 * pages the daemon took away keep their frames, and without this a
 * page-in would find none and wait for good.
 */
#define PD_FRAME_KEEP	256
#define PD_IDLE_NS	100000000	/* wake up at least every 100 ms */

struct pd_write {
	struct pgio_wreq pw_req;
	struct vm_page *pw_pages[PGIO_MAXRUN];
	struct pd_write *pw_next;	/* free list */
};

static struct usrvm_thread pd_thread;
static bool pd_started;
static struct io_uring pd_ring;

static pthread_mutex_t pd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pd_cv = PTHREAD_COND_INITIALIZER;	/* the daemon */
static pthread_cond_t pd_park_cv = PTHREAD_COND_INITIALIZER;	/* room */
static pthread_cond_t pd_pass_cv = PTHREAD_COND_INITIALIZER;	/* a pass */
static uint64_t pd_passes;		/* pd_lock: passes ended */
static bool pd_stopping;			/* pd_lock */
static unsigned pd_paused;		/* pd_lock: pdaemon_pause calls */
static bool pd_inpass;			/* pd_lock: a pass is running */
static bool pd_quiet = true;		/* pd_lock: no write in flight */
static _Atomic bool pd_kicked;
static struct {
	uintptr_t va;
	uint64_t t0;
} pd_parked[PD_PARK_MAX];			/* pd_lock */
static unsigned pd_nparked;			/* pd_lock */

/* The daemon's own state (its thread only). */
static struct pd_write pd_writes[PD_WRITES];
static struct pd_write *pd_wfree;
static size_t pd_inflight;			/* pages being written */
static bool pd_full_logged, pd_stuck_logged;
static unsigned pd_nprogress;			/* passes without progress */
static uint64_t pd_cleaned;		/* file pages written back, seen */

/* ------------------------------------------------------------------ */
/* parking                                                             */
/* ------------------------------------------------------------------ */

void
pdaemon_wakeup(void)
{
	if (atomic_exchange_explicit(&pd_kicked, true, memory_order_relaxed))
		return;
	pthread_mutex_lock(&pd_lock);
	pthread_cond_signal(&pd_cv);
	pthread_mutex_unlock(&pd_lock);
}

void
pdaemon_park(uintptr_t va)
{
	pthread_mutex_lock(&pd_lock);
	/* Full: a thousand threads are waiting already; this fault thread
	 * waits for room (the daemon wakes them in bulk). */
	while (pd_nparked == PD_PARK_MAX && !pd_stopping)
		pthread_cond_wait(&pd_park_cv, &pd_lock);
	if (pd_stopping) {
		pthread_mutex_unlock(&pd_lock);
		pmap->wake(va, PAGE_SIZE);
		return;
	}
	pd_parked[pd_nparked].va = va;
	pd_parked[pd_nparked].t0 = usrvm_now_ns();
	pd_nparked++;
	CNT_INC(stalls);
	atomic_store_explicit(&pd_kicked, true, memory_order_relaxed);
	pthread_cond_signal(&pd_cv);
	pthread_mutex_unlock(&pd_lock);
}

void
pdaemon_wait_pass(uint64_t max_ns)
{
	uint64_t passes;

	if (!pd_started)
		return;
	pthread_mutex_lock(&pd_lock);
	passes = pd_passes;
	atomic_store_explicit(&pd_kicked, true, memory_order_relaxed);
	pthread_cond_signal(&pd_cv);
	if (pd_passes == passes && !pd_stopping)
		usrvm_cond_wait_ns(&pd_pass_cv, &pd_lock, max_ns);
	pthread_mutex_unlock(&pd_lock);
}

/* Wake every parked fault: they fault again and find memory, or park. */
static void
pd_unpark(void)
{
	uintptr_t va[PD_PARK_MAX];
	uint64_t now = usrvm_now_ns(), stalled = 0;
	unsigned n;

	pthread_mutex_lock(&pd_lock);
	n = pd_nparked;
	for (unsigned i = 0; i < n; i++) {
		va[i] = pd_parked[i].va;
		stalled += now - pd_parked[i].t0;
	}
	pd_nparked = 0;
	pthread_cond_broadcast(&pd_park_cv);
	pthread_mutex_unlock(&pd_lock);
	CNT_ADD(stall_ns, stalled);
	for (unsigned i = 0; i < n; i++)
		pmap->wake(va[i], PAGE_SIZE);
}

static unsigned
pd_parked_count(void)
{
	unsigned n;

	pthread_mutex_lock(&pd_lock);
	n = pd_nparked;
	pthread_mutex_unlock(&pd_lock);
	return n;
}

/* ------------------------------------------------------------------ */
/* deactivation                                                        */
/* ------------------------------------------------------------------ */

/* The lock of a page's owner: its anon's (the amap's), or its object's. */
static pthread_mutex_t *
pd_owner_lock(const struct vm_page *pg)
{
	return pg->pg_anon != NULL ? pg->pg_anon->an_lock :
	    &pg->pg_obj->vo_lock;
}

/*
 * pd_grab: dequeue up to PD_BATCH pages from the head of queue `pq` that
 * share one owner lock, and take that lock.  => how many (0: the queue is
 * empty, or its head's lock is taken: then the head goes to the tail).
 */
static unsigned
pd_grab(int pq, struct vm_page **v, pthread_mutex_t **lockp)
{
	struct pdpolicy *pdp = pageq_policy();
	struct vm_page *pg;
	pthread_mutex_t *lock;
	unsigned n = 0;

	pageq_lock();
	pg = pq == PQ_ACTIVE ? pdp_active_head(pdp) : pdp_inactive_head(pdp);
	if (pg == NULL) {
		pageq_unlock();
		return 0;
	}
	lock = pd_owner_lock(pg);
	if (pthread_mutex_trylock(lock) != 0) {
		if (pq == PQ_ACTIVE)
			pdp_requeue(pdp, pg);
		else
			pdp_deactivate(pdp, pg);
		pageq_unlock();
		return 0;
	}
	while (pg != NULL && n < PD_BATCH && pd_owner_lock(pg) == lock) {
		struct vm_page *next = pg->pg_qnext;
		pdp_dequeue(pdp, pg);
		v[n++] = pg;
		pg = next;
	}
	pageq_unlock();
	*lockp = lock;
	return n;
}

/*
 * pd_stage_run: move v[0..n) (consecutive addresses, each with a frame,
 * the frames consecutive too) out of the application in one call; what
 * the call could not move is tried page by page.  error[i] says how each
 * went: 0 (moved), ENOENT (the application discarded it: its event is on
 * the way), EINVAL (the kernel moves no page there: a private view of an
 * object, a read-only entry; pd_stage_copy's), or another error (a page
 * the kernel will not move: shared with a child process, pinned).
 * => owner locked.
 */
static void
pd_stage_run(struct vm_page **v, unsigned n, int *error)
{
	size_t done = 0;
	unsigned i = 0;

	if (n > 1)
		(void)pmap->stage_out(v[0]->pg_va, frame_va(v[0]->pg_frame),
		    ptoa(n), &done);
	for (; i < atop(done); i++)
		error[i] = 0;
	for (; i < n; i++)
		error[i] = pmap->stage_out(v[i]->pg_va,
		    frame_va(v[i]->pg_frame), PAGE_SIZE, &done);
}

/*
 * pd_stage_copy: take away pages v[0..n) that the kernel would not move
 * (EINVAL from pd_stage_run) by copying them into their frames (the
 * pmap's stage_copy).  That raises a userfaultfd event, so it runs with
 * the owner's lock dropped and the pages busy: a fault on one meanwhile
 * waits for it (PG_PAGEIO: woken after), a discard releases it.  Each
 * ends staged (inactive), back on the active queue, or freed (released).
 * A fault at another space's address of such a page (an amap shared
 * since usrvm_fork) refaults rather than sleep on it (fault_upper): a
 * fault thread asleep could not read the event this thread waits for.
 * => owner locked on entry and return (the lock object held meanwhile:
 *    the caller lets it go with amap_lock_rele after unlocking); the
 *    pages off the queues, each with a frame.
 */
static void
pd_stage_copy(struct vm_page **v, unsigned n, pthread_mutex_t *lock)
{
	int error[PD_BATCH];
	uintptr_t wake[PD_BATCH], va[PD_BATCH];
	uint32_t fr[PD_BATCH];
	unsigned i, j, nwake = 0;

	/* Where each page is and goes, read while locked: map_rehome may
	 * give a page another frame meanwhile (PG_COPIED). */
	for (i = 0; i < n; i++) {
		v[i]->pg_flags |= PG_BUSY | PG_PAGEIO;
		va[i] = v[i]->pg_va;
		fr[i] = v[i]->pg_frame;
	}
	amap_lock_hold(lock);
	pthread_mutex_unlock(lock);
	for (i = 0; i < n; i = j) {
		size_t done;
		int e;
		for (j = i + 1; j < n && va[j] == va[j - 1] + PAGE_SIZE &&
		    fr[j] == fr[j - 1] + 1; j++)
			continue;
		e = pmap->stage_copy(va[i], frame_va(fr[i]), ptoa(j - i),
		    &done);
		for (unsigned k = i; k < j; k++)
			error[k] = k - i < atop(done) ? 0 :
			    k - i == atop(done) ? e : EAGAIN;
	}
	pthread_mutex_lock(lock);
	for (i = 0; i < n; i++) {
		struct vm_page *pg = v[i];
		if (pg->pg_flags & PG_FAULTED)
			wake[nwake++] = pg->pg_va;
		if (pg->pg_flags & PG_COPIED) {
			/* map_rehome read it into a frame of its own, before
			 * its address went: whatever this read got there may
			 * be the new mapping's. */
			frame_free(fr[i], true);
			error[i] = 0;
		}
		if (pg->pg_flags & PG_RELEASED) {
			anon_release(pg->pg_anon);	/* frees the frame */
			continue;
		}
		pg->pg_flags &= ~(PG_PAGEIO | PG_FAULTED | PG_COPIED);
		page_unbusy(pg);
		if (error[i] == 0) {
			pg->pg_flags |= PG_STAGED;
			page_deactivate(pg);
			CNT_INC(pd_deactivations);
			continue;
		}
		frame_free(pg->pg_frame, true);
		pg->pg_frame = FRAME_NONE;
		page_activate(pg);
		if (error[i] != ENOENT && error[i] != EAGAIN)
			CNT_INC(pd_unmovable);
	}
	for (i = 0; i < nwake; i++)
		pmap->wake(wake[i], PAGE_SIZE);
}

/*
 * pd_deactivate: take up to `want` active pages away from the
 * application (pages busy or that will not move are passed over).
 * Pages at consecutive addresses get consecutive frames where the
 * allocator has them, and move in one call.
 */
static void
pd_deactivate(size_t want)
{
	struct vm_page *v[PD_BATCH], *m[PD_BATCH], *cp[PD_BATCH];
	bool staged[PD_BATCH];
	int error[PD_BATCH];
	pthread_mutex_t *lock;
	size_t handled = 0;
	unsigned n, nm, ncp, idx[PD_BATCH];

	/* With the frames left to the faults only, a batch would put its
	 * pages back at the tail unexamined, and the oldest pages would
	 * pass for the newest. */
	while (handled < want && frame_avail() > PD_FRAME_KEEP + PD_BATCH &&
	    (n = pd_grab(PQ_ACTIVE, v, &lock)) > 0) {
		nm = ncp = 0;
		memset(staged, 0, sizeof(staged));
		for (unsigned i = 0; i < n; i++) {
			if (v[i]->pg_obj != NULL) {
				/* An object's page stays where it is: the
				 * queue alone ages it. */
				staged[i] = !(v[i]->pg_flags & PG_BUSY);
				continue;
			}
			if (v[i]->pg_flags & (PG_BUSY | PG_STAGED))
				continue;
			if ((v[i]->pg_frame = frame_alloc_above(
			    PD_FRAME_KEEP)) == FRAME_NONE)
				break;
			idx[nm] = i;
			m[nm++] = v[i];
		}
		for (unsigned i = 0, j; i < nm; i = j) {
			for (j = i + 1; j < nm && m[j]->pg_va ==
			    m[j - 1]->pg_va + PAGE_SIZE && m[j]->pg_frame ==
			    m[j - 1]->pg_frame + 1; j++)
				continue;
			pd_stage_run(&m[i], j - i, &error[i]);
		}
		for (unsigned k = 0; k < nm; k++) {
			struct vm_page *pg = m[k];
			if (error[k] == EINVAL) {
				cp[ncp++] = pg;		/* keeps its frame */
				continue;
			}
			if (error[k] != 0) {
				if (error[k] != ENOENT)
					CNT_INC(pd_unmovable);
				frame_free(pg->pg_frame, false);
				pg->pg_frame = FRAME_NONE;
				continue;
			}
			pg->pg_flags |= PG_STAGED;
			staged[idx[k]] = true;
			CNT_INC(pd_deactivations);
		}
		/* Every page but the ones to copy goes back on a queue
		 * before the lock may be dropped. */
		pageq_lock();
		for (unsigned i = 0, k = 0; i < n; i++) {
			if (k < ncp && v[i] == cp[k])
				k++;
			else if (staged[i])
				pdp_deactivate(pageq_policy(), v[i]);
			else
				pdp_requeue(pageq_policy(), v[i]);
		}
		pageq_unlock();
		if (ncp > 0)
			pd_stage_copy(cp, ncp, lock);
		pthread_mutex_unlock(lock);
		if (ncp > 0)
			amap_lock_rele(lock);
		handled += n;
	}
}

/* ------------------------------------------------------------------ */
/* page-out                                                            */
/* ------------------------------------------------------------------ */

/* Detach a staged page's frame, for frame_free_many.  Owner locked. */
static uint32_t
pd_take_frame(struct vm_page *pg)
{
	uint32_t f = pg->pg_frame;

	pg->pg_frame = FRAME_NONE;
	return f;
}

static bool
pd_iszero(uintptr_t va)
{
	const uint64_t *p = (const uint64_t *)va;

	for (size_t i = 0; i < PAGE_SIZE / sizeof(*p); i++)
		if (p[i] != 0)
			return false;
	return true;
}

/*
 * Put a busy staged page back on the inactive queue (or free it, if it
 * was released meanwhile).  Owner locked.
 */
static void
pd_putback(struct vm_page *pg, uintptr_t *wakep)
{
	/* A fault waited for it, even if it was released meanwhile (the
	 * application dropped the range: the thread refaults and sees
	 * zeros, or the unmapped range). */
	*wakep = (pg->pg_flags & PG_FAULTED) ? pg->pg_va : 0;
	if (pg->pg_flags & PG_RELEASED) {
		anon_release(pg->pg_anon);
		return;
	}
	pg->pg_flags &= ~(PG_PAGEIO | PG_FAULTED);
	page_unbusy(pg);
	page_deactivate(pg);
}

/*
 * pd_dropswap: the device is full: free the swap slots of up to `want`
 * resident clean pages (UVM's uvmpd_dropswap), which then count as
 * dirty.  A mapped clean page is still write-protected: its next write
 * faults, finds it dirty already, and only un-protects it.  => how many.
 */
static size_t
pd_dropswap(size_t want)
{
	struct vm_page *v[PD_BATCH];
	pthread_mutex_t *lock;
	size_t dropped = 0, seen = 0, total;
	unsigned n;

	pageq_lock();
	total = pageq_policy()->p_active.q_len +
	    pageq_policy()->p_inactive.q_len;
	pageq_unlock();
	for (int pq = PQ_INACTIVE; pq >= PQ_ACTIVE; pq--) {
		while (dropped < want && seen < total &&
		    (n = pd_grab(pq, v, &lock)) > 0) {
			seen += n;
			pageq_lock();
			for (unsigned i = 0; i < n; i++) {
				if (v[i]->pg_anon != NULL &&
				    (v[i]->pg_flags & PG_CLEAN) &&
				    !(v[i]->pg_flags & PG_BUSY)) {
					anon_dropswap(v[i]->pg_anon);
					dropped++;
				}
				if (pq == PQ_ACTIVE)
					pdp_requeue(pageq_policy(), v[i]);
				else
					pdp_deactivate(pageq_policy(), v[i]);
			}
			pageq_unlock();
			pthread_mutex_unlock(lock);
		}
	}
	return dropped;
}

/*
 * pd_cluster_write: write busy dirty pages v[0..n) to swap, in as few
 * contiguous runs as the device has.  => how many were queued; the rest
 * (the device is full) go back to the inactive queue.
 */
static unsigned
pd_cluster_write(struct vm_page **v, unsigned n)
{
	unsigned queued = 0;

	while (queued < n && pd_wfree != NULL) {
		struct pd_write *pw = pd_wfree;
		uint32_t slot;
		unsigned k = swap_alloc(n - queued, &slot);
		if (k == 0)
			break;
		pd_wfree = pw->pw_next;
		pw->pw_req.wr_slot = slot;
		pw->pw_req.wr_n = k;
		for (unsigned i = 0; i < k; i++) {
			struct vm_page *pg = v[queued + i];
			pw->pw_pages[i] = pg;
			pw->pw_req.wr_iov[i].iov_base =
			    (void *)frame_va(pg->pg_frame);
			pw->pw_req.wr_iov[i].iov_len = PAGE_SIZE;
		}
		if (pgio_write(&pd_ring, &pw->pw_req) != 0) {
			swap_free(slot, k);
			pw->pw_next = pd_wfree;
			pd_wfree = pw;
			break;
		}
		queued += k;
		pd_inflight += k;
	}
	if (queued < n) {
		if (pd_wfree != NULL && pd_dropswap(n - queued) == 0) {
			CNT_ADD(pd_swapfull, n - queued);
			if (!pd_full_logged)
				usrvm_log(USRVM_LOG_ERR, "swap device full: "
				    "pages stay resident (USRVM_SWAP_SIZE)");
			pd_full_logged = true;
		}
		for (unsigned i = queued; i < n; i++) {
			struct vm_page *pg = v[i];
			pthread_mutex_t *lock = pg->pg_anon->an_lock;
			uintptr_t wake;
			pthread_mutex_lock(lock);
			pd_putback(pg, &wake);
			pthread_mutex_unlock(lock);
			amap_lock_rele(lock);
			if (wake)
				pmap->wake(wake, PAGE_SIZE);
		}
	}
	return queued;
}

/*
 * pd_pageout_done: a cluster's write finished.
 */
static void
pd_pageout_done(struct pd_write *pw)
{
	struct pgio_wreq *wr = &pw->pw_req;
	int error = wr->wr_error;
	uint32_t frames[PGIO_MAXRUN];
	unsigned nframes = 0;

	if (error != 0) {
		CNT_INC(io_errors_write);
		usrvm_log(USRVM_LOG_ERR, "swap write of %u pages to slots "
		    "%u-%u failed: %s; the slots are retired and the pages "
		    "will be written elsewhere", wr->wr_n, wr->wr_slot,
		    wr->wr_slot + wr->wr_n - 1, strerror(error));
		swap_markbad(wr->wr_slot, wr->wr_n);
	}
	for (unsigned i = 0; i < wr->wr_n; i++) {
		struct vm_page *pg = pw->pw_pages[i];
		struct vm_anon *anon = pg->pg_anon;
		pthread_mutex_t *lock = anon->an_lock;
		uintptr_t wake = 0;

		pthread_mutex_lock(lock);
		KASSERT((pg->pg_flags & (PG_BUSY | PG_PAGEIO | PG_STAGED)) ==
		    (PG_BUSY | PG_PAGEIO | PG_STAGED));
		if (error == 0) {
			KASSERT(anon->an_swslot == 0);
			anon->an_swslot = wr->wr_slot + i;
			CNT_INC(pageouts);
		}
		if (pg->pg_flags & PG_FAULTED)
			CNT_INC(pd_pageout_kept);
		if (error != 0 || (pg->pg_flags & (PG_FAULTED | PG_RELEASED))) {
			/* Not written, or wanted back: it stays (clean if it
			 * was written), and a waiting fault refaults; or it
			 * was freed while being written. */
			if (error == 0)
				pg->pg_flags |= PG_CLEAN;
			pd_putback(pg, &wake);
		} else {
			page_unbusy(pg);
			frames[nframes++] = pd_take_frame(pg);
			anon_page_free(anon);
			CNT_INC(pd_evict_dirty);
		}
		pthread_mutex_unlock(lock);
		amap_lock_rele(lock);
		if (wake)
			pmap->wake(wake, PAGE_SIZE);
	}
	frame_free_many(frames, nframes);
	pd_inflight -= wr->wr_n;
	pw->pw_next = pd_wfree;
	pd_wfree = pw;
}

static size_t
pd_reap(bool wait)
{
	struct pgio_wreq *wr;
	size_t n = 0;

	while (pd_inflight > 0 && (wr = pgio_reap(&pd_ring, wait)) != NULL) {
		n += wr->wr_n;
		pd_pageout_done(container_of(wr, struct pd_write, pw_req));
		wait = false;
	}
	return n;
}

/*
 * pd_object_page: an object's page at the head of the inactive queue: a
 * clean one is to be dropped (punched out of every view at once: the
 * caller does it for the batch, one punch for each run); a dirty one is
 * handed to its pager to be cleaned, and waits its turn again.
 * => true if it is to be dropped.  Owner locked.
 */
static bool
pd_object_page(struct vm_page *pg)
{
	struct vm_object *obj = pg->pg_obj;

	if (pg->pg_flags & PG_BUSY)
		return false;
	if (pg->pg_flags & PG_CLEAN)
		return true;
	(void)obj->vo_pgops->pgo_put(obj, pg->pg_offset,
	    pg->pg_offset + PAGE_SIZE, 0);
	return false;
}

/*
 * pd_scan_inactive: free up to `want` pages from the inactive queue.
 * => pages freed or queued for writing (not those looked at in vain).
 */
static size_t
pd_scan_inactive(size_t want)
{
	struct vm_page *v[PD_BATCH], *dirty[PGIO_MAXRUN], *drop[PD_BATCH];
	uint32_t frames[PD_BATCH];
	pthread_mutex_t *lock;
	unsigned n, ndirty = 0, nframes;
	size_t done = 0, progress = 0, seen = 0, total;

	/* Pages that go back to the tail (busy, or dirty file pages) are
	 * seen again: one trip round the queue at most. */
	pageq_lock();
	total = pageq_policy()->p_inactive.q_len;
	pageq_unlock();
	while (done < want && seen < total && pd_wfree != NULL &&
	    (n = pd_grab(PQ_INACTIVE, v, &lock)) > 0) {
		unsigned i, nback = 0, ndrop = 0;
		seen += n;
		nframes = 0;
		for (i = 0; i < n; i++) {
			struct vm_page *pg = v[i];
			struct vm_anon *anon = pg->pg_anon;

			if (done >= want || ndirty == PGIO_MAXRUN)
				break;
			if (anon == NULL) {
				if (pd_object_page(pg))
					drop[ndrop++] = pg;
				else
					v[nback++] = pg;
				continue;
			}
			KASSERT((pg->pg_flags & (PG_BUSY | PG_STAGED)) ==
			    PG_STAGED);
			done++;
			if (pg->pg_flags & PG_CLEAN) {
				frames[nframes++] = pd_take_frame(pg);
				anon_page_free(anon);
				CNT_INC(pd_evict_clean);
				progress++;
			} else if (pd_iszero(frame_va(pg->pg_frame))) {
				anon_dropswap(anon);
				frames[nframes++] = pd_take_frame(pg);
				anon_page_free(anon);
				CNT_INC(pd_evict_zero);
				progress++;
			} else {
				/* Busy until its write is done, with the lock
				 * dropped: hold the lock, which outlives the
				 * amap if the anon is freed meanwhile. */
				pg->pg_flags |= PG_BUSY | PG_PAGEIO;
				amap_lock_hold(lock);
				dirty[ndirty++] = pg;
			}
		}
		/* What the batch did not get to, or could not free yet,
		 * goes back on the queue. */
		if (i < n || nback > 0) {
			pageq_lock();
			for (unsigned k = 0; k < nback; k++)
				pdp_deactivate(pageq_policy(), v[k]);
			while (i < n)
				pdp_deactivate(pageq_policy(), v[i++]);
			pageq_unlock();
		}
		if (ndrop > 0) {	/* one object's pages */
			if (aobj_is(drop[0]->pg_obj))
				CNT_ADD(pd_evict_clean, ndrop);
			else
				CNT_ADD(pd_evict_file, ndrop);
			object_pages_free(drop[0]->pg_obj, drop, ndrop);
			done += ndrop;
			progress += ndrop;
		}
		pthread_mutex_unlock(lock);
		frame_free_many(frames, nframes);
		if (ndirty == PGIO_MAXRUN) {
			unsigned queued = pd_cluster_write(dirty, ndirty);
			progress += queued;
			if (queued < ndirty)
				return progress;
			ndirty = 0;
		}
	}
	if (ndirty > 0)
		progress += pd_cluster_write(dirty, ndirty);
	return progress;
}

/* ------------------------------------------------------------------ */
/* the thread                                                          */
/* ------------------------------------------------------------------ */

/*
 * pd_pass: one round of work.  => true if it made progress: pages freed,
 * or on their way out (deactivating alone frees nothing).
 */
static bool
pd_pass(void)
{
	size_t budget = page_budget(), nfree, ndeact, progress = 0, resident;
	uint64_t cleaned;
	struct pdpolicy *pdp = pageq_policy();
	unsigned nparked;

	CNT_INC(pd_scans);
	progress += pd_reap(false);
	/* Pages the vnode pager cleaned for us since the last pass are on
	 * their way out, as page-outs are. */
	cleaned = atomic_load_explicit(&usrvm_cnt.file_pageouts,
	    memory_order_relaxed);
	progress += cleaned - pd_cleaned;
	pd_cleaned = cleaned;

	pageq_lock();
	pdp_balance(pdp, page_resident(), &nfree, &ndeact);
	pageq_unlock();
	if (ndeact > 0)
		pd_deactivate(ndeact);
	pageq_lock();
	pdp_balance(pdp, page_resident(), &nfree, &ndeact);
	pageq_unlock();
	if (nfree > pd_inflight)
		progress += pd_scan_inactive(nfree - pd_inflight);
	if (progress == 0 && pd_inflight > 0)
		progress += pd_reap(true);

	resident = page_resident();
	nparked = pd_parked_count();
	if (progress > 0 || nparked == 0)
		pd_nprogress = 0;
	else if (pd_inflight == 0)
		pd_nprogress++;
	if (resident + pdp->p_freetarg <= budget)
		page_budget_grace(0);
	if (pd_nprogress >= PD_STUCK) {
		/*
		 * Faults parked, and nothing freed, pass after pass (every
		 * resident page busy, not movable, or the swap device full;
		 * or what is free is less than a fault needs at least, as a
		 * file read's floor: unparked, it parks again): let them go
		 * over the budget rather than wait forever.
		 */
		pd_nprogress = 0;
		CNT_ADD(pd_grace, PD_GRACE);
		page_budget_grace((resident > budget ? resident - budget : 0) +
		    PD_GRACE);
		if (!pd_stuck_logged)
			usrvm_log(USRVM_LOG_ERR, "page daemon: nothing can be "
			    "evicted; going over the budget");
		pd_stuck_logged = true;
		pd_unpark();
	} else if (nparked > 0 && (resident + pdp->p_freemin <= budget ||
	    (resident < budget && pd_inflight == 0))) {
		pd_unpark();
	}
	return progress > 0;
}

static bool
pd_idle(void)
{
	return !pd_kicked && pd_nparked == 0 && pd_inflight == 0 &&
	    !pdp_needed(pageq_policy(), page_resident());
}

static void *
pd_main(void *arg)
{
	bool progress = true;

	(void)arg;
	usrvm_runtime_thread = true;
	for (;;) {
		bool drain;

		pthread_mutex_lock(&pd_lock);
		if (!progress && !pd_kicked && !pd_stopping)
			usrvm_cond_wait_ns(&pd_cv, &pd_lock, PD_IDLE_NS / 100);	/* stuck: do not spin */
		/* Paused: only the writes in flight are finished. */
		while (!pd_stopping && (pd_paused > 0 ? pd_inflight == 0 :
		    pd_idle()))
			usrvm_cond_wait_ns(&pd_cv, &pd_lock, PD_IDLE_NS);
		if (pd_stopping && pd_inflight == 0) {
			pthread_mutex_unlock(&pd_lock);
			break;
		}
		drain = pd_paused > 0 && !pd_stopping;
		atomic_store_explicit(&pd_kicked, false, memory_order_relaxed);
		pd_inpass = true;
		pthread_mutex_unlock(&pd_lock);
		if (drain)
			progress = pd_reap(true) > 0;
		else
			progress = pd_pass();
		pthread_mutex_lock(&pd_lock);
		pd_inpass = false;
		pd_quiet = pd_inflight == 0;
		pd_passes++;
		pthread_cond_broadcast(&pd_cv);
		pthread_cond_broadcast(&pd_pass_cv);
		pthread_mutex_unlock(&pd_lock);
	}
	return NULL;
}

int
pdaemon_start(void)
{
	int error;

	if ((error = pgio_ring_init(&pd_ring, 2 * PD_WRITES)) != 0)
		return error;
	pd_wfree = NULL;
	for (int i = PD_WRITES - 1; i >= 0; i--) {
		pd_writes[i].pw_next = pd_wfree;
		pd_wfree = &pd_writes[i];
	}
	pd_inflight = 0;
	pd_stopping = false;
	pd_full_logged = pd_stuck_logged = false;
	if ((error = usrvm_thread_start(&pd_thread, pd_main, NULL,
	    "usrvm-pdaemon")) != 0) {
		io_uring_queue_exit(&pd_ring);
		return error;
	}
	pd_started = true;
	return 0;
}

void
pdaemon_pause(void)
{
	if (!pd_started)
		return;
	pthread_mutex_lock(&pd_lock);
	pd_paused++;
	pthread_cond_broadcast(&pd_cv);
	while (pd_inpass || !pd_quiet)
		pthread_cond_wait(&pd_cv, &pd_lock);
	pthread_mutex_unlock(&pd_lock);
}

void
pdaemon_resume(void)
{
	if (!pd_started)
		return;
	pthread_mutex_lock(&pd_lock);
	KASSERT(pd_paused > 0);
	pd_paused--;
	pthread_cond_broadcast(&pd_cv);
	pthread_mutex_unlock(&pd_lock);
}

/*
 * pdaemon_fork_child: in a fork child (fork.c), the daemon (paused with
 * no write in flight) is gone: its ring goes, its locks are new, and no
 * fault is parked (the parked threads were the parent's).
 */
void
pdaemon_fork_child(void)
{
	FORK_REINIT_MUTEX(&pd_lock);
	FORK_REINIT_COND(&pd_cv);
	FORK_REINIT_COND(&pd_park_cv);
	FORK_REINIT_COND(&pd_pass_cv);
	if (!pd_started)
		return;
	KASSERT(pd_inflight == 0);
	usrvm_thread_forget(&pd_thread);
	io_uring_queue_exit(&pd_ring);
	pd_started = false;
	pd_paused = 0;
	pd_inpass = false;
	pd_nparked = 0;
}

void
pdaemon_stop(void)
{
	if (!pd_started)
		return;
	pthread_mutex_lock(&pd_lock);
	pd_stopping = true;
	pthread_cond_broadcast(&pd_cv);
	pthread_cond_broadcast(&pd_park_cv);
	pthread_mutex_unlock(&pd_lock);
	usrvm_thread_join(&pd_thread);
	pd_unpark();
	io_uring_queue_exit(&pd_ring);
	pd_started = false;
}
