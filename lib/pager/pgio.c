/*
 * pgio.c: paging I/O (see pgio.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "pager/inject.h"
#include "pager/pgio.h"
#include "kmem.h"
#include "pager/swap.h"
#include "stats.h"
#include "usrvm_internal.h"

#define PGIO_READ_DEPTH	4
#define PGIO_SPIN_NS	200000		/* watch a read's ring before sleeping */
#define PGIO_SPIN_MAX	4		/* pages: larger requests sleep at once */

/* A thread's ring, on the list of every thread's (for a fork child). */
struct pgio_tring {
	struct io_uring t_ring;
	char *t_bounce;			/* registered with t_ring, or NULL */
	bool t_ok;
	struct pgio_tring *t_next;	/* pgio_list_lock */
};
static __thread struct pgio_tring pgio_t;
static pthread_mutex_t pgio_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pgio_tring *pgio_list;	/* pgio_list_lock */

int
pgio_ring_init(struct io_uring *ring, unsigned depth)
{
	int fd = swap_fd(), error;

	if ((error = io_uring_queue_init(depth, ring, 0)) < 0)
		return -error;
	if (fd >= 0 && (error = io_uring_register_files(ring, &fd, 1)) < 0) {
		io_uring_queue_exit(ring);
		return -error;
	}
	return 0;
}

/* An application thread's ring (usrvm_sync) goes when the thread does. */
static pthread_key_t pgio_key;
static pthread_once_t pgio_key_once = PTHREAD_ONCE_INIT;

static void
pgio_key_dtor(void *ring)
{
	(void)ring;
	pgio_thread_exit();
}

static void
pgio_key_init(void)
{
	if (pthread_key_create(&pgio_key, pgio_key_dtor) != 0)
		usrvm_panic("pgio: no thread-specific key");
}

/* The calling thread's ring, made on first use.  => NULL: *errorp. */
static struct io_uring *
pgio_thread_ring(int *errorp)
{
	if (!pgio_t.t_ok) {
		if ((*errorp = pgio_ring_init(&pgio_t.t_ring,
		    PGIO_READ_DEPTH)) != 0)
			return NULL;
		pgio_t.t_ok = true;
		pthread_mutex_lock(&pgio_list_lock);
		pgio_t.t_next = pgio_list;
		pgio_list = &pgio_t;
		pthread_mutex_unlock(&pgio_list_lock);
		pthread_once(&pgio_key_once, pgio_key_init);
		(void)pthread_setspecific(pgio_key, &pgio_t);
	}
	return &pgio_t.t_ring;
}

/*
 * Submit sqe (already prepared on ring) and wait for its completion.
 * A read of a few pages takes tens of microseconds, and so does waking a
 * thread that slept on a virtual CPU: for those (spin), watch the ring
 * for a while first.  A larger request takes longer than the watch, which
 * would only take a CPU from the threads that could use it, and so would
 * more spinners than the gate lets (usrvm_spin_begin).  => its res.
 */
static int
pgio_wait(struct io_uring *ring, bool spin)
{
	struct io_uring_cqe *cqe;
	int error, res;

	io_uring_submit(ring);
	error = -EAGAIN;
	if (spin && usrvm_spin_begin()) {
		for (uint64_t t0 = usrvm_now_ns(); error == -EAGAIN &&
		    usrvm_now_ns() - t0 < PGIO_SPIN_NS;)
			error = io_uring_peek_cqe(ring, &cqe);
		usrvm_spin_end();
	}
	while (error == -EAGAIN || error == -EINTR)
		error = io_uring_wait_cqe(ring, &cqe);
	if (error < 0)
		usrvm_panic("paging I/O ring: %s", strerror(-error));
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

/* The result of a request: bytes expected, res the completion's. */
static int
pgio_result(int res, size_t expect, int what)
{
	int inj;

	if (res < 0)
		return -res;
	if ((size_t)res != expect)
		return EIO;
	if ((inj = inject_take(what)) != 0)
		return inj;
	return 0;
}

int
pgio_swapv(bool write, uint32_t slot, const struct iovec *iov, unsigned n)
{
	struct io_uring *ring;
	struct io_uring_sqe *sqe;
	int error;

	KASSERT(n > 0 && n <= PGIO_MAXRUN);
	if ((ring = pgio_thread_ring(&error)) == NULL)
		return error;
	sqe = io_uring_get_sqe(ring);
	KASSERT(sqe != NULL);		/* one request at a time */
	if (write)
		io_uring_prep_writev(sqe, 0, iov, n, (off_t)ptoa(slot));
	else
		io_uring_prep_readv(sqe, 0, iov, n, (off_t)ptoa(slot));
	sqe->flags |= IOSQE_FIXED_FILE;
	error = pgio_result(pgio_wait(ring, !write && n <= PGIO_SPIN_MAX),
	    ptoa(n), write ? USRVM_INJECT_SWAP_WRITE : USRVM_INJECT_SWAP_READ);
	if (write) {
		CNT_INC(swap_writes);
		stats_max(&usrvm_cnt.swap_write_max, n);
	} else {
		CNT_INC(swap_reads);
	}
	return error;
}

ssize_t
pgio_file(int fd, const void *buf, size_t len, uint64_t off)
{
	struct io_uring *ring;
	struct io_uring_sqe *sqe;
	int error, res;

	if ((ring = pgio_thread_ring(&error)) == NULL)
		return -error;
	sqe = io_uring_get_sqe(ring);
	KASSERT(sqe != NULL);
	io_uring_prep_write(sqe, fd, buf, (unsigned)len, off);
	res = pgio_wait(ring, false);
	if (res >= 0 && (error = inject_take(USRVM_INJECT_FILE_WRITE)) != 0)
		res = -error;
	return res;
}

/* The calling thread's bounce buffer, made and registered on first use. */
static char *
pgio_thread_bounce(struct io_uring *ring, int *errorp)
{
	struct iovec iov = { .iov_len = ptoa(PGIO_FILE_MAXREAD) };
	int error;

	if (pgio_t.t_bounce != NULL)
		return pgio_t.t_bounce;
	iov.iov_base = mmap(NULL, iov.iov_len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (iov.iov_base == MAP_FAILED) {
		*errorp = ENOMEM;
		return NULL;
	}
	if ((error = io_uring_register_buffers(ring, &iov, 1)) < 0) {
		(void)munmap(iov.iov_base, iov.iov_len);
		*errorp = -error;
		return NULL;
	}
	return pgio_t.t_bounce = iov.iov_base;
}

ssize_t
pgio_file_read(int fd, uint64_t off, unsigned n, char **bufp)
{
	struct io_uring *ring;
	struct io_uring_sqe *sqe;
	char *buf;
	int error, res;

	KASSERT(n > 0 && n <= PGIO_FILE_MAXREAD);
	if ((ring = pgio_thread_ring(&error)) == NULL ||
	    (buf = pgio_thread_bounce(ring, &error)) == NULL)
		return -error;
	sqe = io_uring_get_sqe(ring);
	KASSERT(sqe != NULL);
	io_uring_prep_read_fixed(sqe, fd, buf, (unsigned)ptoa(n), off, 0);
	res = pgio_wait(ring, n <= PGIO_SPIN_MAX);
	if (res >= 0 && (error = inject_take(USRVM_INJECT_FILE_READ)) != 0)
		res = -error;
	*bufp = buf;
	return res;
}

int
pgio_datasync(int fd)
{
	struct io_uring *ring;
	struct io_uring_sqe *sqe;
	int error;

	if ((ring = pgio_thread_ring(&error)) == NULL)
		return error;
	sqe = io_uring_get_sqe(ring);
	KASSERT(sqe != NULL);
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	error = pgio_wait(ring, false);
	if (error == 0)
		error = -inject_take(USRVM_INJECT_FILE_WRITE);
	return -error;
}

/* Let t's ring and buffer go. */
static void
pgio_tring_exit(struct pgio_tring *t)
{
	if (t->t_ok)
		io_uring_queue_exit(&t->t_ring);
	t->t_ok = false;
	if (t->t_bounce != NULL)
		(void)munmap(t->t_bounce, ptoa(PGIO_FILE_MAXREAD));
	t->t_bounce = NULL;
}

void
pgio_thread_exit(void)
{
	struct pgio_tring **tp;

	if (!pgio_t.t_ok)
		return;
	pthread_mutex_lock(&pgio_list_lock);
	for (tp = &pgio_list; *tp != &pgio_t; tp = &(*tp)->t_next)
		continue;
	*tp = pgio_t.t_next;
	pthread_mutex_unlock(&pgio_list_lock);
	pgio_tring_exit(&pgio_t);
}

/*
 * pgio_fork_child: in a fork child (fork.c), every thread's ring is the
 * parent's too (its memory is shared), and registers the old swap file:
 * all go.  The other threads' structures are still in memory here.
 */
void
pgio_fork_child(void)
{
	FORK_REINIT_MUTEX(&pgio_list_lock);
	for (struct pgio_tring *t = pgio_list, *next; t != NULL; t = next) {
		next = t->t_next;
		pgio_tring_exit(t);
	}
	pgio_list = NULL;
}

int
pgio_write(struct io_uring *ring, struct pgio_wreq *wr)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	KASSERT(wr->wr_n > 0 && wr->wr_n <= PGIO_MAXRUN);
	if (sqe == NULL)
		return EBUSY;
	io_uring_prep_writev(sqe, 0, wr->wr_iov, wr->wr_n,
	    (off_t)ptoa(wr->wr_slot));
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, wr);
	if (io_uring_submit(ring) < 0)
		return EIO;
	CNT_INC(swap_writes);
	stats_max(&usrvm_cnt.swap_write_max, wr->wr_n);
	return 0;
}

struct pgio_wreq *
pgio_reap(struct io_uring *ring, bool wait)
{
	struct io_uring_cqe *cqe;
	struct pgio_wreq *wr;
	int error;

	do {
		error = wait ? io_uring_wait_cqe(ring, &cqe) :
		    io_uring_peek_cqe(ring, &cqe);
	} while (error == -EINTR);
	if (error == -EAGAIN)
		return NULL;
	if (error < 0)
		usrvm_panic("paging write ring: %s", strerror(-error));
	wr = io_uring_cqe_get_data(cqe);
	wr->wr_error = pgio_result(cqe->res, ptoa(wr->wr_n),
	    USRVM_INJECT_SWAP_WRITE);
	io_uring_cqe_seen(ring, cqe);
	return wr;
}

/* ------------------------------------------------------------------ */
/* copying between files                                               */
/* ------------------------------------------------------------------ */

#define PGIO_COPY_CHUNK	((size_t)1 << 20)	/* bytes per read and write */
#define PGIO_COPY_SLOTS	8			/* chunks in flight */

struct pgio_copy {
	struct io_uring c_ring;
	char *c_buf;			/* PGIO_COPY_SLOTS chunks */
	int c_from, c_to;
	unsigned c_inflight;		/* chunks */
	uint8_t c_cqes[PGIO_COPY_SLOTS]; /* completions seen (2: free) */
	int c_error;			/* the first */
};

struct pgio_copy *
pgio_copy_start(int from, int to, int *errorp)
{
	struct pgio_copy *c = kmem_zalloc(sizeof(*c));
	int error;

	if (c == NULL) {
		*errorp = ENOMEM;
		return NULL;
	}
	c->c_buf = mmap(NULL, PGIO_COPY_SLOTS * PGIO_COPY_CHUNK, PROT_READ |
	    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->c_buf == MAP_FAILED) {
		kmem_free(c, sizeof(*c));
		*errorp = ENOMEM;
		return NULL;
	}
	if ((error = io_uring_queue_init(2 * PGIO_COPY_SLOTS, &c->c_ring,
	    0)) < 0) {
		munmap(c->c_buf, PGIO_COPY_SLOTS * PGIO_COPY_CHUNK);
		kmem_free(c, sizeof(*c));
		*errorp = -error;
		return NULL;
	}
	c->c_from = from;
	c->c_to = to;
	for (unsigned i = 0; i < PGIO_COPY_SLOTS; i++)
		c->c_cqes[i] = 2;
	return c;
}

/* Reap one completion (waiting for it); a chunk whose write is done
 * frees its slot.  The read's or write's error is kept. */
static void
pgio_copy_reap(struct pgio_copy *c)
{
	struct io_uring_cqe *cqe;
	int error;

	/* Submits what pgio_copy_add could not (the kernel short of
	 * resources for a moment) before waiting. */
	while (io_uring_peek_cqe(&c->c_ring, &cqe) != 0) {
		error = io_uring_submit_and_wait(&c->c_ring, 1);
		if (error == -EINTR || error == -EAGAIN || error == -EBUSY ||
		    error == -ENOMEM)
			sched_yield();
		else if (error < 0)
			usrvm_panic("copy ring: %s", strerror(-error));
	}
	if (cqe->res < 0 && c->c_error == 0)
		c->c_error = -cqe->res;
	else if (cqe->res >= 0 && (size_t)cqe->res != (size_t)(cqe->user_data
	    >> 8) && c->c_error == 0)
		c->c_error = EIO;
	if (++c->c_cqes[cqe->user_data & 0xff] == 2)
		c->c_inflight--;
	io_uring_cqe_seen(&c->c_ring, cqe);
}

/*
 * pgio_copy_add: copy [off, off + len) of the files, chunk by chunk, each
 * chunk a read linked to its write (the write starts when the read has
 * completed; a failed read cancels it).  => 0 or the first error.
 */
int
pgio_copy_add(struct pgio_copy *c, uint64_t off, size_t len)
{
	while (len > 0 && c->c_error == 0) {
		size_t n = MIN(len, PGIO_COPY_CHUNK);
		struct io_uring_sqe *sqe;
		unsigned i;
		char *buf;

		while (c->c_inflight == PGIO_COPY_SLOTS)
			pgio_copy_reap(c);
		for (i = 0; c->c_cqes[i] != 2; i++)
			continue;
		buf = c->c_buf + i * PGIO_COPY_CHUNK;
		c->c_cqes[i] = 0;
		c->c_inflight++;
		sqe = io_uring_get_sqe(&c->c_ring);
		io_uring_prep_read(sqe, c->c_from, buf, (unsigned)n, off);
		sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, (uint64_t)n << 8 | i);
		sqe = io_uring_get_sqe(&c->c_ring);
		io_uring_prep_write(sqe, c->c_to, buf, (unsigned)n, off);
		io_uring_sqe_set_data64(sqe, (uint64_t)n << 8 | i);
		(void)io_uring_submit(&c->c_ring);	/* or when reaped */
		off += n;
		len -= n;
	}
	return c->c_error;
}

/* Wait for every chunk, free c.  => the first error (error, if given). */
int
pgio_copy_finish(struct pgio_copy *c, int error)
{
	while (c->c_inflight > 0)
		pgio_copy_reap(c);
	if (error == 0)
		error = c->c_error;
	io_uring_queue_exit(&c->c_ring);
	munmap(c->c_buf, PGIO_COPY_SLOTS * PGIO_COPY_CHUNK);
	kmem_free(c, sizeof(*c));
	return error;
}
