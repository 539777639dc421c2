/*
 * fork.h: what fork(2) does to the runtime (fork.c).
 */
#ifndef USRVM_FORK_H
#define USRVM_FORK_H

#include <sys/types.h>

/*
 * Register the fork handlers (once per process; usrvm_init).  The child
 * makes the runtime its own and pages on its own; if it cannot, every
 * managed page is put back in place and it has no runtime
 * (usrvm_is_running() is false there).  0 or an errno.
 */
int fork_sys_init(void);

/*
 * The thread that holds every map lock for writing around a fork(2), or
 * 0: its faults are served with the lock it holds (uvm_fault_lent).
 */
pid_t fork_lock_owner(void);

#endif /* USRVM_FORK_H */
