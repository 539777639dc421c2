/*
 * page.c: page descriptors and the busy/wanted protocol (UVM's
 * uvm_page.c, the parts the runtime needs).
 *
 * Sleepers on a busy page wait on a wait channel chosen by hashing the
 * page's address (NetBSD's page wait channels): no per-page condition
 * variable, no global lock.
 */
#include <pthread.h>

#include "kmem.h"
#include "page.h"
#include "pdaemon.h"
#include "pdpolicy.h"
#include "stats.h"
#include "usrvm_internal.h"

#define PAGE_WAIT_CHANNELS 64

static struct page_waitq {
	pthread_mutex_t pw_lock;
	pthread_cond_t pw_cv;
} page_waitq[PAGE_WAIT_CHANNELS] = {
	[0 ... PAGE_WAIT_CHANNELS - 1] = {
		.pw_lock = PTHREAD_MUTEX_INITIALIZER,
		.pw_cv = PTHREAD_COND_INITIALIZER,
	},
};

static struct pool page_pool;

/* The budget (pages; 0: none) and what the daemon granted beyond it. */
static _Atomic size_t page_budget_pages;
static _Atomic size_t page_grace_pages;
static _Atomic size_t page_commit_limit_pages;	/* 0: no limit */

/* The page queues. */
static pthread_mutex_t pageq_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct pdpolicy pageq_pdp;

static struct page_waitq *
page_waitq_of(const struct vm_page *pg)
{
	uintptr_t h = (uintptr_t)pg;

	h ^= h >> 17;
	h *= 0x9e3779b97f4a7c15ull;
	return &page_waitq[(h >> 58) % PAGE_WAIT_CHANNELS];
}

int
page_sys_init(void)
{
	pool_init(&page_pool, "page", sizeof(struct vm_page), 1024, 8192);
	return 0;
}

void
page_sys_fini(void)
{
	pool_destroy(&page_pool);
}

/*
 * page_alloc_batch: n descriptors for the fault path, owned by the caller
 * and PG_BUSY.  Never sleeps.  Returns how many were allocated.
 */
unsigned
page_alloc_batch(struct vm_page **v, unsigned n)
{
	unsigned got = pool_get_batch(&page_pool, (void **)v, n, NULL);

	for (unsigned i = 0; i < got; i++) {
		v[i]->pg_flags = PG_BUSY;
		v[i]->pg_frame = FRAME_NONE;
	}
	return got;
}

void
page_free(struct vm_page *pg)
{
	KASSERT((pg->pg_flags & PG_WANTED) == 0);
	KASSERT(pg->pg_pq == PQ_NONE && pg->pg_frame == FRAME_NONE);
	pool_put(&page_pool, pg);
}

/*
 * page_wait: sleep until pg is unbusied.
 * => called with `lock` (the page owner's lock) held; returns with it
 *    released.  The page may be gone on return: look it up again.
 */
void
page_wait(struct vm_page *pg, pthread_mutex_t *lock)
{
	struct page_waitq *wq = page_waitq_of(pg);

	KASSERT(pg->pg_flags & PG_BUSY);
	pg->pg_flags |= PG_WANTED;
	pthread_mutex_lock(&wq->pw_lock);
	pthread_mutex_unlock(lock);
	/* Owner's page_unbusy() needs pw_lock to wake us: no lost wakeup. */
	pthread_cond_wait(&wq->pw_cv, &wq->pw_lock);
	pthread_mutex_unlock(&wq->pw_lock);
}

/*
 * page_unbusy: the busy owner is done.  Owner's lock held.
 */
void
page_unbusy(struct vm_page *pg)
{
	bool wanted = pg->pg_flags & PG_WANTED;

	KASSERT(pg->pg_flags & PG_BUSY);
	pg->pg_flags &= ~(PG_BUSY | PG_WANTED);
	if (wanted) {
		struct page_waitq *wq = page_waitq_of(pg);
		pthread_mutex_lock(&wq->pw_lock);
		pthread_cond_broadcast(&wq->pw_cv);
		pthread_mutex_unlock(&wq->pw_lock);
	}
}

/* ------------------------------------------------------------------ */
/* the budget                                                          */
/* ------------------------------------------------------------------ */

void
page_budget_set(size_t pages)
{
	page_budget_pages = pages;
	page_grace_pages = 0;
	pthread_mutex_lock(&pageq_mtx);
	KASSERT(pageq_pdp.p_active.q_len == 0 &&
	    pageq_pdp.p_inactive.q_len == 0);
	pdp_init(&pageq_pdp, pages);
	pthread_mutex_unlock(&pageq_mtx);
}

size_t
page_budget(void)
{
	return page_budget_pages;
}

void
page_budget_grace(size_t pages)
{
	page_grace_pages = pages;
}

size_t
page_resident(void)
{
	int64_t r = atomic_load_explicit(&usrvm_cnt.resident,
	    memory_order_relaxed);

	return r > 0 ? (size_t)r : 0;
}

void
page_resident_add(long n)
{
	stats_resident_add(n);
}

size_t
page_reserve(size_t want, size_t min)
{
	size_t budget = page_budget_pages, limit, n;
	int64_t r;

	if (budget == 0) {
		stats_resident_add((long)want);
		return want;
	}
	limit = budget + page_grace_pages;
	r = atomic_load_explicit(&usrvm_cnt.resident, memory_order_relaxed);
	do {
		n = (size_t)r >= limit ? 0 : MIN(want, limit - (size_t)r);
		if (n < min || n == 0) {
			pdaemon_wakeup();
			return 0;
		}
	} while (!atomic_compare_exchange_weak_explicit(&usrvm_cnt.resident,
	    &r, r + (int64_t)n, memory_order_relaxed, memory_order_relaxed));
	stats_resident_add(0);		/* the peak */
	if (pdp_needed(&pageq_pdp, (size_t)r + n))
		pdaemon_wakeup();
	return n;
}

/* ------------------------------------------------------------------ */
/* commit accounting                                                   */
/* ------------------------------------------------------------------ */

void
page_commit_limit_set(size_t pages)
{
	page_commit_limit_pages = pages;
}

size_t
page_commit_limit(void)
{
	return page_commit_limit_pages;
}

int
page_commit(size_t pages)
{
	size_t limit = page_commit_limit_pages;
	int64_t c = atomic_load_explicit(&usrvm_cnt.committed,
	    memory_order_relaxed);

	do {
		if (limit != 0 && ((size_t)c + pages > limit ||
		    (size_t)c + pages < (size_t)c))
			return ENOMEM;
	} while (!atomic_compare_exchange_weak_explicit(&usrvm_cnt.committed,
	    &c, c + (int64_t)pages, memory_order_relaxed,
	    memory_order_relaxed));
	return 0;
}

void
page_uncommit(size_t pages)
{
	CNT_ADD(committed, -(int64_t)pages);
}

/* ------------------------------------------------------------------ */
/* the page queues                                                     */
/* ------------------------------------------------------------------ */

void
pageq_lock(void)
{
	pthread_mutex_lock(&pageq_mtx);
}

void
pageq_unlock(void)
{
	pthread_mutex_unlock(&pageq_mtx);
}

struct pdpolicy *
pageq_policy(void)
{
	return &pageq_pdp;
}

/* Without a budget nothing is ever evicted: the queues are not kept. */
void
page_activate(struct vm_page *pg)
{
	if (page_budget_pages == 0)
		return;
	pthread_mutex_lock(&pageq_mtx);
	pdp_activate(&pageq_pdp, pg);
	pthread_mutex_unlock(&pageq_mtx);
}

void
page_deactivate(struct vm_page *pg)
{
	if (page_budget_pages == 0)
		return;
	pthread_mutex_lock(&pageq_mtx);
	pdp_deactivate(&pageq_pdp, pg);
	pthread_mutex_unlock(&pageq_mtx);
}

void
page_dequeue(struct vm_page *pg)
{
	if (page_budget_pages == 0)
		return;
	pthread_mutex_lock(&pageq_mtx);
	pdp_dequeue(&pageq_pdp, pg);
	pthread_mutex_unlock(&pageq_mtx);
}

/*
 * page_fork_child: in a fork child (fork.c), the wait channels and the
 * queue lock are new, and the objects' pages leave the queues and the
 * resident count: an object's cache is shared with the parent, whose
 * runtime alone manages it (the child maps files through the kernel).
 */
void
page_fork_child(void)
{
	struct vm_page *pg, *next;
	long n = 0;

	for (unsigned i = 0; i < PAGE_WAIT_CHANNELS; i++) {
		FORK_REINIT_MUTEX(&page_waitq[i].pw_lock);
		FORK_REINIT_COND(&page_waitq[i].pw_cv);
	}
	FORK_REINIT_MUTEX(&pageq_mtx);
	for (int q = 0; q < 2; q++) {
		for (pg = q == 0 ? pdp_active_head(&pageq_pdp) :
		    pdp_inactive_head(&pageq_pdp); pg != NULL; pg = next) {
			next = pg->pg_qnext;
			if (pg->pg_obj == NULL)
				continue;
			pdp_dequeue(&pageq_pdp, pg);
			n++;
		}
	}
	page_resident_add(-n);
}
