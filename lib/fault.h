/*
 * fault.h: fault resolution (UVM's uvm_fault.h).
 *
 * The machine-independent half of a page fault: the trap layer
 * (fault/trap.c) turns a userfaultfd message into a call to uvm_fault.
 */
#ifndef USRVM_FAULT_H
#define USRVM_FAULT_H

#include <errno.h>
#include <stdint.h>

struct usrvm_space;

/* Why the page faulted. */
#define FAULT_MISSING	0	/* no page there */
#define FAULT_WP	1	/* write to a write-protected page */
#define FAULT_MINOR	2	/* an object's page, not mapped here yet */

/*
 * Inside fault.c: the budget is full; the fault parks (pdaemon_park) and
 * uvm_fault returns 0 without waking its thread.
 */
#define FAULT_PARK	ENOBUFS
/* Inside fault.c: the entry needs an amap of its own first (needs-copy). */
#define FAULT_COPY	EXDEV

int fault_sys_init(void);
void fault_sys_fini(void);

/*
 * uvm_fault: resolve a fault at va in vs.
 * access: USRVM_PROT_READ or USRVM_PROT_WRITE; ftype: FAULT_*.
 * => map unlocked on entry and exit; may take it for writing (amap
 *    creation) and refault.
 * => 0: the page is installed (or was already) and the faulting threads
 *    are woken, or the fault is parked until the page daemon has freed
 *    memory.  EFAULT: no entry (the range was unmapped under the fault),
 *    EACCES: the entry refuses the access (a stale fault: the protection
 *    was lowered since it was raised), ENOMEM: no memory for metadata,
 *    EIO: the page's contents were lost (a swap read failed).  The caller
 *    decides how the faulting thread learns of an error.
 */
int uvm_fault(struct usrvm_space *vs, uintptr_t va, int access, int ftype);
/*
 * The same for a fault raised by the thread that holds every map lock for
 * writing (fork.c, around fork(2)): the lock is used on its behalf, not
 * taken (that thread is stopped in the fault, so nothing else changes the
 * map).  It must not park: fork.c gives the budget grace.
 */
int uvm_fault_lent(struct usrvm_space *vs, uintptr_t va, int access,
    int ftype);

#endif /* USRVM_FAULT_H */
