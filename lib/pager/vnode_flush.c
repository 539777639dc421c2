/*
 * vnode_flush.c: writing file pages back (see vnode_pager.h).
 *
 * The dirty life cycle of a page of a file object:
 *   clean    its bytes equal the file's; every view maps it
 *            write-protected (or not at all);
 *   dirty    a write through some view took a write-protect fault, which
 *            cleared PG_CLEAN before un-protecting it there;
 *   cleaning busy (PG_PAGEIO): write-protected again in every view, then
 *            marked clean, then written.  A write meanwhile faults, waits
 *            for the page, and makes it dirty again once it is written;
 *            a failed write makes it dirty again at once (nothing is
 *            dropped; usrvm_sync reports EIO).
 * Runs of consecutive dirty pages go out as one write of up to
 * PGIO_MAXRUN pages, straight from the object's window.
 *
 * The flusher thread (flusher.c) cleans an object when asked (the page
 * daemon wants its pages clean, its last mapping went) or when it has
 * held dirty pages for USRVM_DIRTY_AGE; usrvm_sync and shutdown flush on
 * their own thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "page.h"
#include "pager/flusher.h"
#include "pager/pgio.h"
#include "pager/vnode_pager.h"
#include "stats.h"
#include "usrvm_internal.h"

#define FL_SYNC_TRIES	100	/* views that would not be write-protected */

/*
 * uvn_write_run: write pages run[0..n), at off, back.  They are busy
 * (PG_PAGEIO) and dirty.  => 0, EIO (the write failed: they are dirty
 * again) or EAGAIN (a view could not be write-protected: they stay
 * dirty, unwritten).  vo_lock held; dropped during the write.
 */
static int
uvn_write_run(struct uvm_vnode *uvn, uint64_t off, struct vm_page **run,
    unsigned n)
{
	struct vm_object *obj = &uvn->u_obj;
	size_t len = ptoa(n), full, tail = 0;
	char *src = object_window(obj, off);
	uint64_t t0, end = uvn->u_fsize;
	struct stat sb;
	ssize_t r;
	int error;

	if ((error = object_wprotect(obj, off, len)) != 0) {
		error = EAGAIN;
		goto out;
	}
	for (unsigned i = 0; i < n; i++)
		object_page_clean(obj, run[i]);
	/* A file truncated underneath keeps its new size: what lies past
	 * it is dropped, as the kernel drops the pages of a truncated
	 * file, rather than written back to make the file longer again. */
	if (fstat(uvn->u_tailfd, &sb) == 0 && (uint64_t)sb.st_size < end)
		end = (uint64_t)sb.st_size;
	if (off >= end)
		goto out;
	/* Whole pages through u_fd; the file's partial last page, only up
	 * to the file's end, through u_tailfd. */
	full = off + len <= end ? len : trunc_page(end) - off;
	if (full < len)
		tail = MIN(end - (off + full), PAGE_SIZE);
	pthread_mutex_unlock(&obj->vo_lock);
	t0 = usrvm_now_ns();
	r = full > 0 ? pgio_file(uvn->u_fd, src, full, off) : 0;
	if (r == (ssize_t)full && tail > 0)
		r = pgio_file(uvn->u_tailfd, src + full, tail,
		    off + full) == (ssize_t)tail ? (ssize_t)full : -EIO;
	pthread_mutex_lock(&obj->vo_lock);
	CNT_INC(file_writes);
	if (r != (ssize_t)full) {
		error = EIO;
		CNT_INC(file_errors_write);
		usrvm_log(USRVM_LOG_ERR, "writing %zu bytes back to a mapped "
		    "file (inode %llu) at %llu failed: %s; the pages stay "
		    "dirty", len, (unsigned long long)uvn->u_ino,
		    (unsigned long long)off, strerror(r < 0 ? (int)-r : EIO));
		uvn->u_error = EIO;
		for (unsigned i = 0; i < n; i++)
			object_page_dirty(obj, run[i]);
	} else {
		CNT_ADD(file_pageouts, n);
		CNT_ADD(file_write_ns, usrvm_now_ns() - t0);
	}
out:
	object_run_done(run, n);
	return error;
}

/* One pass over [start, end).  vo_lock held. */
static int
uvn_flush_pass(struct uvm_vnode *uvn, uint64_t start, uint64_t end,
    bool wait)
{
	struct vm_object *obj = &uvn->u_obj;
	struct vm_page *run[PGIO_MAXRUN], *pg;
	uint64_t off = start;
	int error = 0, e;

	while (off < end && (wait || obj->vo_ndirty > 0)) {
		unsigned n;
		if ((pg = object_lookup(obj, off)) == NULL) {
			off = object_next(obj, off, end);
			continue;
		}
		if ((pg->pg_flags & PG_BUSY) && wait) {
			/* Being written (or filled): wait, look again. */
			page_wait(pg, &obj->vo_lock);
			pthread_mutex_lock(&obj->vo_lock);
			continue;
		}
		if ((n = object_dirty_run(obj, off, end, run, PGIO_MAXRUN)) == 0) {
			off += PAGE_SIZE;
			continue;
		}
		if ((e = uvn_write_run(uvn, off, run, n)) != 0 &&
		    error != EIO)
			error = e;
		off += ptoa(n);
	}
	return error;
}

int
uvn_flush(struct uvm_vnode *uvn, uint64_t start, uint64_t end, bool wait)
{
	struct vm_object *obj = &uvn->u_obj;
	int error;

	end = MIN(end, obj->vo_size);
	pthread_mutex_lock(&obj->vo_lock);
	error = uvn_flush_pass(uvn, start, end, wait);
	/* A view that would not be protected (an application event stayed
	 * unread) only delays the write: a waiting caller tries again. */
	for (int tries = 0; wait && error == EAGAIN && tries < FL_SYNC_TRIES;
	    tries++) {
		struct timespec ts = { .tv_nsec = 1000000 };
		pthread_mutex_unlock(&obj->vo_lock);
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&obj->vo_lock);
		error = uvn_flush_pass(uvn, start, end, wait);
	}
	if (wait && uvn->u_error != 0) {
		error = uvn->u_error;	/* reported once */
		uvn->u_error = 0;
	}
	pthread_mutex_unlock(&obj->vo_lock);
	if (wait && error == 0 && (error = pgio_datasync(uvn->u_fd)) != 0) {
		CNT_INC(file_errors_write);
		error = EIO;
	}
	return error;
}

void
uvn_flush_async(struct uvm_vnode *uvn)
{
	atomic_store_explicit(&uvn->u_flush, true, memory_order_relaxed);
	flusher_kick();
}

/* One round of the flusher (flusher.c): every object that wants it. */
void
uvn_flush_round(uint64_t age_ns, uint64_t round)
{
	struct uvm_vnode *uvn;

	while ((uvn = uvn_next_to_flush(age_ns, round)) != NULL) {
		(void)uvn_flush(uvn, 0, uvn->u_obj.vo_size, false);
		uvn_flush_done(uvn);
	}
}
