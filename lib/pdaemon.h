/*
 * pdaemon.h: the page daemon (UVM's uvm_pdaemon.c).
 *
 * One thread keeps free pages available under the budget: it deactivates
 * pages (takes them away from the application into frames), drops clean
 * and all-zero inactive pages, and writes dirty ones to swap in clusters.
 * The policy (which pages, how many) is pdpolicy.c; this file carries it
 * out.
 *
 * Faults never wait for it.  A fault that finds the budget full parks:
 * its thread stays blocked in the kernel (the fault thread is not woken
 * up for it and goes on serving others), and the daemon wakes it when it
 * has freed memory: the slowdown back channel of seed 001, applied to the
 * application threads that allocate, never to the fault threads.
 */
#ifndef USRVM_PDAEMON_H
#define USRVM_PDAEMON_H

#include <stdint.h>

int pdaemon_start(void);
void pdaemon_stop(void);
/* Memory is short: run now (cheap when already running). */
void pdaemon_wakeup(void);
/* The fault at va could not get memory: wake its thread later. */
void pdaemon_park(uintptr_t va);
/*
 * Wake the daemon and sleep until it ends a pass, for at most max_ns (a
 * background thread that wants memory and holds nothing meanwhile).
 */
void pdaemon_wait_pass(uint64_t max_ns);
/*
 * Stop the daemon between passes (it holds no lock then, and starts no
 * write) until the matching pdaemon_resume, once the writes in flight
 * have completed.
 */
void pdaemon_pause(void);
void pdaemon_resume(void);
/* In a fork(2) child, after a pause: the daemon is gone (fork.c). */
void pdaemon_fork_child(void);

#endif /* USRVM_PDAEMON_H */
