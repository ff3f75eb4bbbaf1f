/*
 * File helpers for the identity and prepare steps. Every guest path goes through rpath(), which puts the
 * --root prefix in front (tests point it at a temporary directory; in the guest it is empty).
 */
#ifndef VFG_FILES_H
#define VFG_FILES_H

#include <stddef.h>
#include <sys/types.h>

extern const char *g_root;

/* ROOT + path into out; -1 (ENAMETOOLONG) when it does not fit. */
int rpath(char *out, size_t cap, const char *path);
/* First line of a file without its newline; "" when the file is missing or empty. -1 on other errors. */
int read_first(const char *path, char *out, size_t cap);
/* Reads at most cap-1 bytes of a file, NUL-terminated; returns the length or -1. */
ssize_t read_small(const char *path, char *out, size_t cap);
/*
 * Replaces a file's content atomically (temp file in the same dir + rename): a reader never sees it half
 * written. KEEP_MODE: an existing file keeps its mode and owner, a new one gets `mode`; FORCE_MODE: the file
 * gets `mode` and owner root whatever it had (key and seed files).
 */
enum { KEEP_MODE = 0, FORCE_MODE = 1 };
int write_atomic(const char *path, const void *data, size_t n, mode_t mode, int how);
/* Writes line + "\n" when the file's first line differs or the file is empty. *changed says whether it wrote. */
int put_line(const char *path, const char *line, int *changed);
/* Makes `line` the one 127.0.1.1 line of a hosts file, where the first such line was (appended when none). */
int set_hosts_line(const char *path, const char *line, int *changed);
int mkdir_p(const char *path, mode_t mode);
struct step;
/* Removes what each glob pattern (under ROOT) matches; removed paths become facts `removed` (without ROOT).
 * Returns how many matches could not be removed. */
int remove_globs(struct step *s, const char *const patterns[]);
/* True when both paths name the same inode (what `test -ef` checks). */
int same_file(const char *a, const char *b);

#endif
