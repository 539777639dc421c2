/*
 * fork.c: fork(2) of a process that uses usrvm.
 *
 * The kernel does not carry a userfaultfd registration into the child
 * (this runtime does not ask for UFFD_FEATURE_EVENT_FORK, whose events
 * would hand the child's faults to the parent's threads).  In the child,
 * the managed ranges are plain private memory: pages resident at their
 * address are copied as usual (shared by the kernel until written), but
 * pages the page daemon took away would read as zeros: staged in a frame
 * (the child has a copy of the frames), or only on swap.
 *
 * Before the fork (prepare), everything is brought to rest: the file
 * pages are written back, the background threads (pool refill, read-
 * ahead, flusher) stopped, the page daemon paused with no write in
 * flight, no space created or destroyed, and every map write-locked, so
 * that no fault, unmap or eviction is part way through at the copy.
 * glibc's fork still reads the heap after the prepare handlers (its NSS
 * state, for one), and so may other handlers: a fault of the thread that
 * holds the locks is served under its lock (the fault threads see which
 * thread faulted, UFFD_FEATURE_THREAD_ID), the budget has grace so that
 * no such fault waits for the paused daemon, and the fault thread wakes
 * it only once it holds nothing (uffd_wakes_hold).
 *
 * The child makes the runtime its own, and then pages on its own, under
 * a budget of its own:
 *   1. every lock and count the parent's other threads may have held is
 *      made new, and what belonged to those threads (their rings, parked
 *      faults) goes (the *_fork_child functions);
 *   2. a swap device of its own;
 *   3. views of objects are handed to the kernel (their pager says how:
 *      the file itself, or a private copy of shared anonymous memory),
 *      and the objects forgotten: their caches are the parent's;
 *   4. the swap slots its anons refer to are copied to its device, at
 *      the same offsets (swap.c), and a byte down a pipe tells the parent
 *      that it may go on (until then it frees no slot);
 *   5. new userfaultfd contexts; every entry is registered again and
 *      write-protected where the parent had it so (clean pages, pages
 *      shared copy-on-write, the zero page over untouched slots);
 *   6. its own fault threads, page daemon and pool refill thread start.
 * Staged pages stay staged: the kernel shares a frame's page with the
 * parent and will not move it (EBUSY), so the fault that wants it back
 * copies it in (fault.c); the pages mapped at the fork are shared the
 * same way until written, and stay resident until then (the daemon
 * cannot move them: docs/DESIGN.md).
 *
 * If any of that fails, the child gets what it got before it could page:
 * every page put in place (read from its frame or its slot), the files
 * mapped by the kernel, and no runtime (fork_materialize).
 *
 * Lock order: the allocator's locks (preload) are taken before these
 * (its handlers are registered after these, and prepare handlers run in
 * reverse order): a thread holding an allocator lock may be waiting for a
 * map lock, never the reverse.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amap.h"
#include "anon.h"
#include "dup.h"
#include "fork.h"
#include "fault/pmap.h"
#include "fault/trap.h"
#include "frame.h"
#include "kmem.h"
#include "page.h"
#include "object.h"
#include "pager/aobj.h"
#include "pager/flusher.h"
#include "pager/pgio.h"
#include "pager/swap.h"
#include "pager/vnode_pager.h"
#include "pdaemon.h"
#include "space.h"
#include "usrvm_internal.h"

/* Pages the forking thread may fault in over the budget meanwhile: the
 * page daemon is paused, and its faults must not wait for it. */
#define FORK_GRACE	1024

/*
 * The pipe down which the child tells the parent that it may go on, made
 * ahead of the fork (a program that uses every descriptor it may open
 * can still fork): at start, and after each fork.
 */
static int fork_pipe[2] = { -1, -1 };
static pthread_mutex_t fork_serial = PTHREAD_MUTEX_INITIALIZER;
static bool fork_active;		/* prepare ran with the runtime up */
static _Atomic pid_t fork_owner;	/* holds the map locks, or 0 */
/* Fault threads between fork_lock_enter and fork_lock_exit. */
static _Atomic unsigned fork_lockers;

pid_t
fork_lock_owner(void)
{
	return atomic_load_explicit(&fork_owner, memory_order_acquire);
}

/*
 * fork_lock_enter and fork_prepare each write one word and read the
 * other's (sequentially consistent): either the fault thread sees the
 * owner and backs off, or the fork sees the thread and waits for it.
 */
bool
fork_lock_enter(void)
{
	atomic_fetch_add(&fork_lockers, 1);
	if (atomic_load(&fork_owner) == 0)
		return true;
	atomic_fetch_sub(&fork_lockers, 1);
	return false;
}

void
fork_lock_exit(void)
{
	atomic_fetch_sub(&fork_lockers, 1);
}

void
fork_lock_clear(void)
{
	atomic_store(&fork_owner, 0);
}

/* Lock or unlock every space's map for writing. */
static void
fork_maps(bool lock)
{
	for (struct usrvm_space *vs = space_next(NULL); vs != NULL;
	    vs = space_next(vs)) {
		if (lock)
			map_lock_write(&vs->vs_map);
		else
			map_unlock_write(&vs->vs_map);
	}
}

static void
fork_pipe_make(void)
{
	if (fork_pipe[0] < 0 && pipe2(fork_pipe, O_CLOEXEC) != 0)
		fork_pipe[0] = fork_pipe[1] = -1;
}

static void
fork_prepare(void)
{
	size_t resident, budget;

	if (!usrvm_is_running())
		return;
	pthread_mutex_lock(&fork_serial);	/* one fork at a time */
	fork_pipe_make();
	if (fork_pipe[0] < 0)
		usrvm_log(USRVM_LOG_ERR, "fork: no descriptor for the pipe "
		    "to the child (%s): the child cannot read swapped pages",
		    strerror(errno));
	uvn_flush_all();	/* what the child's file mappings will show */
	usrvm_background_stop();
	pdaemon_pause();
	resident = page_resident();
	budget = page_budget();
	page_budget_grace((resident > budget ? resident - budget : 0) +
	    FORK_GRACE);
	space_lock_all();
	/* From here until the parent or child handler, the heap may still
	 * be read (glibc's fork does): such faults borrow the locks.  The
	 * other faults and the application's events wait until then, set
	 * aside: a fault thread blocked on a map lock would leave this
	 * thread's fault unread behind it. */
	atomic_store(&fork_owner, gettid());
	while (atomic_load(&fork_lockers) != 0)
		sched_yield();
	fork_maps(true);
	fork_active = true;
}

static void
fork_parent(void)
{
	char c;
	int error;

	if (!fork_active)
		return;
	/* Wait until the child has read what it needs (or is gone, or the
	 * fork failed: then the pipe is simply closed). */
	if (fork_pipe[1] >= 0) {
		close(fork_pipe[1]);
		while (read(fork_pipe[0], &c, 1) < 0 && errno == EINTR)
			continue;
		close(fork_pipe[0]);
		fork_pipe[0] = fork_pipe[1] = -1;
	}
	fork_active = false;
	fork_maps(false);
	space_unlock_all();
	trap_fork_resume();	/* clears fork_owner (fork_lock_clear) */
	pdaemon_resume();
	/* The allocator's locks are still held (its handler runs after
	 * this one): what the new threads allocate comes from libc. */
	usrvm_runtime_thread = true;
	error = usrvm_background_start();
	usrvm_runtime_thread = false;
	if (error != 0)
		usrvm_log(USRVM_LOG_ERR, "after fork: the background threads "
		    "cannot start again (%s): no read-ahead, no write-back "
		    "until exit", strerror(error));
	fork_pipe_make();
	pthread_mutex_unlock(&fork_serial);
}

/* The child's /proc/self/mem: reads any page, whatever its protection. */
static int fork_mem = -1;

/*
 * Put the bytes of anon at dst: its own address, or a fresh page
 * elsewhere.  An anon shared between spaces (usrvm_fork) has its page at
 * one of its addresses only (pg_va); the others get a copy.
 * => 0 or an errno.
 */
static int
fork_fill(struct vm_anon *anon, uintptr_t dst)
{
	struct vm_page *pg = anon->an_page;
	ssize_t r;

	if (pg != NULL) {
		if (pg->pg_flags & PG_STAGED) {
			memcpy((void *)dst, (void *)frame_va(pg->pg_frame),
			    PAGE_SIZE);
			return 0;
		}
		if (pg->pg_va == dst)
			return 0;
		if (fork_mem < 0)
			return EIO;
		r = pread(fork_mem, (void *)dst, PAGE_SIZE, (off_t)pg->pg_va);
		return r == (ssize_t)PAGE_SIZE ? 0 : r < 0 ? errno : EIO;
	}
	if (anon->an_swslot == 0 || anon->an_swslot == SWSLOT_LOST)
		return 0;	/* zeros: dst is a missing page */
	r = pread(swap_fd(), (void *)dst, PAGE_SIZE,
	    (off_t)ptoa(anon->an_swslot));
	return r == (ssize_t)PAGE_SIZE ? 0 : r < 0 ? errno : EIO;
}

/*
 * A private view of an object: its anons' bytes are saved aside, the
 * object is shown by the kernel (privately), and the anons' bytes are put
 * back over it.  => pages failed.
 */
static size_t
fork_private_view(struct vm_map_entry *e)
{
	size_t len = e->end - e->start, npages = atop(len), failed = 0, s;
	char *save = NULL;

	if (e->aref.ar_amap != NULL && (save = mmap(NULL, len, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
	    0)) == MAP_FAILED)
		return npages;
	for (s = 0; save != NULL && s < npages &&
	    (s = amap_next_used(&e->aref, s, npages - s)) != SIZE_MAX; s++)
		if (fork_fill(amap_lookup(&e->aref, s),
		    (uintptr_t)save + ptoa(s)) != 0)
			failed++;
	if (e->object->vo_pgops->pgo_forked(e->object, e->start, len,
	    e->offset, USRVM_PROT_ALL, true) != 0)
		failed = npages;
	for (s = 0; save != NULL && failed < npages && s < npages &&
	    (s = amap_next_used(&e->aref, s, npages - s)) != SIZE_MAX; s++)
		memcpy((void *)(e->start + ptoa(s)), save + ptoa(s), PAGE_SIZE);
	if (save != NULL)
		munmap(save, len);
	(void)mprotect((void *)e->start, len,
	    (e->protection & USRVM_PROT_READ ? PROT_READ : 0) |
	    (e->protection & USRVM_PROT_WRITE ? PROT_WRITE : 0));
	return failed;
}

/*
 * Every page of the entry's upper layer in place; an object's entry
 * shown by the kernel instead (its pager says how).  => pages failed.
 */
static size_t
fork_entry(struct vm_map_entry *e)
{
	size_t npages = atop(e->end - e->start), failed = 0, s = 0;
	bool ro = e->protection != USRVM_PROT_ALL;

	if (entry_shares_object(e))
		return e->object->vo_pgops->pgo_forked(e->object, e->start,
		    e->end - e->start, e->offset, e->protection, false) == 0 ?
		    0 : npages;
	if (e->object != NULL)
		return fork_private_view(e);
	if (e->aref.ar_amap == NULL)
		return 0;
	if (ro && mprotect((void *)e->start, e->end - e->start,
	    PROT_READ | PROT_WRITE) != 0)
		return npages;
	while (s < npages &&
	    (s = amap_next_used(&e->aref, s, npages - s)) != SIZE_MAX) {
		if (fork_fill(amap_lookup(&e->aref, s), e->start +
		    ptoa(s)) != 0)
			failed++;
		s++;
	}
	if (ro)
		(void)mprotect((void *)e->start, e->end - e->start,
		    (e->protection & USRVM_PROT_READ ? PROT_READ : 0) |
		    (e->protection & USRVM_PROT_WRITE ? PROT_WRITE : 0));
	return failed;
}

/* The parent may go on: it needs to keep nothing for the child now. */
static void
fork_tell_parent(void)
{
	if (fork_pipe[1] < 0)
		return;
	(void)!write(fork_pipe[1], "", 1);
	close(fork_pipe[1]);
	close(fork_pipe[0]);
	fork_pipe[0] = fork_pipe[1] = -1;
}

/* Every entry of every space, in turn. */
#define FORK_FOREACH_ENTRY(vs, e)					\
	for (struct usrvm_space *vs = space_next(NULL); vs != NULL;	\
	    vs = space_next(vs))					\
		for (struct vm_map_entry *e = vs->vs_map.m_tree.mt_first; \
		    e != NULL; e = e->next)

/*
 * fork_materialize: no runtime in this child: every page in place, every
 * view of an object the kernel's.
 */
static void
fork_materialize(void)
{
	size_t failed = 0;

	FORK_FOREACH_ENTRY(vs, e)
		failed += fork_entry(e);
	if (failed > 0)
		usrvm_log(USRVM_LOG_ERR, "fork: %zu pages could not be read "
		    "back for the child; they read as zeros there", failed);
}

/* 1: what the parent's other threads held or owned. */
static void
fork_reset(void)
{
	space_fork_child();
	page_fork_child();
	frame_fork_child();
	dup_fork_child();
	kmem_fork_child();
	pdaemon_fork_child();
	flusher_fork_child();
	uvn_ra_fork_child();
	pgio_fork_child();
	trap_fork_child();
	usrvm_spin_fork_child();
}

/* 3: the views of objects, the kernel's; the objects forgotten. */
static void
fork_objects(void)
{
	size_t failed = 0;

	FORK_FOREACH_ENTRY(vs, e) {
		if (e->object == NULL)
			continue;
		failed += fork_entry(e);
		map_fork_foreign(e);
	}
	uvn_fork_child();
	aobj_fork_child();
	if (failed > 0)
		usrvm_log(USRVM_LOG_ERR, "fork: %zu pages of mapped objects "
		    "could not be read for the child; they read as zeros "
		    "there", failed);
}

/* 4: the slots the child's anons refer to, copied to its own device. */
static int
fork_swap(void)
{
	swap_fork_clear();
	FORK_FOREACH_ENTRY(vs, e) {
		size_t npages = atop(e->end - e->start), s = 0;

		while (e->aref.ar_amap != NULL && s < npages &&
		    (s = amap_next_used(&e->aref, s, npages - s)) != SIZE_MAX) {
			struct vm_anon *anon = amap_lookup(&e->aref, s++);
			if (anon->an_swslot != 0 &&
			    anon->an_swslot != SWSLOT_LOST)
				swap_fork_keep(anon->an_swslot);
		}
	}
	return swap_fork_switch();
}

/*
 * Is the page of e's slot s mapped writable at its address in the
 * parent: its anon's own (not staged, not clean, not lent), and not
 * shared copy-on-write with another space?
 */
static bool
fork_writable(struct vm_map_entry *e, size_t s)
{
	struct vm_anon *anon = amap_lookup(&e->aref, s);
	struct vm_page *pg = anon != NULL ? anon->an_page : NULL;

	return pg != NULL && !(pg->pg_flags & (PG_STAGED | PG_CLEAN |
	    PG_LOANED | PG_BUSY)) && pg->pg_va == e->start + ptoa(s) &&
	    anon->an_ref == 1 && !(e->etype & UVM_ET_NEEDSCOPY);
}

/*
 * 5: e registered with the child's context, and write-protected as the
 * parent had it: everything but the pages mapped writable.
 */
static int
fork_reenter(struct vm_map_entry *e)
{
	size_t npages = atop(e->end - e->start), s = 0, n;
	int error;

	if (e->etype & UVM_ET_FOREIGN)
		return 0;
	if ((error = pmap_enter_entry(e)) != 0 ||
	    (error = pmap->wprotect(e->start, e->end - e->start)) != 0)
		return error;
	if (e->aref.ar_amap == NULL || !(e->protection & USRVM_PROT_WRITE))
		return 0;
	while (s < npages &&
	    (s = amap_next_used(&e->aref, s, npages - s)) != SIZE_MAX) {
		for (n = 0; s + n < npages && fork_writable(e, s + n); n++)
			continue;
		if (n > 0 && (error = pmap->unprotect(e->start + ptoa(s),
		    ptoa(n))) != 0)
			return error;
		s += n + 1;
	}
	return 0;
}

/*
 * fork_own: steps 2 to 6 (above), what the parent waits for first: its
 * swap device and its objects.  => 0, or an errno and the child has no
 * context (the swap device is whichever holds the slots).
 */
static int
fork_own(void)
{
	int error;

	if ((error = swap_fork_open()) != 0)
		return error;
	fork_objects();
	if ((error = fork_swap()) != 0)
		goto fail;
	fork_tell_parent();
	if ((error = -uffd_fork_child()) != 0 ||
	    (error = frame_fork_adopt()) != 0)
		goto fail;
	FORK_FOREACH_ENTRY(vs, e)
		if ((error = fork_reenter(e)) != 0)
			goto fail;
	if ((error = usrvm_fork_restart()) != 0)
		goto fail;
	return 0;

fail:
	swap_fork_abort();
	uffd_close();
	return error;
}

static void
fork_child(void)
{
	bool waited = fork_pipe[0] >= 0;	/* the parent waits for us */
	int error;

	if (!fork_active)
		return;
	fork_active = false;
	FORK_REINIT_MUTEX(&fork_serial);
	atomic_store_explicit(&fork_owner, 0, memory_order_relaxed);
	atomic_store_explicit(&fork_lockers, 0, memory_order_relaxed);
	/* The child is single-threaded: what the parent's threads held
	 * does not matter, and the structures are read as they were. */
	fork_mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	fork_reset();
	usrvm_runtime_thread = true;	/* as in fork_parent */
	if (waited) {
		error = fork_own();
	} else {
		swap_fork_lose();
		error = EPIPE;
	}
	usrvm_runtime_thread = false;
	if (error != 0) {
		usrvm_log(USRVM_LOG_ERR, "fork: the child cannot page on its "
		    "own (%s): it keeps a resident copy, with no budget",
		    strerror(error));
		fork_materialize();
		fork_tell_parent();
		usrvm_forked();
	} else {
		fork_pipe_make();	/* for this process's own forks */
	}
	if (fork_mem >= 0)
		close(fork_mem);
	fork_mem = -1;
}

static int fork_error;

static void
fork_register(void)
{
	fork_error = pthread_atfork(fork_prepare, fork_parent, fork_child);
}

int
fork_sys_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	/* Once per process: handlers cannot be unregistered (they do
	 * nothing while the runtime is down). */
	(void)pthread_once(&once, fork_register);
	if (fork_error == 0)
		fork_pipe_make();
	return fork_error;
}

void
fork_sys_fini(void)
{
	if (fork_pipe[0] >= 0) {
		close(fork_pipe[0]);
		close(fork_pipe[1]);
	}
	fork_pipe[0] = fork_pipe[1] = -1;
}
