/*
 * Unit tests for lib/imsg.c: framing, descriptor passing, limits and
 * malformed input over real socketpairs.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "tap.h"

#define PAYLOAD_MAX	(MAX_IMSGSIZE - IMSG_HEADER_SIZE)

/* Both ends; each imsgbuf is 64 KB, so keep them off the stack. */
static struct imsgbuf	 ta, tb;
static int		 sv[2];

static void
pair_open(void)
{
	int	 i;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
		perror("socketpair");
		exit(2);
	}
	for (i = 0; i < 2; i++)
		if (fcntl(sv[i], F_SETFL, O_NONBLOCK) == -1) {
			perror("fcntl");
			exit(2);
		}
	imsg_init(&ta, sv[0]);
	imsg_init(&tb, sv[1]);
}

static void
pair_close(void)
{
	imsg_clear(&ta);
	imsg_clear(&tb);
	if (sv[0] != -1)
		close(sv[0]);
	if (sv[1] != -1)
		close(sv[1]);
	sv[0] = sv[1] = -1;
}

static int
count_fds(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the DIR's own */
}

static int
fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* Read on b until a message is complete, or fail after a while. */
static ssize_t
get_one(struct imsgbuf *b, struct imsg *imsg)
{
	struct pollfd	 pfd;
	ssize_t		 n;
	int		 tries;

	for (tries = 0; tries < 100; tries++) {
		if ((n = imsg_get(b, imsg)) != 0)
			return n;
		pfd.fd = b->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 1000) <= 0)
			return 0;
		n = imsg_read(b);
		if (n == 0)
			return 0;
		if (n == -1 && errno != EAGAIN)
			return -1;
	}
	return 0;
}

static void
raw_hdr(int fd, uint32_t type, uint16_t len, uint16_t flags)
{
	struct imsg_hdr	 hdr;

	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.len = len;
	hdr.flags = flags;
	if (write(fd, &hdr, sizeof(hdr)) != sizeof(hdr)) {
		perror("write");
		exit(2);
	}
}

/* sendmsg() nbytes of 'x' with nfds descriptors (dups of stdin's /dev/null). */
static int
raw_send_fds(int fd, const int *fds, int nfds, size_t nbytes)
{
	char		 data[64];
	char		 cbuf[CMSG_SPACE(sizeof(int) * 64)];
	struct iovec	 iov;
	struct msghdr	 msg;
	struct cmsghdr	*cmsg;

	memset(data, 'x', sizeof(data));
	memset(&msg, 0, sizeof(msg));
	memset(cbuf, 0, sizeof(cbuf));
	iov.iov_base = data;
	iov.iov_len = nbytes;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
	return sendmsg(fd, &msg, 0) == (ssize_t)nbytes ? 0 : -1;
}

static void
test_ibuf_dynamic_grows_to_max_then_erange(void)
{
	struct ibuf	*b;
	char		 chunk[100];
	int		 i, r = 0;

	memset(chunk, 'a', sizeof(chunk));
	b = ibuf_dynamic(10, 1000);
	ok(b != NULL, "ibuf_dynamic_allocates");
	for (i = 0; i < 10; i++)
		r |= ibuf_add(b, chunk, sizeof(chunk));
	is_int(r, 0, "ibuf_dynamic_grows_up_to_max");
	is_int(ibuf_size(b), 1000, "ibuf_size_counts_written_bytes");
	is_int(ibuf_left(b), 0, "ibuf_left_is_zero_at_max");
	errno = 0;
	is_int(ibuf_add(b, chunk, 1), -1, "ibuf_add_past_max_fails");
	is_int(errno, ERANGE, "ibuf_add_past_max_sets_erange");
	is_int(ibuf_size(b), 1000, "ibuf_failed_add_writes_nothing");
	ibuf_free(b);

	errno = 0;
	ok(ibuf_dynamic(10, 5) == NULL && errno == EINVAL,
	    "ibuf_dynamic_max_below_len_is_einval");
	b = ibuf_dynamic(0, 0);
	ok(b != NULL && ibuf_reserve(b, 0) != NULL,
	    "ibuf_dynamic_empty_reserve_zero_is_not_null");
	ok(ibuf_reserve(b, 1) == NULL, "ibuf_dynamic_zero_max_holds_nothing");
	ibuf_free(b);
}

static void
test_ibuf_open_is_fixed_size(void)
{
	struct ibuf	*b;
	unsigned char	*p;

	b = ibuf_open(8);
	ok(b != NULL && ibuf_left(b) == 8, "ibuf_open_has_len_left");
	ok(ibuf_add(b, "12345678", 8) == 0, "ibuf_open_takes_exactly_len");
	ok(ibuf_add(b, "9", 1) == -1 && errno == ERANGE,
	    "ibuf_open_refuses_more_than_len");
	ibuf_free(b);
	errno = 0;
	ok(ibuf_open(0) == NULL && errno == EINVAL, "ibuf_open_zero_is_einval");

	b = ibuf_dynamic(4, 64);
	p = ibuf_reserve(b, 4);
	memcpy(p, "abcd", 4);
	ibuf_add(b, "ef", 2);
	p = ibuf_seek(b, 2, 4);
	ok(p != NULL && memcmp(p, "cdef", 4) == 0,
	    "ibuf_seek_points_at_written_bytes");
	ok(ibuf_seek(b, 3, 4) == NULL, "ibuf_seek_past_written_fails");
	ok(ibuf_seek(b, 7, 0) == NULL, "ibuf_seek_start_past_end_fails");
	ok(ibuf_seek(b, 6, 0) != NULL, "ibuf_seek_empty_at_end_is_ok");
	ibuf_free(b);
}

static void
test_fd_passing_delivers_pipe_read_end(void)
{
	struct imsg	 imsg;
	int		 p[2], before;
	char		 buf[16];
	ssize_t		 n;

	before = count_fds();
	pair_open();
	if (pipe(p) == -1)
		exit(2);
	ok(imsg_compose(&ta, 42, 7, 0, p[0], "pipe", 5) == 1,
	    "compose_with_fd_queues");
	is_int(ta.w.queued, 1, "compose_queues_one_buffer");
	ok(imsg_flush(&ta) == 0, "flush_sends_all");
	ok(!fd_is_open(p[0]), "sent_fd_is_closed_by_sender");
	n = get_one(&tb, &imsg);
	is_int(n, IMSG_HEADER_SIZE + 5, "get_returns_message_length");
	is_int(imsg.hdr.type, 42, "received_type");
	is_int(imsg.hdr.peerid, 7, "received_peerid");
	is_int(imsg.hdr.pid, getpid(), "received_pid_defaults_to_sender");
	ok(imsg.hdr.flags & IMSGF_HASFD, "received_hasfd_flag");
	is_str(imsg.data, "pipe", "received_payload");
	ok(imsg.fd >= 0, "received_fd_attached");
	ok(fcntl(imsg.fd, F_GETFD) & FD_CLOEXEC, "received_fd_is_cloexec");
	n = write(p[1], "hello", 5);
	close(p[1]);
	memset(buf, 0, sizeof(buf));
	n = read(imsg.fd, buf, sizeof(buf) - 1);
	is_str(buf, "hello", "data_written_to_pipe_reads_through_passed_fd");
	close(imsg.fd);
	imsg_free(&imsg);
	ok(imsg.data == NULL, "imsg_free_clears_data");
	pair_close();
	is_int(count_fds(), before, "fd_passing_leaks_no_fds");
}

static void
test_several_messages_in_one_read(void)
{
	struct imsg	 imsg;
	uint32_t	 i;
	ssize_t		 n;
	int		 order = 1;

	pair_open();
	for (i = 0; i < 3; i++)
		imsg_compose(&ta, 100 + i, i, 0, -1, &i, sizeof(i));
	imsg_flush(&ta);
	n = imsg_read(&tb);
	is_int(n, 3 * (IMSG_HEADER_SIZE + sizeof(uint32_t)),
	    "one_read_takes_three_messages");
	for (i = 0; i < 3; i++) {
		if (imsg_get(&tb, &imsg) <= 0 || imsg.hdr.type != 100 + i ||
		    memcmp(imsg.data, &i, sizeof(i)) != 0 || imsg.fd != -1)
			order = 0;
		imsg_free(&imsg);
	}
	ok(order, "three_messages_come_out_in_order");
	is_int(imsg_get(&tb, &imsg), 0, "get_after_last_returns_zero");
	is_int(tb.r.wpos, 0, "read_buffer_compacted_when_drained");
	pair_close();
}

static void
test_message_split_across_reads(void)
{
	struct imsg	 imsg;
	struct imsg_hdr	 hdr;
	unsigned char	 wire[IMSG_HEADER_SIZE + 300];
	size_t		 i;
	int		 early = 0;

	pair_open();
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = 9;
	hdr.len = sizeof(wire);
	memcpy(wire, &hdr, sizeof(hdr));
	for (i = IMSG_HEADER_SIZE; i < sizeof(wire); i++)
		wire[i] = i & 0xff;
	for (i = 0; i < sizeof(wire); i++) {
		if (write(sv[0], wire + i, 1) != 1)
			exit(2);
		if (imsg_read(&tb) != 1)
			early = 1;
		if (i + 1 < sizeof(wire) && imsg_get(&tb, &imsg) != 0)
			early = 1;
	}
	ok(!early, "byte_by_byte_message_not_complete_until_last_byte");
	is_int(imsg_get(&tb, &imsg), sizeof(wire),
	    "byte_by_byte_message_complete_at_last_byte");
	ok(memcmp(imsg.data, wire + IMSG_HEADER_SIZE,
	    sizeof(wire) - IMSG_HEADER_SIZE) == 0,
	    "byte_by_byte_payload_intact");
	imsg_free(&imsg);

	/* Two messages, the second starting mid-read. */
	if (write(sv[0], wire, sizeof(wire)) != sizeof(wire) ||
	    write(sv[0], wire, 20) != 20)
		exit(2);
	imsg_read(&tb);
	ok(imsg_get(&tb, &imsg) > 0, "first_of_split_pair_complete");
	imsg_free(&imsg);
	is_int(imsg_get(&tb, &imsg), 0, "second_of_split_pair_waits");
	if (write(sv[0], wire + 20, sizeof(wire) - 20) !=
	    (ssize_t)sizeof(wire) - 20)
		exit(2);
	imsg_read(&tb);
	is_int(tb.r.rptr - tb.r.buf, 0,
	    "read_compacts_partial_message_to_front");
	ok(imsg_get(&tb, &imsg) == sizeof(wire) &&
	    memcmp(imsg.data, wire + IMSG_HEADER_SIZE, 10) == 0,
	    "second_of_split_pair_complete_after_rest_arrives");
	imsg_free(&imsg);
	pair_close();
}

static void
test_bad_header_lengths_rejected(void)
{
	static const struct {
		const char	*name;
		uint16_t	 len;
	} rows[] = {
		{ "len_zero_is_ebadmsg", 0 },
		{ "len_below_header_is_ebadmsg", IMSG_HEADER_SIZE - 1 },
		{ "len_above_max_is_ebadmsg", MAX_IMSGSIZE + 1 },
		{ "len_65535_is_ebadmsg", 65535 },
	};
	struct imsg	 imsg;
	char		 pad[64];
	size_t		 i;
	ssize_t		 n;

	memset(pad, 0, sizeof(pad));
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pair_open();
		raw_hdr(sv[0], 1, rows[i].len, 0);
		if (write(sv[0], pad, sizeof(pad)) != sizeof(pad))
			exit(2);
		imsg_read(&tb);
		errno = 0;
		n = imsg_get(&tb, &imsg);
		ok(n == -1 && errno == EBADMSG, rows[i].name);
		pair_close();
	}

	/* The bounds themselves are fine. */
	pair_open();
	raw_hdr(sv[0], 1, IMSG_HEADER_SIZE, 0);
	imsg_read(&tb);
	n = imsg_get(&tb, &imsg);
	ok(n == IMSG_HEADER_SIZE && imsg.data == NULL,
	    "len_header_only_is_empty_message");
	imsg_free(&imsg);
	pair_close();
}

static void
test_payload_limit_enforced_by_compose(void)
{
	struct imsg	 imsg;
	struct ibuf	*wb;
	unsigned char	*big;
	int		 p[2];

	pair_open();
	big = calloc(1, PAYLOAD_MAX + 1);
	memset(big, 'z', PAYLOAD_MAX + 1);
	errno = 0;
	ok(imsg_compose(&ta, 1, 0, 0, -1, big, PAYLOAD_MAX + 1) == -1 &&
	    errno == ERANGE, "compose_over_payload_limit_is_erange");
	is_int(ta.w.queued, 0, "compose_over_limit_queues_nothing");
	if (pipe(p) == -1)
		exit(2);
	ok(imsg_compose(&ta, 1, 0, 0, p[0], big, PAYLOAD_MAX + 1) == -1 &&
	    fd_is_open(p[0]), "failed_compose_leaves_fd_with_caller");
	close(p[0]);
	close(p[1]);
	errno = 0;
	ok(imsg_create(&ta, 1, 0, 0, PAYLOAD_MAX + 1) == NULL &&
	    errno == ERANGE, "create_over_payload_limit_is_erange");

	wb = imsg_create(&ta, 1, 0, 0, 10);
	ok(imsg_add(wb, big, PAYLOAD_MAX) == PAYLOAD_MAX,
	    "add_up_to_limit_grows_buffer");
	errno = 0;
	ok(imsg_add(wb, big, 1) == -1 && errno == ERANGE,
	    "add_past_limit_fails_and_frees");

	ok(imsg_compose(&ta, 2, 0, 0, -1, big, PAYLOAD_MAX) == 1,
	    "compose_at_payload_limit_succeeds");
	imsg_flush(&ta);
	ok(get_one(&tb, &imsg) == MAX_IMSGSIZE &&
	    memcmp(imsg.data, big, PAYLOAD_MAX) == 0,
	    "largest_message_round_trips");
	imsg_free(&imsg);
	free(big);
	pair_close();
}

static void
test_hasfd_without_fd_rejected(void)
{
	struct imsg	 imsg;

	pair_open();
	raw_hdr(sv[0], 5, IMSG_HEADER_SIZE, IMSGF_HASFD);
	imsg_read(&tb);
	errno = 0;
	ok(imsg_get(&tb, &imsg) == -1 && errno == EBADMSG,
	    "hasfd_flag_without_fd_is_ebadmsg");
	pair_close();
}

static void
test_fd_without_flag_not_attached(void)
{
	struct imsg	 imsg;
	int		 before, fd;

	before = count_fds();
	pair_open();
	/* A message composed without an fd gets none even if one waits. */
	fd = open("/dev/null", O_RDONLY);
	imsg_compose(&ta, 1, 0, 0, fd, NULL, 0);
	imsg_compose(&ta, 2, 0, 0, -1, NULL, 0);
	imsg_flush(&ta);
	ok(get_one(&tb, &imsg) > 0 && imsg.fd >= 0, "flagged_message_gets_fd");
	close(imsg.fd);
	ok(get_one(&tb, &imsg) > 0 && imsg.fd == -1,
	    "unflagged_message_gets_no_fd");
	pair_close();
	is_int(count_fds(), before, "flag_test_leaks_no_fds");
}

static void
test_ctrunc_closes_fds_and_fails(void)
{
	int		 fds[20], i, before, devnull, r;

	before = count_fds();
	pair_open();
	devnull = open("/dev/null", O_RDONLY);
	for (i = 0; i < 20; i++)
		fds[i] = devnull;
	r = raw_send_fds(sv[0], fds, 20, 4);
	close(devnull);
	ok(r == 0, "sent_twenty_fds_in_one_sendmsg");
	errno = 0;
	ok(imsg_read(&tb) == -1 && errno == EBADMSG,
	    "truncated_control_message_is_ebadmsg");
	ok(TAILQ_EMPTY(&tb.fds), "truncated_control_message_queues_no_fd");
	pair_close();
	is_int(count_fds(), before, "truncated_control_message_leaks_no_fds");
}

static void
test_too_many_unclaimed_fds_rejected(void)
{
	int		 i, before, devnull, bad = 0, last = 0;
	ssize_t		 n;

	before = count_fds();
	pair_open();
	devnull = open("/dev/null", O_RDONLY);
	for (i = 0; i < 200; i++) {
		if (raw_send_fds(sv[0], &devnull, 1, 1) == -1)
			break;
		n = imsg_read(&tb);
		if (n == -1) {
			bad = errno == EBADMSG;
			last = i;
			break;
		}
	}
	close(devnull);
	ok(bad && last > 16 && last < 200,
	    "endless_unclaimed_fds_fail_with_ebadmsg");
	pair_close();
	is_int(count_fds(), before, "imsg_clear_closes_unclaimed_fds");
}

static void
test_imsg_clear_closes_queued_fds(void)
{
	int	 before, fd;

	before = count_fds();
	pair_open();
	fd = open("/dev/null", O_RDONLY);
	imsg_compose(&ta, 1, 0, 0, fd, NULL, 0);
	imsg_clear(&ta);
	ok(!fd_is_open(fd) && ta.w.queued == 0,
	    "imsg_clear_drops_queue_and_closes_fd");
	pair_close();
	is_int(count_fds(), before, "imsg_clear_leaks_no_fds");
}

static void
test_eof_and_closed_peer(void)
{
	struct imsg	 imsg;

	pair_open();
	imsg_compose(&ta, 1, 0, 0, -1, "x", 1);
	imsg_flush(&ta);
	close(sv[0]);
	sv[0] = -1;
	ok(imsg_read(&tb) > 0 && imsg_get(&tb, &imsg) > 0,
	    "data_before_eof_is_delivered");
	imsg_free(&imsg);
	is_int(imsg_read(&tb), 0, "read_after_peer_close_is_eof");
	errno = 0;
	ok(imsg_read(&tb) == 0, "eof_is_sticky");
	imsg_compose(&tb, 1, 0, 0, -1, "x", 1);
	is_int(msgbuf_write(&tb.w), 0, "write_to_closed_peer_returns_zero");
	ok(imsg_flush(&tb) == -1 && errno == EPIPE,
	    "flush_to_closed_peer_is_epipe");
	pair_close();

	pair_open();
	errno = 0;
	ok(imsg_read(&tb) == -1 && errno == EAGAIN,
	    "read_with_nothing_there_is_eagain");
	is_int(msgbuf_write(&ta.w), 1, "write_with_nothing_queued_is_one");
	pair_close();
}

/*
 * Thousands of messages of varied sizes, some with descriptors, through
 * non-blocking sockets: the writer stops at EAGAIN, the reader drains.
 */
static void
test_burst_round_trips_in_order(void)
{
	enum { N = 5000 };
	struct imsg	 imsg;
	struct stat	 st, pst;
	unsigned char	 buf[2048];
	uint32_t	 sent = 0, got = 0, seq;
	size_t		 len;
	int		 p[2], fd, bad = 0, fdbad = 0, sawagain = 0, before;
	int		 nfd = 0, w;
	ssize_t		 n;

	before = count_fds();
	pair_open();
	if (pipe(p) == -1 || fstat(p[0], &pst) == -1)
		exit(2);
	while (got < N) {
		/* Queue a batch, then write until the socket is full. */
		while (sent < N && ta.w.queued < 500) {
			seq = sent;
			len = sizeof(seq) + (seq * 7919) % (sizeof(buf) - 4);
			memcpy(buf, &seq, sizeof(seq));
			memset(buf + sizeof(seq), seq & 0xff,
			    len - sizeof(seq));
			fd = -1;
			if (seq % 37 == 0)
				fd = dup(p[0]);
			if (imsg_compose(&ta, seq, seq, 0, fd, buf, len) != 1)
				bad = 1;
			sent++;
		}
		do {
			w = msgbuf_write(&ta.w);
		} while (w == 1 && ta.w.queued > 0);
		if (w == -1) {
			if (errno == EAGAIN)
				sawagain = 1;
			else
				bad = 1;
		}
		for (;;) {
			n = imsg_read(&tb);
			if (n == -1 && errno == EAGAIN)
				break;
			if (n <= 0) {
				bad = 1;
				break;
			}
			while ((n = imsg_get(&tb, &imsg)) > 0) {
				memcpy(&seq, imsg.data, sizeof(seq));
				len = imsg.hdr.len - IMSG_HEADER_SIZE;
				if (seq != got || imsg.hdr.type != got ||
				    len != sizeof(seq) + (seq * 7919) %
				    (sizeof(buf) - 4) ||
				    ((unsigned char *)imsg.data)[len - 1] !=
				    (len > 4 ? (seq & 0xff) :
				    ((unsigned char *)&seq)[3]))
					bad = 1;
				if ((seq % 37 == 0) != (imsg.fd != -1))
					fdbad = 1;
				if (imsg.fd != -1) {
					if (fstat(imsg.fd, &st) == -1 ||
					    st.st_ino != pst.st_ino)
						fdbad = 1;
					close(imsg.fd);
					nfd++;
				}
				imsg_free(&imsg);
				got++;
			}
			if (n == -1)
				bad = 1;
			if (bad)
				break;
		}
		if (bad)
			break;
	}
	is_int(got, N, "burst_delivers_every_message");
	ok(!bad, "burst_messages_arrive_in_order_intact");
	ok(!fdbad && nfd == (N + 36) / 37,
	    "burst_fds_attach_to_their_own_messages");
	ok(sawagain, "burst_filled_the_socket_and_saw_eagain");
	close(p[0]);
	close(p[1]);
	pair_close();
	is_int(count_fds(), before, "burst_leaks_no_fds");
}

/* imsg_flush on a non-blocking socket waits for a slow reader. */
static void
test_flush_blocks_until_peer_drains(void)
{
	enum { N = 2000 };
	struct imsg	 imsg;
	unsigned char	 buf[4000];
	pid_t		 pid;
	int		 i, status, got = 0, ok1 = 1;

	pair_open();
	fflush(NULL);
	if ((pid = fork()) == -1)
		exit(2);
	if (pid == 0) {
		close(sv[0]);
		usleep(100000);
		while (got < N) {
			if (get_one(&tb, &imsg) <= 0)
				_exit(1);
			if (imsg.hdr.type != (uint32_t)got)
				_exit(1);
			imsg_free(&imsg);
			got++;
		}
		_exit(0);
	}
	close(sv[1]);
	sv[1] = -1;
	memset(buf, 'q', sizeof(buf));
	for (i = 0; i < N; i++)
		if (imsg_compose(&ta, i, 0, 0, -1, buf, sizeof(buf)) != 1)
			ok1 = 0;
	ok(ok1 && imsg_flush(&ta) == 0 && ta.w.queued == 0,
	    "flush_writes_8mb_to_a_slow_reader");
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "slow_reader_got_everything_in_order");
	pair_close();
}

int
main(void)
{
	sv[0] = sv[1] = -1;
	test_ibuf_dynamic_grows_to_max_then_erange();
	test_ibuf_open_is_fixed_size();
	test_fd_passing_delivers_pipe_read_end();
	test_several_messages_in_one_read();
	test_message_split_across_reads();
	test_bad_header_lengths_rejected();
	test_payload_limit_enforced_by_compose();
	test_hasfd_without_fd_rejected();
	test_fd_without_flag_not_attached();
	test_ctrunc_closes_fds_and_fails();
	test_too_many_unclaimed_fds_rejected();
	test_imsg_clear_closes_queued_fds();
	test_eof_and_closed_peer();
	test_burst_round_trips_in_order();
	test_flush_blocks_until_peer_drains();
	return done_testing();
}
