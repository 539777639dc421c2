/*
 * vnode_ra.c: the read-ahead threads of file objects (see vnode_pager.h).
 *
 * A fault in a sequential stream reads its own window and asks for the
 * windows after it (uvn_ra_queue); these threads read them while the
 * application goes on, so that a stream's next fault finds its pages
 * in, or on their way.  Several threads keep several reads in flight:
 * one request at a time leaves the device idle while the pages just read
 * are copied into the page cache, and this device reads faster with a
 * few requests queued (docs/PERFORMANCE.md: 4 threads 0.94 GB/s, 2
 * threads 0.75 GB/s on a 1 GiB scan).  A request holds a reference on its
 * object.  The queue is bounded: a request that finds it full is
 * dropped, and the stream's fault reads that window itself.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>

#include "pager/pgio.h"
#include "pager/vnode_pager.h"
#include "usrvm_internal.h"

#define RA_THREADS	4
#define RA_QUEUE	32		/* requests */

struct ra_req {
	struct uvm_vnode *uvn;
	uint64_t off;
};

static pthread_mutex_t ra_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ra_cv = PTHREAD_COND_INITIALIZER;
static struct ra_req ra_queue[RA_QUEUE];	/* ra_lock */
static unsigned ra_head, ra_count;		/* ra_lock */
static bool ra_stopping = true;			/* ra_lock */
static struct usrvm_thread ra_threads[RA_THREADS];
static unsigned ra_nthreads;

void
uvn_ra_queue(struct uvm_vnode *uvn, uint64_t off)
{
	struct vm_object *obj = &uvn->u_obj;

	obj->vo_pgops->pgo_reference(obj);
	pthread_mutex_lock(&ra_lock);
	if (ra_stopping || ra_count == RA_QUEUE) {
		pthread_mutex_unlock(&ra_lock);
		obj->vo_pgops->pgo_detach(obj);
		return;
	}
	ra_queue[(ra_head + ra_count++) % RA_QUEUE] =
	    (struct ra_req){ .uvn = uvn, .off = off };
	pthread_cond_signal(&ra_cv);
	pthread_mutex_unlock(&ra_lock);
}

/* Take the oldest request.  ra_lock held. */
static struct ra_req
ra_take(void)
{
	struct ra_req req = ra_queue[ra_head];

	ra_head = (ra_head + 1) % RA_QUEUE;
	ra_count--;
	return req;
}

/* The oldest request, or false when the threads are stopping. */
static bool
ra_next(struct ra_req *req)
{
	bool more;

	pthread_mutex_lock(&ra_lock);
	while (ra_count == 0 && !ra_stopping)
		pthread_cond_wait(&ra_cv, &ra_lock);
	if ((more = !ra_stopping))
		*req = ra_take();
	pthread_mutex_unlock(&ra_lock);
	return more;
}

static void *
ra_main(void *arg)
{
	struct ra_req req;

	(void)arg;
	usrvm_runtime_thread = true;
	while (ra_next(&req)) {
		uvn_ra_read(req.uvn, req.off);
		req.uvn->u_obj.vo_pgops->pgo_detach(&req.uvn->u_obj);
	}
	pgio_thread_exit();
	return NULL;
}

int
uvn_ra_start(void)
{
	int error;

	pthread_mutex_lock(&ra_lock);
	ra_stopping = false;
	pthread_mutex_unlock(&ra_lock);
	for (ra_nthreads = 0; ra_nthreads < RA_THREADS; ra_nthreads++) {
		if ((error = usrvm_thread_start(&ra_threads[ra_nthreads],
		    ra_main, NULL, "usrvm-readahead")) != 0) {
			uvn_ra_stop();
			return error;
		}
	}
	return 0;
}

void
uvn_ra_stop(void)
{
	struct ra_req req;

	pthread_mutex_lock(&ra_lock);
	ra_stopping = true;
	pthread_cond_broadcast(&ra_cv);
	pthread_mutex_unlock(&ra_lock);
	for (; ra_nthreads > 0; ra_nthreads--)
		usrvm_thread_join(&ra_threads[ra_nthreads - 1]);
	/* What was never read: its references go. */
	for (;;) {
		pthread_mutex_lock(&ra_lock);
		if (ra_count == 0) {
			pthread_mutex_unlock(&ra_lock);
			break;
		}
		req = ra_take();
		pthread_mutex_unlock(&ra_lock);
		req.uvn->u_obj.vo_pgops->pgo_detach(&req.uvn->u_obj);
	}
}

void
uvn_ra_fork_child(void)
{
	FORK_REINIT_MUTEX(&ra_lock);
	FORK_REINIT_COND(&ra_cv);
}
