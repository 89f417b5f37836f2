#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
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

/* The /dev node of a block device, by its kernel name in sysfs. */
static int dev_node(dev_t dev, char *buf, size_t len)
{
	char path[64], *real;
	const char *name;
	struct stat st;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(dev),
		 minor(dev));
	if (!(real = realpath(path, NULL)))
		return 0;
	name = strrchr(real, '/');
	snprintf(buf, len, "/dev/%s", name ? name + 1 : real);
	free(real);
	return stat(buf, &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev;
}

/* What backs a loop device (or a partition of one): a file as (dev, ino)
 * from LOOP_GET_STATUS64, which names the very inode even when its path
 * was unlinked or holds a newline; a block device by the path sysfs
 * gives (the ioctl would only name its /dev node). 0: not a loop. */
static int loop_backing(dev_t dev, struct storage_id *out)
{
	char node[PATH_MAX], path[96], file[PATH_MAX];
	struct loop_info64 info;
	struct stat st;
	FILE *f;
	int fd, ok;

	dev = disk_of(dev);
	if (!dev_node(dev, node, sizeof(node)) ||
	    (fd = open(node, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return 0;
	ok = ioctl(fd, LOOP_GET_STATUS64, &info) == 0;
	close(fd);
	if (!ok)
		return 0;
	out->is_blk = 0;
	out->dev = (dev_t)info.lo_device;
	out->ino = (ino_t)info.lo_inode;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file",
		 major(dev), minor(dev));
	if ((f = fopen(path, "re"))) {
		if (fgets(file, sizeof(file), f)) {
			file[strcspn(file, "\n")] = '\0';
			if (stat(file, &st) == 0 && S_ISBLK(st.st_mode) &&
			    st.st_dev == out->dev && st.st_ino == out->ino) {
				out->is_blk = 1;
				out->rdev = st.st_rdev;
			}
		}
		fclose(f);
	}
	return 1;
}

/* The block device under a file system with an anonymous device number
 * (btrfs, ...): its mount source, if that is a device. */
static void anon_sources(dev_t dev, void (*found)(void *ctx, dev_t dev),
			 void *ctx)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		char *sep = strstr(line, " - "), source[PATH_MAX];
		struct stat st;
		if (sscanf(line, "%*s %*s %u:%u", &maj, &min) != 2 ||
		    makedev(maj, min) != dev || !sep ||
		    sscanf(sep + 3, "%*s %4095s", source) != 1)
			continue;
		if (source[0] == '/' && !stat(source, &st) &&
		    S_ISBLK(st.st_mode))
			found(ctx, st.st_rdev);
	}
	free(line);
	fclose(f);
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

static void expand(struct id_list *l, struct storage_id id, int holders,
		   int depth);

struct anon_ctx {
	struct id_list *l;
	struct storage_id id;
	int depth;
};

static void on_anon_source(void *ctx, dev_t dev)
{
	struct anon_ctx *a = ctx;
	struct storage_id id = a->id;

	id.is_blk = 1;
	id.rdev = dev;
	if (major(dev) != 0) {
		expand(a->l, id, 1, a->depth + 1);
	} else if (a->depth + 1 < MAX_DEPTH) {
		/* A layer on another anonymous device. */
		struct anon_ctx deeper = {a->l, a->id, a->depth + 1};
		anon_sources(dev, on_anon_source, &deeper);
	}
}

/* id and what backs it: a loop device's file or device (and, for inputs,
 * what holds that file, and so on). */
static void expand(struct id_list *l, struct storage_id id, int holders,
		   int depth)
{
	struct storage_id back;

	push(l, &id);
	if (depth >= MAX_DEPTH)
		return;
	id.direct = 0;
	if (id.is_blk) {
		if (!loop_backing(id.rdev, &back))
			return;
		back.direct = 0;
		back.input = id.input;
		expand(l, back, holders, depth + 1);
	} else if (holders && major(id.dev) != 0) {
		/* The device of the file system the file is on. */
		id.is_blk = 1;
		id.rdev = id.dev;
		expand(l, id, holders, depth + 1);
	} else if (holders) {
		/* tmpfs, overlayfs, btrfs: an anonymous device; follow
		 * what the mount is made of, if anything. */
		struct anon_ctx a = {l, id, depth};
		anon_sources(id.dev, on_anon_source, &a);
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

/* Where a device (or a partition of it) is mounted; 0 if it is not. */
static int mounted_at(dev_t dev, char where[PATH_MAX])
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return 0;
	while (!found && getline(&line, &cap, f) > 0) {
		unsigned maj, min;
		if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &maj, &min,
			   where) == 3 &&
		    major(makedev(maj, min)) != 0 &&
		    disk_of(makedev(maj, min)) == dev)
			found = 1;
	}
	free(line);
	fclose(f);
	return found;
}

/* A file or device that backs a mounted loop device holds a live file
 * system, whatever this copy reads (the image may sit on an overlay over
 * it, where device numbers say nothing). */
static int backs_mounted_loop(const struct storage_id *id, dev_t self,
			      const char *dest, struct bmaptk_error *err)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int rc = 0;

	if (!d)
		return 0;
	while (!rc && (de = readdir(d))) {
		char path[300], line[32], where[PATH_MAX];
		struct storage_id back;
		unsigned maj, min;
		FILE *f;
		int ok;
		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dev", de->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		ok = fgets(line, sizeof(line), f) &&
		     sscanf(line, "%u:%u", &maj, &min) == 2;
		fclose(f);
		/* DEST itself mounted is the block-device sink's to say. */
		if (!ok || makedev(maj, min) == self ||
		    !loop_backing(makedev(maj, min), &back) ||
		    !same_storage(&back, id) ||
		    !mounted_at(makedev(maj, min), where))
			continue;
		rc = bmaptk_set_error(err, BMAPTK_ERR_USAGE, EBUSY,
				      "%s: refusing to write here: it backs "
				      "/dev/%s, which is mounted on %s",
				      dest, de->d_name, where);
	}
	closedir(d);
	return rc;
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
		if (backs_mounted_loop(&mine[d],
				       S_ISBLK(st->st_mode) ? st->st_rdev : 0,
				       dest, err))
			return err->status;
	for (size_t d = 0; d < l.n; d++)
		for (size_t i = 0; i < ids->n; i++) {
			const struct storage_id *in = &ids->v[i];
			if (!same_storage(&mine[d], in))
				continue;
			return bmaptk_set_error(
			    err, BMAPTK_ERR_USAGE, 0,
			    "%s: refusing to write here: it %s %s (%s), which "
			    "this copy uses",
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
