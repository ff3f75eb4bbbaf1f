/* Small-file I/O for the steps: read first line, atomic replace, the hosts line. */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"

const char *g_root = "";

int rpath(char *out, size_t cap, const char *path)
{
	int n = snprintf(out, cap, "%s%s", g_root, path);
	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

ssize_t read_small(const char *path, char *out, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len + 1 < cap) {
		ssize_t r = read(fd, out + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	out[len] = 0;
	return (ssize_t)len;
}

int read_first(const char *path, char *out, size_t cap)
{
	out[0] = 0;
	if (read_small(path, out, cap) < 0)
		return errno == ENOENT ? 0 : -1;
	out[strcspn(out, "\n")] = 0;
	return 0;
}

int write_atomic(const char *path, const void *data, size_t n, mode_t mode, int how)
{
	char tmp[4096];
	struct stat st;
	int have = how == KEEP_MODE && lstat(path, &st) == 0 && S_ISREG(st.st_mode);
	if (snprintf(tmp, sizeof(tmp), "%s.vmfork-new", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	size_t off = 0;
	int rc = 0;
	while (off < n && rc == 0) {
		ssize_t w = write(fd, (const char *)data + off, n - off);
		if (w < 0 && errno != EINTR)
			rc = -1;
		else if (w > 0)
			off += (size_t)w;
	}
	/* fchmod after creation: the umask must not decide a key file's mode */
	if (rc == 0 && fchmod(fd, have ? (st.st_mode & 07777) : mode) < 0)
		rc = -1;
	if (rc == 0 && fchown(fd, have ? st.st_uid : 0, have ? st.st_gid : 0) < 0)
		rc = -1;
	int e = errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0) {
		e = errno;
		rc = -1;
	}
	if (rc < 0) {
		unlink(tmp);
		errno = e;
	}
	return rc;
}

int put_line(const char *path, const char *line, int *changed)
{
	char cur[512];
	struct stat st;
	*changed = 0;
	if (read_first(path, cur, sizeof(cur)) < 0)
		return -1;
	if (strcmp(cur, line) == 0 && stat(path, &st) == 0 && st.st_size > 0)
		return 0;
	size_t n = strlen(line);
	char *buf = malloc(n + 2);
	if (!buf)
		return -1;
	memcpy(buf, line, n);
	buf[n] = '\n';
	int rc = write_atomic(path, buf, n + 1, 0644, KEEP_MODE);
	free(buf);
	if (rc == 0)
		*changed = 1;
	return rc;
}

static int is_loopback_name_line(const char *l, size_t n)
{
	return n > 9 && memcmp(l, "127.0.1.1", 9) == 0 && (l[9] == ' ' || l[9] == '\t');
}

int set_hosts_line(const char *path, const char *line, int *changed)
{
	static char old[65536], out[65536 + 512];
	*changed = 0;
	ssize_t n = read_small(path, old, sizeof(old));
	if (n < 0 && errno != ENOENT)
		return -1;
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(old) - 1) {
		errno = EFBIG; /* a hosts file this large is not one this agent should rewrite */
		return -1;
	}
	size_t o = 0, ll = strlen(line);
	int done = 0;
	for (const char *p = old; p < old + n;) {
		const char *nl = memchr(p, '\n', (size_t)(old + n - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(old + n - p);
		if (is_loopback_name_line(p, len)) {
			if (!done) {
				memcpy(out + o, line, ll);
				o += ll;
				out[o++] = '\n';
				done = 1;
			}
		} else {
			memcpy(out + o, p, len);
			o += len;
			out[o++] = '\n'; /* a last line without newline gets one, as the shell version does */
		}
		p += len + (nl ? 1 : 0);
	}
	if (!done) {
		memcpy(out + o, line, ll);
		o += ll;
		out[o++] = '\n';
	}
	struct stat st;
	if (o == (size_t)n && memcmp(out, old, o) == 0 && stat(path, &st) == 0)
		return 0;
	if (write_atomic(path, out, o, 0644, KEEP_MODE) < 0)
		return -1;
	*changed = 1;
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int same_file(const char *a, const char *b)
{
	struct stat x, y;
	return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int remove_globs(struct step *s, const char *const patterns[])
{
	char pattern[4096];
	size_t rootlen = strlen(g_root);
	int left = 0;
	for (int i = 0; patterns[i]; i++) {
		glob_t g;
		if (rpath(pattern, sizeof(pattern), patterns[i]) < 0 || glob(pattern, 0, NULL, &g) != 0)
			continue;
		for (size_t j = 0; j < g.gl_pathc; j++) {
			if (unlink(g.gl_pathv[j]) == 0)
				fact(s, "removed", "%s", g.gl_pathv[j] + rootlen);
			else if (errno != ENOENT)
				left++;
		}
		globfree(&g);
	}
	return left;
}
