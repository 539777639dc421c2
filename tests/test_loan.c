/*
 * test_loan.c: page loaning (usrvm_loan).
 *
 * Every page holds one 64-bit word repeated, made from its index and a
 * version: what a loan's iovecs show is checked whole against the
 * version of the moment of the loan, while the application writes on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define RW		(USRVM_PROT_READ | USRVM_PROT_WRITE)
#define MIB		((size_t)1 << 20)

/* Does every page of the loan hold version v? */
static void
loan_is(const struct usrvm_loan *loan, size_t n, uint64_t v)
{
	size_t niov;
	const struct iovec *iov = usrvm_loan_iov(loan, &niov);

	ck_assert_uint_eq(niov, n);
	for (size_t pg = 0; pg < n; pg++) {
		ck_assert_uint_eq(iov[pg].iov_len, T_PAGE);
		ck_assert_msg(t_page_holds(iov[pg].iov_base, pg, v),
		    "lent page %zu is not version %llu", pg,
		    (unsigned long long)v);
	}
}

/* ------------------------------------------------------------------ */

/*
 * The loan shows the bytes of its moment while the application reads
 * and writes the range: each page it touches is copied once; the pages
 * it did not touch go back to it with no copy.
 */
START_TEST(loan_basic)
{
	struct usrvm_space *vs;
	struct usrvm_loan *loan;
	const size_t n = 64;
	struct usrvm_stats st;
	char *p;

	t_start_budget(16 * MIB, 0);
	vs = usrvm_default_space();
	p = t_map(vs, n * T_PAGE);
	for (size_t pg = 0; pg < n; pg++)
		t_page_write(p, pg, 1);
	ck_assert_int_eq(usrvm_loan(vs, p, n * T_PAGE, &loan), 0);
	ck_assert_uint_eq(t_stats().pages_loaned, n);
	loan_is(loan, n, 1);
	for (size_t pg = 0; pg < n / 2; pg++)
		t_page_write(p, pg, 2);			/* copies first */
	for (size_t pg = n / 2; pg < 3 * n / 4; pg++)
		ck_assert(t_page_holds(p + pg * T_PAGE, pg, 1));	/* so do reads */
	loan_is(loan, n, 1);
	st = t_stats();
	ck_assert_uint_eq(st.loan_copies, 3 * n / 4);
	ck_assert_int_eq(usrvm_unloan(loan), 0);
	ck_assert_uint_eq(t_stats().pages_loaned, 0);
	for (size_t pg = 0; pg < n; pg++)
		ck_assert(t_page_holds(p + pg * T_PAGE, pg, pg < n / 2 ? 2 : 1));
	ck_assert_uint_eq(t_stats().loan_copies, 3 * n / 4);	/* no more */
	ck_assert_int_eq(usrvm_unmap(vs, p, n * T_PAGE), 0);
	st = t_drained();
	ck_assert_uint_eq(st.resident, 0);
	ck_assert_uint_eq(st.anons, 0);
	t_stop();
}
END_TEST

/*
 * The use it is for: an io_uring write of the lent pages to a file
 * (O_DIRECT where the file system has it), while a thread rewrites the
 * range; the file holds the moment of the loan.
 */
static char *w_p;
static size_t w_n;
static _Atomic bool w_stop;

static void *
w_thread(void *arg)
{
	(void)arg;
	for (uint64_t v = 3; !atomic_load(&w_stop); v++)
		for (size_t pg = 0; pg < w_n; pg++)
			t_page_write(w_p, pg, v);
	return NULL;
}

START_TEST(loan_io_uring)
{
	const char *dir = getenv("USRVM_TEST_DIR");
	struct usrvm_space *vs;
	struct usrvm_loan *loan;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	const struct iovec *iov;
	char path[4096];
	size_t niov;
	pthread_t th;
	uint64_t *buf;
	int fd;

	w_n = 256;
	t_start_budget(8 * MIB, 0);
	vs = usrvm_default_space();
	w_p = t_map(vs, w_n * T_PAGE);
	for (size_t pg = 0; pg < w_n; pg++)
		t_page_write(w_p, pg, 1);
	snprintf(path, sizeof(path), "%s/usrvm-loan-XXXXXX",
	    dir != NULL ? dir : ".");
	ck_assert_int_ge(fd = mkstemp(path), 0);
	unlink(path);
	(void)fcntl(fd, F_SETFL, O_DIRECT);	/* where the file system can */

	ck_assert_int_eq(usrvm_loan(vs, w_p, w_n * T_PAGE, &loan), 0);
	atomic_store(&w_stop, false);
	ck_assert_int_eq(pthread_create(&th, NULL, w_thread, NULL), 0);
	ck_assert_int_eq(io_uring_queue_init(4, &ring, 0), 0);
	iov = usrvm_loan_iov(loan, &niov);
	ck_assert_ptr_nonnull(sqe = io_uring_get_sqe(&ring));
	io_uring_prep_writev(sqe, fd, iov, (unsigned)niov, 0);
	ck_assert_int_eq(io_uring_submit_and_wait(&ring, 1), 1);
	ck_assert_int_eq(io_uring_wait_cqe(&ring, &cqe), 0);
	ck_assert_int_eq(cqe->res, (int)(w_n * T_PAGE));
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	/* The writer may not have run yet on a busy machine: the loan
	 * lasts until it has written a lent page (copied first). */
	for (int i = 0; i < 1000 && t_stats().loan_copies == 0; i++)
		usleep(10000);
	atomic_store(&w_stop, true);
	pthread_join(th, NULL);
	ck_assert_int_eq(usrvm_unloan(loan), 0);

	ck_assert_ptr_nonnull(buf = aligned_alloc(T_PAGE, T_PAGE));
	for (size_t pg = 0; pg < w_n; pg++) {
		ck_assert_int_eq(pread(fd, buf, T_PAGE, (off_t)(pg * T_PAGE)),
		    (ssize_t)T_PAGE);
		ck_assert_msg(t_page_holds(buf, pg, 1), "file page %zu", pg);
	}
	free(buf);
	close(fd);
	ck_assert_uint_gt(t_stats().loan_copies, 0);
	ck_assert_int_eq(usrvm_unmap(vs, w_p, w_n * T_PAGE), 0);
	t_stop();
}
END_TEST

/*
 * The range goes while lent: the loan keeps its pages until it ends.
 * Pages never written are lent as zeros; pages on swap come back first.
 */
START_TEST(loan_unmap_zeros_swap)
{
	struct usrvm_space *vs;
	struct usrvm_loan *loan;
	const size_t n = 1024;			/* 4 MiB through 2 MiB */
	struct usrvm_stats st;
	char *p;

	t_start_budget(2 * MIB, 0);
	vs = usrvm_default_space();
	p = t_map(vs, n * T_PAGE);
	for (size_t pg = 0; pg < n; pg++)
		t_page_write(p, pg, 1);
	ck_assert_uint_gt(t_stats().pageouts, 0);
	/* The first pages are on swap by now. */
	ck_assert_int_eq(usrvm_loan(vs, p, 64 * T_PAGE, &loan), 0);
	loan_is(loan, 64, 1);
	ck_assert_int_eq(usrvm_unmap(vs, p, n * T_PAGE), 0);
	loan_is(loan, 64, 1);
	ck_assert_int_eq(usrvm_unloan(loan), 0);

	p = t_map(vs, 64 * T_PAGE);
	ck_assert_int_eq(usrvm_loan(vs, p, 64 * T_PAGE, &loan), 0);
	loan_is(loan, 64, 0);
	ck_assert_int_eq(usrvm_unloan(loan), 0);
	ck_assert_int_eq(usrvm_unmap(vs, p, 64 * T_PAGE), 0);
	st = t_drained();
	ck_assert_uint_eq(st.resident, 0);
	ck_assert_uint_eq(st.pages_loaned, 0);
	ck_assert_uint_eq(st.swap_slots_used, 0);
	t_stop();
}
END_TEST

/* Bad input: an error, and nothing lent. */
START_TEST(loan_bad_input)
{
	struct usrvm_space *vs;
	struct usrvm_loan *loan, *l2;
	char *p, *s;

	t_start();
	vs = usrvm_default_space();
	p = t_map(vs, 16 * T_PAGE);
	ck_assert_int_eq(usrvm_loan(vs, p, T_PAGE, &loan), -ENOTSUP);
	t_stop();

	t_start_budget(4 * MIB, 0);
	vs = usrvm_default_space();
	p = t_map(vs, 16 * T_PAGE);
	ck_assert_int_eq(usrvm_loan(NULL, p, T_PAGE, &loan), -EINVAL);
	ck_assert_int_eq(usrvm_loan(vs, p + 1, T_PAGE, &loan), -EINVAL);
	ck_assert_int_eq(usrvm_loan(vs, p, 0, &loan), -EINVAL);
	ck_assert_int_eq(usrvm_loan(vs, p, T_PAGE, NULL), -EINVAL);
	ck_assert_int_eq(usrvm_loan(vs, p, 17 * T_PAGE, &loan), -ENOMEM);
	s = t_map(vs, 600 * T_PAGE);		/* more than half the budget */
	ck_assert_int_eq(usrvm_loan(vs, s, 600 * T_PAGE, &loan), -ENOMEM);
	ck_assert_int_eq(usrvm_unmap(vs, s, 600 * T_PAGE), 0);
	ck_assert_int_eq(usrvm_protect(vs, p, T_PAGE, USRVM_PROT_NONE), 0);
	ck_assert_int_eq(usrvm_loan(vs, p, T_PAGE, &loan), -EACCES);
	s = usrvm_map(vs, NULL, T_PAGE, RW, USRVM_MAP_SHARED | USRVM_MAP_ANON,
	    -1, 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(usrvm_loan(vs, s, T_PAGE, &loan), -ENOTSUP);
	t_page_write(p, 1, 1);
	ck_assert_int_eq(usrvm_loan(vs, p + T_PAGE, T_PAGE, &loan), 0);
	ck_assert_int_eq(usrvm_loan(vs, p + T_PAGE, T_PAGE, &l2), -EBUSY);
	ck_assert_uint_eq(t_stats().pages_loaned, 1);
	ck_assert_int_eq(usrvm_unloan(loan), 0);
	ck_assert_int_eq(usrvm_unloan(NULL), -EINVAL);
	ck_assert_uint_eq(t_stats().pages_loaned, 0);
	t_stop();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("loan");

	t_require_uffd();
#define CASE(fn) t_case(s, #fn, fn, 120)
	CASE(loan_basic);
	CASE(loan_io_uring);
	CASE(loan_unmap_zeros_swap);
	CASE(loan_bad_input);
#undef CASE
	return t_run(s, 120);
}
