/*
 * usrvm_internal.h: the umbrella internal header (UVM's uvm.h).
 *
 * Page size helpers, assertion levels, logging and the lock order.  Each
 * subsystem has its own header; this one holds only what all of them use.
 *
 * LOCK ORDER (take left before right; never the reverse):
 *
 *	space registry -> map (rwlock) -> amap (am_lock) -> object -> page
 *	wait channel -> kmem/pool locks -> stats
 *
 * - The map lock is per space.  The fault path takes it for reading.
 * - The amap lock guards the amap's slots and the anons in them (and those
 *   anons' pages' flags), as NetBSD's am_lock/an_lock.
 * - A page that is busy (PG_BUSY) is owned by whoever set the flag; others
 *   wait on the page's wait channel (page.c), never on a global lock.
 * - No lock is held across a call that can block on a userfaultfd event
 *   (madvise or munmap of a registered range): see fault/uffd.c.
 * - kmem and pool locks are leaves, and so are the swap device's, the
 *   flusher's and the aobj list's (taken under an object's lock).
 * - The vnode pager's object list comes before an object's lock.
 */
#ifndef USRVM_INTERNAL_H
#define USRVM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "usrvm.h"

#define PAGE_SHIFT	12
#define PAGE_SIZE	((size_t)1 << PAGE_SHIFT)
#define PAGE_MASK	(PAGE_SIZE - 1)

#define trunc_page(x)	((uintptr_t)(x) & ~(uintptr_t)PAGE_MASK)
#define round_page(x)	(((uintptr_t)(x) + PAGE_MASK) & ~(uintptr_t)PAGE_MASK)
#define page_aligned(x)	(((uintptr_t)(x) & PAGE_MASK) == 0)
#define atop(x)		((uintptr_t)(x) >> PAGE_SHIFT)
#define ptoa(x)		((uintptr_t)(x) << PAGE_SHIFT)

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/*
 * Assertions in three levels (mimalloc's habit):
 *   KASSERT   cheap, always on: an invariant whose failure means corruption.
 *   KDASSERT  internal checks, on in debug builds (USRVM_DEBUG).
 *   expensive whole-structure validators are called under USRVM_DEBUG only
 *   (map_validate, amap_validate) and by the tests.
 */
__attribute__((noreturn, format(printf, 1, 2)))
void usrvm_panic(const char *fmt, ...);

#define KASSERT(e) do {							\
	if (unlikely(!(e)))						\
		usrvm_panic("assertion \"%s\" failed: %s:%d (%s)",	\
		    #e, __FILE__, __LINE__, __func__);			\
} while (0)

#ifdef USRVM_DEBUG
#define KDASSERT(e)	KASSERT(e)
#else
#define KDASSERT(e)	do { } while (0)
#endif

/*
 * Logging to stderr with a "usrvm: " prefix.  Async-signal-unsafe: never
 * from a signal handler (segv.c writes its own lines).
 */
enum { USRVM_LOG_ERR = 0, USRVM_LOG_NOTICE = 1, USRVM_LOG_DEBUG = 2 };
__attribute__((format(printf, 2, 3)))
void usrvm_log(int level, const char *fmt, ...);

/*
 * Set in the runtime's own threads (fault threads, page daemon, pool
 * refill): what they allocate through libc must not come from managed
 * memory, so the preloaded malloc hands it to the fallback allocator.
 */
extern __thread bool usrvm_runtime_thread
    __attribute__((tls_model("initial-exec")));

/* Is the runtime started (init.c)? */
bool usrvm_is_running(void);
/* In a fork child: the runtime is gone for good in this process. */
void usrvm_forked(void);
/* Around fork(2) (fork.c): the background threads; the child's threads. */
void usrvm_background_stop(void);
int usrvm_background_start(void);
int usrvm_fork_restart(void);
/* Before an object is made: its threads (read-ahead, flusher) running. */
int usrvm_object_threads(void);

/*
 * In a fork(2) child (fork.c), which has one thread: a lock or condition
 * variable that a thread of the parent may have held or waited on is made
 * new, since that thread does not exist here.
 */
#define FORK_REINIT_MUTEX(m)	(*(m) = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER)
#define FORK_REINIT_COND(c)	(*(c) = (pthread_cond_t)PTHREAD_COND_INITIALIZER)

/* Monotonic nanoseconds. */
uint64_t usrvm_now_ns(void);
/* pthread_cond_timedwait for at most ns (mtx held). */
void usrvm_cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mtx,
    uint64_t ns);
/*
 * Spinning on a completion instead of sleeping: at most one spinner per
 * CPU but one (at least one) at a time, and fewer while other faults are
 * being served (each takes a CPU too), so that spinners do not take the
 * CPUs from the threads whose work they wait for.  Begin => true: spin,
 * then end.  usrvm_spin_init: the number of CPUs.  usrvm_serving: the
 * calling thread starts (+1) or ends (-1) serving a fault.
 */
void usrvm_spin_init(long ncpu);
bool usrvm_spin_begin(void);
void usrvm_spin_end(void);
void usrvm_serving(int delta);
/* In a fork child: the parent's spinners are not here. */
void usrvm_spin_fork_child(void);

/*
 * The runtime's threads (util.c): started on a stack of their own, named;
 * joined, and the stack freed; or, in a fork child where the thread does
 * not exist, the stack's memory freed (forget).  Start => 0 or an errno.
 */
struct usrvm_thread {
	pthread_t ut_thread;
	void *ut_stack;
};
int usrvm_thread_start(struct usrvm_thread *ut, void *(*fn)(void *),
    void *arg, const char *name);
void usrvm_thread_join(struct usrvm_thread *ut);
void usrvm_thread_forget(struct usrvm_thread *ut);

/*
 * Internal errors are positive errno values (UVM's habit); the public API
 * negates them (liburing's).  ERESTART (<errno.h>) means "state changed
 * while unlocked, start the fault again", as in UVM, and never leaves the
 * runtime.
 */
#include <errno.h>

#endif /* USRVM_INTERNAL_H */
