/*
 * fork.h: what fork(2) does to the runtime (fork.c).
 */
#ifndef USRVM_FORK_H
#define USRVM_FORK_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Register the fork handlers (once per process; usrvm_init).  The child
 * makes the runtime its own and pages on its own; if it cannot, every
 * managed page is put back in place and it has no runtime
 * (usrvm_is_running() is false there).  0 or an errno.
 */
int fork_sys_init(void);
void fork_sys_fini(void);	/* the runtime stops */

/*
 * The thread that holds every map lock for writing around a fork(2), or
 * 0: its faults are served with the lock it holds (uvm_fault_lent).
 */
pid_t fork_lock_owner(void);

/*
 * A fault thread about to take a map lock (or to apply an application
 * event, which takes one) calls fork_lock_enter first, and fork_lock_exit
 * once it holds the lock (or is done).  false: a fork(2) holds every map
 * lock or is about to, and its own thread may fault meanwhile; the fault
 * thread must not wait for it, and sets the fault or event aside instead
 * (trap.c), until trap_fork_resume.  The fork waits for every thread
 * between enter and exit before it takes the locks.
 */
bool fork_lock_enter(void);
void fork_lock_exit(void);
/* The fork is over: faults and events go on (trap_fork_resume). */
void fork_lock_clear(void);

#endif /* USRVM_FORK_H */
