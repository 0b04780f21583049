/*
 * mda/mda_maildir.c: Maildir delivery in a scratch directory.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../mda/mda.h"
#include "sqmail.h"
#include "tap.h"

static char	 scratch[PATH_MAX];

static const char msg_text[] =
    "Received: from client.example.net by mx.example.org\n"
    "From: Alice <alice@example.org>\n"
    "Subject: hello\n"
    "\n"
    "From the body.\n";

static const char env_text[] =
    "Return-Path: <alice@example.org>\n"
    "Delivered-To: bob@example.org\n";

static void
joinpath(char *buf, size_t len, const char *dir, const char *rel)
{
	int	 n;

	n = snprintf(buf, len, "%s/%s", dir, rel);
	if (n < 0 || (size_t)n >= len) {
		printf("Bail out! path too long: %s/%s\n", dir, rel);
		exit(1);
	}
}

static void
mkpath(char *buf, size_t len, const char *rel)
{
	joinpath(buf, len, scratch, rel);
}

/* A message file opened read-only, like the queue's descriptor. */
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

/* The number of entries in dir, and the name of the last one seen. */
static int
count_dir(const char *dir, char *last, size_t lastlen)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		n++;
		if (last != NULL)
			(void)strlcpy(last, de->d_name, lastlen);
	}
	closedir(d);
	return n;
}

/* The contents of a file, NUL terminated; *len its size. */
static char *
slurp(const char *path, size_t *len)
{
	struct stat	 sb;
	char		*buf;
	int		 fd;

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

static int
is_dir_mode(const char *path, mode_t mode)
{
	struct stat	 sb;

	return lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    (sb.st_mode & 07777) == mode;
}

/* The name is "<digits>.M<digits>P<pid>Q<digits>.<host>". */
static int
name_ok(const char *name, const char *host)
{
	char		 want[64];
	const char	*p = name;

	while (*p >= '0' && *p <= '9')
		p++;
	if (p == name || strncmp(p, ".M", 2) != 0)
		return 0;
	p += 2;
	while (*p >= '0' && *p <= '9')
		p++;
	(void)snprintf(want, sizeof(want), "P%ldQ", (long)getpid());
	if (strncmp(p, want, strlen(want)) != 0)
		return 0;
	p += strlen(want);
	if (*p < '0' || *p > '9')
		return 0;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == '.' && strcmp(p + 1, host) == 0;
}

static void
test_first_delivery(void)
{
	char	 md[PATH_MAX], sub[PATH_MAX], file[PATH_MAX];
	char	 name[NAME_MAX + 1];
	char	 err[256], *got, *want;
	size_t	 len;
	int	 fd, st;

	mkpath(md, sizeof(md), "Maildir/");
	fd = msg_open(msg_text, sizeof(msg_text) - 1);
	st = mda_maildir_deliver(md, fd, "alice@example.org",
	    "bob@example.org", err, sizeof(err));
	is_int(st, SQ_OK, "missing_maildir_is_created_and_delivered_to");
	is_str(err, "did 1+0+0/", "success_text_is_qmail_style");
	mkpath(sub, sizeof(sub), "Maildir");
	ok(is_dir_mode(sub, 0700), "created_maildir_mode_0700");
	mkpath(sub, sizeof(sub), "Maildir/tmp");
	ok(is_dir_mode(sub, 0700), "created_tmp_mode_0700");
	is_int(count_dir(sub, NULL, 0), 0, "tmp_is_empty_after_delivery");
	mkpath(sub, sizeof(sub), "Maildir/cur");
	ok(is_dir_mode(sub, 0700), "created_cur_mode_0700");
	mkpath(sub, sizeof(sub), "Maildir/new");
	ok(is_dir_mode(sub, 0700), "created_new_mode_0700");
	is_int(count_dir(sub, name, sizeof(name)), 1, "one_file_in_new");
	ok(name_ok(name, "mx\\0571\\072example.org"),
	    "file_name_has_time_usec_pid_counter_escaped_host");
	if (!name_ok(name, "mx\\0571\\072example.org"))
		printf("#   name %s\n", name);

	joinpath(file, sizeof(file), sub, name);
	got = slurp(file, &len);
	if (asprintf(&want, "%s%s", env_text, msg_text) == -1)
		want = NULL;
	ok(got != NULL && want != NULL && len == strlen(want) &&
	    memcmp(got, want, len) == 0,
	    "delivered_bytes_are_envelope_lines_and_message");
	{
		struct stat	 sb;

		ok(stat(file, &sb) == 0 && (sb.st_mode & 0777) == 0600 &&
		    sb.st_nlink == 1, "delivered_file_mode_0600_one_link");
	}
	free(got);
	free(want);
	close(fd);
}

static void
test_many(void)
{
	char	 md[PATH_MAX], sub[PATH_MAX], err[256];
	int	 fd, i, bad = 0;

	mkpath(md, sizeof(md), "Many");
	fd = msg_open(msg_text, sizeof(msg_text) - 1);
	for (i = 0; i < 1000; i++)
		if (mda_maildir_deliver(md, fd, "alice@example.org",
		    "bob@example.org", err, sizeof(err)) != SQ_OK)
			bad++;
	is_int(bad, 0, "thousand_deliveries_succeed");
	mkpath(sub, sizeof(sub), "Many/new");
	is_int(count_dir(sub, NULL, 0), 1000,
	    "thousand_deliveries_thousand_distinct_names");
	mkpath(sub, sizeof(sub), "Many/tmp");
	is_int(count_dir(sub, NULL, 0), 0, "thousand_deliveries_tmp_empty");
	close(fd);
}

static void
test_long_hostname(void)
{
	char	 md[PATH_MAX], sub[PATH_MAX], host[251], err[256];
	int	 fd, st;

	memset(host, 'h', sizeof(host) - 1);
	host[10] = ':';
	host[sizeof(host) - 1] = '\0';
	mda_set_hostname(host);
	mkpath(md, sizeof(md), "LongHost");
	fd = msg_open(msg_text, sizeof(msg_text) - 1);
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_OK, "long_hostname_cut_to_fit_name_max");
	mkpath(sub, sizeof(sub), "LongHost/new");
	is_int(count_dir(sub, NULL, 0), 1, "long_hostname_delivered");
	close(fd);
	mda_set_hostname("mx/1:example.org");
}

static void
test_offset_and_big(void)
{
	char	 md[PATH_MAX], sub[PATH_MAX], file[PATH_MAX];
	char	 name[NAME_MAX + 1], err[256], *big, *got;
	size_t	 biglen = 300000, len, i;
	int	 fd, st;

	mkpath(md, sizeof(md), "Offset/");
	fd = msg_open(msg_text, sizeof(msg_text) - 1);
	(void)lseek(fd, 0, SEEK_END);
	st = mda_maildir_deliver(md, fd, "alice@example.org",
	    "bob@example.org", err, sizeof(err));
	is_int(st, SQ_OK, "fd_at_end_delivers");
	mkpath(sub, sizeof(sub), "Offset/new");
	count_dir(sub, name, sizeof(name));
	joinpath(file, sizeof(file), sub, name);
	got = slurp(file, &len);
	is_int(got != NULL ? len : 0, strlen(env_text) + sizeof(msg_text) - 1,
	    "fd_at_nonzero_offset_message_delivered_whole");
	free(got);
	close(fd);
	unlink(file);

	/* Larger than the copy buffer, with no newline at the end. */
	if ((big = malloc(biglen)) == NULL)
		return;
	for (i = 0; i < biglen; i++)
		big[i] = (i % 77 == 76) ? '\n' : 'a' + i % 26;
	big[biglen - 1] = 'z';
	fd = msg_open(big, biglen);
	(void)lseek(fd, 12345, SEEK_SET);
	st = mda_maildir_deliver(md, fd, "", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_OK, "big_message_delivers");
	count_dir(sub, name, sizeof(name));
	joinpath(file, sizeof(file), sub, name);
	got = slurp(file, &len);
	ok(got != NULL && len == strlen("Return-Path: <>\nDelivered-To: "
	    "bob@example.org\n") + biglen && strncmp(got, "Return-Path: <>\n",
	    16) == 0 && memcmp(got + len - biglen, big, biglen) == 0,
	    "big_message_bytes_exact_null_sender");
	free(got);
	free(big);
	close(fd);
}

static void
test_refusals(void)
{
	char	 md[PATH_MAX], sub[PATH_MAX], other[PATH_MAX], err[256];
	int	 fd, st;

	fd = msg_open(msg_text, sizeof(msg_text) - 1);

	mkpath(md, sizeof(md), "nope/Maildir/");
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "missing_parent_is_tempfail");
	mkpath(sub, sizeof(sub), "nope");
	ok(access(sub, F_OK) == -1, "missing_parent_is_not_created");

	/* new/ is a symbolic link to a directory elsewhere. */
	mkpath(md, sizeof(md), "Linked");
	mkpath(other, sizeof(other), "elsewhere");
	mkdir(md, 0700);
	mkdir(other, 0700);
	mkpath(sub, sizeof(sub), "Linked/tmp");
	mkdir(sub, 0700);
	mkpath(sub, sizeof(sub), "Linked/cur");
	mkdir(sub, 0700);
	mkpath(sub, sizeof(sub), "Linked/new");
	if (symlink(other, sub) == -1)
		ok(0, "symlink setup");
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "symlinked_new_is_tempfail");
	ok(strstr(err, "symbolic link") != NULL,
	    "symlinked_new_reason_says_symbolic_link");
	is_int(count_dir(other, NULL, 0), 0, "symlinked_new_target_untouched");
	mkpath(sub, sizeof(sub), "Linked/tmp");
	is_int(count_dir(sub, NULL, 0), 0, "symlinked_new_leaves_no_tmp_file");

	/* tmp/ is a symbolic link. */
	mkpath(md, sizeof(md), "LinkedTmp");
	mkdir(md, 0700);
	mkpath(sub, sizeof(sub), "LinkedTmp/tmp");
	if (symlink(other, sub) == -1)
		abort();	/* test set-up failed */
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "symlinked_tmp_is_tempfail");
	is_int(count_dir(other, NULL, 0), 0, "symlinked_tmp_target_untouched");

	/* A dangling symbolic link as new/. */
	mkpath(md, sizeof(md), "Dangling");
	mkdir(md, 0700);
	mkpath(sub, sizeof(sub), "Dangling/new");
	if (symlink("/nonexistent/new", sub) == -1)
		abort();	/* test set-up failed */
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "dangling_symlinked_new_is_tempfail");

	/* A regular file where the Maildir should be. */
	mkpath(md, sizeof(md), "AFile");
	close(open(md, O_WRONLY | O_CREAT, 0600));
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "file_in_the_way_of_maildir_is_tempfail");

	/* A regular file where new/ should be. */
	mkpath(md, sizeof(md), "FileNew");
	mkdir(md, 0700);
	mkpath(sub, sizeof(sub), "FileNew/new");
	close(open(sub, O_WRONLY | O_CREAT, 0600));
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_TEMPFAIL, "file_in_the_way_of_new_is_tempfail");
	ok(strstr(err, "not a directory") != NULL,
	    "file_in_the_way_reason_says_not_a_directory");
	mkpath(sub, sizeof(sub), "FileNew/tmp");
	is_int(count_dir(sub, NULL, 0), 0, "file_in_the_way_no_tmp_file_left");

	/* An envelope address that would inject a header line. */
	mkpath(md, sizeof(md), "Maildir");
	st = mda_maildir_deliver(md, fd, "a@b\nX-Injected: 1",
	    "bob@example.org", err, sizeof(err));
	is_int(st, SQ_PERMFAIL, "newline_in_sender_is_permfail");

	/* A directory with tmp/ missing gets it back. */
	mkpath(md, sizeof(md), "NoTmp");
	mkdir(md, 0700);
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_OK, "existing_maildir_missing_subdirs_recreated");

	/* The Maildir itself may be a symbolic link. */
	mkpath(md, sizeof(md), "MaildirLink");
	mkpath(other, sizeof(other), "Many");
	if (symlink(other, md) == -1)
		abort();	/* test set-up failed */
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	is_int(st, SQ_OK, "symlinked_maildir_itself_is_followed");
	mkpath(sub, sizeof(sub), "Many/new");
	is_int(count_dir(sub, NULL, 0), 1001, "symlinked_maildir_delivered");

	close(fd);
}

static void
test_write_error(void)
{
	struct rlimit	 old, rl;
	char		 md[PATH_MAX], sub[PATH_MAX], err[256], *big;
	size_t		 biglen = 200000;
	int		 fd, st;

	if ((big = malloc(biglen)) == NULL)
		return;
	memset(big, 'x', biglen);
	fd = msg_open(big, biglen);
	free(big);
	mkpath(md, sizeof(md), "Full");
	(void)signal(SIGXFSZ, SIG_IGN);
	(void)getrlimit(RLIMIT_FSIZE, &old);
	rl = old;
	rl.rlim_cur = 100000;
	(void)setrlimit(RLIMIT_FSIZE, &rl);
	st = mda_maildir_deliver(md, fd, "a@b", "bob@example.org", err,
	    sizeof(err));
	(void)setrlimit(RLIMIT_FSIZE, &old);
	is_int(st, SQ_TEMPFAIL, "write_error_is_tempfail");
	ok(strstr(err, "#4.") != NULL, "write_error_has_a_4xx_code");
	mkpath(sub, sizeof(sub), "Full/new");
	is_int(count_dir(sub, NULL, 0), 0, "write_error_nothing_in_new");
	mkpath(sub, sizeof(sub), "Full/tmp");
	is_int(count_dir(sub, NULL, 0), 0, "write_error_tmp_cleaned");
	close(fd);
}

int
main(void)
{
	char	 cmd[PATH_MAX + 16];

	(void)strlcpy(scratch, "/tmp/mda_maildir.XXXXXX", sizeof(scratch));
	if (mkdtemp(scratch) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	mda_set_hostname("mx/1:example.org");
	test_first_delivery();
	test_many();
	test_long_hostname();
	test_offset_and_big();
	test_refusals();
	test_write_error();
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) == -1)
		abort();	/* test set-up failed */
	return done_testing();
}
