/*
 * vnode_pager.c: file objects and their page-ins (see vnode_pager.h).
 *
 * Read-ahead (per object, vo_lock): a fault at the page where the last
 * read ended doubles the window, up to UVN_RA_MAX; any other fault
 * collapses it to one page, so random readers pay for exactly the pages
 * they touch and a stream grows to large reads within a few faults.
 * Advice pins it: RANDOM one page, SEQUENTIAL the largest.  A read never
 * takes more of the budget than is free: the window shrinks to fit, down
 * to a floor below which it waits for the page daemon instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fault.h"
#include "kmem.h"
#include "page.h"
#include "pager/pgio.h"
#include "pager/vnode_pager.h"
#include "stats.h"
#include "usrvm_internal.h"

#define UVN_RA_MAX	256		/* pages: 1 MiB reads */

/*
 * Every object, and how many no mapping references.  Lock order:
 * uvn_lock -> vo_lock.
 */
static pthread_mutex_t uvn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uvm_vnode *uvn_list;		/* uvn_lock */
static unsigned uvn_nunused;			/* uvn_lock */
static unsigned uvn_unused_max;			/* constant after init */

static const struct uvm_pagerops uvn_pagerops;

static struct uvm_vnode *
uvn_of(struct vm_object *obj)
{
	return (struct uvm_vnode *)obj;
}

/* ------------------------------------------------------------------ */
/* objects                                                             */
/* ------------------------------------------------------------------ */

/*
 * Descriptors of our own for the file on fd, reopened through
 * /proc/self/fd: u_fd with O_DIRECT where the file system allows it,
 * u_tailfd without (for the partial last page); both for reading and
 * writing if the file lets this process write it (the runtime writes
 * only for a mapping whose descriptor was opened for writing), so that a
 * later writable mapping can share the object.  Failing that, plain
 * duplicates of fd.
 */
static int
uvn_open(struct uvm_vnode *uvn, int fd, int accmode)
{
	char path[64];
	int mode = O_RDWR;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	uvn->u_tailfd = open(path, O_RDWR | O_CLOEXEC);
	if (uvn->u_tailfd < 0 && accmode == O_RDONLY) {
		mode = O_RDONLY;
		uvn->u_tailfd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (uvn->u_tailfd < 0) {
		mode = accmode;
		if ((uvn->u_tailfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
			return errno;
	}
	uvn->u_fd = open(path, mode | O_DIRECT | O_CLOEXEC);
	if (uvn->u_fd < 0)
		uvn->u_fd = fcntl(uvn->u_tailfd, F_DUPFD_CLOEXEC, 0);
	if (uvn->u_fd < 0) {
		int error = errno;
		close(uvn->u_tailfd);
		return error;
	}
	uvn->u_writable = mode == O_RDWR;
	return 0;
}

static int
uvn_create(int fd, const struct stat *st, int accmode,
    struct uvm_vnode **uvnp)
{
	struct uvm_vnode *uvn = kmem_zalloc(sizeof(*uvn));
	int error;

	if (uvn == NULL)
		return ENOMEM;
	if ((error = object_init(&uvn->u_obj, &uvn_pagerops,
	    round_page((uint64_t)st->st_size))) != 0) {
		kmem_free(uvn, sizeof(*uvn));
		return error;
	}
	if ((error = uvn_open(uvn, fd, accmode)) != 0) {
		object_fini(&uvn->u_obj);
		kmem_free(uvn, sizeof(*uvn));
		return error;
	}
	uvn->u_dev = st->st_dev;
	uvn->u_ino = st->st_ino;
	uvn->u_fsize = (uint64_t)st->st_size;
	uvn->u_mtime = st->st_mtim;
	uvn->u_ra = 1;
	*uvnp = uvn;
	return 0;
}

/* Free an object no mapping references, its pages written back first. */
static void
uvn_destroy(struct uvm_vnode *uvn)
{
	struct vm_object *obj = &uvn->u_obj;

	if (uvn_flush(uvn, 0, obj->vo_size, true) != 0)
		usrvm_log(USRVM_LOG_ERR, "file (inode %llu): dirty pages "
		    "could not be written back and are lost",
		    (unsigned long long)uvn->u_ino);
	object_fini(obj);
	close(uvn->u_fd);
	close(uvn->u_tailfd);
	kmem_free(uvn, sizeof(*uvn));
	CNT_ADD(objects, -1);
}

/* Unlink an unreferenced object.  uvn_lock held. */
static void
uvn_unlink(struct uvm_vnode *uvn)
{
	struct uvm_vnode **up;

	KASSERT(uvn->u_obj.vo_refs == 0 && !uvn->u_flushing);
	for (up = &uvn_list; *up != uvn; up = &(*up)->u_next)
		continue;
	*up = uvn->u_next;
	uvn_nunused--;
}

static bool
uvn_stale(const struct uvm_vnode *uvn, const struct stat *st)
{
	return uvn->u_fsize != (uint64_t)st->st_size ||
	    uvn->u_mtime.tv_sec != st->st_mtim.tv_sec ||
	    uvn->u_mtime.tv_nsec != st->st_mtim.tv_nsec;
}

int
uvn_attach(int fd, uint64_t off, size_t len, int prot, bool shared,
    struct vm_object **objp, bool *writablep)
{
	struct uvm_vnode *uvn, *stale = NULL;
	struct stat st;
	int fl, accmode, error = 0;
	bool write = shared && (prot & USRVM_PROT_WRITE);
	bool inside;

	if (fstat(fd, &st) != 0 || (fl = fcntl(fd, F_GETFL)) < 0)
		return EBADF;
	if (!S_ISREG(st.st_mode))
		return ENODEV;
	accmode = fl & O_ACCMODE;
	inside = off + len <= round_page((uint64_t)st.st_size);
	if (accmode == O_WRONLY || (write && accmode != O_RDWR))
		return EACCES;
	if (write && !inside)
		return EINVAL;

	pthread_mutex_lock(&uvn_lock);
	for (uvn = uvn_list; uvn != NULL; uvn = uvn->u_next)
		if (uvn->u_dev == st.st_dev && uvn->u_ino == st.st_ino)
			break;
	if (uvn != NULL && uvn->u_obj.vo_refs == 0 && !uvn->u_flushing &&
	    (uvn_stale(uvn, &st) || (accmode == O_RDWR && !uvn->u_writable))) {
		/* Changed since it was cached, or opened for reading only
		 * and now wanted for writing: a new object replaces it. */
		uvn_unlink(uvn);
		stale = uvn;
		uvn = NULL;
	}
	if (uvn != NULL) {
		if (write && !uvn->u_writable)
			error = EACCES;	/* the file was not writable then */
		else {
			if (uvn->u_obj.vo_refs++ == 0)
				uvn_nunused--;
			CNT_INC(obj_hits);
		}
	} else if ((error = uvn_create(fd, &st, accmode, &uvn)) == 0) {
		uvn->u_obj.vo_refs = 1;
		uvn->u_next = uvn_list;
		uvn_list = uvn;
		CNT_INC(obj_misses);
		CNT_INC(objects);
	}
	pthread_mutex_unlock(&uvn_lock);
	if (stale != NULL)
		uvn_destroy(stale);
	if (error != 0)
		return error;
	*objp = &uvn->u_obj;
	*writablep = uvn->u_writable && accmode == O_RDWR && inside;
	return 0;
}

/* ------------------------------------------------------------------ */
/* pager operations                                                    */
/* ------------------------------------------------------------------ */

static void
uvn_reference(struct vm_object *obj)
{
	pthread_mutex_lock(&uvn_lock);
	KASSERT(obj->vo_refs > 0);
	obj->vo_refs++;
	pthread_mutex_unlock(&uvn_lock);
}

/* The last mapping went: cached, and written back soon. */
static void
uvn_detach(struct vm_object *obj)
{
	struct uvm_vnode *uvn = uvn_of(obj);

	pthread_mutex_lock(&uvn_lock);
	KASSERT(obj->vo_refs > 0);
	if (--obj->vo_refs == 0) {
		uvn->u_unused_ns = usrvm_now_ns();
		uvn_nunused++;
		uvn_flush_async(uvn);
	}
	pthread_mutex_unlock(&uvn_lock);
}

/* Where the bytes of a window's resident pages go in a read. */
static __thread char uvn_scratch[PAGE_SIZE]
    __attribute__((aligned(PAGE_SIZE)));

/*
 * Read the window [off, off + n pages) in, as one request: fresh[i]
 * says which pages are new (busy, resident count reserved) and take the
 * file's bytes; the others are resident pages (busied by the caller),
 * whose bytes, maybe dirty, stay: the request reads theirs into a
 * scratch page.  Pages past the end of the file (which may have shrunk
 * under us) are dropped, or given back if resident.  => how many pages
 * of the window are in, from off; 0 with *errorp (EIO, or ENXIO: off is
 * past the end).  vo_lock held; dropped during the read.
 */
static unsigned
uvn_read(struct uvm_vnode *uvn, uint64_t off, struct vm_page **pages,
    const bool *fresh, unsigned n, int *errorp)
{
	struct vm_object *obj = &uvn->u_obj;
	struct iovec iov[UVN_RA_MAX];
	unsigned valid, last = n, nnew = 0;
	ssize_t r;

	KASSERT(n <= UVN_RA_MAX && fresh[0]);
	while (!fresh[last - 1])	/* resident pages at the end: no I/O */
		last--;
	for (unsigned i = 0; i < last; i++) {
		iov[i].iov_base = fresh[i] ? object_window(obj, off + ptoa(i)) :
		    uvn_scratch;
		iov[i].iov_len = PAGE_SIZE;
	}
	pthread_mutex_unlock(&obj->vo_lock);
	(void)madvise(object_window(obj, off), ptoa(last), MADV_POPULATE_WRITE);
	r = pgio_filev(uvn->u_fd, false, iov, last, off);
	if (r > 0 && !page_aligned(r) && fresh[atop(r)])
		/* The file ends in this page: zeros after the end. */
		memset(object_window(obj, off + (uint64_t)r), 0,
		    round_page(r) - (size_t)r);
	pthread_mutex_lock(&obj->vo_lock);
	CNT_INC(file_reads);
	if (r < 0) {
		CNT_INC(file_errors_read);
		usrvm_log(USRVM_LOG_ERR, "reading %zu bytes of a mapped file "
		    "(inode %llu) at %llu failed: %s", ptoa(last),
		    (unsigned long long)uvn->u_ino, (unsigned long long)off,
		    strerror((int)-r));
		*errorp = EIO;
		valid = 0;
	} else {
		*errorp = ENXIO;
		valid = MIN((unsigned)atop(round_page(r)), last);
		if (valid == last)
			valid = n;
	}
	for (unsigned i = 0; i < n; i++) {
		if (i >= valid) {
			if (fresh[i])
				object_page_free(obj, pages[i]);
			else
				page_unbusy(pages[i]);
		} else if (fresh[i]) {
			nnew++;
		}
	}
	CNT_ADD(file_pageins, nnew);
	stats_max(&usrvm_cnt.file_read_max, nnew);
	return valid;
}

/*
 * uvn_get: pgo_get.  pages[0] is the faulting page (centeridx 0), the
 * rest the window ahead of it.  A resident page comes with the resident
 * pages just after it (fault-around: they are mapped too); a missing one
 * is read with read-ahead.
 * => 0: pages[0..*npages) busy, the rest of the window NULL; ERESTART
 *    (waited for a busy page: look again), FAULT_PARK (the budget is
 *    full), ENXIO (past the end of the file), EIO or ENOMEM.  Object
 *    locked on entry, unlocked on return.
 */
static int
uvn_get(struct vm_object *obj, uint64_t off, struct vm_page **pages,
    unsigned *npages, unsigned centeridx, int access, int flags)
{
	struct uvm_vnode *uvn = uvn_of(obj);
	struct vm_page *pg;
	bool fresh[UVN_RA_MAX];
	unsigned n, want, got = 0, nmiss = 0;
	int error = 0;

	(void)access;
	KASSERT(centeridx == 0 && *npages > 0);
	want = *npages;
	if ((error = object_get_resident(obj, off, pages, &want, &n)) != 0)
		return error;
	if (n > 0) {
		/* A stream going through resident pages goes on. */
		if (off == uvn->u_ra_next)
			uvn->u_ra_next = off + ptoa(n);
		pthread_mutex_unlock(&obj->vo_lock);
		*npages = n;
		return 0;
	}

	/*
	 * Missing: read it and what should follow it, in one request that
	 * runs through the window's resident pages (left as they are), up
	 * to a busy one.
	 */
	if (flags & PGO_RANDOM)
		uvn->u_ra = 1;
	else if (flags & PGO_SEQUENTIAL)
		uvn->u_ra = UVN_RA_MAX;
	else if (off == uvn->u_ra_next)
		uvn->u_ra = MIN(2 * uvn->u_ra, UVN_RA_MAX);
	else
		uvn->u_ra = 1;
	want = MIN(want, uvn->u_ra);
	for (n = 0; n < want; n++) {
		if ((pg = object_lookup(obj, off + ptoa(n))) == NULL)
			nmiss++;
		else if (pg->pg_flags & PG_BUSY)
			break;
	}
	want = n;
	/* RESIDENT COUNT.  With the budget full, free pages come and go in
	 * small numbers between the daemon's passes: a read takes at least
	 * a budget/128th of its window (never more than the daemon's
	 * minimum free target, so it can always be met), else it waits for
	 * the daemon rather than shrink to a page at a time. */
	if ((nmiss = (unsigned)page_reserve(nmiss, MIN(nmiss,
	    MAX(page_budget() / 128, (size_t)1)))) == 0) {
		pthread_mutex_unlock(&obj->vo_lock);
		return FAULT_PARK;
	}
	for (n = 0; n < want; n++) {
		if ((pg = object_lookup(obj, off + ptoa(n))) != NULL) {
			pg->pg_flags |= PG_BUSY;
			pages[n] = pg;
			fresh[n] = false;
		} else if (got == nmiss ||
		    object_insert(obj, off + ptoa(n), &pages[n], 1) != 1) {
			break;
		} else {
			fresh[n] = true;
			got++;
		}
	}
	if (got < nmiss)
		page_resident_add(-(long)(nmiss - got));
	if (n == 0) {
		pthread_mutex_unlock(&obj->vo_lock);
		return ENOMEM;
	}
	n = uvn_read(uvn, off, pages, fresh, n, &error);
	uvn->u_ra_next = off + ptoa(n);
	pthread_mutex_unlock(&obj->vo_lock);
	*npages = n;
	return n > 0 ? 0 : error;
}

/* pgo_put: write back [start, end); PGO_SYNCIO waits for it. */
static int
uvn_put(struct vm_object *obj, uint64_t start, uint64_t end, int flags)
{
	if (flags & PGO_SYNCIO)
		return uvn_flush(uvn_of(obj), start, end, true);
	uvn_flush_async(uvn_of(obj));
	return 0;
}

/*
 * pgo_forked: the file itself, mapped by the kernel (privately for a
 * private view).  The child sees what was written back when it was
 * forked (fork.c flushes first), and then the kernel's page cache, not
 * the parent's pages.
 */
static int
uvn_forked(struct vm_object *obj, uintptr_t va, size_t len, uint64_t off,
    int prot, bool private)
{
	void *p = mmap((void *)va, len,
	    (prot & USRVM_PROT_READ ? PROT_READ : 0) |
	    (prot & USRVM_PROT_WRITE ? PROT_WRITE : 0),
	    (private ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED,
	    uvn_of(obj)->u_tailfd, (off_t)off);

	return p == MAP_FAILED ? errno : 0;
}

static const struct uvm_pagerops uvn_pagerops = {
	.pgo_reference = uvn_reference,
	.pgo_detach = uvn_detach,
	.pgo_get = uvn_get,
	.pgo_put = uvn_put,
	.pgo_forked = uvn_forked,
};

/* ------------------------------------------------------------------ */
/* the flusher's view of the objects                                   */
/* ------------------------------------------------------------------ */

/*
 * uvn_next_to_flush: an object the flusher should clean now: one asked
 * for, or dirty for age_ns, or unreferenced and dirty, and not cleaned
 * in this round of the flusher already (pages a write error left dirty
 * wait for the next round, not a tight loop); marked busy for the
 * flusher, which calls uvn_flush_done after.  Unreferenced objects the page
 * daemon has emptied, or too many of them, are freed on the way.
 * => NULL: nothing to do.
 */
struct uvm_vnode *
uvn_next_to_flush(uint64_t age_ns, uint64_t round)
{
	struct uvm_vnode *uvn, *found = NULL, *victim = NULL;
	uint64_t now = usrvm_now_ns();

	pthread_mutex_lock(&uvn_lock);
	for (uvn = uvn_list; uvn != NULL; uvn = uvn->u_next) {
		struct vm_object *obj = &uvn->u_obj;
		bool flush;
		if (uvn->u_flushing || uvn->u_round == round)
			continue;
		pthread_mutex_lock(&obj->vo_lock);
		flush = obj->vo_ndirty > 0 && (atomic_load_explicit(
		    &uvn->u_flush, memory_order_relaxed) ||
		    obj->vo_refs == 0 || now - obj->vo_dirty_ns >= age_ns);
		if (!flush)
			atomic_store_explicit(&uvn->u_flush, false,
			    memory_order_relaxed);
		if (obj->vo_refs == 0 && !flush && (obj->vo_npages == 0 ||
		    uvn_nunused > uvn_unused_max) && (victim == NULL ||
		    uvn->u_unused_ns < victim->u_unused_ns))
			victim = uvn;
		pthread_mutex_unlock(&obj->vo_lock);
		if (flush) {
			found = uvn;
			break;
		}
	}
	if (found != NULL) {
		atomic_store_explicit(&found->u_flush, false,
		    memory_order_relaxed);
		found->u_flushing = true;
		found->u_round = round;
		victim = NULL;
	} else if (victim != NULL) {
		uvn_unlink(victim);
	}
	pthread_mutex_unlock(&uvn_lock);
	if (victim != NULL) {
		uvn_destroy(victim);
		return uvn_next_to_flush(age_ns, round);
	}
	return found;
}

void
uvn_flush_done(struct uvm_vnode *uvn)
{
	pthread_mutex_lock(&uvn_lock);
	uvn->u_flushing = false;
	pthread_mutex_unlock(&uvn_lock);
}

/* ------------------------------------------------------------------ */
/* start and stop                                                      */
/* ------------------------------------------------------------------ */

void
uvn_flush_all(void)
{
	pthread_mutex_lock(&uvn_lock);
	for (struct uvm_vnode *uvn = uvn_list; uvn != NULL; uvn = uvn->u_next)
		(void)uvn_flush(uvn, 0, uvn->u_obj.vo_size, true);
	pthread_mutex_unlock(&uvn_lock);
}

/* A process that exits without usrvm_shutdown loses no write either. */
static void
uvn_atexit_register(void)
{
	(void)atexit(uvn_flush_all);
}

int
uvn_sys_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct rlimit rl;

	pthread_once(&once, uvn_atexit_register);

	/* Each cached object holds three descriptors (the file twice and
	 * its memfd): at most an eighth of what the process may open. */
	uvn_unused_max = 16;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		uvn_unused_max = (unsigned)MAX(rl.rlim_cur / 24, 4);
	return 0;
}

void
uvn_sys_fini(void)
{
	struct uvm_vnode *uvn;

	pthread_mutex_lock(&uvn_lock);
	while ((uvn = uvn_list) != NULL) {
		KASSERT(uvn->u_obj.vo_refs == 0);
		uvn_unlink(uvn);
		pthread_mutex_unlock(&uvn_lock);
		uvn_destroy(uvn);
		pthread_mutex_lock(&uvn_lock);
	}
	pthread_mutex_unlock(&uvn_lock);
}
