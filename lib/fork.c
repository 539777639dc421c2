/*
 * fork.c: fork(2) of a process that uses usrvm.
 *
 * The kernel does not carry a userfaultfd registration into the child
 * (this runtime does not ask for UFFD_FEATURE_EVENT_FORK, whose events
 * would hand the child's faults to the parent's threads).  In the child,
 * the managed ranges are then plain private memory: pages resident at
 * their address are copied as usual, but pages the page daemon took away
 * (staged in a frame, or only on swap) would read as zeros.
 *
 * The protocol, for now: the child gets a private, fully resident copy
 * and no runtime.  Before the fork, the page daemon is paused and every
 * map is write-locked, so no fault, unmap or eviction is half done at the
 * moment of the copy and nothing is written to swap.  The child copies
 * every staged page from its frame (the child has a copy of the frames
 * too) and reads every swapped page from the device into place, then
 * tells the parent through a pipe; only then does the parent unlock and
 * let the daemon go on, so no swap slot the child reads is rewritten
 * meanwhile.  A fork therefore costs a read of what is swapped out; the
 * child then runs with no budget (it usually execs at once).  Mapped
 * files are written back first, and the child maps the files themselves
 * in their place: it sees them as they were at the fork, through the
 * kernel's page cache (never the parent's object pages, which it would
 * otherwise fill with zeros behind the parent's back).
 *
 * glibc's fork itself reads the heap after the prepare handlers (its NSS
 * state, for one), and other handlers may: a fault of the thread that
 * holds the locks is served under its lock (the fault threads see which
 * thread faulted, UFFD_FEATURE_THREAD_ID), and the budget has grace so
 * that no such fault waits for the paused daemon.
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
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amap.h"
#include "anon.h"
#include "fork.h"
#include "frame.h"
#include "page.h"
#include "object.h"
#include "pager/swap.h"
#include "pager/vnode_pager.h"
#include "pdaemon.h"
#include "space.h"
#include "usrvm_internal.h"

/* Pages the forking thread may fault in over the budget meanwhile: the
 * page daemon is paused, and its faults must not wait for it. */
#define FORK_GRACE	1024

static int fork_pipe[2] = { -1, -1 };
static bool fork_active;		/* prepare ran with the runtime up */
static _Atomic pid_t fork_owner;	/* holds the map locks, or 0 */

pid_t
fork_lock_owner(void)
{
	return atomic_load_explicit(&fork_owner, memory_order_acquire);
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
fork_prepare(void)
{
	if (!usrvm_is_running())
		return;
	if (pipe2(fork_pipe, O_CLOEXEC) != 0)
		fork_pipe[0] = fork_pipe[1] = -1;
	uvn_flush_all();	/* what the child's file mappings will show */
	pdaemon_pause();
	page_budget_grace(FORK_GRACE);
	space_lock_all();
	/* From here until the parent or child handler, the heap may still
	 * be read (glibc's fork does): such faults borrow the locks. */
	atomic_store_explicit(&fork_owner, gettid(), memory_order_release);
	fork_maps(true);
	fork_active = true;
}

static void
fork_parent(void)
{
	char c;

	if (!fork_active)
		return;
	/* Wait until the child has read what it needs (or is gone, or the
	 * fork failed: then the pipe is simply closed). */
	if (fork_pipe[1] >= 0) {
		close(fork_pipe[1]);
		while (read(fork_pipe[0], &c, 1) < 0 && errno == EINTR)
			continue;
		close(fork_pipe[0]);
	}
	fork_active = false;
	fork_maps(false);
	atomic_store_explicit(&fork_owner, 0, memory_order_release);
	space_unlock_all();
	pdaemon_resume();
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

	if (pg != NULL) {
		if (pg->pg_flags & PG_STAGED)
			memcpy((void *)dst, (void *)frame_va(pg->pg_frame),
			    PAGE_SIZE);
		else if (pg->pg_va != dst && (fork_mem < 0 ||
		    pread(fork_mem, (void *)dst, PAGE_SIZE,
		    (off_t)pg->pg_va) != (ssize_t)PAGE_SIZE))
			return errno != 0 ? errno : EIO;
		return 0;
	}
	if (anon->an_swslot == 0 || anon->an_swslot == SWSLOT_LOST)
		return 0;	/* zeros: dst is a missing page */
	if (pread(swap_fd(), (void *)dst, PAGE_SIZE,
	    (off_t)ptoa(anon->an_swslot)) != (ssize_t)PAGE_SIZE)
		return errno != 0 ? errno : EIO;
	return 0;
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

static void
fork_child(void)
{
	size_t failed = 0;

	if (!fork_active)
		return;
	/* The child is single-threaded: what the parent's threads held
	 * does not matter, and the structures are read as they were. */
	fork_mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	for (struct usrvm_space *vs = space_next(NULL); vs != NULL;
	    vs = space_next(vs))
		for (struct vm_map_entry *e = vs->vs_map.m_tree.mt_first;
		    e != NULL; e = e->next)
			failed += fork_entry(e);
	if (fork_mem >= 0)
		close(fork_mem);
	if (failed > 0)
		usrvm_log(USRVM_LOG_ERR, "fork: %zu pages could not be read "
		    "back for the child; they read as zeros there", failed);
	if (fork_pipe[1] >= 0) {
		(void)!write(fork_pipe[1], "", 1);
		close(fork_pipe[1]);
		close(fork_pipe[0]);
	}
	fork_active = false;
	usrvm_forked();
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
	return fork_error;
}
