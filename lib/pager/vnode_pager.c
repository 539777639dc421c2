/*
 * vnode_pager.c: file objects and their page-ins (see vnode_pager.h).
 *
 * Read-ahead (per object, vo_lock): the object follows UVN_STREAMS
 * streams.  A fault at the page where a stream's last read ended doubles
 * its window, up to UVN_RA_MAX; any other fault starts a stream of one
 * page (in place of the one followed least recently), so random readers
 * pay for exactly the pages they touch, a stream grows to large reads
 * within a few faults, and neither breaks the other.  Advice pins it:
 * RANDOM one page, SEQUENTIAL the largest.  A stream whose window has
 * reached UVN_RA_STREAM pages (five faults in a row) keeps the next
 * UVN_RA_ASYNC pages read, or being read, by the read-ahead threads, in
 * windows of UVN_RA_MAX, so that the device reads while the application
 * runs.  A read never takes more of the budget than is free: the window
 * shrinks to fit, down to a floor below which it waits for the page
 * daemon instead.
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
#include "pdaemon.h"
#include "pager/pgio.h"
#include "pager/vnode_pager.h"
#include "stats.h"
#include "usrvm_internal.h"

#define UVN_RA_MAX	PGIO_FILE_MAXREAD	/* pages: 1 MiB reads */
#define UVN_RA_ASYNC	(8 * UVN_RA_MAX)	/* pages read ahead of a stream */
#define UVN_RA_STREAM	16		/* a window this large: read ahead */
#define UVN_RA_WAITS	4		/* daemon passes a read-ahead waits for */
#define UVN_RA_WAIT_NS	10000000	/* the longest of those waits */

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
	*uvnp = uvn;
	return 0;
}

/* Free an object no mapping references, its pages written back first. */
static void
uvn_destroy(struct uvm_vnode *uvn)
{
	struct vm_object *obj = &uvn->u_obj;

	if (uvn_flush(uvn, 0, obj->vo_size, true) != 0) {
		uint64_t ndirty;

		/* The error may be an earlier one, reported here because no
		 * usrvm_sync took it, of pages written since; or the final
		 * fdatasync's, which may have lost what the file held. */
		pthread_mutex_lock(&obj->vo_lock);
		ndirty = obj->vo_ndirty;
		pthread_mutex_unlock(&obj->vo_lock);
		if (ndirty > 0)
			usrvm_log(USRVM_LOG_ERR, "file (inode %llu): %llu "
			    "dirty pages could not be written back and are "
			    "lost", (unsigned long long)uvn->u_ino,
			    (unsigned long long)ndirty);
		else
			usrvm_log(USRVM_LOG_ERR, "file (inode %llu): a "
			    "write-back failed (an earlier one no usrvm_sync "
			    "reported, or the last fdatasync); no page was "
			    "left dirty", (unsigned long long)uvn->u_ino);
	}
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

/*
 * Copy the fresh pages of a window just read (buf, valid pages) into the
 * object's page cache, a run of them at a time.  => how many pages of
 * the window are in: valid, or fewer when the copy failed (no memory for
 * the cache), with *errorp set.
 */
static unsigned
uvn_fill(struct uvm_vnode *uvn, uint64_t off, const char *buf,
    const bool *fresh, unsigned valid, int *errorp)
{
	unsigned i = 0, run;
	ssize_t r;

	while (i < valid) {
		for (run = 0; i + run < valid && fresh[i + run]; run++)
			continue;
		if (run == 0) {
			i++;
			continue;
		}
		r = pwrite(uvn->u_obj.vo_memfd, buf + ptoa(i), ptoa(run),
		    (off_t)(off + ptoa(i)));
		if (r != (ssize_t)ptoa(run)) {
			usrvm_log(USRVM_LOG_ERR, "filling the page cache of a "
			    "mapped file (inode %llu): %s",
			    (unsigned long long)uvn->u_ino,
			    r < 0 ? strerror(errno) : "short write");
			*errorp = ENOMEM;
			return i;
		}
		i += run;
	}
	return valid;
}

/*
 * Read the window [off, off + n pages) in, as one request: fresh[i]
 * says which pages are new (busy, resident count reserved) and take the
 * file's bytes; the others are resident pages (busied by the caller),
 * whose bytes, maybe dirty, stay.  Pages past the end of the file (which
 * may have shrunk under us) are dropped, or given back if resident.
 * => how many pages of the window are in, from off; 0 with *errorp (EIO;
 * ENXIO: off is past the end; ENOMEM: no memory for the page cache).
 * vo_lock held; dropped during the read.
 */
static unsigned
uvn_read(struct uvm_vnode *uvn, uint64_t off, struct vm_page **pages,
    const bool *fresh, unsigned n, int *errorp)
{
	struct vm_object *obj = &uvn->u_obj;
	unsigned valid, last = n, nnew = 0;
	char *buf;
	ssize_t r;

	KASSERT(n <= UVN_RA_MAX && fresh[0]);
	while (!fresh[last - 1])	/* resident pages at the end: no I/O */
		last--;
	pthread_mutex_unlock(&obj->vo_lock);
	r = pgio_file_read(uvn->u_fd, off, last, &buf);
	if (r > 0 && !page_aligned(r))
		/* The file ends in this page: zeros after the end. */
		memset(buf + r, 0, round_page(r) - (size_t)r);
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
		valid = uvn_fill(uvn, off, buf, fresh, MIN((unsigned)atop(
		    round_page(r)), last), errorp);
		if (valid == last)
			valid = n;
	}
	pthread_mutex_lock(&obj->vo_lock);
	CNT_INC(file_reads);
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
 * The window [off, off + *wantp pages) to read: it ends before the first
 * busy page (*wantp shortened).  => how many of its pages are missing.
 * vo_lock held.
 */
static unsigned
uvn_missing(struct vm_object *obj, uint64_t off, unsigned *wantp)
{
	struct vm_page *pg;
	unsigned n, nmiss = 0;

	for (n = 0; n < *wantp; n++) {
		if ((pg = object_lookup(obj, off + ptoa(n))) == NULL)
			nmiss++;
		else if (pg->pg_flags & PG_BUSY)
			break;
	}
	*wantp = n;
	return nmiss;
}

/*
 * RESIDENT COUNT for a read of nmiss missing pages.  With the budget
 * full, free pages come and go in small numbers between the daemon's
 * passes: a read takes at least a budget/128th of its window (never more
 * than the daemon's minimum free target, so it can always be met), else
 * none, and waits for the daemon rather than shrink to a page at a time.
 * => pages reserved.
 */
static unsigned
uvn_reserve(unsigned nmiss)
{
	return (unsigned)page_reserve(nmiss, MIN(nmiss,
	    MAX(page_budget() / 128, (size_t)1)));
}

/*
 * Busy the window [off, off + want pages) for a read: its resident
 * pages (fresh[i] false), and a new page for each missing one (fresh[i]
 * true) while the nmiss reserved last; the window ends at a page that
 * cannot be had.  The reservation not used is given back.  => the
 * window's length.  vo_lock held.
 */
static unsigned
uvn_window(struct vm_object *obj, uint64_t off, unsigned want,
    unsigned nmiss, struct vm_page **pages, bool *fresh)
{
	struct vm_page *pg;
	unsigned n, got = 0;

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
	return n;
}

/*
 * The stream whose next page is off, or, when start, a new one at off
 * in place of the one followed least recently.  => the stream, or NULL.
 * vo_lock held.
 */
static struct uvn_stream *
uvn_stream(struct uvm_vnode *uvn, uint64_t off, bool start)
{
	struct uvn_stream *s, *old = &uvn->u_streams[0];

	for (s = uvn->u_streams; s < &uvn->u_streams[UVN_STREAMS]; s++) {
		if (s->s_next == off && s->s_ra > 0)
			break;
		if (s->s_used < old->s_used)
			old = s;
	}
	if (s == &uvn->u_streams[UVN_STREAMS]) {
		if (!start)
			return NULL;
		s = old;
		*s = (struct uvn_stream){ .s_next = off, .s_ahead = off };
	}
	s->s_used = ++uvn->u_stream_tick;
	return s;
}

/*
 * Stream s has the object's pages up to end: the windows to read ahead
 * so that the pages after it are in or on their way, UVN_RA_ASYNC of
 * them or an eighth of the budget, whichever is less (read-ahead must
 * not push out what the stream has yet to use).  => how many windows,
 * at offs[].  vo_lock held.
 */
static unsigned
uvn_ra_plan(struct uvm_vnode *uvn, struct uvn_stream *s, uint64_t end,
    uint64_t *offs)
{
	size_t budget = page_budget(), ahead = UVN_RA_ASYNC;
	uint64_t limit;
	unsigned n = 0;

	s->s_next = end;
	if (s->s_ra < UVN_RA_STREAM)
		return 0;
	if (budget != 0)
		ahead = MIN(ahead, budget / 8);
	limit = MIN(end + ptoa(ahead), uvn->u_obj.vo_size);
	s->s_ahead = MAX(s->s_ahead, end);
	while (s->s_ahead < limit) {
		offs[n++] = s->s_ahead;
		s->s_ahead += ptoa(UVN_RA_MAX);
	}
	return n;
}

void
uvn_ra_read(struct uvm_vnode *uvn, uint64_t off)
{
	struct vm_object *obj = &uvn->u_obj;
	struct vm_page *pages[UVN_RA_MAX], *pg;
	bool fresh[UVN_RA_MAX];
	uint64_t end;
	unsigned n, want, nmiss, nnew = 0, waits = 0;
	int error;

	pthread_mutex_lock(&obj->vo_lock);
	end = MIN(off + ptoa(UVN_RA_MAX), obj->vo_size);
	while (off < end) {
		/* From the next missing page; a busy one is being read. */
		for (; off < end && (pg = object_lookup(obj, off)) != NULL;
		    off += PAGE_SIZE)
			if (pg->pg_flags & PG_BUSY)
				goto out;
		if (off == end)
			break;
		want = (unsigned)atop(end - off);
		if ((nmiss = uvn_reserve(uvn_missing(obj, off, &want))) == 0) {
			/* The budget is full: let the daemon make room. */
			if (waits++ == UVN_RA_WAITS)
				break;
			pthread_mutex_unlock(&obj->vo_lock);
			pdaemon_wait_pass(UVN_RA_WAIT_NS);
			pthread_mutex_lock(&obj->vo_lock);
			continue;
		}
		if ((n = uvn_window(obj, off, want, nmiss, pages, fresh)) == 0 ||
		    (n = uvn_read(uvn, off, pages, fresh, n, &error)) == 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			page_unbusy(pages[i]);
			if (fresh[i]) {
				page_deactivate(pages[i]);
				nnew++;
			}
		}
		off += ptoa(n);
	}
out:
	pthread_mutex_unlock(&obj->vo_lock);
	CNT_ADD(file_ra_pages, nnew);
}

/*
 * uvn_get: pgo_get.  pages[0] is the faulting page (centeridx 0), the
 * rest the window ahead of it.  A resident page comes with the resident
 * pages just after it (fault-around: they are mapped too); a missing one
 * is read with read-ahead.  A stream has the windows after it read
 * ahead by the read-ahead threads (uvn_ra_plan).
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
	uint64_t ra[UVN_RA_ASYNC / UVN_RA_MAX + 1];
	struct uvn_stream *s;
	bool fresh[UVN_RA_MAX];
	unsigned n, want, nra = 0, nmiss;
	int error = 0;

	(void)access;
	KASSERT(centeridx == 0 && *npages > 0);
	want = *npages;
	if ((error = object_get_resident(obj, off, pages, &want, &n)) != 0)
		return error;
	if (n > 0) {
		/* A stream going through resident pages goes on. */
		if ((s = uvn_stream(uvn, off, false)) != NULL)
			nra = uvn_ra_plan(uvn, s, off + ptoa(n), ra);
		goto out;
	}

	/*
	 * Missing: read it and what should follow it, in one request that
	 * runs through the window's resident pages (left as they are), up
	 * to a busy one.  A random fault is no stream.
	 */
	if (flags & PGO_RANDOM) {
		s = NULL;
		want = 1;
	} else {
		s = uvn_stream(uvn, off, true);
		s->s_ra = flags & PGO_SEQUENTIAL ? UVN_RA_MAX :
		    MIN(2 * s->s_ra, UVN_RA_MAX);
		s->s_ra = MAX(s->s_ra, 1);
		want = MIN(want, s->s_ra);
	}
	nmiss = uvn_missing(obj, off, &want);
	if ((nmiss = uvn_reserve(nmiss)) == 0) {
		pthread_mutex_unlock(&obj->vo_lock);
		return FAULT_PARK;
	}
	if ((n = uvn_window(obj, off, want, nmiss, pages, fresh)) == 0) {
		pthread_mutex_unlock(&obj->vo_lock);
		return ENOMEM;
	}
	n = uvn_read(uvn, off, pages, fresh, n, &error);
	if (n > 0 && s != NULL)
		nra = uvn_ra_plan(uvn, s, off + ptoa(n), ra);
out:
	pthread_mutex_unlock(&obj->vo_lock);
	for (unsigned i = 0; i < nra; i++)
		uvn_ra_queue(uvn, ra[i]);
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

/*
 * uvn_fork_child: in a fork child (fork.c), after every view of a file
 * has been handed to the kernel: the objects and their caches are the
 * parent's, and the child forgets them (their descriptors closed, their
 * memory left alone).  Files the child maps from now on get objects of
 * its own.
 */
void
uvn_fork_child(void)
{
	FORK_REINIT_MUTEX(&uvn_lock);
	for (struct uvm_vnode *uvn = uvn_list; uvn != NULL; uvn = uvn->u_next) {
		close(uvn->u_fd);
		close(uvn->u_tailfd);
		close(uvn->u_obj.vo_memfd);
	}
	uvn_list = NULL;
	uvn_nunused = 0;
}

void
uvn_sys_fini(void)
{
	struct uvm_vnode *uvn;

	uvn_ra_stop();
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
