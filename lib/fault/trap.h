/*
 * trap.h: the fault threads (the trap() of seed 002, in userland).
 */
#ifndef USRVM_TRAP_H
#define USRVM_TRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Start n fault threads serving uffd_fd; stop them.  Positive errno. */
int trap_start(unsigned n);
void trap_stop(void);

/*
 * Queue [va, va + npages pages) to be filled ahead of a sequential
 * stream by whichever fault thread is idle (uvm_fault_ahead), in chunks.
 * Returns how many pages were queued (the queue is bounded; what does
 * not fit is simply not filled ahead).
 */
size_t trap_fill_ahead(uintptr_t va, size_t npages);

/*
 * A fault at va: if a queued fill-ahead chunk covers it, take the part
 * from va on off the queue and return it, for the fault to fill now (the
 * part before va stays queued).
 */
bool trap_ahead_claim(uintptr_t va, uintptr_t *startp, size_t *npagesp);

/* Is the calling thread one of the runtime's fault threads? */
bool trap_self(void);

/* SIGSEGV diagnostics for accesses to a space outside every entry. */
int segv_install(void);
void segv_uninstall(void);

#endif /* USRVM_TRAP_H */
