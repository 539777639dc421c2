/*
 * kmem.h: memory for the runtime itself (NetBSD's kmem(9) and pool(9)).
 *
 * Everything the runtime allocates for its own use (map entries, amaps,
 * anons, page descriptors) comes from here, never from malloc: with the
 * LD_PRELOAD allocator, malloc is usrvm, and the fault path must never
 * recurse into itself.  The memory is plain unmanaged mmap memory.
 *
 * kmem_*: general allocations by size class, caller passes the size back
 * to kmem_free (no header).  Thread safe.  May call mmap.
 *
 * pool_*: fixed-size objects of one type with a reserve kept between a
 * low and a high water mark by the refill thread (OpenBSD's km_thread,
 * seed 001).  pool_get() never sleeps; when the reserve is under the low
 * mark it sets *slowdown so an application-context caller can yield
 * (after it has put its object to use: nothing hoards).  Each thread
 * keeps a small cache of each pool's objects (NetBSD's pool_cache, per
 * thread instead of per CPU), so the common get and put take no shared
 * lock; the pool's lock is taken once per batch to refill or spill it.
 */
#ifndef USRVM_KMEM_H
#define USRVM_KMEM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

void *kmem_alloc(size_t size);		/* NULL on ENOMEM */
void *kmem_zalloc(size_t size);		/* zeroed */
void kmem_free(void *p, size_t size);	/* p may be NULL */

struct pool_item;

struct pool {
	const char *pr_name;
	size_t pr_size;			/* object size, >= sizeof(void *) */
	unsigned pr_lowat;		/* refill below this */
	unsigned pr_hiwat;		/* refill up to this */
	pthread_mutex_t pr_lock;	/* guards the fields below */
	struct pool_item *pr_free;	/* free objects */
	unsigned pr_nfree;
	struct pool *pr_next;		/* on the refill thread's list */
	unsigned pr_id;			/* index of the per-thread caches */
	unsigned pr_gen;		/* changes at each pool_init */
};

void pool_init(struct pool *pp, const char *name, size_t size,
    unsigned lowat, unsigned hiwat);
void pool_destroy(struct pool *pp);
/* Get one zeroed object; NULL only if the process is out of memory. */
void *pool_get(struct pool *pp, bool *slowdown);
/* Get n zeroed objects into v[]; returns how many (n unless ENOMEM). */
unsigned pool_get_batch(struct pool *pp, void **v, unsigned n, bool *slowdown);
void pool_put(struct pool *pp, void *obj);

/* The refill thread: started by usrvm_init, stopped by shutdown. */
int pool_refill_start(void);
void pool_refill_stop(void);
/* In a fork(2) child: every lock new (the refill thread stopped first). */
void kmem_fork_child(void);
/* The slowdown back channel for application threads: yield the CPU. */
void pool_slowdown(void);

#endif /* USRVM_KMEM_H */
