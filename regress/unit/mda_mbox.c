/*
 * mda/mda_mbox.c: mbox delivery in a scratch directory.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../mda/mda.h"
#include "sqmail.h"
#include "tap.h"

static char	 scratch[PATH_MAX];

static const char env_text[] =
    "Return-Path: <alice@example.org>\n"
    "Delivered-To: bob@example.org\n";

static void
mkpath(char *buf, size_t len, const char *rel)
{
	int	 n;

	n = snprintf(buf, len, "%s/%s", scratch, rel);
	if (n < 0 || (size_t)n >= len) {
		printf("Bail out! path too long: %s\n", rel);
		exit(1);
	}
}

static int
msg_open(const char *data, size_t len)
{
	char	 path[PATH_MAX];
	int	 fd, rfd;

	mkpath(path, sizeof(path), "msg.XXXXXX");
	if ((fd = mkstemp(path)) == -1)
		return -1;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	close(fd);
	rfd = open(path, O_RDONLY);
	unlink(path);
	return rfd;
}

static char *
slurp(const char *path, size_t *len)
{
	struct stat	 sb;
	char		*buf;
	int		 fd;

	*len = 0;
	if ((fd = open(path, O_RDONLY)) == -1)
		return NULL;
	if (fstat(fd, &sb) == -1 || (buf = malloc(sb.st_size + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	if (read(fd, buf, sb.st_size) != sb.st_size) {
		close(fd);
		free(buf);
		return NULL;
	}
	buf[sb.st_size] = '\0';
	*len = sb.st_size;
	close(fd);
	return buf;
}

static off_t
file_size(const char *path)
{
	struct stat	 sb;

	if (stat(path, &sb) == -1)
		return -1;
	return sb.st_size;
}

/* "From SENDER Www Mmm dd hh:mm:ss yyyy\n"; returns its length or 0. */
static size_t
from_line_ok(const char *p, const char *sender)
{
	const char	*q;
	size_t		 n = strlen(sender);

	if (strncmp(p, "From ", 5) != 0 || strncmp(p + 5, sender, n) != 0 ||
	    p[5 + n] != ' ')
		return 0;
	q = p + 6 + n;
	/* "Thu Nov 24 16:39:00 2022" is 24 octets. */
	if (strlen(q) < 25 || q[3] != ' ' || q[7] != ' ' || q[10] != ' ' ||
	    q[13] != ':' || q[16] != ':' || q[19] != ' ' || q[24] != '\n')
		return 0;
	return q + 25 - p;
}

/* Deliver msg to a fresh mbox; the file's body after the From_ line. */
static char *
deliver_fresh(const char *rel, const char *msg, size_t msglen, int *st,
    char *err, size_t errlen)
{
	char	 box[PATH_MAX], *got;
	size_t	 len, fl;
	int	 fd;

	mkpath(box, sizeof(box), rel);
	fd = msg_open(msg, msglen);
	*st = mda_mbox_deliver(box, fd, "alice@example.org",
	    "bob@example.org", err, errlen);
	close(fd);
	got = slurp(box, &len);
	if (got == NULL || (fl = from_line_ok(got, "alice@example.org")) == 0)
		return got;
	memmove(got, got + fl, len - fl + 1);
	return got;
}

struct escape_row {
	const char	*name;
	const char	*msg;
	const char	*want;		/* after the envelope lines */
};

static const struct escape_row escape_rows[] = {
	{ "from_space_escaped", "Subject: s\n\nFrom here\n",
	    "Subject: s\n\n>From here\n\n" },
	{ "gt_from_escaped", "Subject: s\n\n>From here\n",
	    "Subject: s\n\n>>From here\n\n" },
	{ "gtgt_from_escaped", "Subject: s\n\n>>From here\n",
	    "Subject: s\n\n>>>From here\n\n" },
	{ "fromage_untouched", "Subject: s\n\nFromage\n",
	    "Subject: s\n\nFromage\n\n" },
	{ "from_without_space_untouched", "Subject: s\n\nFrom\n>From\n",
	    "Subject: s\n\nFrom\n>From\n\n" },
	{ "indented_from_untouched", "Subject: s\n\n From x\n",
	    "Subject: s\n\n From x\n\n" },
	{ "gt_alone_untouched", "Subject: s\n\n>\n>>\n> From\n",
	    "Subject: s\n\n>\n>>\n> From\n\n" },
	{ "from_inside_line_untouched", "Subject: s\n\nsay From x\n",
	    "Subject: s\n\nsay From x\n\n" },
	{ "from_at_message_start", "From x\n", ">From x\n\n" },
	{ "several_lines", "A: b\n\nFrom a\nx\nFrom b\n>From c\n",
	    "A: b\n\n>From a\nx\n>From b\n>>From c\n\n" },
	{ "crlf_kept", "A: b\r\n\r\nFrom a\r\n", "A: b\r\n\r\n>From a\r\n\n" },
	{ "no_final_newline_completed", "A: b\n\nlast", "A: b\n\nlast\n\n" },
	{ "held_prefix_at_end", "A: b\n\n>>Fro", "A: b\n\n>>Fro\n\n" },
	{ "blank_line_always_added", "A: b\n\nbody\n\n",
	    "A: b\n\nbody\n\n\n" },
	{ "empty_message", "", "\n" },
};

static void
test_escaping(void)
{
	const struct escape_row	*r;
	char			 name[128], rel[64], err[256], *got, *want;
	size_t			 i;
	int			 st;

	for (i = 0; i < sizeof(escape_rows) / sizeof(escape_rows[0]); i++) {
		r = &escape_rows[i];
		(void)snprintf(rel, sizeof(rel), "esc%zu", i);
		got = deliver_fresh(rel, r->msg, strlen(r->msg), &st, err,
		    sizeof(err));
		if (asprintf(&want, "%s%s", env_text, r->want) == -1)
			want = NULL;
		(void)snprintf(name, sizeof(name), "mbox_%s", r->name);
		if (!ok(st == SQ_OK && got != NULL && want != NULL &&
		    strcmp(got, want) == 0, name))
			printf("#   status %d (%s)\n#   got [%s]\n", st, err,
			    got ? got : "(null)");
		free(got);
		free(want);
	}
}

static void
test_first_delivery(void)
{
	const char	*msg = "Received: by mx\nSubject: hi\n\nHello.\n";
	char		 box[PATH_MAX], err[256], *got;
	struct stat	 sb;
	size_t		 len, fl;
	int		 fd, st;

	mkpath(box, sizeof(box), "mbox");
	fd = msg_open(msg, strlen(msg));
	st = mda_mbox_deliver(box, fd, "alice@example.org", "bob@example.org",
	    err, sizeof(err));
	is_int(st, SQ_OK, "mbox_created_and_delivered");
	is_str(err, "did 1+0+0/", "mbox_success_text");
	ok(stat(box, &sb) == 0 && (sb.st_mode & 0777) == 0600,
	    "mbox_created_mode_0600");
	got = slurp(box, &len);
	fl = got != NULL ? from_line_ok(got, "alice@example.org") : 0;
	ok(fl > 0, "mbox_from_line_sender_and_asctime_date");
	ok(got != NULL && fl > 0 && strncmp(got + fl, env_text,
	    strlen(env_text)) == 0, "mbox_envelope_lines_after_from_line");
	ok(got != NULL && fl > 0 && strcmp(got + fl + strlen(env_text),
	    "Received: by mx\nSubject: hi\n\nHello.\n\n") == 0,
	    "mbox_message_then_blank_line");
	free(got);
	mkpath(box, sizeof(box), "mbox.lock");
	ok(access(box, F_OK) == -1, "mbox_dotlock_removed");

	/* Append a second one. */
	mkpath(box, sizeof(box), "mbox");
	st = mda_mbox_deliver(box, fd, "", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_OK, "mbox_append_succeeds");
	got = slurp(box, &len);
	ok(got != NULL && len == 2 * fl + 2 * strlen(env_text) +
	    2 * (strlen(msg) + 1) - 2 * strlen("alice@example.org") +
	    strlen("MAILER-DAEMON"), "mbox_append_size_is_sum");
	{
		const char	*second;

		second = got != NULL ? strstr(got + 1, "\nFrom ") : NULL;
		ok(second != NULL && from_line_ok(second + 1,
		    "MAILER-DAEMON") > 0, "mbox_null_sender_is_mailer_daemon");
		ok(second != NULL && strstr(second, "Return-Path: <>\n") !=
		    NULL, "mbox_null_sender_return_path");
	}
	free(got);
	close(fd);

	/* A mailbox with old contents keeps them. */
	mkpath(box, sizeof(box), "old");
	fd = open(box, O_WRONLY | O_CREAT, 0600);
	if (write(fd, "From x Thu Jan  1 00:00:00 1970\nold\n\n", 37) == -1)
		abort();	/* test set-up failed */
	close(fd);
	fd = msg_open(msg, strlen(msg));
	(void)lseek(fd, 7, SEEK_SET);
	st = mda_mbox_deliver(box, fd, "alice@example.org", "bob@example.org",
	    err, sizeof(err));
	close(fd);
	got = slurp(box, &len);
	ok(st == SQ_OK && got != NULL && strncmp(got, "From x Thu Jan  1 "
	    "00:00:00 1970\nold\n\n", 37) == 0 && from_line_ok(got + 37,
	    "alice@example.org") > 0, "mbox_existing_contents_kept");
	ok(got != NULL && len > strlen(msg) + 2 && memcmp(got + len -
	    strlen(msg) - 1, msg, strlen(msg)) == 0,
	    "mbox_fd_at_nonzero_offset_delivered_whole");
	free(got);
}

static void
test_buffer_boundary(void)
{
	char	*msg, *want, *got, err[256];
	size_t	 n = 65536 + 100, i;
	int	 st;

	/* A line ends exactly where the copy buffer does. */
	if ((msg = malloc(n + 1)) == NULL || (want = malloc(n + 200)) ==
	    NULL)
		return;
	memcpy(msg, "A: b\n\n", 6);
	memset(msg + 6, 'x', 65536 - 6 - 1);
	msg[65535] = '\n';
	memcpy(msg + 65536, ">From y\n", 8);
	for (i = 65536 + 8; i < n; i++)
		msg[i] = 'z';
	msg[n] = '\0';
	(void)snprintf(want, n + 200, "%s%.*s>%s\n\n", env_text, 65536, msg,
	    msg + 65536);
	got = deliver_fresh("boundary", msg, n, &st, err, sizeof(err));
	ok(st == SQ_OK && got != NULL && strcmp(got, want) == 0,
	    "mbox_from_line_at_buffer_boundary_escaped");
	free(got);

	/* The "From " itself is split by the buffer boundary. */
	memset(msg + 6, 'x', 65536 - 6 - 3);
	msg[65533] = '\n';
	memcpy(msg + 65534, ">>From w\n", 9);
	msg[65543] = '\0';
	(void)snprintf(want, n + 200, "%s%.*s>%s\n", env_text, 65534, msg,
	    msg + 65534);
	got = deliver_fresh("boundary2", msg, 65543, &st, err, sizeof(err));
	ok(st == SQ_OK && got != NULL && strcmp(got, want) == 0,
	    "mbox_from_split_across_buffers_escaped");
	free(got);
	free(msg);
	free(want);
}

static void
test_refusals(void)
{
	char	 box[PATH_MAX], target[PATH_MAX], err[256];
	int	 fd, st;

	fd = msg_open("A: b\n\nbody\n", 12);

	mkpath(target, sizeof(target), "target");
	close(open(target, O_WRONLY | O_CREAT, 0600));
	mkpath(box, sizeof(box), "symlinked");
	if (symlink(target, box) == -1)
		abort();	/* test set-up failed */
	st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "mbox_symlink_refused_tempfail");
	ok(strstr(err, "symbolic link") != NULL,
	    "mbox_symlink_reason_says_symbolic_link");
	is_int(file_size(target), 0, "mbox_symlink_target_untouched");

	mkpath(box, sizeof(box), "hardlinked");
	if (link(target, box) == -1)
		abort();	/* test set-up failed */
	st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "mbox_hard_link_refused_tempfail");
	ok(strstr(err, "hard link") != NULL,
	    "mbox_hard_link_reason_says_hard_link");
	is_int(file_size(target), 0, "mbox_hard_link_target_untouched");

	mkpath(box, sizeof(box), "adir");
	mkdir(box, 0700);
	st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "mbox_directory_refused_tempfail");

	mkpath(box, sizeof(box), "nodir/mbox");
	st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "mbox_missing_directory_tempfail");

	mkpath(box, sizeof(box), "inject");
	st = mda_mbox_deliver(box, fd, "a@b\nX-Injected: 1",
	    "bob@example.org", err, sizeof(err));
	is_int(st, SQ_PERMFAIL, "mbox_newline_in_sender_permfail");
	ok(access(box, F_OK) == -1, "mbox_newline_in_sender_creates_nothing");

	if (getuid() == 0) {
		mkpath(box, sizeof(box), "foreign");
		close(open(box, O_WRONLY | O_CREAT, 0600));
		if (chown(box, 12345, 12345) == -1)
			ok(0, "chown setup");
		st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
		    sizeof(err));
		is_int(st, SQ_TEMPFAIL, "mbox_owned_by_another_user_refused");
		is_int(file_size(box), 0, "mbox_foreign_untouched");
	} else
		ok(1, "# SKIP not root: cannot make a foreign-owned file");
	close(fd);
}

static double
now(void)
{
	struct timeval	 tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec + tv.tv_usec / 1e6;
}

static void
test_locks(void)
{
	struct flock	 fl;
	struct timeval	 old[2];
	char		 box[PATH_MAX], lock[PATH_MAX], err[256], c;
	double		 t0, dt;
	pid_t		 pid;
	int		 fd, lfd, st, ready[2], release[2];

	fd = msg_open("A: b\n\nbody\n", 12);
	mkpath(box, sizeof(box), "locked");
	mkpath(lock, sizeof(lock), "locked.lock");
	close(open(box, O_WRONLY | O_CREAT, 0600));
	mda_mbox_lock_wait = 1;

	/* A child holds the fcntl lock. */
	if (pipe(ready) == -1 || pipe(release) == -1)
		return;
	if ((pid = fork()) == 0) {
		close(ready[0]);
		close(release[1]);
		lfd = open(box, O_RDWR);
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (lfd == -1 || fcntl(lfd, F_SETLKW, &fl) == -1)
			_exit(1);
		if (write(ready[1], "r", 1) == -1)
			abort();	/* test set-up failed */
		if (read(release[0], &c, 1) == -1)
			abort();	/* test set-up failed */
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	if (read(ready[0], &c, 1) == -1)
		abort();	/* test set-up failed */
	t0 = now();
	st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	dt = now() - t0;
	is_int(st, SQ_TEMPFAIL, "mbox_fcntl_locked_by_other_process_tempfail");
	ok(strstr(err, "mailbox is locked") != NULL,
	    "mbox_fcntl_locked_reason");
	ok(dt >= 0.9 && dt < 5, "mbox_fcntl_lock_waits_for_the_deadline");
	if (!(dt >= 0.9 && dt < 5))
		printf("#   waited %.2f s\n", dt);
	is_int(file_size(box), 0, "mbox_fcntl_locked_file_untouched");
	ok(access(lock, F_OK) == -1, "mbox_fcntl_locked_dotlock_removed");

	/* Released meanwhile: the wait ends as soon as it is free. */
	if (write(release[1], "x", 1) == -1)
		abort();	/* test set-up failed */
	(void)waitpid(pid, NULL, 0);
	close(ready[0]);
	close(release[1]);
	st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_OK, "mbox_delivers_once_lock_released");

	/* A fresh dotlock someone else holds. */
	lfd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);
	close(lfd);
	t0 = now();
	st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	dt = now() - t0;
	is_int(st, SQ_TEMPFAIL, "mbox_fresh_dotlock_tempfail");
	ok(dt >= 0.9 && dt < 5, "mbox_fresh_dotlock_waits_for_the_deadline");
	ok(access(lock, F_OK) == 0, "mbox_someone_elses_dotlock_left_alone");

	/* The same lock, ten minutes old, is stale. */
	gettimeofday(&old[0], NULL);
	old[0].tv_sec -= 600;
	old[1] = old[0];
	(void)utimes(lock, old);
	st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_OK, "mbox_stale_dotlock_removed_and_delivered");
	ok(access(lock, F_OK) == -1, "mbox_stale_dotlock_gone");
	close(fd);
	mda_mbox_lock_wait = MDA_LOCK_WAIT;
}

static void
test_write_error(void)
{
	struct rlimit	 old, rl;
	char		 box[PATH_MAX], err[256], *big;
	size_t		 biglen = 200000;
	off_t		 before;
	int		 fd, st;

	mkpath(box, sizeof(box), "full");
	fd = msg_open("A: b\n\nfirst\n", 13);
	(void)mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	close(fd);
	before = file_size(box);

	if ((big = malloc(biglen)) == NULL)
		return;
	memset(big, 'x', biglen);
	fd = msg_open(big, biglen);
	free(big);
	(void)signal(SIGXFSZ, SIG_IGN);
	(void)getrlimit(RLIMIT_FSIZE, &old);
	rl = old;
	rl.rlim_cur = 100000;
	(void)setrlimit(RLIMIT_FSIZE, &rl);
	st = mda_mbox_deliver(box, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	(void)setrlimit(RLIMIT_FSIZE, &old);
	is_int(st, SQ_TEMPFAIL, "mbox_write_error_tempfail");
	ok(strstr(err, "#4.") != NULL, "mbox_write_error_has_a_4xx_code");
	ok(before > 0 && file_size(box) == before,
	    "mbox_write_error_cut_back_to_old_size");
	close(fd);
}

int
main(void)
{
	char	 cmd[PATH_MAX + 16];

	(void)strlcpy(scratch, "/tmp/mda_mbox.XXXXXX", sizeof(scratch));
	if (mkdtemp(scratch) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_first_delivery();
	test_escaping();
	test_buffer_boundary();
	test_refusals();
	test_locks();
	test_write_error();
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) == -1)
		abort();	/* test set-up failed */
	return done_testing();
}
