/*
 * kmem.c: memory for the runtime itself (see kmem.h).
 *
 * kmem: power-of-two size classes from 16 bytes to 4 KiB, each a free
 * list refilled by carving 256 KiB slabs from mmap; larger requests are
 * their own mmap.  Memory of a class is never returned to the system
 * while the process lives (the runtime's metadata is small next to the
 * memory it manages).
 *
 * pool: a typed free list on top of kmem with a reserve.  The refill
 * thread (OpenBSD's km_thread) keeps each pool between its low and high
 * water marks, so the fault threads' pool_get() is a pop from a list.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kmem.h"
#include "usrvm_internal.h"

/* ------------------------------------------------------------------ */
/* kmem: size classes                                                  */
/* ------------------------------------------------------------------ */

#define KMEM_MIN_SHIFT	4			/* 16 bytes */
#define KMEM_MAX_SHIFT	12			/* 4 KiB */
#define KMEM_NCLASS	(KMEM_MAX_SHIFT - KMEM_MIN_SHIFT + 1)
#define KMEM_SLAB	((size_t)256 << 10)

struct kmem_free {
	struct kmem_free *next;
};

static struct kmem_class {
	pthread_mutex_t kc_lock;
	struct kmem_free *kc_free;		/* kc_lock */
} kmem_classes[KMEM_NCLASS] = {
	[0 ... KMEM_NCLASS - 1] = { .kc_lock = PTHREAD_MUTEX_INITIALIZER },
};

static void *
kmem_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static unsigned
kmem_class_of(size_t size)
{
	unsigned shift = KMEM_MIN_SHIFT;

	while (((size_t)1 << shift) < size)
		shift++;
	return shift - KMEM_MIN_SHIFT;
}

/*
 * kmem_alloc: allocate size bytes of unmanaged memory.
 * => may call mmap; never sleeps on a lock held across a syscall.
 * => returns NULL if the system is out of memory.
 */
void *
kmem_alloc(size_t size)
{
	struct kmem_class *kc;
	struct kmem_free *f;
	size_t csize;
	char *slab;

	if (size > ((size_t)1 << KMEM_MAX_SHIFT))
		return kmem_map(round_page(size));
	if (size == 0)
		size = 1;
	kc = &kmem_classes[kmem_class_of(size)];
	csize = (size_t)1 << (kmem_class_of(size) + KMEM_MIN_SHIFT);

	pthread_mutex_lock(&kc->kc_lock);
	f = kc->kc_free;
	if (f != NULL) {
		kc->kc_free = f->next;
		pthread_mutex_unlock(&kc->kc_lock);
		return f;
	}
	pthread_mutex_unlock(&kc->kc_lock);

	/* Carve a new slab outside the lock, then publish all but one. */
	if ((slab = kmem_map(KMEM_SLAB)) == NULL)
		return NULL;
	struct kmem_free *head = NULL, *tail = NULL;
	for (size_t off = csize; off + csize <= KMEM_SLAB; off += csize) {
		struct kmem_free *n = (struct kmem_free *)(slab + off);
		n->next = NULL;
		if (tail != NULL)
			tail->next = n;
		else
			head = n;
		tail = n;
	}
	pthread_mutex_lock(&kc->kc_lock);
	tail->next = kc->kc_free;
	kc->kc_free = head;
	pthread_mutex_unlock(&kc->kc_lock);
	return slab;
}

void *
kmem_zalloc(size_t size)
{
	void *p = kmem_alloc(size);

	/* Large allocations come fresh from mmap and are already zero. */
	if (p != NULL && size <= ((size_t)1 << KMEM_MAX_SHIFT))
		memset(p, 0, size);
	return p;
}

void
kmem_free(void *p, size_t size)
{
	struct kmem_class *kc;
	struct kmem_free *f = p;

	if (p == NULL)
		return;
	if (size > ((size_t)1 << KMEM_MAX_SHIFT)) {
		munmap(p, round_page(size));
		return;
	}
	if (size == 0)
		size = 1;
	kc = &kmem_classes[kmem_class_of(size)];
	pthread_mutex_lock(&kc->kc_lock);
	f->next = kc->kc_free;
	kc->kc_free = f;
	pthread_mutex_unlock(&kc->kc_lock);
}

/* ------------------------------------------------------------------ */
/* pools                                                               */
/* ------------------------------------------------------------------ */

struct pool_item {
	struct pool_item *pi_next;
};

/*
 * Per-thread caches: POOL_CACHE objects of each of up to POOL_MAX pools.
 * A cache whose generation differs from its pool's belongs to a pool
 * since destroyed (and perhaps set up again): its objects go back to
 * kmem.  At thread exit a destructor gives the cached objects back.
 */
#define POOL_MAX	16
#define POOL_CACHE	64

struct pool_cache {
	unsigned pc_gen;
	unsigned pc_n;
	size_t pc_size;			/* of the objects held */
	void *pc_obj[POOL_CACHE];
};

static struct pool *pool_by_id[POOL_MAX];	/* pool_list_lock */
static unsigned pool_gen;			/* pool_list_lock */
static __thread struct pool_cache pool_caches[POOL_MAX];
static __thread bool pool_caches_used;
static pthread_key_t pool_cache_key;
static pthread_once_t pool_cache_once = PTHREAD_ONCE_INIT;

static pthread_mutex_t pool_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool *pool_list;			/* pool_list_lock */

static pthread_mutex_t refill_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t refill_cv = PTHREAD_COND_INITIALIZER;
static bool refill_wanted;			/* refill_lock */
static bool refill_running;			/* refill_lock */
static bool refill_stop;			/* refill_lock */
static struct usrvm_thread refill_thread;

static void pool_cache_flush_all(void *arg);
static struct pool_cache *pool_cache_of(struct pool *pp);
static void pool_cache_spill(struct pool *pp, struct pool_cache *pc,
    unsigned keep);

static void
pool_cache_key_init(void)
{
	pthread_key_create(&pool_cache_key, pool_cache_flush_all);
}

void
pool_init(struct pool *pp, const char *name, size_t size, unsigned lowat,
    unsigned hiwat)
{
	unsigned id;

	KASSERT(lowat <= hiwat);
	pthread_once(&pool_cache_once, pool_cache_key_init);
	memset(pp, 0, sizeof(*pp));
	pp->pr_name = name;
	pp->pr_size = MAX(size, sizeof(struct pool_item));
	pp->pr_lowat = lowat;
	pp->pr_hiwat = hiwat;
	pthread_mutex_init(&pp->pr_lock, NULL);
	pthread_mutex_lock(&pool_list_lock);
	for (id = 0; id < POOL_MAX && pool_by_id[id] != NULL; id++)
		continue;
	if (id == POOL_MAX)
		usrvm_panic("pool_init(%s): more than %d pools", name,
		    POOL_MAX);
	pool_by_id[id] = pp;
	pp->pr_id = id;
	pp->pr_gen = ++pool_gen;
	pp->pr_next = pool_list;
	pool_list = pp;
	pthread_mutex_unlock(&pool_list_lock);
}

/*
 * pool_destroy: give every free object back to kmem.  Objects still
 * allocated are the caller's to have freed first.
 */
void
pool_destroy(struct pool *pp)
{
	struct pool **pprev;
	struct pool_item *pi;

	pthread_mutex_lock(&pool_list_lock);
	for (pprev = &pool_list; *pprev != NULL; pprev = &(*pprev)->pr_next) {
		if (*pprev == pp) {
			*pprev = pp->pr_next;
			break;
		}
	}
	pool_by_id[pp->pr_id] = NULL;
	pthread_mutex_unlock(&pool_list_lock);
	/* This thread's cache; other threads' go when they next use it. */
	pool_cache_of(pp);
	pool_cache_spill(pp, &pool_caches[pp->pr_id], 0);
	while ((pi = pp->pr_free) != NULL) {
		pp->pr_free = pi->pi_next;
		kmem_free(pi, pp->pr_size);
	}
	pp->pr_nfree = 0;
	pthread_mutex_destroy(&pp->pr_lock);
}

static void
pool_wake_refill(void)
{
	pthread_mutex_lock(&refill_lock);
	if (!refill_wanted) {
		refill_wanted = true;
		pthread_cond_signal(&refill_cv);
	}
	pthread_mutex_unlock(&refill_lock);
}

/*
 * pool_cache_of: this thread's cache for pp, made current.  A cache left
 * by an earlier generation of the pool gives its objects back to kmem.
 */
static struct pool_cache *
pool_cache_of(struct pool *pp)
{
	struct pool_cache *pc = &pool_caches[pp->pr_id];

	if (pc->pc_gen != pp->pr_gen) {
		for (unsigned i = 0; i < pc->pc_n; i++)
			kmem_free(pc->pc_obj[i], pc->pc_size);
		pc->pc_n = 0;
		pc->pc_gen = pp->pr_gen;
		pc->pc_size = pp->pr_size;
	}
	if (!pool_caches_used) {
		pool_caches_used = true;
		pthread_setspecific(pool_cache_key, pool_caches);
	}
	return pc;
}

/* pool_cache_spill: move cached objects to the pool, keeping `keep`. */
static void
pool_cache_spill(struct pool *pp, struct pool_cache *pc, unsigned keep)
{
	if (pc->pc_n <= keep)
		return;
	pthread_mutex_lock(&pp->pr_lock);
	while (pc->pc_n > keep) {
		struct pool_item *pi = pc->pc_obj[--pc->pc_n];
		pi->pi_next = pp->pr_free;
		pp->pr_free = pi;
		pp->pr_nfree++;
	}
	pthread_mutex_unlock(&pp->pr_lock);
}

/* Thread exit: every cache back to its pool (or kmem, if it is gone). */
static void
pool_cache_flush_all(void *arg)
{
	struct pool_cache *caches = arg;

	pthread_mutex_lock(&pool_list_lock);
	for (unsigned id = 0; id < POOL_MAX; id++) {
		struct pool *pp = pool_by_id[id];
		if (pp != NULL && caches[id].pc_gen == pp->pr_gen)
			pool_cache_spill(pp, &caches[id], 0);
		/* else: objects of a destroyed pool stay with this thread's
		 * exited TLS: kmem memory is never returned anyway. */
	}
	pthread_mutex_unlock(&pool_list_lock);
}

/*
 * pool_get_batch: take up to n zeroed objects.
 * => never sleeps; falls back to kmem (mmap) if the reserve is empty.
 * => from this thread's cache first; the pool's lock is taken once to
 *    refill the cache (and to take what the cache cannot hold).
 * => *slowdown (if slowdown != NULL) is set when the reserve is under its
 *    low water mark: an application-context caller should call
 *    pool_slowdown() once it has put the objects to use.
 */
unsigned
pool_get_batch(struct pool *pp, void **v, unsigned n, bool *slowdown)
{
	struct pool_cache *pc = pool_cache_of(pp);
	struct pool_item *pi;
	unsigned got = 0;
	bool low = false;

	if (pc->pc_n < n) {
		unsigned want = n - pc->pc_n + POOL_CACHE / 2;
		pthread_mutex_lock(&pp->pr_lock);
		while (want > 0 && (pi = pp->pr_free) != NULL) {
			pp->pr_free = pi->pi_next;
			pp->pr_nfree--;
			want--;
			if (pc->pc_n < POOL_CACHE)
				pc->pc_obj[pc->pc_n++] = pi;
			else
				v[got++] = pi;
		}
		low = pp->pr_nfree < pp->pr_lowat;
		pthread_mutex_unlock(&pp->pr_lock);
		if (low)
			pool_wake_refill();
	}
	while (got < n && pc->pc_n > 0)
		v[got++] = pc->pc_obj[--pc->pc_n];
	if (slowdown != NULL)
		*slowdown = low;
	for (unsigned i = 0; i < got; i++)
		memset(v[i], 0, pp->pr_size);
	/* Reserve exhausted: allocate directly rather than fail. */
	for (; got < n; got++)
		if ((v[got] = kmem_zalloc(pp->pr_size)) == NULL)
			break;
	return got;
}

void *
pool_get(struct pool *pp, bool *slowdown)
{
	void *obj;

	return pool_get_batch(pp, &obj, 1, slowdown) == 1 ? obj : NULL;
}

void
pool_put(struct pool *pp, void *obj)
{
	struct pool_cache *pc = pool_cache_of(pp);

	if (pc->pc_n == POOL_CACHE)
		pool_cache_spill(pp, pc, POOL_CACHE / 2);
	pc->pc_obj[pc->pc_n++] = obj;
}

/*
 * pool_refill_one: top one pool up to its high water mark.  Objects are
 * allocated outside the pool lock and published in one batch.
 */
static void
pool_refill_one(struct pool *pp)
{
	struct pool_item *head = NULL, *pi;
	unsigned want, got = 0;

	pthread_mutex_lock(&pp->pr_lock);
	want = pp->pr_nfree < pp->pr_hiwat ? pp->pr_hiwat - pp->pr_nfree : 0;
	pthread_mutex_unlock(&pp->pr_lock);
	if (want == 0)
		return;
	for (; got < want; got++) {
		if ((pi = kmem_alloc(pp->pr_size)) == NULL)
			break;
		pi->pi_next = head;
		head = pi;
	}
	if (head == NULL)
		return;
	pthread_mutex_lock(&pp->pr_lock);
	for (pi = head; pi->pi_next != NULL; pi = pi->pi_next)
		continue;
	pi->pi_next = pp->pr_free;
	pp->pr_free = head;
	pp->pr_nfree += got;
	pthread_mutex_unlock(&pp->pr_lock);
}

static void
pool_refill_all(void)
{
	pthread_mutex_lock(&pool_list_lock);
	for (struct pool *pp = pool_list; pp != NULL; pp = pp->pr_next)
		pool_refill_one(pp);
	pthread_mutex_unlock(&pool_list_lock);
}

static void *
pool_refill_main(void *arg)
{
	(void)arg;
	usrvm_runtime_thread = true;
	pthread_mutex_lock(&refill_lock);
	while (!refill_stop) {
		if (!refill_wanted) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&refill_cv, &refill_lock, &ts);
		}
		refill_wanted = false;
		pthread_mutex_unlock(&refill_lock);
		pool_refill_all();
		pthread_mutex_lock(&refill_lock);
	}
	pthread_mutex_unlock(&refill_lock);
	return NULL;
}

int
pool_refill_start(void)
{
	int error;

	pool_refill_all();
	pthread_mutex_lock(&refill_lock);
	refill_stop = false;
	error = usrvm_thread_start(&refill_thread, pool_refill_main, NULL,
	    "usrvm-refill");
	refill_running = error == 0;
	pthread_mutex_unlock(&refill_lock);
	return error;
}

void
pool_refill_stop(void)
{
	pthread_mutex_lock(&refill_lock);
	if (!refill_running) {
		pthread_mutex_unlock(&refill_lock);
		return;
	}
	refill_stop = true;
	refill_running = false;
	pthread_cond_signal(&refill_cv);
	pthread_mutex_unlock(&refill_lock);
	usrvm_thread_join(&refill_thread);
}

/*
 * kmem_fork_child: in a fork child (fork.c), every lock is new; the
 * refill thread was stopped before the fork (pool_refill_stop), and the
 * other threads' caches are lost with them.
 */
void
kmem_fork_child(void)
{
	for (unsigned i = 0; i < KMEM_NCLASS; i++)
		FORK_REINIT_MUTEX(&kmem_classes[i].kc_lock);
	FORK_REINIT_MUTEX(&pool_list_lock);
	FORK_REINIT_MUTEX(&refill_lock);
	FORK_REINIT_COND(&refill_cv);
	for (struct pool *pp = pool_list; pp != NULL; pp = pp->pr_next)
		FORK_REINIT_MUTEX(&pp->pr_lock);
}

/*
 * pool_slowdown: the back channel of seed 001.  Called by an application
 * thread after pool_get said the reserve is low and after the object was
 * put to use, so yielding hoards nothing while the refill thread runs.
 */
void
pool_slowdown(void)
{
	sched_yield();
}
