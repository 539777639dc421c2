/*
 * trap.c: the fault threads.
 *
 * Each fault thread has its own io_uring, which watches the userfaultfd
 * (and the stop event) with a multishot poll.  Its paging I/O goes
 * through a ring of its own (pgio.c), whose completions never mix with
 * these.
 *
 * Reading: all threads read the one userfaultfd.  Reads are serialized
 * by trap_read_lock, and the non-fault events of a batch (REMOVE, UNMAP,
 * REMAP: the application's own madvise, munmap and mremap) are handled
 * before the lock is dropped.  The kernel lets the application thread go
 * on once its event is read, and that thread's next fault can only be
 * read after this batch, so by the time any thread serves that fault the
 * event has been applied.  Page faults are served outside the lock, in
 * parallel.  While a fork(2) holds the map locks, events and faults that
 * would wait for them are set aside instead (trap_fork_resume).
 *
 * A fault thread never touches managed memory with a load or store (it
 * would fault into itself) and never calls madvise or munmap on a
 * registered range (it may be the only reader of the event that raises).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fault.h"
#include "fork.h"
#include "fault/pmap.h"
#include "fault/trap.h"
#include "fault/uffd_compat.h"
#include "kmem.h"
#include "map.h"
#include "pager/pgio.h"
#include "space.h"
#include "stats.h"
#include "usrvm_internal.h"

#define TRAP_BATCH	64		/* messages per read */
#define TRAP_RING	64		/* ring entries per thread */
#define TRAP_NOMEM_TRIES 1000		/* ENOMEM retries before SIGBUS */
#define TRAP_SPIN_NS	50000		/* spin before sleeping */

enum { TRAP_UD_UFFD = 1, TRAP_UD_STOP = 2 };

struct trap_thread {
	struct usrvm_thread tt_thread;
	struct io_uring tt_ring;
	unsigned tt_index;
};

static struct trap_thread *trap_threads;
static unsigned trap_nthreads;
static int trap_stop_fd = -1;
static pthread_mutex_t trap_read_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread bool trap_is_fault_thread;

/*
 * Events read while a fork(2) holds the map locks, applied in order after
 * it (trap_deferred_apply).  => trap_read_lock.
 */
static struct uffd_msg *trap_deferred;
static unsigned trap_ndeferred, trap_maxdeferred;

bool
trap_self(void)
{
	return trap_is_fault_thread;
}

/* ------------------------------------------------------------------ */
/* events                                                              */
/* ------------------------------------------------------------------ */

/* The application dropped the pages of [start, end) (madvise). */
static void
trap_remove(uintptr_t start, uintptr_t end)
{
	struct usrvm_space *vs;

	CNT_INC(events_remove);
	if ((vs = space_enter(start)) != NULL) {
		map_discard(vs, start, end);
		space_exit(vs);
	}
}

/* ... and the runs of pages whose bits are set in mask, from start. */
static void
trap_remove_pages(uintptr_t start, uint64_t mask)
{
	while (mask != 0) {
		unsigned first = (unsigned)__builtin_ctzll(mask), n = 0;
		while (first + n < 64 && (mask >> (first + n) & 1))
			n++;
		trap_remove(start + ptoa(first), start + ptoa(first + n));
		mask = first + n < 64 ? mask >> (first + n) << (first + n) : 0;
	}
}

/*
 * trap_event: an application event, handled in queue order.
 * => trap_read_lock held.
 */
static void
trap_event(const struct uffd_msg *msg)
{
	struct usrvm_space *vs;
	uintptr_t start, end;
	uint64_t appmask;

	switch (msg->event) {
	case UFFD_EVENT_REMOVE:
		/* madvise(DONTNEED/REMOVE/FREE): the pages are dropped,
		 * but for those the runtime dropped itself (a page-out that
		 * could not move them: pmap's stage_copy). */
		start = msg->arg.remove.start;
		end = msg->arg.remove.end;
		if (uffd_own_remove(start, end, &appmask)) {
			trap_remove_pages(start, appmask);
			break;
		}
		trap_remove(start, end);
		break;
	case UFFD_EVENT_UNMAP:
		/* munmap (or mmap over it) by the application itself. */
		CNT_INC(events_unmap);
		start = msg->arg.remove.start;
		end = msg->arg.remove.end;
		if ((vs = space_enter(start)) != NULL) {
			map_forget(vs, start, end);
			space_exit(vs);
		}
		break;
	case UFFD_EVENT_REMAP:
		/* mremap moved pages out of [from, from + len). */
		CNT_INC(events_remap);
		start = msg->arg.remap.from;
		end = start + msg->arg.remap.len;
		if ((vs = space_enter(start)) != NULL) {
			map_forget(vs, start, end);
			space_exit(vs);
		}
		/*
		 * The moved mapping keeps its registration; unless it landed
		 * in a space, it is ordinary memory now, and its faults must
		 * not come here (they would have no entry to resolve them).
		 */
		if (space_of(msg->arg.remap.to) != NULL)
			usrvm_log(USRVM_LOG_NOTICE, "mremap moved pages into "
			    "a space at %#llx: they are not managed",
			    (unsigned long long)msg->arg.remap.to);
		else
			pmap->disown(msg->arg.remap.to, msg->arg.remap.len);
		break;
	default:
		usrvm_log(USRVM_LOG_NOTICE, "unexpected userfaultfd event "
		    "%#x", msg->event);
		break;
	}
}

/* Apply the events set aside, in order.  => trap_read_lock held. */
static void
trap_deferred_run(void)
{
	for (unsigned i = 0; i < trap_ndeferred; i++)
		trap_event(&trap_deferred[i]);
	trap_ndeferred = 0;
}

/*
 * Apply the events set aside during a fork, unless one still holds the
 * maps.  => trap_read_lock held; false if it does.
 */
static bool
trap_deferred_apply(void)
{
	if (trap_ndeferred == 0)
		return true;
	if (!fork_lock_enter())
		return false;
	trap_deferred_run();
	fork_lock_exit();
	return true;
}

/* Keep msg for trap_deferred_apply.  => false: no memory for it. */
static bool
trap_defer(const struct uffd_msg *msg)
{
	if (trap_ndeferred == trap_maxdeferred) {
		unsigned max = trap_maxdeferred != 0 ? 2 * trap_maxdeferred :
		    TRAP_BATCH;
		struct uffd_msg *v = kmem_alloc(max * sizeof(*v));
		if (v == NULL)
			return false;
		if (trap_ndeferred > 0)
			memcpy(v, trap_deferred, trap_ndeferred * sizeof(*v));
		kmem_free(trap_deferred, trap_maxdeferred * sizeof(*v));
		trap_deferred = v;
		trap_maxdeferred = max;
	}
	trap_deferred[trap_ndeferred++] = *msg;
	return true;
}

/*
 * An application event, applied now, or after the fork(2) that holds the
 * map locks (the fault of the forking thread may be in the next read,
 * and no fault thread can read while this one waits).  Events stay in
 * order.  => trap_read_lock held.
 */
static void
trap_event_or_defer(const struct uffd_msg *msg)
{
	if (trap_deferred_apply() && fork_lock_enter()) {
		trap_event(msg);
		fork_lock_exit();
		return;
	}
	if (trap_defer(msg))
		return;
	/* No memory to keep it (the process is out of memory): wait for
	 * the fork to end, which holds the forking thread up if it faults
	 * meanwhile. */
	while (!trap_deferred_apply() || !fork_lock_enter())
		sched_yield();
	trap_event(msg);
	fork_lock_exit();
}

/*
 * trap_fork_resume: see trap.h.  The events set aside are applied, in
 * order, before the fork's owner is cleared, and under trap_read_lock, so
 * that no other is set aside meanwhile: a fault served once the owner is
 * clear finds every event read before it applied.  A fault set aside saw
 * the owner set, so before the clearing store, which comes before this
 * wake; its thread was waiting before its message was read: the wake
 * finds it, and it faults again.
 */
void
trap_fork_resume(void)
{
	pthread_mutex_lock(&trap_read_lock);
	trap_deferred_run();
	fork_lock_clear();
	pthread_mutex_unlock(&trap_read_lock);
	for (struct usrvm_space *vs = space_next(NULL); vs != NULL;
	    vs = space_next(vs))
		(void)pmap->wake(vs->vs_base, vs->vs_size);
}

/* ------------------------------------------------------------------ */
/* faults                                                              */
/* ------------------------------------------------------------------ */

/* The page at va gives SIGBUS from now on (and the waiting thread). */
static void
trap_sigbus(uintptr_t va)
{
	if (pmap->poison(trunc_page(va), PAGE_SIZE) != 0)
		pmap->wake(trunc_page(va), PAGE_SIZE);
}

/*
 * trap_fault: serve one page-fault message.
 *
 * Errors reach the faulting thread the way the kernel's would: a fault
 * with no entry (unmapped under it) is woken and sees the PROT_NONE range
 * (SIGSEGV).  A fault the entry's protection refuses is stale: the kernel
 * raised it while the range was writable, and map_protect has since
 * lowered the entry and the range together (under the map's write lock),
 * so the thread, if it still waits, is woken to retry under the new
 * protection, which the kernel enforces itself.  A fault that cannot be
 * served (no memory for metadata after retrying, or a file read that
 * failed) poisons the page, so that thread alone gets SIGBUS, as does
 * one past the end of a mapped file (ENXIO).
 */
static void
trap_fault(const struct uffd_msg *msg)
{
	uint64_t t0 = usrvm_now_ns();
	uintptr_t va = msg->arg.pagefault.address;
	uint64_t flags = msg->arg.pagefault.flags;
	int access = (flags & UFFD_PAGEFAULT_FLAG_WRITE) ?
	    USRVM_PROT_WRITE : USRVM_PROT_READ;
	int ftype = (flags & UFFD_PAGEFAULT_FLAG_WP) ? FAULT_WP :
	    (flags & UFFD_PAGEFAULT_FLAG_MINOR) ? FAULT_MINOR : FAULT_MISSING;
	struct usrvm_space *vs;
	bool lent = false;
	int error = EFAULT;

	CNT_INC(faults);
	usrvm_serving(1);
	if ((vs = space_enter(va)) != NULL) {
		/* The thread holding every map lock across fork(2) can
		 * fault too (glibc's fork reads the heap after the handlers):
		 * it lends its lock (fork.c). */
		lent = msg->arg.pagefault.feat.ptid != 0 &&
		    (pid_t)msg->arg.pagefault.feat.ptid == fork_lock_owner();
		/* That thread may fork as soon as it is woken: not before
		 * this one holds nothing the child would find held. */
		if (lent)
			uffd_wakes_hold();
		for (int tries = 0; tries < TRAP_NOMEM_TRIES; tries++) {
			error = lent ? uvm_fault_lent(vs, va, access, ftype) :
			    uvm_fault(vs, va, access, ftype);
			if (error != ENOMEM)
				break;
			sched_yield();	/* let the refill thread run */
		}
		space_exit(vs);
	}
	switch (error) {
	case 0:
		break;
	case ENXIO:
		/* Past the end of a mapped file: SIGBUS, as with mmap. */
		CNT_INC(faults_error);
		trap_sigbus(va);
		break;
	case EDEADLK:
		/* Set aside while a fork(2) holds the map locks: its thread
		 * is woken after it (trap_fork_resume). */
		break;
	case EACCES:
		CNT_INC(faults_dup);
		/* FALLTHROUGH */
	case EFAULT:
		pmap->wake(trunc_page(va), PAGE_SIZE);
		break;
	default:
		CNT_INC(faults_error);
		usrvm_log(USRVM_LOG_ERR, "fault at %#lx (%s) cannot be "
		    "served: %s; the thread gets SIGBUS",
		    (unsigned long)va, access == USRVM_PROT_WRITE ?
		    "write" : "read", strerror(error));
		trap_sigbus(va);
		break;
	}
	stats_fault_latency(usrvm_now_ns() - t0);
	usrvm_serving(-1);
	if (lent)
		uffd_wakes_release();
}

/* ------------------------------------------------------------------ */
/* the threads                                                         */
/* ------------------------------------------------------------------ */

/*
 * trap_sync: see trap.h.  Events are applied before trap_read_lock is
 * released, or set aside while a fork(2) holds the map locks: this waits
 * for those too.
 */
void
trap_sync(void)
{
	KASSERT(!trap_is_fault_thread);
	pthread_mutex_lock(&trap_read_lock);
	while (!trap_deferred_apply()) {
		pthread_mutex_unlock(&trap_read_lock);
		sched_yield();
		pthread_mutex_lock(&trap_read_lock);
	}
	pthread_mutex_unlock(&trap_read_lock);
}

/*
 * trap_read: read a batch, handle its events, return its page faults.
 * => returns how many faults were copied to faults[] (0: nothing to read).
 */
static int
trap_read(struct uffd_msg *faults)
{
	struct uffd_msg msgs[TRAP_BATCH];
	ssize_t n;
	int nfaults = 0;

	pthread_mutex_lock(&trap_read_lock);
	n = read(uffd_fd, msgs, sizeof(msgs));
	if (n > 0) {
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				faults[nfaults++] = msgs[i];
			else
				trap_event_or_defer(&msgs[i]);
		}
	} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		usrvm_panic("reading the userfaultfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&trap_read_lock);
	return nfaults;
}

static int
trap_arm(struct io_uring *ring, int fd, uint64_t ud)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (sqe == NULL)
		return EBUSY;
	io_uring_prep_poll_multishot(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, ud);
	return 0;
}

/*
 * trap_wait: sleep until the userfaultfd or the stop event is readable
 * (brief: at most a millisecond).  hot: this thread just served faults.
 * => false when the thread must stop.
 */
static bool
trap_wait(struct trap_thread *tt, bool brief, bool hot)
{
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	bool run = true;
	int error;

	/*
	 * A thread that just served faults spins on its completion ring for
	 * a moment before sleeping: waking a sleeping thread costs tens of
	 * microseconds on a virtual CPU, as much as serving a fault, and
	 * faults come in bursts (random first touch: 280,000 -> 420,000
	 * pages/s).  Only that thread, and only if the spin gate lets it
	 * (one spinner per CPU but one): the others would take the CPU from
	 * the application.
	 */
	io_uring_submit(&tt->tt_ring);
	if (hot && usrvm_spin_begin()) {
		for (uint64_t t0 = usrvm_now_ns();
		    usrvm_now_ns() - t0 < TRAP_SPIN_NS;)
			if (io_uring_peek_cqe(&tt->tt_ring, &cqe) == 0)
				break;
		usrvm_spin_end();
	}
	if (brief)
		error = io_uring_submit_and_wait_timeout(&tt->tt_ring, &cqe, 1,
		    &ts, NULL);
	else
		error = io_uring_submit_and_wait(&tt->tt_ring, 1);
	if (error < 0 && error != -EINTR && error != -ETIME)
		usrvm_panic("fault thread ring: %s", strerror(-error));
	io_uring_for_each_cqe(&tt->tt_ring, head, cqe) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		seen++;
		if (ud == TRAP_UD_STOP)
			run = false;
		if (!(cqe->flags & IORING_CQE_F_MORE))
			trap_arm(&tt->tt_ring, ud == TRAP_UD_STOP ?
			    trap_stop_fd : uffd_fd, ud);
	}
	io_uring_cq_advance(&tt->tt_ring, seen);
	return run;
}

static void *
trap_main(void *arg)
{
	struct trap_thread *tt = arg;
	struct uffd_msg faults[TRAP_BATCH];
	int n;

	trap_is_fault_thread = true;
	usrvm_runtime_thread = true;
	for (;;) {
		bool hot = false;
		while ((n = trap_read(faults)) > 0) {
			for (int i = 0; i < n; i++)
				trap_fault(&faults[i]);
			pmap->update();
			hot = true;
		}
		/* Deferred pmap work waits for an event to be read: poll. */
		if (!trap_wait(tt, pmap->update() > 0, hot))
			break;
	}
	pgio_thread_exit();
	return NULL;
}

/*
 * trap_start: n fault threads.  => 0 or a positive errno; on failure no
 * thread is left running.
 */
int
trap_start(unsigned n)
{
	char name[16];
	int error = 0;

	KASSERT(n > 0 && trap_threads == NULL);
	trap_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (trap_stop_fd < 0)
		return errno;
	trap_threads = kmem_zalloc(n * sizeof(*trap_threads));
	if (trap_threads == NULL) {
		close(trap_stop_fd);
		return ENOMEM;
	}
	for (trap_nthreads = 0; trap_nthreads < n; trap_nthreads++) {
		struct trap_thread *tt = &trap_threads[trap_nthreads];
		tt->tt_index = trap_nthreads;
		snprintf(name, sizeof(name), "usrvm-fault%u", trap_nthreads % 1000);
		error = -io_uring_queue_init(TRAP_RING, &tt->tt_ring, 0);
		if (error != 0)
			break;
		if ((error = trap_arm(&tt->tt_ring, uffd_fd, TRAP_UD_UFFD)) ||
		    (error = trap_arm(&tt->tt_ring, trap_stop_fd,
		    TRAP_UD_STOP)) ||
		    (error = usrvm_thread_start(&tt->tt_thread, trap_main, tt,
		    name)) != 0) {
			io_uring_queue_exit(&tt->tt_ring);
			break;
		}
	}
	if (error != 0)
		trap_stop();
	return error;
}

/* The threads' rings and the table go (the threads have ended), and the
 * stacks a fork child's copy has of them. */
static void
trap_free(void)
{
	for (unsigned i = 0; i < trap_nthreads; i++) {
		usrvm_thread_forget(&trap_threads[i].tt_thread);
		io_uring_queue_exit(&trap_threads[i].tt_ring);
	}
	kmem_free(trap_threads, trap_nthreads * sizeof(*trap_threads));
	trap_threads = NULL;
	trap_nthreads = 0;
	close(trap_stop_fd);
	trap_stop_fd = -1;
}

void
trap_stop(void)
{
	uint64_t one = 1;

	if (trap_threads == NULL)
		return;
	(void)!write(trap_stop_fd, &one, sizeof(one));
	/* Threads that started; a failed start stopped at the first whose
	 * thread was not created (its ring is already gone). */
	for (unsigned i = 0; i < trap_nthreads; i++)
		usrvm_thread_join(&trap_threads[i].tt_thread);
	trap_free();
}

/*
 * trap_fork_child: in a fork child (fork.c), the fault threads are gone:
 * their rings (shared with the parent's) are let go and the lock is new.
 */
void
trap_fork_child(void)
{
	FORK_REINIT_MUTEX(&trap_read_lock);
	if (trap_threads != NULL)
		trap_free();
	/* Events of the parent's threads during the fork: the parent
	 * applies them (trap_fork_resume); here they are as unknown as
	 * those still unread in its context.  The list itself may be half
	 * grown (a fault thread was in trap_defer): let it go. */
	trap_deferred = NULL;
	trap_ndeferred = trap_maxdeferred = 0;
}
