#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cmd.h"
#include "identity.h"

#define MAX_DEPTH 4 /* loop on a file on a loop on a file ... */

static int hex(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

char *local_path_of(const char *location)
{
	const char *p, *end;
	char *out, *o;

	if (strncasecmp(location, "file://", 7))
		return strstr(location, "://") ? NULL : strdup(location);
	/* curl takes any host here, and ends the path at a query or a
	 * fragment; %XX is a byte. Over-reading a name is safe: it can only
	 * refuse more. */
	if (!(p = strchr(location + 7, '/')))
		return NULL;
	end = p + strcspn(p, "?#");
	if (!(o = out = malloc((size_t)(end - p) + 1)))
		return NULL;
	for (; p < end; p++) {
		if (p[0] == '%' && isxdigit((unsigned char)p[1]) &&
		    isxdigit((unsigned char)p[2])) {
			*o++ = (char)(hex(p[1]) * 16 + hex(p[2]));
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* The whole disk a partition belongs to; dev itself for a disk. */
static dev_t disk_of(dev_t dev)
{
	char path[96], line[32];
	unsigned maj, min;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/partition",
		 major(dev), minor(dev));
	if (access(path, F_OK))
		return dev;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../dev", major(dev),
		 minor(dev));
	if (!(f = fopen(path, "re")))
		return dev;
	ok = fgets(line, sizeof(line), f) &&
	     sscanf(line, "%u:%u", &maj, &min) == 2;
	fclose(f);
	return ok ? makedev(maj, min) : dev;
}

/* Writing to a is writing to b, or to part of it (or the reverse). */
static int devices_overlap(dev_t a, dev_t b)
{
	return a == b || disk_of(a) == b || disk_of(b) == a;
}

/* The file behind a loop device (or a partition of one), from sysfs. */
static int loop_backing(dev_t dev, struct stat *st)
{
	char path[96], file[PATH_MAX];
	FILE *f;
	int ok;

	dev = disk_of(dev);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file",
		 major(dev), minor(dev));
	if (!(f = fopen(path, "re")))
		return 0;
	ok = fgets(file, sizeof(file), f) != NULL;
	fclose(f);
	if (!ok)
		return 0;
	file[strcspn(file, "\n")] = '\0';
	return stat(file, st) == 0;
}

struct id_list {
	struct storage_id *v;
	size_t n, cap;
};

static void push(struct id_list *l, const struct storage_id *id)
{
	if (l->n < l->cap)
		l->v[l->n++] = *id;
}

/* id and what backs it: a loop device's file (and, for inputs, what holds
 * that file, and so on). */
static void expand(struct id_list *l, struct storage_id id, int holders,
		   int depth)
{
	struct stat st;

	push(l, &id);
	if (depth >= MAX_DEPTH)
		return;
	id.direct = 0;
	if (id.is_blk) {
		if (!loop_backing(id.rdev, &st))
			return;
		id.is_blk = 0;
		id.dev = st.st_dev;
		id.ino = st.st_ino;
		expand(l, id, holders, depth + 1);
	} else if (holders && major(id.dev) != 0) {
		/* The device of the file system the file is on (not an
		 * anonymous one such as tmpfs's). */
		id.is_blk = 1;
		id.rdev = id.dev;
		expand(l, id, holders, depth + 1);
	}
}

static struct storage_id id_of(const struct stat *st)
{
	struct storage_id id = {.direct = 1};

	id.is_blk = S_ISBLK(st->st_mode);
	id.dev = st->st_dev;
	id.ino = st->st_ino;
	id.rdev = id.is_blk ? st->st_rdev : 0;
	return id;
}

void input_ids_add(struct input_ids *ids, const char *location,
		   const char *what)
{
	char *path = location ? local_path_of(location) : NULL;
	struct id_list l = {ids->v, ids->n, sizeof(ids->v) / sizeof(ids->v[0])};
	struct storage_id id;
	struct stat st;
	int ok;

	if (!path || ids->ninputs == sizeof(ids->names) / sizeof(ids->names[0]))
		goto out;
	ok = strcmp(path, "-") ? stat(path, &st) == 0
			       : fstat(STDIN_FILENO, &st) == 0;
	if (!ok || S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode) ||
	    S_ISSOCK(st.st_mode))
		goto out; /* a stream: nothing a DEST could be */
	if (!(ids->names[ids->ninputs] = bmaptk_redact(location)))
		goto out;
	ids->what[ids->ninputs] = what;
	id = id_of(&st);
	id.input = (int)ids->ninputs++;
	expand(&l, id, 1, 0);
	ids->n = l.n;
out:
	free(path);
}

void input_ids_free(struct input_ids *ids)
{
	for (size_t i = 0; i < ids->ninputs; i++)
		free(ids->names[i]);
	ids->n = ids->ninputs = 0;
}

static int same_storage(const struct storage_id *a, const struct storage_id *b)
{
	if (a->is_blk != b->is_blk)
		return 0;
	return a->is_blk ? devices_overlap(a->rdev, b->rdev)
			 : a->dev == b->dev && a->ino == b->ino;
}

static int refuse_stat(const struct input_ids *ids, const struct stat *st,
		       const char *dest, struct bmaptk_error *err)
{
	struct storage_id mine[8];
	struct id_list l = {mine, 0, 8};

	if (S_ISCHR(st->st_mode) || S_ISFIFO(st->st_mode))
		return 0;
	expand(&l, id_of(st), 0, 0);
	for (size_t d = 0; d < l.n; d++)
		for (size_t i = 0; i < ids->n; i++) {
			const struct storage_id *in = &ids->v[i];
			if (!same_storage(&mine[d], in))
				continue;
			return bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "%s: refusing to write here: it %s %s (%s), which "
			    "this copy reads",
			    dest,
			    mine[d].direct && in->direct
				? "is"
				: "shares storage (a loop device, its file "
				  "or the file system holding it) with",
			    ids->what[in->input], ids->names[in->input]);
		}
	return 0;
}

int input_ids_match(const struct input_ids *ids, const char *dest,
		    struct bmaptk_error *err)
{
	struct stat st;

	if (stat(dest, &st))
		return 0;
	return refuse_stat(ids, &st, dest, err);
}

int input_ids_refuse_dest(const struct input_ids *ids, const char *dest)
{
	struct bmaptk_error err = {0};

	return input_ids_match(ids, dest, &err) ? cli_fail(&err) : 0;
}

int input_ids_refuse_fd(const struct input_ids *ids, int fd, const char *dest,
			struct bmaptk_error *err)
{
	struct stat st;

	if (fstat(fd, &st))
		return 0;
	return refuse_stat(ids, &st, dest, err);
}
