/*
 * helpers.c: shared test support (see helpers.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

void
t_require_uffd(void)
{
	int error = usrvm_init(NULL);

	if (error == -EPERM || error == -ENOSYS) {
		fprintf(stderr, "skip: userfaultfd unavailable (%s)\n",
		    strerror(-error));
		exit(T_EXIT_SKIP);
	}
	if (error != 0) {
		fprintf(stderr, "usrvm_init: %s\n", strerror(-error));
		exit(1);
	}
	usrvm_shutdown();
}

void
t_start(void)
{
	t_start_budget(0, 0);
}

void
t_start_budget(size_t mem, size_t swap)
{
	struct usrvm_config cfg;
	int error;

	ck_assert_int_eq(usrvm_config_load(&cfg), 0);
	if (getenv("USRVM_FAULT_THREADS") == NULL && mem == 0)
		cfg.fault_threads = 2;
	cfg.default_reserve = (size_t)64 << 30;
	cfg.mem_limit = mem;
	cfg.swap_size = swap;
	error = usrvm_init(&cfg);
	if (error == -EPERM || error == -ENOSYS)
		exit(T_EXIT_SKIP);
	ck_assert_msg(error == 0, "usrvm_init: %s", strerror(-error));
}

void
t_stop(void)
{
	usrvm_shutdown();
}

int
t_run(Suite *s, unsigned timeout)
{
	SRunner *sr = srunner_create(s);
	int failed;

	(void)timeout;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

uint64_t
t_seed(uint64_t fixed)
{
	const char *s = getenv("USRVM_TEST_SEED");
	uint64_t seed = s != NULL ? strtoull(s, NULL, 0) : fixed;

	if (seed == 0)
		seed = 1;
	fprintf(stderr, "seed: %llu (set USRVM_TEST_SEED to replay)\n",
	    (unsigned long long)seed);
	return seed;
}

uint64_t
t_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

int
t_run_child(void (*fn)(void *), void *arg, char *err, size_t errlen)
{
	int pfd[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };
		setrlimit(RLIMIT_CORE, &rl);	/* no core files */
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[0]);
		fn(arg);
		_exit(99);			/* fn should not return */
	}
	close(pfd[1]);
	while (got < (ssize_t)errlen - 1 &&
	    (n = read(pfd[0], err + got, errlen - 1 - got)) > 0)
		got += n;
	err[got] = '\0';
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

void *
t_map(struct usrvm_space *vs, size_t len)
{
	void *p = usrvm_map(vs, NULL, len, USRVM_PROT_READ | USRVM_PROT_WRITE,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0);

	ck_assert_msg(p != NULL, "usrvm_map(%zu): %s", len, strerror(errno));
	return p;
}

struct usrvm_stats
t_stats(void)
{
	struct usrvm_stats st;

	ck_assert_int_eq(usrvm_stats(&st), 0);
	return st;
}

struct usrvm_stats
t_drained(void)
{
	struct usrvm_stats st = t_stats();

	for (int i = 0; i < 1000 && (st.swap_slots_used != 0 ||
	    st.resident != 0 || st.anons != 0 || st.aobjs != 0); i++) {
		usleep(10000);
		st = t_stats();
	}
	return st;
}

static sigjmp_buf t_jmp;

static void
t_bus(int sig)
{
	(void)sig;
	siglongjmp(t_jmp, 1);
}

bool
t_sigbus(const volatile char *p)
{
	struct sigaction sa = { .sa_handler = t_bus }, old;
	volatile bool hit = false;

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGBUS, &sa, &old), 0);
	if (sigsetjmp(t_jmp, 1) == 0)
		(void)*p;
	else
		hit = true;
	ck_assert_int_eq(sigaction(SIGBUS, &old, NULL), 0);
	return hit;
}

bool
t_page_holds(const void *page, size_t pg, uint64_t v)
{
	const uint64_t *w = page;

	for (size_t i = 0; i < T_PAGE / 8; i++)
		if (__atomic_load_n(&w[i], __ATOMIC_RELAXED) !=
		    t_page_word(pg, v))
			return false;
	return true;
}

void
t_page_write(void *base, size_t pg, uint64_t v)
{
	uint64_t *w = (uint64_t *)((char *)base + pg * T_PAGE);

	for (size_t i = 0; i < T_PAGE / 8; i++)
		__atomic_store_n(&w[i], t_page_word(pg, v), __ATOMIC_RELAXED);
}

void
t_case(Suite *s, const char *name, const TTest *fn, unsigned timeout)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, fn);
	suite_add_tcase(s, tc);
}

void
t_case_forks(Suite *s, const char *name, const TTest *fn, unsigned timeout)
{
#if defined(__SANITIZE_THREAD__)
	(void)s;
	(void)fn;
	(void)timeout;
	fprintf(stderr, "%s: not run under ThreadSanitizer, which cannot "
	    "follow a fork child that starts threads\n", name);
#else
	t_case(s, name, fn, timeout);
#endif
}

int
t_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}
