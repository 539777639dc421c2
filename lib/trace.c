/*
 * trace.c: the fault trace (see trace.h).
 *
 * Records go into a buffer of TRACE_MAX words, mapped at the start
 * (address space only: pages are taken as it fills), one atomic
 * increment each; the file is written when the runtime stops, or at a
 * preloaded program's exit.  Faults past TRACE_MAX are counted, not kept:
 * a trace is a prefix of the run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "trace.h"
#include "usrvm_internal.h"

#define TRACE_MAX	((size_t)1 << 22)	/* 4M faults: 32 MiB */

_Atomic(uint64_t *) trace_buf;
static _Atomic size_t trace_n;
static int trace_fd = -1;
static pid_t trace_pid;
static atomic_flag trace_written;	/* trace_flush, once per start */

int
trace_start(const char *path)
{
	void *p;
	int error;

	p = mmap(NULL, TRACE_MAX * sizeof(uint64_t), PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	trace_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (trace_fd < 0) {
		error = errno;
		usrvm_log(USRVM_LOG_ERR, "trace file '%s': %s (USRVM_TRACE)",
		    path, strerror(error));
		(void)munmap(p, TRACE_MAX * sizeof(uint64_t));
		return error;
	}
	trace_pid = getpid();
	atomic_flag_clear(&trace_written);
	atomic_store(&trace_n, 0);
	atomic_store(&trace_buf, (uint64_t *)p);
	return 0;
}

void
trace_record(uintptr_t va, unsigned kind)
{
	uint64_t *buf = atomic_load_explicit(&trace_buf, memory_order_relaxed);
	size_t i = atomic_fetch_add_explicit(&trace_n, 1,
	    memory_order_relaxed);

	if (buf != NULL && i < TRACE_MAX)
		atomic_store_explicit((_Atomic uint64_t *)&buf[i],
		    (uint64_t)atop(va) << 2 | kind, memory_order_relaxed);
}

/*
 * trace_flush: write what was recorded, once.  Faults still being
 * recorded meanwhile (a preloaded program's exit does not stop the
 * fault threads) may leave zero words: readers skip them.
 */
void
trace_flush(void)
{
	uint64_t *buf = atomic_load(&trace_buf);
	size_t n = atomic_load(&trace_n), kept = n < TRACE_MAX ? n : TRACE_MAX;
	const char *p = (const char *)buf;
	size_t left = kept * sizeof(uint64_t);

	if (buf == NULL || getpid() != trace_pid ||
	    atomic_flag_test_and_set(&trace_written))
		return;
	while (left > 0) {
		ssize_t w = write(trace_fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			usrvm_log(USRVM_LOG_ERR, "trace file: %s (USRVM_TRACE)",
			    strerror(w < 0 ? errno : EIO));
			break;
		}
		p += w;
		left -= (size_t)w;
	}
	usrvm_log(USRVM_LOG_NOTICE, "trace: %zu faults written, %zu past the "
	    "end not kept", kept, n - kept);
}

void
trace_stop(void)
{
	uint64_t *buf = atomic_load(&trace_buf);

	if (buf == NULL)
		return;
	trace_flush();
	atomic_store(&trace_buf, NULL);
	close(trace_fd);
	trace_fd = -1;
	(void)munmap(buf, TRACE_MAX * sizeof(uint64_t));
}
