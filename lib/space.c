/*
 * space.c: vmspaces and the address registry (see space.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "fault/pmap.h"
#include "fault/trap.h"
#include "space.h"
#include "stats.h"
#include "usrvm_internal.h"

#define VA_BITS			47
#define REGISTRY_SIZE		((size_t)1 << (VA_BITS - SPACE_GRANULE_SHIFT))

static pthread_mutex_t space_lock = PTHREAD_MUTEX_INITIALIZER;
static struct usrvm_space *space_array;		/* SPACE_MAX slots */
static struct usrvm_space *_Atomic *space_registry; /* REGISTRY_SIZE */

int
space_sys_init(void)
{
	void *p;

	/* Both tables: address space only; pages appear where touched. */
	p = mmap(NULL, SPACE_MAX * sizeof(struct usrvm_space),
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	    -1, 0);
	if (p == MAP_FAILED)
		return ENOMEM;
	space_array = p;
	p = mmap(NULL, REGISTRY_SIZE * sizeof(*space_registry),
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	    -1, 0);
	if (p == MAP_FAILED) {
		munmap(space_array, SPACE_MAX * sizeof(struct usrvm_space));
		space_array = NULL;
		return ENOMEM;
	}
	space_registry = p;
	return 0;
}

void
space_destroy_all(void)
{
	if (space_array == NULL)
		return;
	for (unsigned i = 0; i < SPACE_MAX; i++)
		if (space_array[i].vs_inuse)
			space_destroy(&space_array[i]);
}

/*
 * space_sys_fini: unmap the tables.  => only once no fault thread can
 * look a space up (trap_stop), even one still finishing an event.
 */
void
space_sys_fini(void)
{
	if (space_array == NULL)
		return;
	space_destroy_all();
	munmap(space_array, SPACE_MAX * sizeof(struct usrvm_space));
	munmap(space_registry, REGISTRY_SIZE * sizeof(*space_registry));
	space_array = NULL;
	space_registry = NULL;
}

struct usrvm_space *
space_next(struct usrvm_space *vs)
{
	unsigned i = vs == NULL ? 0 : (unsigned)(vs - space_array) + 1;

	for (; space_array != NULL && i < SPACE_MAX; i++)
		if (space_array[i].vs_inuse &&
		    atomic_load(&space_array[i].vs_alive))
			return &space_array[i];
	return NULL;
}

void
space_lock_all(void)
{
	pthread_mutex_lock(&space_lock);
}

void
space_unlock_all(void)
{
	pthread_mutex_unlock(&space_lock);
}

/*
 * space_fork_child: in a fork child (fork.c), no thread is inside a space
 * and no lock is held: the parent's threads are not here.
 */
void
space_fork_child(void)
{
	FORK_REINIT_MUTEX(&space_lock);
	for (unsigned i = 0; space_array != NULL && i < SPACE_MAX; i++) {
		struct usrvm_space *vs = &space_array[i];
		if (!vs->vs_inuse)
			continue;
		atomic_store(&vs->vs_active, 0);
		/* A space a thread of the parent was creating or destroying
		 * is left as it was (its map part made or unmade): its slot
		 * is free again here. */
		if (!atomic_load(&vs->vs_alive))
			vs->vs_inuse = false;
		else
			map_fork_child(&vs->vs_map);
	}
}

static void
space_register(struct usrvm_space *vs, struct usrvm_space *val)
{
	size_t first = vs->vs_base >> SPACE_GRANULE_SHIFT;
	size_t n = vs->vs_size >> SPACE_GRANULE_SHIFT;

	for (size_t i = 0; i < n; i++)
		atomic_store_explicit(&space_registry[first + i], val,
		    memory_order_release);
}

/*
 * space_create: reserve a new space of at least `reserve` bytes.
 * => NULL with *errorp = EINVAL (size 0 or beyond the address space),
 *    ENOMEM (no slot or no address space left).
 */
struct usrvm_space *
space_create(size_t reserve, int *errorp)
{
	struct usrvm_space *vs = NULL;
	uintptr_t va;
	size_t size;
	int error;

	if (reserve == 0 || reserve > ((size_t)1 << (VA_BITS - 1))) {
		*errorp = EINVAL;
		return NULL;
	}
	size = (reserve + SPACE_GRANULE - 1) & ~(SPACE_GRANULE - 1);

	pthread_mutex_lock(&space_lock);
	for (unsigned i = 0; i < SPACE_MAX; i++) {
		if (!space_array[i].vs_inuse) {
			vs = &space_array[i];
			vs->vs_inuse = true;
			break;
		}
	}
	pthread_mutex_unlock(&space_lock);
	if (vs == NULL) {
		*errorp = ENOMEM;
		return NULL;
	}

	if ((error = pmap->reserve(size, SPACE_GRANULE, &va)) != 0)
		goto fail;
	if (va + size > ((uintptr_t)1 << VA_BITS)) {
		pmap->release(va, size);
		error = ENOMEM;
		goto fail;
	}
	vs->vs_base = va;
	vs->vs_size = size;
	/* vs_active is not reset: it is balanced, and a fault thread that
	 * raced with the slot's previous space may still be inside it. */
	if ((error = map_init(&vs->vs_map, va, va + size)) != 0) {
		pmap->release(va, size);
		goto fail;
	}
	/* Under the lock: a fork(2) locks the maps of the spaces alive
	 * while it holds it, and unlocks the same ones. */
	pthread_mutex_lock(&space_lock);
	atomic_store_explicit(&vs->vs_alive, true, memory_order_release);
	pthread_mutex_unlock(&space_lock);
	space_register(vs, vs);
	CNT_INC(spaces);
	return vs;

fail:
	pthread_mutex_lock(&space_lock);
	vs->vs_inuse = false;
	pthread_mutex_unlock(&space_lock);
	*errorp = error;
	return NULL;
}

/*
 * space_destroy: unmap everything and release the reservation.
 * => must not be called by a fault thread.
 */
int
space_destroy(struct usrvm_space *vs)
{
	pthread_mutex_lock(&space_lock);
	if (!space_valid(vs)) {
		pthread_mutex_unlock(&space_lock);
		return EINVAL;
	}
	atomic_store_explicit(&vs->vs_alive, false, memory_order_release);
	pthread_mutex_unlock(&space_lock);

	space_register(vs, NULL);
	trap_sync();		/* the application's own munmap, applied */
	/* Fault threads that found the space before it left the registry. */
	while (atomic_load_explicit(&vs->vs_active, memory_order_acquire) != 0)
		sched_yield();
	map_fini(vs);		/* releases the reservation too */
	CNT_ADD(spaces, -1);

	pthread_mutex_lock(&space_lock);
	vs->vs_inuse = false;
	pthread_mutex_unlock(&space_lock);
	return 0;
}

bool
space_valid(const struct usrvm_space *vs)
{
	uintptr_t p = (uintptr_t)vs, a = (uintptr_t)space_array;

	if (space_array == NULL || p < a ||
	    p >= a + SPACE_MAX * sizeof(struct usrvm_space) ||
	    (p - a) % sizeof(struct usrvm_space) != 0)
		return false;
	return atomic_load_explicit(&vs->vs_alive, memory_order_acquire);
}

bool
space_contains(const struct usrvm_space *vs, uintptr_t va, size_t len)
{
	return va >= vs->vs_base && len <= vs->vs_size &&
	    va - vs->vs_base <= vs->vs_size - len;
}

struct usrvm_space *
space_of(uintptr_t va)
{
	if (space_registry == NULL || (va >> VA_BITS) != 0)
		return NULL;
	return atomic_load_explicit(&space_registry[va >> SPACE_GRANULE_SHIFT],
	    memory_order_acquire);
}

struct usrvm_space *
space_enter(uintptr_t va)
{
	struct usrvm_space *vs = space_of(va);

	if (vs == NULL)
		return NULL;
	atomic_fetch_add_explicit(&vs->vs_active, 1, memory_order_acq_rel);
	/* Re-check: destroy may have run between the load and the inc. */
	if (!atomic_load_explicit(&vs->vs_alive, memory_order_acquire) ||
	    !space_contains(vs, va, 1)) {
		space_exit(vs);
		return NULL;
	}
	return vs;
}

void
space_exit(struct usrvm_space *vs)
{
	atomic_fetch_sub_explicit(&vs->vs_active, 1, memory_order_release);
}
