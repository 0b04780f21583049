/*
 * queue/queue_fs.c: commit, update, remove and recovery in a scratch spool.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sqmail.h"
#include "tap.h"
#include "../../queue/queue.h"

static struct envelope	queue_test_recovered[64];
static size_t		queue_test_nrecovered;

static int
queue_test_exists(const char *dir, uint64_t id, const char *suffix)
{
	struct stat	 sb;
	char		 path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%" PRIu64 "%s", dir, id, suffix);
	return lstat(path, &sb) == 0;
}

static size_t
queue_test_count(const char *dir)
{
	struct dirent	*de;
	DIR		*d;
	size_t		 n = 0;

	if ((d = opendir(dir)) == NULL)
		return (size_t)-1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
queue_test_write(const char *path, const char *text)
{
	int	 fd;

	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	if (fd == -1 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fprintf(stderr, "cannot write %s\n", path);
	if (fd != -1)
		close(fd);
}

/* A message in incoming/ and its envelope, as smtp would leave them. */
static uint64_t
queue_test_receive(struct envelope *env, const char *body, size_t nrcpt)
{
	uint64_t	 id;
	size_t		 i;
	int		 fd;

	memset(env, 0, sizeof(*env));
	if (queue_fs_create(&id, &fd) != SQ_OK)
		return 0;
	if (write(fd, body, strlen(body)) != (ssize_t)strlen(body))
		return 0;
	close(fd);
	env->id = id;
	env->ctime = time(NULL);
	strlcpy(env->sender, "alice@example.org", sizeof(env->sender));
	strlcpy(env->proto, "ESMTP", sizeof(env->proto));
	env->nrcpt = nrcpt;
	env->rcpts = calloc(nrcpt, sizeof(*env->rcpts));
	for (i = 0; i < nrcpt; i++) {
		snprintf(env->rcpts[i].dest.addr,
		    sizeof(env->rcpts[i].dest.addr), "r%zu@example.net", i);
		env->rcpts[i].dest.type = DEST_REMOTE;
		env->rcpts[i].next_try = env->ctime;
	}
	return id;
}

static int
queue_test_read_env(uint64_t id, struct envelope *env)
{
	struct stat	 sb;
	char		 path[PATH_MAX], *buf;
	int		 fd, rc = -1;

	snprintf(path, sizeof(path), "env/%" PRIu64, id);
	if ((fd = open(path, O_RDONLY)) == -1)
		return -1;
	if (fstat(fd, &sb) == 0 && (buf = malloc(sb.st_size + 1)) != NULL) {
		if (read(fd, buf, sb.st_size) == sb.st_size)
			rc = envelope_decode(buf, sb.st_size, env);
		free(buf);
	}
	close(fd);
	return rc;
}

static void
queue_test_collect(struct envelope *env, void *arg)
{
	if (queue_test_nrecovered < 64)
		queue_test_recovered[queue_test_nrecovered++] = *env;
	else
		envelope_free(env);
}

static void
queue_test_clear_recovered(void)
{
	size_t	 i;

	for (i = 0; i < queue_test_nrecovered; i++)
		envelope_free(&queue_test_recovered[i]);
	queue_test_nrecovered = 0;
}

static void
init_creates_the_spool(void)
{
	is_int(queue_fs_init(), 0, "queue_fs_init");
	is_int(queue_test_count("incoming"), 0, "incoming/ exists, empty");
	is_int(queue_test_count("mess"), 0, "mess/ exists, empty");
	is_int(queue_test_count("env"), 0, "env/ exists, empty");
	is_int(queue_test_count("quarantine"), 0, "quarantine/ exists, empty");
	is_int(queue_fs_init(), 0, "queue_fs_init twice");
}

static void
ids_are_unique_and_decimal(void)
{
	uint64_t	 ids[500], id;
	char		 buf[QUEUE_ID_STRLEN];
	size_t		 i, j;
	int		 fd, dup = 0;

	for (i = 0; i < 500; i++) {
		if (queue_fs_create(&ids[i], &fd) != SQ_OK)
			break;
		close(fd);
	}
	is_int(i, 500, "500 messages created");
	for (i = 0; i < 500; i++)
		for (j = i + 1; j < 500; j++)
			if (ids[i] == ids[j])
				dup++;
	is_int(dup, 0, "every id differs");
	ok(queue_test_exists("incoming", ids[0], ""), "incoming/<id> exists");
	for (i = 0; i < 500; i++)
		queue_fs_abort(ids[i]);
	is_int(queue_test_count("incoming"), 0, "abort removes each");

	queue_id_str(18446744073709551615ULL, buf, sizeof(buf));
	is_str(buf, "18446744073709551615", "largest id as text");
	ok(queue_id_parse("18446744073709551615", &id) == 0 &&
	    id == UINT64_MAX, "and parsed back");
	is_int(queue_id_parse("18446744073709551616", &id), -1,
	    "id past 64 bits");
	is_int(queue_id_parse("0", &id), -1, "id 0");
	is_int(queue_id_parse("012", &id), -1, "leading zero");
	is_int(queue_id_parse("12a", &id), -1, "not a digit");
	is_int(queue_id_parse("", &id), -1, "empty");
	is_int(queue_id_parse("12.tmp", &id), -1, "suffix");
}

static void
commit_makes_message_and_envelope_durable(void)
{
	struct envelope	 env, back;
	struct queue_op	 op, *ops[1];
	uint64_t	 id;

	id = queue_test_receive(&env, "Subject: hi\n\nhello\n", 2);
	ok(id != 0, "message received in incoming/");
	memset(&op, 0, sizeof(op));
	op.type = QUEUE_OP_COMMIT;
	op.env = &env;
	ops[0] = &op;
	queue_fs_batch(ops, 1);
	is_int(op.status, SQ_OK, "commit succeeds");
	ok(queue_test_exists("mess", id, ""), "mess/<id> exists");
	ok(queue_test_exists("env", id, ""), "env/<id> exists");
	is_int(queue_test_count("incoming"), 0, "incoming/ is empty again");
	is_int(env.size, 19, "size taken from the file");
	is_int(queue_test_read_env(id, &back), 0, "envelope decodes");
	is_int(back.id, id, "with its id");
	is_int(back.nrcpt, 2, "and its recipients");
	is_int(back.size, 19, "and the size");
	envelope_free(&back);

	/* Update: a recipient is done. */
	env.rcpts[0].state = RCPT_DONE;
	strlcpy(env.rcpts[1].error, "451 later", sizeof(env.rcpts[1].error));
	env.rcpts[1].tries = 1;
	op.type = QUEUE_OP_UPDATE;
	queue_fs_batch(ops, 1);
	is_int(op.status, SQ_OK, "update succeeds");
	ok(!queue_test_exists("env", id, ".tmp"), "no env/<id>.tmp left");
	is_int(queue_test_read_env(id, &back), 0, "updated envelope decodes");
	is_int(back.rcpts[0].state, RCPT_DONE, "first recipient done");
	is_str(back.rcpts[1].error, "451 later", "second has its error");
	envelope_free(&back);

	is_int(queue_fs_remove(id), 0, "remove");
	ok(!queue_test_exists("env", id, ""), "env/<id> gone");
	ok(!queue_test_exists("mess", id, ""), "mess/<id> gone");
	envelope_free(&env);
}

static void
group_commit_of_many_messages(void)
{
	struct envelope	 envs[20];
	struct queue_op	 op[20], *ops[21];
	struct queue_op	 upd;
	uint64_t	 ids[20];
	size_t		 i, good = 0;

	for (i = 0; i < 20; i++) {
		ids[i] = queue_test_receive(&envs[i], "x\n", 1 + i % 3);
		memset(&op[i], 0, sizeof(op[i]));
		op[i].type = QUEUE_OP_COMMIT;
		op[i].env = &envs[i];
		ops[i] = &op[i];
	}
	/* One whose data vanished: it alone fails. */
	queue_fs_abort(ids[7]);
	/* One whose envelope cannot be encoded: refused for good. */
	strlcpy(envs[11].sender, "bad\nsender", sizeof(envs[11].sender));
	queue_fs_batch(ops, 20);
	for (i = 0; i < 20; i++)
		if (op[i].status == SQ_OK && queue_test_exists("mess", ids[i],
		    "") && queue_test_exists("env", ids[i], ""))
			good++;
	is_int(good, 18, "18 of 20 committed in one batch");
	is_int(op[7].status, SQ_TEMPFAIL, "missing data: TEMPFAIL");
	is_int(op[11].status, SQ_PERMFAIL, "bad envelope: PERMFAIL");
	ok(!queue_test_exists("env", ids[11], "") &&
	    !queue_test_exists("mess", ids[11], ""),
	    "refused one left no file");
	is_int(queue_test_count("incoming"), 0, "incoming/ empty after batch");
	is_int(queue_test_count("mess"), 18, "18 message files");
	is_int(queue_test_count("env"), 18, "18 envelopes");

	/* Commits and updates share a batch. */
	envs[0].rcpts[0].state = RCPT_FAILED;
	memset(&upd, 0, sizeof(upd));
	upd.type = QUEUE_OP_UPDATE;
	upd.env = &envs[0];
	ops[0] = &upd;
	queue_fs_batch(ops, 1);
	is_int(upd.status, SQ_OK, "an update alone");
	queue_fs_batch(NULL, 0);
	is_int(queue_test_count("env"), 18, "an empty batch changes nothing");

	/* Many updates at once: the pool skips their empty message slots. */
	for (i = 0, good = 0; i < 20; i++) {
		if (op[i].status != SQ_OK)
			continue;
		envs[i].rcpts[0].tries++;
		memset(&op[i], 0, sizeof(op[i]));
		op[i].type = QUEUE_OP_UPDATE;
		op[i].env = &envs[i];
		ops[good++] = &op[i];
	}
	queue_fs_batch(ops, good);
	for (i = 0, good = 0; i < 20; i++)
		if (op[i].type == QUEUE_OP_UPDATE && op[i].status == SQ_OK)
			good++;
	is_int(good, 18, "18 updates in one batch all stored");

	for (i = 0; i < 20; i++) {
		if (op[i].status == SQ_OK)
			queue_fs_remove(ids[i]);
		envelope_free(&envs[i]);
	}
	is_int(queue_test_count("mess") + queue_test_count("env"), 0,
	    "all removed");
}

static void
update_too_large_is_shortened(void)
{
	struct envelope	 env, back;
	struct queue_op	 op, *ops[1];
	uint64_t	 id;
	size_t		 i, n = 3000;

	id = queue_test_receive(&env, "x\n", n);
	memset(&op, 0, sizeof(op));
	op.type = QUEUE_OP_COMMIT;
	op.env = &env;
	ops[0] = &op;
	queue_fs_batch(ops, 1);
	is_int(op.status, SQ_OK, "3000 recipients commit");
	for (i = 0; i < n; i++)
		memset(env.rcpts[i].error, 'e', sizeof(env.rcpts[i].error) - 1);
	op.type = QUEUE_OP_UPDATE;
	queue_fs_batch(ops, 1);
	is_int(op.status, SQ_OK, "an update past ENVELOPE_MAX still stores");
	is_int(queue_test_read_env(id, &back), 0,
	    "the shortened envelope decodes");
	is_int(back.nrcpt, n, "with every recipient");
	is_int(strlen(back.rcpts[0].error), 64, "errors shortened to 64");
	envelope_free(&back);
	queue_fs_remove(id);
	envelope_free(&env);

	/* A commit that could not take its error texts later is refused. */
	id = queue_test_receive(&env, "x\n", 20000);
	memset(&op, 0, sizeof(op));
	op.type = QUEUE_OP_COMMIT;
	op.env = &env;
	queue_fs_batch(ops, 1);
	is_int(op.status, SQ_PERMFAIL, "20000 recipients: PERMFAIL");
	ok(!queue_test_exists("incoming", id, ""), "and no file is left");
	envelope_free(&env);
}

static void
recovery_sorts_out_the_spool(void)
{
	struct envelope	 env[4];
	struct queue_op	 op[4], *ops[4];
	struct queue_recovery rec;
	char		 path[PATH_MAX];
	uint64_t	 ids[4], lost;
	size_t		 i;
	int		 fd;

	for (i = 0; i < 4; i++) {
		ids[i] = queue_test_receive(&env[i], "body\n", 1);
		memset(&op[i], 0, sizeof(op[i]));
		op[i].type = QUEUE_OP_COMMIT;
		op[i].env = &env[i];
		ops[i] = &op[i];
	}
	queue_fs_batch(ops, 4);
	for (i = 0; i < 4; i++)
		envelope_free(&env[i]);
	/* 0 stays good; 1 loses its message; 2 gets a corrupt envelope. */
	snprintf(path, sizeof(path), "mess/%" PRIu64, ids[1]);
	unlink(path);
	snprintf(path, sizeof(path), "env/%" PRIu64, ids[2]);
	queue_test_write(path, "sqmail-envelope 1\nid garbage\n");
	/* 3 names another message. */
	snprintf(path, sizeof(path), "env/%" PRIu64, ids[3]);
	queue_test_write(path, "sqmail-envelope 1\nid 42\nctime 1\nsender\n"
	    "size 1\nrcpt\naddr a@b\ntype local\nstate pending\nend\n");
	/* Leftovers: a message being received, an interrupted update. */
	queue_fs_create(&lost, &fd);
	close(fd);
	snprintf(path, sizeof(path), "incoming/%" PRIu64 ".env", lost);
	queue_test_write(path, "partial");
	snprintf(path, sizeof(path), "env/%" PRIu64 ".tmp", ids[0]);
	queue_test_write(path, "half an upd");
	/* A message file never acknowledged, and a stranger. */
	queue_test_write("mess/99", "orphan\n");
	queue_test_write("env/notes.txt", "hello\n");

	is_int(queue_fs_recover(queue_test_collect, NULL, &rec), 0,
	    "recovery runs");
	is_int(rec.messages, 1, "one message recovered");
	is_int(rec.pending, 1, "with one pending recipient");
	is_int(rec.incoming, 2, "two incoming files removed");
	is_int(rec.quarantined, 3, "three quarantined");
	is_int(rec.orphans, 2, "orphan file and foreign envelope removed");
	is_int(queue_test_nrecovered, 1, "callback called once");
	ok(queue_test_nrecovered == 1 && queue_test_recovered[0].id == ids[0],
	    "for the good message");
	ok(queue_test_exists("env", ids[0], "") &&
	    queue_test_exists("mess", ids[0], ""), "the good message stays");
	ok(!queue_test_exists("env", ids[0], ".tmp"),
	    "interrupted update gone");
	is_int(queue_test_count("incoming"), 0, "incoming/ emptied");
	ok(queue_test_exists("quarantine", ids[1], ".env") &&
	    !queue_test_exists("env", ids[1], ""),
	    "envelope without message quarantined");
	ok(queue_test_exists("quarantine", ids[2], ".env") &&
	    queue_test_exists("quarantine", ids[2], ""),
	    "corrupt envelope quarantined with its message");
	ok(!queue_test_exists("env", ids[3], "") &&
	    !queue_test_exists("mess", ids[3], "") &&
	    !queue_test_exists("quarantine", ids[3], ".env"),
	    "envelope naming another id: a reused file, commit cut short");
	ok(!queue_test_exists("mess", 99, ""), "orphan message file removed");
	ok(access("quarantine/notes.txt.unknown", F_OK) == 0,
	    "stranger in env/ quarantined");
	is_int(queue_test_count("env"), 1, "env/ holds the good one only");
	is_int(queue_test_count("mess"), 1, "mess/ holds the good one only");
	queue_test_clear_recovered();

	/* Quarantining again never overwrites. */
	snprintf(path, sizeof(path), "env/%" PRIu64, ids[2]);
	queue_test_write(path, "broken again\n");
	is_int(queue_fs_recover(queue_test_collect, NULL, &rec), 0,
	    "second recovery");
	is_int(rec.quarantined, 1, "quarantined once more");
	snprintf(path, sizeof(path), "quarantine/%" PRIu64 ".env.1", ids[2]);
	ok(access(path, F_OK) == 0, "under a new name");
	is_int(rec.messages, 1, "the good message is found again");
	queue_test_clear_recovered();
	queue_fs_remove(ids[0]);
}

static void
recovery_of_a_crash_between_renames(void)
{
	struct envelope		 env;
	struct queue_recovery	 rec;
	char			 from[PATH_MAX], to[PATH_MAX];
	uint64_t		 id;

	/* Crash after mess/ got the file, before env/ got the envelope. */
	id = queue_test_receive(&env, "data\n", 1);
	snprintf(from, sizeof(from), "incoming/%" PRIu64, id);
	snprintf(to, sizeof(to), "mess/%" PRIu64, id);
	rename(from, to);
	is_int(queue_fs_recover(queue_test_collect, NULL, &rec), 0,
	    "recovery after a crash mid-commit");
	is_int(rec.orphans, 1, "the unacknowledged message is removed");
	is_int(rec.messages, 0, "nothing is scheduled");
	ok(!queue_test_exists("mess", id, ""), "mess/<id> gone");
	envelope_free(&env);
	queue_test_clear_recovered();
}

/*
 * A crash between a commit's renames and its fsyncs (never acknowledged):
 * an empty envelope, or an untouched envelope whose message is not the
 * recorded size, is removed; a size mismatch after a delivery attempt is
 * real damage and goes to quarantine.
 */
static void
recovery_removes_torn_commits(void)
{
	struct envelope	 env[4];
	struct queue_op	 op[4], *ops[4];
	struct queue_recovery rec;
	char		 path[PATH_MAX];
	uint64_t	 ids[4];
	size_t		 i;

	for (i = 0; i < 4; i++) {
		ids[i] = queue_test_receive(&env[i], "a body of some size\n", 1);
		memset(&op[i], 0, sizeof(op[i]));
		op[i].type = QUEUE_OP_COMMIT;
		op[i].env = &env[i];
		ops[i] = &op[i];
	}
	queue_fs_batch(ops, 4);
	/* 2 was tried once: its envelope was updated since the commit. */
	env[2].rcpts[0].tries = 1;
	memset(&op[2], 0, sizeof(op[2]));
	op[2].type = QUEUE_OP_UPDATE;
	op[2].env = &env[2];
	queue_fs_batch(&ops[2], 1);
	is_int(op[2].status, SQ_OK, "torn: the update of 2 is stored");
	for (i = 0; i < 4; i++)
		envelope_free(&env[i]);

	snprintf(path, sizeof(path), "env/%" PRIu64, ids[0]);
	queue_test_write(path, "");
	snprintf(path, sizeof(path), "mess/%" PRIu64, ids[1]);
	queue_test_write(path, "a bo");
	snprintf(path, sizeof(path), "mess/%" PRIu64, ids[2]);
	queue_test_write(path, "a bo");
	/* 3: the right size, stale content (a reused file's old blocks). */
	snprintf(path, sizeof(path), "mess/%" PRIu64, ids[3]);
	queue_test_write(path, "A BODY OF SOME SIZE\n");

	queue_test_nrecovered = 0;
	is_int(queue_fs_recover(queue_test_collect, NULL, &rec), 0,
	    "torn: recovery runs");
	is_int(rec.messages, 0, "torn: nothing recovered");
	is_int(rec.orphans, 3, "torn: three cut-short commits removed");
	is_int(rec.quarantined, 1, "torn: the damaged tried one quarantined");
	ok(!queue_test_exists("env", ids[0], "") &&
	    !queue_test_exists("mess", ids[0], ""),
	    "torn: empty envelope and its message gone");
	ok(!queue_test_exists("env", ids[1], "") &&
	    !queue_test_exists("mess", ids[1], ""),
	    "torn: short untouched message and its envelope gone");
	ok(queue_test_exists("quarantine", ids[2], ".env") &&
	    queue_test_exists("quarantine", ids[2], ""),
	    "torn: short message tried before is quarantined, not dropped");
	ok(!queue_test_exists("env", ids[3], "") &&
	    !queue_test_exists("mess", ids[3], ""),
	    "torn: same size, other content (hash differs): gone");
}

/*
 * Finished files are kept in spare/ and reused: no inode is allocated
 * or freed per message once the spool runs.
 */
static void
spare_files_are_reused(void)
{
	struct envelope	 env;
	struct queue_op	 op, *ops[1] = { &op };
	struct stat	 sb;
	char		 path[PATH_MAX];
	uint64_t	 id;
	size_t		 before;
	ino_t		 ino;
	int		 fd;

	id = queue_test_receive(&env, "to be reused\n", 1);
	memset(&op, 0, sizeof(op));
	op.type = QUEUE_OP_COMMIT;
	op.env = &env;
	queue_fs_batch(ops, 1);
	envelope_free(&env);
	snprintf(path, sizeof(path), "mess/%" PRIu64, id);
	is_int(stat(path, &sb), 0, "spare: committed");
	ino = sb.st_ino;
	before = queue_spare_count();
	is_int(queue_fs_remove(id), 0, "spare: removed");
	is_int(queue_spare_count(), before + 2, "spare: both files kept");
	is_int(queue_test_count("spare"), (long long)before + 2,
	    "spare: in spare/");
	/* The newest spare (the message file) is the next one taken. */
	is_int(queue_fs_create(&id, &fd), SQ_OK, "spare: create");
	is_int(fstat(fd, &sb), 0, "spare: fstat");
	ok(sb.st_ino == ino && sb.st_size == 0,
	    "spare: the same inode, empty again");
	close(fd);
	queue_fs_abort(id);
	is_int(queue_spare_count(), before + 2, "spare: abort gives it back");

	/* A spare with a second name (a crash can leave one) is dropped. */
	snprintf(path, sizeof(path), "spare/s%zu", (size_t)999999);
	queue_test_write(path, "x");
	is_int(link(path, "quarantine/second-name"), 0, "spare: linked");
	queue_test_write("spare/junk", "x");
	is_int(queue_fs_init(), 0, "spare: init rescans");
	ok(access(path, F_OK) == -1, "spare: hard-linked spare dropped");
	ok(access("spare/junk", F_OK) == -1, "spare: stranger dropped");
	is_int(queue_spare_count(), before + 2, "spare: the others kept");
	unlink("quarantine/second-name");

	/* A large message file is unlinked, not kept. */
	id = queue_test_receive(&env, "x", 1);
	snprintf(path, sizeof(path), "incoming/%" PRIu64, id);
	is_int(truncate(path, QUEUE_SPARE_FILE_MAX + 1), 0, "spare: grown");
	queue_fs_abort(id);
	envelope_free(&env);
	is_int(queue_spare_count(), before + 1,
	    "spare: the one taken is not kept once large");
}

int
main(void)
{
	char	 dir[] = "/tmp/queue_fs.XXXXXX";
	char	 cmd[64];

	log_init(1, 0);
	if (mkdtemp(dir) == NULL || chdir(dir) == -1) {
		printf("Bail out! no scratch directory\n");
		return 1;
	}
	init_creates_the_spool();
	ids_are_unique_and_decimal();
	commit_makes_message_and_envelope_durable();
	group_commit_of_many_messages();
	update_too_large_is_shortened();
	recovery_sorts_out_the_spool();
	recovery_removes_torn_commits();
	recovery_of_a_crash_between_renames();
	spare_files_are_reused();
	if (chdir("/") == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	return done_testing();
}
