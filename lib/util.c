/*
 * util.c: panic, logging, time, spinning and the runtime's threads.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "usrvm_internal.h"

/* Set by usrvm_init from the configuration. */
unsigned usrvm_log_level = USRVM_LOG_ERR;

/*
 * log_write: prefix and the formatted message as one line on stderr, in
 * a single write(2) (no stdio buffer), truncated to fit 512 bytes.
 */
static void
log_write(const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];
	int n;

	n = snprintf(buf, sizeof(buf), "%s", prefix);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	if (n >= (int)sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	(void)!write(STDERR_FILENO, buf, n);
}

__thread bool usrvm_runtime_thread
    __attribute__((tls_model("initial-exec")));

void
usrvm_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write("usrvm: panic: ", fmt, ap);
	va_end(ap);
	abort();
}

void
usrvm_log(int level, const char *fmt, ...)
{
	va_list ap;

	if ((unsigned)level > usrvm_log_level)
		return;
	va_start(ap, fmt);
	log_write("usrvm: ", fmt, ap);
	va_end(ap);
}

uint64_t
usrvm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void
usrvm_cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mtx, uint64_t ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ns / 1000000000);
	ts.tv_nsec += (long)(ns % 1000000000);
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cv, mtx, &ts);
}

static _Atomic unsigned spin_count;
static _Atomic unsigned spin_serving;	/* faults being served */
static __thread unsigned spin_mine;	/* ... of them by this thread */
static unsigned spin_max = 1;

void
usrvm_spin_init(long ncpu)
{
	spin_max = ncpu > 2 ? (unsigned)MIN(ncpu - 1, 256) : 1;
}

bool
usrvm_spin_begin(void)
{
	unsigned others = atomic_load_explicit(&spin_serving,
	    memory_order_relaxed) - spin_mine;

	if (atomic_fetch_add_explicit(&spin_count, 1, memory_order_relaxed) +
	    others < spin_max)
		return true;
	atomic_fetch_sub_explicit(&spin_count, 1, memory_order_relaxed);
	return false;
}

void
usrvm_serving(int delta)
{
	spin_mine += (unsigned)delta;
	atomic_fetch_add_explicit(&spin_serving, (unsigned)delta,
	    memory_order_relaxed);
}

void
usrvm_spin_end(void)
{
	atomic_fetch_sub_explicit(&spin_count, 1, memory_order_relaxed);
}

void
usrvm_spin_fork_child(void)
{
	atomic_store_explicit(&spin_count, 0, memory_order_relaxed);
	atomic_store_explicit(&spin_serving, 0, memory_order_relaxed);
}

/*
 * The runtime's threads run on stacks of their own, never on one from
 * glibc's cache: a cached stack keeps the thread control block and the
 * TLS vector (DTV) of the thread that ran on it, and an application
 * thread's vector came from the application's malloc, which the preload
 * makes managed memory.  A runtime thread that read its TLS there could
 * fault while holding a lock its fault needs (seen in a fork child, which
 * reuses the stacks of the parent's threads).  What the new thread's
 * vector needs comes from libc (usrvm_runtime_thread, for the preload).
 */
#define USRVM_THREAD_STACK	((size_t)1 << 20)
#define USRVM_THREAD_MAP	(USRVM_THREAD_STACK + PAGE_SIZE)  /* + guard */

int
usrvm_thread_start(struct usrvm_thread *ut, void *(*fn)(void *), void *arg,
    const char *name)
{
	bool was = usrvm_runtime_thread;
	pthread_attr_t attr;
	int error;

	ut->ut_stack = mmap(NULL, USRVM_THREAD_MAP, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (ut->ut_stack == MAP_FAILED) {
		ut->ut_stack = NULL;
		return ENOMEM;
	}
	(void)mprotect(ut->ut_stack, PAGE_SIZE, PROT_NONE);
	pthread_attr_init(&attr);
	pthread_attr_setstack(&attr, (char *)ut->ut_stack + PAGE_SIZE,
	    USRVM_THREAD_STACK);
	usrvm_runtime_thread = true;
	error = pthread_create(&ut->ut_thread, &attr, fn, arg);
	usrvm_runtime_thread = was;
	pthread_attr_destroy(&attr);
	if (error != 0) {
		munmap(ut->ut_stack, USRVM_THREAD_MAP);
		ut->ut_stack = NULL;
		return error;
	}
	pthread_setname_np(ut->ut_thread, name);
	return 0;
}

void
usrvm_thread_join(struct usrvm_thread *ut)
{
	pthread_join(ut->ut_thread, NULL);
	munmap(ut->ut_stack, USRVM_THREAD_MAP);
	ut->ut_stack = NULL;
}

/*
 * In a fork child, the copy of a parent's thread's stack: its memory goes,
 * its addresses stay reserved.  Unmapped, they could be the next mmap's,
 * which a sanitizer would take for a stack it still knows (it never saw
 * the thread end).
 */
void
usrvm_thread_forget(struct usrvm_thread *ut)
{
	if (ut->ut_stack != NULL)
		(void)madvise(ut->ut_stack, USRVM_THREAD_MAP, MADV_DONTNEED);
	ut->ut_stack = NULL;
}
