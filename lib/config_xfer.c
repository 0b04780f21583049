/*
 * Reload: the parent sends the exact text it parsed (every file, includes
 * too) to each child, which parses it again on its side, without touching
 * the file system (a child may be chrooted).
 *
 *	IMSG_CONF_START	string basedir
 *	IMSG_CONF_FILE	string name, data chunk (<= CONF_CHUNK octets);
 *			chunks of one name append; the main file first
 *	IMSG_CONF_END	(none): parse, and install when it parses
 *
 * The pki files (certificates and private keys, read by the parent) go
 * only where the caller says: to smtp, which serves TLS.  The others parse
 * the pki blocks without contents.  A pki file travels as a descriptor of
 * an anonymous memory file holding its text (the message itself carries
 * the name and no data), so that no imsg buffer, which is freed without
 * being wiped, ever holds a private key.  A child wipes every buffer that
 * held file text, since some of it may be a private key.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mproc.h"
#include "msg.h"

static struct {
	int			 active;
	char			 basedir[PATH_MAX];
	struct conf_filelist	 files;
	size_t			 total;
	int			 nfiles;
} xfer;

/* A memory file holding a pki file's text, or -1. */
static int
config_secret_fd(const struct conf_file *f)
{
	size_t	 off = 0;
	ssize_t	 n;
	int	 fd;

	if ((fd = memfd_create("sqmail-pki", MFD_CLOEXEC)) == -1)
		return -1;
	while (off < f->len) {
		if ((n = write(fd, f->data + off, f->len - off)) == -1) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		off += n;
	}
	if (lseek(fd, 0, SEEK_SET) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

void
config_send(struct mproc *p, struct conf_filelist *files, const char *basedir,
    int secrets)
{
	struct conf_file	*f;
	size_t			 off, n;
	int			 fd;

	m_create(p, IMSG_CONF_START, 0, -1);
	m_add_string(p, basedir != NULL ? basedir : "");
	m_close(p);
	TAILQ_FOREACH(f, files, entry) {
		if (f->secret && !secrets)
			continue;
		if (f->secret) {
			if ((fd = config_secret_fd(f)) == -1)
				fatal("%s: %s", __func__, f->name);
			m_create(p, IMSG_CONF_FILE, 0, fd);
			m_add_string(p, f->name);
			m_add_data(p, "", 0);
			m_close(p);
			continue;
		}
		off = 0;
		do {
			n = f->len - off;
			if (n > CONF_CHUNK)
				n = CONF_CHUNK;
			m_create(p, IMSG_CONF_FILE, 0, -1);
			m_add_string(p, f->name);
			m_add_data(p, f->data + off, n);
			m_close(p);
			off += n;
		} while (off < f->len);
	}
	m_create(p, IMSG_CONF_END, 0, -1);
	m_close(p);
}

void
config_xfer_start(const char *basedir)
{
	if (xfer.active)
		conf_files_free(&xfer.files);
	memset(&xfer, 0, sizeof(xfer));
	TAILQ_INIT(&xfer.files);
	if (strlcpy(xfer.basedir, basedir, sizeof(xfer.basedir)) >=
	    sizeof(xfer.basedir))
		fatalx("%s: base directory too long", __func__);
	xfer.active = 1;
}

void
config_xfer_file(const char *name, const void *data, size_t len)
{
	struct conf_file	*f;
	char			*ndata;
	size_t			 nsize;

	if (!xfer.active)
		fatalx("%s: configuration file outside START/END", __func__);
	if (name[0] == '\0' || strlen(name) >= sizeof(f->name))
		fatalx("%s: bad file name", __func__);
	if (len > CONF_MAX_TOTAL - xfer.total)
		fatalx("%s: configuration larger than %d octets", __func__,
		    CONF_MAX_TOTAL);
	TAILQ_FOREACH(f, &xfer.files, entry)
		if (strcmp(f->name, name) == 0)
			break;
	if (f == NULL) {
		if (xfer.nfiles >= CONF_MAX_FILES)
			fatalx("%s: more than %d files", __func__,
			    CONF_MAX_FILES);
		if ((f = conf_file_add(&xfer.files, name, data, len)) == NULL)
			fatal("%s", __func__);
		f->secret = 1;		/* wiped when freed: it may be a key */
		xfer.nfiles++;
	} else if (len > 0) {
		if (f->len + len + 1 > f->size) {
			/* Doubling keeps copying linear; the old is wiped. */
			nsize = f->size > SIZE_MAX / 2 ? SIZE_MAX : f->size * 2;
			if (nsize < f->len + len + 1)
				nsize = f->len + len + 1;
			if ((ndata = malloc(nsize)) == NULL)
				fatal("%s", __func__);
			memcpy(ndata, f->data, f->len);
			freezero(f->data, f->size);
			f->data = ndata;
			f->size = nsize;
		}
		memcpy(f->data + f->len, data, len);
		f->len += len;
		f->data[f->len] = '\0';
	}
	xfer.total += len;
}

struct sqconf *
config_xfer_end(void)
{
	struct sqconf	*c;

	if (!xfer.active)
		fatalx("%s: configuration end without start", __func__);
	if (TAILQ_EMPTY(&xfer.files))
		fatalx("%s: configuration without a file", __func__);
	c = config_parse(NULL, xfer.basedir[0] != '\0' ? xfer.basedir : NULL,
	    &xfer.files, NULL);
	conf_files_free(&xfer.files);
	memset(&xfer, 0, sizeof(xfer));
	TAILQ_INIT(&xfer.files);
	return c;
}

/* The text of a pki file from its descriptor (closed here). */
static void
config_xfer_fd(const char *name, int fd)
{
	struct stat	 st;
	char		*buf;
	size_t		 len = 0, size;
	ssize_t		 n;

	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    st.st_size > PKI_FILE_MAX)
		fatalx("%s: %s: not a pki file", __func__, name);
	size = st.st_size;
	if ((buf = malloc(size + 1)) == NULL)
		fatal("%s", __func__);
	while (len < size) {
		if ((n = pread(fd, buf + len, size - len, len)) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			fatalx("%s: %s: short read", __func__, name);
		len += n;
	}
	close(fd);
	config_xfer_file(name, buf, len);
	freezero(buf, size + 1);
}

int
config_imsg(struct imsg *imsg)
{
	struct msg	 m;
	struct sqconf	*c;
	const char	*s;
	const void	*data;
	size_t		 len;

	switch (imsg->hdr.type) {
	case IMSG_CONF_START:
		m_msg(&m, imsg);
		m_get_string(&m, &s);
		m_end(&m);
		config_xfer_start(s);
		return 0;
	case IMSG_CONF_FILE:
		m_msg(&m, imsg);
		m_get_string(&m, &s);
		m_get_data(&m, &data, &len);
		m_end(&m);
		if (imsg->fd != -1) {
			if (len != 0)
				fatalx("config: a pki file with data too");
			config_xfer_fd(s, imsg->fd);
		} else
			config_xfer_file(s, data, len);
		return 0;
	case IMSG_CONF_END:
		m_msg(&m, imsg);
		m_end(&m);
		if ((c = config_xfer_end()) == NULL) {
			log_warnx("configuration from the parent has errors, "
			    "keeping the running one");
			return 0;
		}
		config_free(conf);
		conf = c;
		return 1;
	default:
		return -1;
	}
}
