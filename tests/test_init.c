/*
 * test_init.c: starting and stopping the runtime; configuration errors
 * name the offending setting; a process without permission for
 * userfaultfd is told what would allow it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

struct init_env {
	const char *var, *val;
};

static void
init_child(void *arg)
{
	const struct init_env *env = arg;
	int error;

	if (env->var != NULL)
		setenv(env->var, env->val, 1);
	error = usrvm_init(NULL);
	_exit(error == 0 ? 0 : error == -EINVAL ? 1 : error == -EPERM ? 2 : 3);
}

/* usrvm_init(NULL) in a child with one environment variable set. */
static int
init_with_env(const char *var, const char *val, char *err, size_t errlen)
{
	struct init_env env = { var, val };
	int status = t_run_child(init_child, &env, err, errlen);

	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(bad_environment)
{
	static const struct { const char *var, *val; } bad[] = {
		{ "USRVM_FAULT_THREADS", "abc" },
		{ "USRVM_FAULT_THREADS", "1000" },
		{ "USRVM_FAULT_THREADS", "-1" },
		{ "USRVM_RESERVE", "12Q" },
		{ "USRVM_RESERVE", "1K" },		/* below 64M */
		{ "USRVM_RESERVE", "" },
		{ "USRVM_RESERVE", "99999999999999999999T" },
		{ "USRVM_VERBOSE", "5" },
	};
	char err[1024];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = init_with_env(bad[i].var, bad[i].val, err,
		    sizeof(err));
		ck_assert_msg(rc == 1, "%s=%s: exit %d", bad[i].var,
		    bad[i].val, rc);
		ck_assert_msg(strstr(err, bad[i].var) != NULL &&
		    strstr(err, "expected") != NULL,
		    "%s=%s: message does not name it: %s", bad[i].var,
		    bad[i].val, err);
		ck_assert_msg(strchr(err, '\n') == strrchr(err, '\n'),
		    "more than one line: %s", err);
	}
	ck_assert_int_eq(init_with_env("USRVM_RESERVE", "128M", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(init_with_env("USRVM_FAULT_THREADS", "3", err,
	    sizeof(err)), 0);
}
END_TEST

START_TEST(bad_config_struct)
{
	struct usrvm_config cfg;

	ck_assert_int_eq(usrvm_config_load(&cfg), 0);
	cfg.fault_threads = 100000;
	ck_assert_int_eq(usrvm_init(&cfg), -EINVAL);
	ck_assert_int_eq(usrvm_config_load(&cfg), 0);
	cfg.default_reserve = 4096;
	ck_assert_int_eq(usrvm_init(&cfg), -EINVAL);
	ck_assert_int_eq(usrvm_config_load(NULL), -EINVAL);
	ck_assert_ptr_null(usrvm_default_space());
}
END_TEST

START_TEST(parse_size)
{
	size_t v;

	ck_assert_int_eq(usrvm_parse_size("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(usrvm_parse_size("256M", &v), 0);
	ck_assert_uint_eq(v, 256UL << 20);
	ck_assert_int_eq(usrvm_parse_size("1g", &v), 0);
	ck_assert_uint_eq(v, 1UL << 30);
	ck_assert_int_eq(usrvm_parse_size("2TiB", &v), 0);
	ck_assert_uint_eq(v, 2UL << 40);
	ck_assert_int_eq(usrvm_parse_size("64KB", &v), 0);
	ck_assert_uint_eq(v, 64UL << 10);
	ck_assert_int_eq(usrvm_parse_size("", &v), -EINVAL);
	ck_assert_int_eq(usrvm_parse_size("M", &v), -EINVAL);
	ck_assert_int_eq(usrvm_parse_size("-1", &v), -EINVAL);
	ck_assert_int_eq(usrvm_parse_size("12X", &v), -EINVAL);
	ck_assert_int_eq(usrvm_parse_size("1 M", &v), -EINVAL);
	ck_assert_int_eq(usrvm_parse_size("17179869184T", &v), -EINVAL);
	ck_assert_int_eq(usrvm_parse_size(NULL, &v), -EINVAL);
	v = 7;					/* untouched on failure */
	ck_assert_int_eq(usrvm_parse_size("1Q", &v), -EINVAL);
	ck_assert_uint_eq(v, 7);
}
END_TEST

START_TEST(init_shutdown_cycles)
{
	int fds = t_count_fds();

	for (int i = 0; i < 20; i++) {
		t_start();
		uint64_t *p = t_map(usrvm_default_space(), 1 << 20);
		p[i] = i;
		ck_assert_uint_eq(p[i], i);
		t_stop();
	}
	ck_assert_int_eq(t_count_fds(), fds);	/* no descriptor leaked */
}
END_TEST

static void
unprivileged_child(void *arg)
{
	(void)arg;
	if (setgid(65534) != 0 || setuid(65534) != 0)
		_exit(4);
	_exit(usrvm_init(NULL) == -EPERM ? 0 : 1);
}

START_TEST(no_permission)
{
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
	int unpriv = -1, status;
	char err[2048];

	if (f != NULL) {
		if (fscanf(f, "%d", &unpriv) != 1)
			unpriv = -1;
		fclose(f);
	}
	if (geteuid() != 0 || unpriv != 0) {
		/* Cannot drop into a process that lacks permission here. */
		fprintf(stderr, "no_permission: not checkable here "
		    "(euid %d, unprivileged_userfaultfd %d)\n", geteuid(),
		    unpriv);
		return;
	}
	status = t_run_child(unprivileged_child, NULL, err, sizeof(err));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "status %#x: %s", status, err);
	ck_assert_msg(strstr(err, "vm.unprivileged_userfaultfd=1") &&
	    strstr(err, "/dev/userfaultfd") && strstr(err, "CAP_SYS_PTRACE"),
	    "message: %s", err);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("init");
	TCase *tc = tcase_create("init");

	t_require_uffd();
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, bad_environment);
	tcase_add_test(tc, bad_config_struct);
	tcase_add_test(tc, parse_size);
	tcase_add_test(tc, init_shutdown_cycles);
	tcase_add_test(tc, no_permission);
	suite_add_tcase(s, tc);
	return t_run(s, 120);
}
