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

	for (unsigned i = 0; i < got; i++)
		v[i]->pg_flags = PG_BUSY;
	return got;
}

void
page_free(struct vm_page *pg)
{
	KASSERT((pg->pg_flags & PG_WANTED) == 0);
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

void
page_resident_add(long n)
{
	stats_resident_add(n);
}
