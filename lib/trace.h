/*
 * trace.h: a record of the faults the page replacement policy hears of,
 * for replaying it with no kernel in the loop (tests/test_pdpolicy.c).
 *
 * The file (USRVM_TRACE) is a sequence of little-endian 64-bit words,
 * one per fault: the page's number (its address / PAGE_SIZE) times 4
 * plus its kind.  Only faults that bring an anon's page in or back are
 * recorded: a hit on a mapped page is invisible to the runtime, as it
 * is to the policy.
 */
#ifndef USRVM_TRACE_H
#define USRVM_TRACE_H

#include <stdatomic.h>
#include <stdint.h>

#define TRACE_ZERO	1	/* first touch: zero fill */
#define TRACE_IN	2	/* read back from swap (or its zeros) */
#define TRACE_BACK	3	/* taken away by the daemon, not yet out */

extern _Atomic(uint64_t *) trace_buf;	/* NULL: not tracing */

/* Start recording into path (USRVM_TRACE).  => 0 or an errno. */
int trace_start(const char *path);
/* Write what was recorded, once: only the process that started it (a
 * fork child's copy is not its trace). */
void trace_flush(void);
/* trace_flush, and stop.  => no thread records any more. */
void trace_stop(void);

void trace_record(uintptr_t va, unsigned kind);

static inline void
trace_fault(uintptr_t va, unsigned kind)
{
	if (atomic_load_explicit(&trace_buf, memory_order_relaxed) != NULL)
		trace_record(va, kind);
}

#endif /* USRVM_TRACE_H */
