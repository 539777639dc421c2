/*
 * trap.h: the fault threads (the trap() of seed 002, in userland).
 */
#ifndef USRVM_TRAP_H
#define USRVM_TRAP_H

#include <stdbool.h>

/* Start n fault threads serving uffd_fd; stop them.  Positive errno. */
int trap_start(unsigned n);
void trap_stop(void);
/* In a fork(2) child: the threads are gone; their rings let go. */
void trap_fork_child(void);
/*
 * In the parent after a fork(2), once the map locks are released: the
 * application events read meanwhile applied, and the threads whose faults
 * were set aside woken (fork_lock_enter).
 */
void trap_fork_resume(void);

/*
 * Wait until every userfaultfd event read so far has been applied.  The
 * application's own munmap or madvise returns once its event is read, not
 * applied: an API call that follows it calls this first, so that it sees
 * the map as the event leaves it.  => no lock held; not a fault thread.
 */
void trap_sync(void);

/* Is the calling thread one of the runtime's fault threads? */
bool trap_self(void);

/* SIGSEGV diagnostics for accesses to a space outside every entry. */
int segv_install(void);
void segv_uninstall(void);

#endif /* USRVM_TRAP_H */
