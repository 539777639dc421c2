/*
 * helpers.h: what every usrvm test shares (liburing's test/helpers.h).
 *
 * Tests are libcheck suites, one executable per concern, run by ctest.
 * Exit status: 0 pass, 1 fail, 77 skip (the kernel or the sandbox lacks
 * userfaultfd: nothing was tested, and ctest says so).
 */
#ifndef USRVM_TEST_HELPERS_H
#define USRVM_TEST_HELPERS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usrvm.h"

#define T_EXIT_SKIP	77
#define T_PAGE		4096UL

/*
 * Start the runtime for a test (fault threads: USRVM_FAULT_THREADS or 2).
 * Exits with T_EXIT_SKIP if userfaultfd is not available here.
 */
void t_start(void);
void t_stop(void);
/* The same with a memory budget and a swap size (0: the default). */
void t_start_budget(size_t mem, size_t swap);

/* Exit T_EXIT_SKIP now unless userfaultfd can be used (call in main). */
void t_require_uffd(void);

/* Run a suite (each test in its own process, timeout in seconds). */
int t_run(Suite *s, unsigned timeout);

/* The random seed: USRVM_TEST_SEED if set, else `fixed`; printed. */
uint64_t t_seed(uint64_t fixed);
uint64_t t_rand(uint64_t *state);	/* xorshift64* */

/*
 * Run fn(arg) in a child process with stderr captured (no core dump; exit
 * 99 if fn returns).  What it wrote to stderr is left in err, truncated to
 * errlen - 1 bytes and NUL-terminated.  Returns the child's wait status.
 */
int t_run_child(void (*fn)(void *), void *arg, char *err, size_t errlen);

/* usrvm_stats, or fail. */
struct usrvm_stats t_stats(void);
/*
 * The stats once everything is unmapped: the page daemon's writes still
 * in flight hold their slots (and pages) until it reaps them, so wait for
 * the swap slots, resident pages, anons and shared objects (the flusher
 * may hold one a moment) to reach zero, for at most
 * 10 s.
 */
struct usrvm_stats t_drained(void);

/* How many descriptors this process has open. */
int t_count_fds(void);

/* Does reading p raise SIGBUS in this thread? */
bool t_sigbus(const volatile char *p);

/* Map len bytes of private anonymous read/write memory, or fail. */
void *t_map(struct usrvm_space *vs, size_t len);

/* The value a test writes into a page (distinct per page and tag). */
static inline uint64_t
t_pattern(uintptr_t addr, uint64_t tag)
{
	return (addr / T_PAGE) * 0x9e3779b97f4a7c15ull ^ (tag + 1);
}

/*
 * Whole-page patterns: page pg at version v holds t_page_word(pg, v) in
 * every 64-bit word (version 0: zeros), read and written with relaxed
 * atomics (other threads may write the page meanwhile).
 */
static inline uint64_t
t_page_word(size_t pg, uint64_t v)
{
	return v == 0 ? 0 : t_pattern(pg * T_PAGE, v);
}
/* Does the page at `page` hold page pg's words of version v? */
bool t_page_holds(const void *page, size_t pg, uint64_t v);
/* The same for page pg of the memory at base; and writing it. */
static inline bool
t_page_is(const void *base, size_t pg, uint64_t v)
{
	return t_page_holds((const char *)base + pg * T_PAGE, pg, v);
}
void t_page_write(void *base, size_t pg, uint64_t v);

/* Add test fn to s as a case of its own, with a timeout in seconds. */
void t_case(Suite *s, const char *name, const TTest *fn, unsigned timeout);
/*
 * t_case for a test that forks(2) with the runtime running: the child
 * starts threads of its own (lib/fork.c), which ThreadSanitizer cannot
 * follow ("starting new threads after multi-threaded fork is not
 * supported").  Under TSan the case is left out, and a line says so; the
 * plain and ASan builds run it.
 */
void t_case_forks(Suite *s, const char *name, const TTest *fn,
    unsigned timeout);

#endif /* USRVM_TEST_HELPERS_H */
