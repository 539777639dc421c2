/*
 * space.h: vmspaces (UVM's struct vmspace) and the registry that maps a
 * faulting address to its space.
 *
 * A space is a reservation of address space (pmap reserve) and the map of
 * what is mapped in it.  Spaces are aligned to SPACE_GRANULE so that the
 * registry is a flat table indexed by address: the fault path finds the
 * space of an address with one atomic load and takes no lock.
 *
 * Lifetime: space structures live in one fixed array (type-stable memory,
 * never returned to the system), so a fault thread that races with
 * usrvm_space_destroy() can still touch the structure safely: it raises
 * vs_active, then checks vs_alive and the address range; destroy clears
 * vs_alive, removes the space from the registry and waits for vs_active
 * to drain before tearing the map down.  The same array lets the API
 * reject foreign pointers without dereferencing them.
 */
#ifndef USRVM_SPACE_H
#define USRVM_SPACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "map.h"

#define SPACE_GRANULE_SHIFT	26			/* 64 MiB */
#define SPACE_GRANULE		((size_t)1 << SPACE_GRANULE_SHIFT)
#define SPACE_MAX		16384			/* live spaces */

struct usrvm_space {
	struct vm_map vs_map;
	uintptr_t vs_base;		/* reserved [vs_base, vs_base+vs_size) */
	size_t vs_size;
	_Atomic int vs_active;		/* fault threads inside */
	_Atomic bool vs_alive;
	bool vs_inuse;			/* slot allocated: space_lock */
};

int space_sys_init(void);
void space_destroy_all(void);	/* every space left (shutdown) */
void space_sys_fini(void);	/* the tables: after the fault threads stop */

struct usrvm_space *space_create(size_t reserve, int *errorp);
int space_destroy(struct usrvm_space *vs);
/* The live space after vs (NULL: the first), or NULL.  Stable only with
 * space_lock_all held (or in a single-threaded child). */
struct usrvm_space *space_next(struct usrvm_space *vs);
/* No space is created or destroyed until space_unlock_all. */
void space_lock_all(void);
void space_unlock_all(void);

/* In a fork(2) child: every space's locks and counts made new. */
void space_fork_child(void);

/* Is vs one of ours and alive?  Never dereferences a foreign pointer. */
bool space_valid(const struct usrvm_space *vs);

/*
 * Fault path: the space containing va with vs_active raised, or NULL.
 * Pair with space_exit().
 */
struct usrvm_space *space_enter(uintptr_t va);
void space_exit(struct usrvm_space *vs);

/* Range check: [va, va+len) inside the space's reservation. */
bool space_contains(const struct usrvm_space *vs, uintptr_t va, size_t len);

/* The space whose reservation contains va (no reference taken), for
 * diagnostics (segv.c).  Async-signal-safe. */
struct usrvm_space *space_of(uintptr_t va);

#endif /* USRVM_SPACE_H */
