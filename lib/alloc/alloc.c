/*
 * alloc.c: thread caches and central free lists (see alloc.h).
 *
 * Hot paths: malloc of a small size pops a pointer off the calling
 * thread's cache for its class; free reads the class of the block's page
 * from the class map (one byte per page) and pushes the pointer.  Neither
 * takes a lock or touches the block.  A cache that runs empty takes a
 * batch from its class's central list; one that fills up gives half back.
 *
 * A central list is the set of its class's spans that have free objects,
 * each span keeping a bitmap of them.  A span whose objects are all free
 * again goes back to the page heap, except one kept per class so that a
 * class hovering around a span boundary does not take and return pages
 * over and over.
 *
 * Lock order: central (one class at a time) -> page heap -> pools.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "kmem.h"
#include "pageheap.h"
#include "sizeclass.h"
#include "usrvm_internal.h"

__thread bool alloc_in_vm __attribute__((tls_model("initial-exec")));

struct tc_bin {
	void **tb_slot;			/* free objects, a stack */
	uint16_t tb_n;
	uint16_t tb_cap;
};

struct tcache {
	struct tc_bin tc_bin[SC_NCLASS];
	void *tc_store[];		/* every bin's slots */
};

static struct central {
	pthread_mutex_t c_lock;
	struct span *c_partial;		/* spans with free objects */
	struct span *c_spare;		/* an all-free span kept back */
} __attribute__((aligned(64))) central[SC_NCLASS];

static size_t tc_bytes;			/* size of a struct tcache */
static pthread_key_t tc_key;		/* flushes a cache at thread exit */
static __thread struct tcache *tc_self
    __attribute__((tls_model("initial-exec")));
/* The thread's cache was torn down at exit: go to the central lists. */
static __thread bool tc_dead __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------------ */
/* Central free lists                                                  */
/* ------------------------------------------------------------------ */

static void
c_link(struct central *c, struct span *sp)
{
	sp->sp_prev = NULL;
	sp->sp_next = c->c_partial;
	if (sp->sp_next != NULL)
		sp->sp_next->sp_prev = sp;
	c->c_partial = sp;
	sp->sp_onlist = true;
}

static void
c_unlink(struct central *c, struct span *sp)
{
	if (sp->sp_prev != NULL)
		sp->sp_prev->sp_next = sp->sp_next;
	else
		c->c_partial = sp->sp_next;
	if (sp->sp_next != NULL)
		sp->sp_next->sp_prev = sp->sp_prev;
	sp->sp_onlist = false;
}

/* A fresh span of class `cls`, every object free.  => class locked. */
static struct span *
c_newspan(unsigned cls)
{
	const struct sizeclass *sc = &sc_table[cls];
	struct span *sp;
	bool zero;

	if ((sp = ph_alloc(sc->sc_pages, PAGE_SIZE, SPAN_SMALL, cls,
	    &zero)) == NULL)
		return NULL;
	sp->sp_nobj = sc->sc_nobj;
	sp->sp_nfree = sc->sc_nobj;
	memset(sp->sp_free, 0, sizeof(sp->sp_free));
	for (unsigned i = 0; i < sc->sc_nobj; i++)
		sp->sp_free[i / 64] |= (uint64_t)1 << (i % 64);
	return sp;
}

/*
 * Take up to `want` free objects of class `cls` into v[], lowest
 * addresses last (a cache pops them in address order).  => how many;
 * 0 with errno ENOMEM.
 */
static unsigned
c_take(unsigned cls, void **v, unsigned want)
{
	struct central *c = &central[cls];
	size_t size = sc_table[cls].sc_size;
	unsigned got = 0;
	struct span *sp;

	pthread_mutex_lock(&c->c_lock);
	while (got < want) {
		if ((sp = c->c_partial) == NULL) {
			if ((sp = c->c_spare) != NULL)
				c->c_spare = NULL;
			else if ((sp = c_newspan(cls)) == NULL)
				break;
			c_link(c, sp);
		}
		for (unsigned w = 0; w < SC_MAXOBJ / 64 && got < want; w++) {
			while (sp->sp_free[w] != 0 && got < want) {
				unsigned b = (unsigned)__builtin_ctzll(
				    sp->sp_free[w]);
				sp->sp_free[w] &= sp->sp_free[w] - 1;
				v[want - 1 - got++] = (void *)(sp->sp_start +
				    (w * 64 + b) * size);
				sp->sp_nfree--;
			}
		}
		if (sp->sp_nfree == 0)
			c_unlink(c, sp);
	}
	pthread_mutex_unlock(&c->c_lock);
	if (got < want)
		memmove(v, v + (want - got), got * sizeof(*v));
	return got;
}

static void
c_badfree(const void *p, const char *why)
{
	alloc_in_vm = true;
	usrvm_log(USRVM_LOG_ERR, "free(%p): %s; the block is ignored", p,
	    why);
	alloc_in_vm = false;
}

/* Give v[0..n) (objects of class `cls`) back to their spans. */
static void
c_put(unsigned cls, void *const *v, unsigned n)
{
	struct central *c = &central[cls];
	size_t size = sc_table[cls].sc_size;
	struct span *dead[SC_TCACHE_MAXBATCH];
	unsigned ndead = 0;

	struct span *sp = NULL;

	KASSERT(n <= SC_TCACHE_MAXBATCH);
	pthread_mutex_lock(&c->c_lock);
	for (unsigned i = 0; i < n; i++) {
		size_t off;
		unsigned idx;
		uint64_t bit;

		/* Neighbours in a batch are often in the same span. */
		if (sp == NULL || (uintptr_t)v[i] - sp->sp_start >=
		    ptoa(sp->sp_npages) || sp->sp_state != SPAN_SMALL)
			sp = ph_lookup(v[i]);
		if (sp == NULL || sp->sp_state != SPAN_SMALL ||
		    sp->sp_class != cls) {
			c_badfree(v[i], "not an allocated block");
			sp = NULL;
			continue;
		}
		off = (uintptr_t)v[i] - sp->sp_start;
		idx = sc_index(cls, off);
		bit = (uint64_t)1 << (idx % 64);
		if (idx * size != off) {
			c_badfree(v[i], "not the start of a block");
			continue;
		}
		if (sp->sp_free[idx / 64] & bit) {
			c_badfree(v[i], "freed twice");
			continue;
		}
		sp->sp_free[idx / 64] |= bit;
		if (++sp->sp_nfree == 1)
			c_link(c, sp);
		if (sp->sp_nfree == sp->sp_nobj) {
			c_unlink(c, sp);
			if (c->c_spare == NULL)
				c->c_spare = sp;
			else
				dead[ndead++] = sp;
		}
	}
	/* The page heap's lock nests inside, but the spans need no class
	 * lock any more: free them after. */
	pthread_mutex_unlock(&c->c_lock);
	for (unsigned i = 0; i < ndead; i++)
		ph_free(dead[i]);
}

/* ------------------------------------------------------------------ */
/* Thread caches                                                       */
/* ------------------------------------------------------------------ */

static void
tc_flush_bin(struct tc_bin *b, unsigned cls, unsigned n)
{
	/* The oldest (bottom) n go back; the hot ones stay. */
	c_put(cls, b->tb_slot, n);
	b->tb_n -= (uint16_t)n;
	memmove(b->tb_slot, b->tb_slot + n, b->tb_n * sizeof(void *));
}

static void
tc_destroy(void *arg)
{
	struct tcache *tc = arg;

	for (unsigned c = 0; c < SC_NCLASS; c++)
		if (tc->tc_bin[c].tb_n > 0)
			for (unsigned n; (n = MIN(tc->tc_bin[c].tb_n,
			    SC_TCACHE_MAXBATCH)) > 0;)
				tc_flush_bin(&tc->tc_bin[c], c, n);
	tc_self = NULL;
	tc_dead = true;
	kmem_free(tc, tc_bytes);
}

static struct tcache *
tc_create(void)
{
	struct tcache *tc;
	void **slot;

	if (tc_dead || (tc = kmem_zalloc(tc_bytes)) == NULL)
		return NULL;
	slot = tc->tc_store;
	for (unsigned c = 0; c < SC_NCLASS; c++) {
		tc->tc_bin[c].tb_slot = slot;
		tc->tc_bin[c].tb_cap = sc_table[c].sc_tcache;
		slot += sc_table[c].sc_tcache;
	}
	alloc_in_vm = true;		/* pthread_setspecific may calloc */
	(void)pthread_setspecific(tc_key, tc);
	alloc_in_vm = false;
	tc_self = tc;
	return tc;
}

/* The cache of class `cls` is empty: refill it and pop one. */
__attribute__((noinline)) static void *
tc_refill(unsigned cls)
{
	struct tcache *tc = tc_self;
	void *p;

	if (tc == NULL && (tc = tc_create()) == NULL) {
		/* No cache (out of memory, or the thread is exiting). */
		return c_take(cls, &p, 1) == 1 ? p : NULL;
	}
	struct tc_bin *b = &tc->tc_bin[cls];
	b->tb_n = (uint16_t)c_take(cls, b->tb_slot, sc_table[cls].sc_batch);
	if (b->tb_n == 0) {
		errno = ENOMEM;
		return NULL;
	}
	return b->tb_slot[--b->tb_n];
}

static inline void *
tc_alloc(unsigned cls)
{
	struct tcache *tc = tc_self;

	if (likely(tc != NULL)) {
		struct tc_bin *b = &tc->tc_bin[cls];
		if (likely(b->tb_n > 0))
			return b->tb_slot[--b->tb_n];
	}
	return tc_refill(cls);
}

__attribute__((noinline)) static void
tc_free_slow(void *p, unsigned cls)
{
	struct tcache *tc = tc_self;

	if (tc == NULL && (tc = tc_create()) == NULL) {
		c_put(cls, &p, 1);
		return;
	}
	struct tc_bin *b = &tc->tc_bin[cls];
	if (b->tb_n == b->tb_cap)
		tc_flush_bin(b, cls, sc_table[cls].sc_batch);
	b->tb_slot[b->tb_n++] = p;
}

static inline void
tc_free(void *p, unsigned cls)
{
	struct tcache *tc = tc_self;

	if (likely(tc != NULL)) {
		struct tc_bin *b = &tc->tc_bin[cls];
		if (likely(b->tb_n < b->tb_cap)) {
			b->tb_slot[b->tb_n++] = p;
			return;
		}
	}
	tc_free_slow(p, cls);
}

void
alloc_thread_flush(void)
{
	struct tcache *tc = tc_self;

	if (tc == NULL)
		return;
	for (unsigned c = 0; c < SC_NCLASS; c++)
		for (unsigned n; (n = MIN(tc->tc_bin[c].tb_n,
		    SC_TCACHE_MAXBATCH)) > 0;)
			tc_flush_bin(&tc->tc_bin[c], c, n);
}

/* ------------------------------------------------------------------ */
/* The interface                                                       */
/* ------------------------------------------------------------------ */

int
alloc_init(struct usrvm_space *space, size_t dirty_max)
{
	size_t slots = 0;
	int error;

	sc_init();
	for (unsigned c = 0; c < SC_NCLASS; c++) {
		pthread_mutex_init(&central[c].c_lock, NULL);
		slots += sc_table[c].sc_tcache;
	}
	tc_bytes = sizeof(struct tcache) + slots * sizeof(void *);
	if ((error = pthread_key_create(&tc_key, tc_destroy)) != 0)
		return error;
	if ((error = ph_init(space, dirty_max)) != 0) {
		pthread_key_delete(tc_key);
		return error;
	}
	return 0;
}

bool
alloc_owns(const void *p)
{
	return ph_owns(p);
}

/* Whole pages (or a mapping) of at least `size` bytes, aligned. */
static void *
alloc_pages(size_t size, size_t align, bool *zero)
{
	struct span *sp;

	if (size >= PH_MAPPED_MIN) {
		void *p;

		*zero = true;
		/* No commit left: the heap's free pages may hold it. */
		if ((p = ph_map(size, align)) == NULL && errno == ENOMEM &&
		    ph_unmap_free() > 0)
			p = ph_map(size, align);
		return p;
	}
	if ((sp = ph_alloc(atop(round_page(size)), align, SPAN_LARGE, 0,
	    zero)) == NULL)
		return NULL;
	return (void *)sp->sp_start;
}

void *
alloc_malloc(size_t size)
{
	bool zero;

	if (likely(size <= SC_MAXSIZE))
		return tc_alloc(sc_class(size));
	return alloc_pages(size, PAGE_SIZE, &zero);
}

void *
alloc_calloc(size_t n, size_t size)
{
	size_t total;
	bool zero;
	void *p;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	if (total <= SC_MAXSIZE) {
		if ((p = tc_alloc(sc_class(total))) != NULL)
			memset(p, 0, total);
		return p;
	}
	if ((p = alloc_pages(total, PAGE_SIZE, &zero)) != NULL && !zero)
		memset(p, 0, total);
	return p;
}

void *
alloc_memalign(size_t align, size_t size)
{
	bool zero;

	if (align == 0 || (align & (align - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	if (align <= 16)
		return alloc_malloc(size);
	if (size <= SC_MAXSIZE && align <= PAGE_SIZE) {
		/* The first class whose size is a multiple of align: its
		 * objects are aligned (a power-of-two class always is). */
		for (unsigned c = sc_class(MAX(size, align));; c++)
			if (sc_table[c].sc_size % align == 0)
				return tc_alloc(c);
	}
	return alloc_pages(MAX(size, 1), MAX(align, PAGE_SIZE), &zero);
}

void
alloc_free(void *p)
{
	unsigned cls;
	struct span *sp;

	if (p == NULL)
		return;
	if (likely((cls = ph_pageclass(p)) != 0)) {
		tc_free(p, cls - 1);
		return;
	}
	sp = ph_lookup(p);
	if (sp == NULL || sp->sp_start != (uintptr_t)p) {
		c_badfree(p, "not an allocated block");
		return;
	}
	if (sp->sp_state == SPAN_LARGE)
		ph_free(sp);
	else if (sp->sp_state == SPAN_MAPPED)
		ph_unmap(sp);
	else
		c_badfree(p, "not an allocated block");
}

size_t
alloc_usable_size(const void *p)
{
	unsigned cls;
	struct span *sp;

	if (p == NULL)
		return 0;
	if ((cls = ph_pageclass(p)) != 0)
		return sc_table[cls - 1].sc_size;
	sp = ph_lookup(p);
	if (sp == NULL || sp->sp_start != (uintptr_t)p ||
	    (sp->sp_state != SPAN_LARGE && sp->sp_state != SPAN_MAPPED))
		return 0;
	return ptoa(sp->sp_npages);
}

void *
alloc_realloc(void *p, size_t size)
{
	size_t old;
	void *q;

	if (p == NULL)
		return alloc_malloc(size);
	if (size == 0) {
		alloc_free(p);
		return NULL;
	}
	old = alloc_usable_size(p);
	/* Stay put if it fits and would not waste half of it (or less
	 * than a page). */
	if (size <= old && (size >= old / 2 || old - size < PAGE_SIZE))
		return p;
	/* Whole pages grow where they are if the pages after are free. */
	if (size > old && old > SC_MAXSIZE && round_page(size) >= size &&
	    ph_extend(ph_lookup(p), atop(round_page(size))))
		return p;
	if ((q = alloc_malloc(size)) == NULL)
		return NULL;
	memcpy(q, p, MIN(old, size));
	alloc_free(p);
	return q;
}

size_t
alloc_trim(void)
{
	alloc_thread_flush();
	return ph_trim();
}

void
alloc_fork_prepare(void)
{
	for (unsigned c = 0; c < SC_NCLASS; c++)
		pthread_mutex_lock(&central[c].c_lock);
	ph_fork_prepare();
}

void
alloc_fork_parent(void)
{
	ph_fork_parent();
	for (unsigned c = 0; c < SC_NCLASS; c++)
		pthread_mutex_unlock(&central[c].c_lock);
}

void
alloc_fork_child(void)
{
	ph_fork_child();
	for (unsigned c = 0; c < SC_NCLASS; c++)
		pthread_mutex_unlock(&central[c].c_lock);
}

void
alloc_stats(struct alloc_stats *st)
{
	ph_usage(&st->as_inuse, &st->as_free_resident, &st->as_free_zero);
}
