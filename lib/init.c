/*
 * init.c: starting and stopping the runtime (UVM's uvm_init).
 *
 * Order matters both ways: the subsystems' pools exist before the refill
 * thread tops them up; the fault threads run before any space can fault;
 * at shutdown every space is destroyed (waking any thread still blocked
 * in one of its faults) before the fault threads stop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "amap.h"
#include "anon.h"
#include "config.h"
#include "dup.h"
#include "fault.h"
#include "fault/pmap.h"
#include "fault/trap.h"
#include "fork.h"
#include "frame.h"
#include "kmem.h"
#include "map.h"
#include "pager/flusher.h"
#include "pager/inject.h"
#include "pager/swap.h"
#include "pager/vnode_pager.h"
#include "pdaemon.h"
#include "page.h"
#include "space.h"
#include "stats.h"
#include "trace.h"
#include "usrvm_internal.h"

extern unsigned usrvm_log_level;

#define INIT_PAGING_THREADS	4	/* fault threads at least, with swap */
#define INIT_FRAME_MARGIN	1024	/* frames beyond the budget */

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
/* Written under init_lock, read without it. */
static _Atomic bool usrvm_running;
/* This process is a fork child of one that ran usrvm (fork.c). */
static bool usrvm_forked_child;
static struct usrvm_space *_Atomic usrvm_default;
/* As started, for a fork child's own threads (usrvm_fork_restart). */
static unsigned usrvm_nthreads;
static bool usrvm_paging;
/*
 * The threads only objects need (file read-ahead, the flusher) start with
 * the first object (usrvm_object_threads): a process that maps no file
 * and no shared memory, the preload's, runs none, and its fork(2) stops
 * and starts none.
 */
static pthread_mutex_t objthreads_lock = PTHREAD_MUTEX_INITIALIZER;
static bool objthreads;			/* objthreads_lock */
static unsigned usrvm_dirty_age_ms;	/* USRVM_DIRTY_AGE */

static void
usrvm_teardown(void)
{
	segv_uninstall();
	space_destroy_all();	/* wakes any thread blocked in a fault */
	flusher_stop();
	uvn_sys_fini();		/* mapped files written back */
	objthreads = false;
	pdaemon_stop();		/* its last page-outs finish */
	trap_stop();
	trace_stop();		/* no thread records any more */
	space_sys_fini();	/* no fault thread can look a space up now */
	frame_sys_fini();
	dup_sys_fini();
	swap_fini();
	page_budget_set(0);
	page_commit_limit_set(0);
	inject_reset();
	pool_refill_stop();
	fault_sys_fini();
	map_sys_fini();
	amap_sys_fini();
	anon_sys_fini();
	page_sys_fini();
	uffd_close();
	fork_sys_fini();
	usrvm_default = NULL;
}

/*
 * usrvm_paging_init: the budget, the swap device, the frames and the page
 * daemon.  => 0 or an errno.
 */
static int
usrvm_paging_init(const struct usrvm_config *c)
{
	size_t budget = atop(c->mem_limit);
	int error;

	if (!uffd_can_page()) {
		usrvm_log(USRVM_LOG_ERR, "a memory budget needs UFFDIO_MOVE "
		    "(Linux 6.8 or later); this kernel lacks it (USRVM_MEM)");
		return ENOSYS;
	}
	if ((error = swap_init(c, budget)) != 0)
		return error;
	if ((error = frame_sys_init(budget + INIT_FRAME_MARGIN)) != 0 ||
	    (error = dup_sys_init(2 * budget)) != 0)
		return error;
	page_budget_set(budget);
	page_commit_limit_set(budget + swap_nslots());
	return pdaemon_start();
}

int
usrvm_init(const struct usrvm_config *cfg)
{
	struct usrvm_config c;
	unsigned nthreads;
	long ncpu;
	int error;

	pthread_mutex_lock(&init_lock);
	if (usrvm_running || usrvm_forked_child) {
		pthread_mutex_unlock(&init_lock);
		return -EBUSY;
	}
	if (cfg == NULL) {
		if ((error = -usrvm_config_load(&c)) != 0)
			goto out;
	} else {
		c = *cfg;
	}
	if ((error = config_check(&c)) != 0)
		goto out;
	usrvm_log_level = c.verbose;
	stats_reset();
	if ((error = fork_sys_init()) != 0)
		goto out;
	if ((error = -uffd_open()) != 0) {
		fork_sys_fini();
		goto out;
	}

	if ((error = page_sys_init()) != 0 || (error = anon_sys_init()) != 0 ||
	    (error = amap_sys_init()) != 0 || (error = map_sys_init()) != 0 ||
	    (error = fault_sys_init()) != 0 || (error = space_sys_init()) != 0)
		goto fail;
	if ((error = pool_refill_start()) != 0 ||
	    (error = uvn_sys_init()) != 0)
		goto fail;
	usrvm_dirty_age_ms = c.dirty_age_ms;
	if (c.trace_path != NULL && (error = trace_start(c.trace_path)) != 0)
		goto fail;
	if (c.mem_limit != 0 && (error = usrvm_paging_init(&c)) != 0)
		goto fail;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	usrvm_spin_init(ncpu);
	nthreads = c.fault_threads;
	if (nthreads == 0) {
		nthreads = ncpu > 0 ? (unsigned)MIN(ncpu, 256) : 1;
		/* A fault thread waits for its swap reads: more of them keep
		 * several reads in flight. */
		if (c.mem_limit != 0)
			nthreads = MAX(nthreads, INIT_PAGING_THREADS);
	}
	if ((error = trap_start(nthreads)) != 0)
		goto fail;
	usrvm_nthreads = nthreads;
	usrvm_paging = c.mem_limit != 0;
	if ((usrvm_default = space_create(c.default_reserve, &error)) == NULL)
		goto fail;
	if (segv_install() != 0) {
		error = errno;
		goto fail;
	}
	usrvm_running = true;
	usrvm_log(USRVM_LOG_NOTICE, "started: %u fault threads, default "
	    "space %zu MiB at %p", nthreads, c.default_reserve >> 20,
	    (void *)usrvm_default->vs_base);
	pthread_mutex_unlock(&init_lock);
	return 0;

fail:
	usrvm_teardown();
out:
	pthread_mutex_unlock(&init_lock);
	return -error;
}

void
usrvm_shutdown(void)
{
	pthread_mutex_lock(&init_lock);
	if (usrvm_running) {
		usrvm_running = false;	/* first: nothing new starts */
		usrvm_teardown();
	}
	pthread_mutex_unlock(&init_lock);
}

static int
usrvm_object_threads_start(void)
{
	int error;

	if ((error = uvn_ra_start()) == 0 &&
	    (error = flusher_start(usrvm_dirty_age_ms)) != 0)
		uvn_ra_stop();
	return error;
}

/*
 * usrvm_object_threads: before an object is made, with no lock of the
 * runtime held (mmap.c).  What the threads allocate comes from libc, as
 * around fork(2) (fork.c).  => 0 or an errno.
 */
int
usrvm_object_threads(void)
{
	bool was = usrvm_runtime_thread;
	int error = 0;

	pthread_mutex_lock(&objthreads_lock);
	if (!objthreads) {
		usrvm_runtime_thread = true;
		error = usrvm_object_threads_start();
		usrvm_runtime_thread = was;
		objthreads = error == 0;
	}
	pthread_mutex_unlock(&objthreads_lock);
	return error;
}

/*
 * The background threads (pool refill, and the objects' read-ahead and
 * flusher if they run), stopped around fork(2) (fork.c) so that none is
 * part way through anything when the process is copied: stopped before
 * (and no object's threads start until after), started again in the
 * parent.
 */
void
usrvm_background_stop(void)
{
	pthread_mutex_lock(&objthreads_lock);
	if (objthreads) {
		flusher_stop();
		uvn_ra_stop();
	}
	pool_refill_stop();
}

int
usrvm_background_start(void)
{
	int error;

	if ((error = pool_refill_start()) == 0 && objthreads &&
	    (error = usrvm_object_threads_start()) != 0)
		objthreads = false;
	pthread_mutex_unlock(&objthreads_lock);
	return error;
}

/*
 * usrvm_fork_restart: in a fork child whose pages, contexts and swap
 * device fork.c has made its own: the runtime's threads (the objects' are
 * not needed: the child forgot the parent's objects).  => 0, or an errno
 * and none runs.
 */
int
usrvm_fork_restart(void)
{
	int error;

	FORK_REINIT_MUTEX(&init_lock);
	FORK_REINIT_MUTEX(&objthreads_lock);
	objthreads = false;
	if ((error = pool_refill_start()) != 0)
		return error;
	/* The fault threads first: the daemon's first page-outs raise
	 * events only they read (pmap's stage_copy). */
	if ((error = trap_start(usrvm_nthreads)) != 0 ||
	    (usrvm_paging && (error = pdaemon_start()) != 0)) {
		trap_stop();
		pool_refill_stop();
	}
	return error;
}

/*
 * usrvm_forked: in a fork child (fork.c), after the pages are in place:
 * the runtime's threads do not exist here, and it stays down.  The init
 * lock may have been held by a thread of the parent: not taken.
 */
void
usrvm_forked(void)
{
	usrvm_forked_child = true;
	usrvm_running = false;
}

bool
usrvm_is_running(void)
{
	return usrvm_running;
}

struct usrvm_space *
usrvm_default_space(void)
{
	return usrvm_is_running() ? usrvm_default : NULL;
}
