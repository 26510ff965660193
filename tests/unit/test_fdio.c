/* fd_read_all and fd_write_all (lib/base/util.c): whole streams with a deadline that holds on
 * blocking fds too, as a migration's state goes to and from a peer that may stall. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the includes above first */
#include <cmocka.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct writer {
	int fd;
	size_t len;
	uint8_t *data;
};

static void *write_then_close(void *arg)
{
	struct writer *w = arg;

	assert_int_equal(fd_write_all(w->fd, w->data, w->len, 5000), 0);
	close(w->fd);
	return NULL;
}

/* A stream of len bytes through a pipe (or a socketpair) read back whole. */
static void round_trip(bool sock, size_t len, size_t max, int want)
{
	struct writer w = { .len = len, .data = malloc(len + 1) };
	uint8_t *got = NULL;
	size_t got_len = 0;
	pthread_t th;
	int p[2];

	assert_non_null(w.data);
	for (size_t i = 0; i < len; i++)
		w.data[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(sock ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p)
			      : pipe2(p, O_CLOEXEC),
			 0);
	w.fd = p[1];
	assert_int_equal(pthread_create(&th, NULL, write_then_close, &w), 0);
	assert_int_equal(fd_read_all(p[0], max, 5000, &got, &got_len), want);
	/* A refused stream: the writer still finishes once its reader has gone. */
	close(p[0]);
	pthread_join(th, NULL);
	if (want == 0) {
		assert_int_equal(got_len, len);
		assert_memory_equal(got, w.data, len);
		free(got);
	}
	free(w.data);
}

static void test_round_trips(void **state)
{
	(void)state;
	round_trip(false, 0, 1024, 0);
	round_trip(false, 3 << 20, 4 << 20, 0);
	round_trip(true, 3 << 20, 4 << 20, 0);
	/* Exactly the limit is a whole stream; one byte more is too big. */
	round_trip(false, 200000, 200000, 0);
	round_trip(false, 200001, 200000, -EFBIG);
}

/* A reader that never reads: the write ends at its deadline, even on a blocking fd (the
 * first version blocked in write(2) and never looked at the clock). */
static void stalled_reader(bool sock)
{
	size_t len = 8 << 20;
	uint8_t *data = calloc(1, len);
	double t0 = now_s();
	int p[2];

	assert_non_null(data);
	assert_int_equal(sock ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p)
			      : pipe2(p, O_CLOEXEC),
			 0);
	assert_int_equal(fd_write_all(p[1], data, len, 200), -ETIMEDOUT);
	assert_true(now_s() - t0 < 3.0);
	close(p[0]);
	close(p[1]);
	free(data);
}

static void test_stalled_reader_pipe(void **state)
{
	(void)state;
	stalled_reader(false);
}

static void test_stalled_reader_socket(void **state)
{
	(void)state;
	stalled_reader(true);
}

/* A writer that never closes: the read ends at its deadline with what it had. */
static void test_stalled_writer(void **state)
{
	uint8_t *got = NULL;
	size_t len = 0;
	double t0 = now_s();
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], "abc", 3), 3);
	assert_int_equal(fd_read_all(p[0], 1 << 20, 200, &got, &len), -ETIMEDOUT);
	assert_null(got);
	assert_true(now_s() - t0 < 3.0);
	close(p[0]);
	close(p[1]);
}

/* The reader went away: EPIPE, no SIGPIPE (the test would die of it). */
static void test_reader_gone(void **state)
{
	uint8_t data[8192] = { 0 };
	int p[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p), 0);
	close(p[0]);
	assert_int_equal(fd_write_all(p[1], data, sizeof(data), 1000), -EPIPE);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_stalled_reader_pipe),
		cmocka_unit_test(test_stalled_reader_socket),
		cmocka_unit_test(test_stalled_writer),
		cmocka_unit_test(test_reader_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
