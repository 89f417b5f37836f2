/* Loading plugins: dlopen, one entry symbol, an ABI check before anything
 * else is touched. A bad file is a warning, never a crash of the host. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry_internal.h"

void registry_close_handle(void *handle)
{
	/* Plugins stay mapped until exit: a module's threads or atexit hooks
	 * may still point into them. */
	(void)handle;
}

/* dlopen runs a file's constructors before any ABI check could look at
 * it, so what may be loaded is decided by who could have put it there, as
 * ssh decides for its keys and sudo for its plugins: the file and every
 * directory above it must be owned by root or by us, and not writable by
 * group or others (a directory only with the sticky bit, like /tmp).
 * Relative names are refused: they mean whatever directory we run in. */
static const char *untrusted(const struct stat *st)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return "owned by another user";
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) &&
	    !(S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX)))
		return "writable by group or others";
	return NULL;
}

/* real (a resolved path, changed in place), then each directory above
 * it up to "/", must be trusted. Returns 0, or -1 with err set. */
static int trusted_chain(const char *path, char *real, struct bmaptk_error *err)
{
	const char *what = NULL;
	struct stat st;
	char *slash;

	for (;;) {
		if (lstat(real, &st))
			what = strerror(errno);
		else
			what = untrusted(&st);
		if (what || !strcmp(real, "/"))
			break;
		slash = strrchr(real, '/');
		slash[slash == real] = '\0'; /* "/usr" -> "/" */
	}
	if (what)
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not loading plugins from here: %s is %s",
				 path, real, what);
	return what ? -1 : 0;
}

static int refuse_relative(const char *path, struct bmaptk_error *err)
{
	if (path[0] == '/')
		return 0;
	bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
			 "%s: not loading plugins from a relative path (it "
			 "depends on the working directory)",
			 path);
	return -1;
}

/* A directory to load plugins from: checked once, for one warning. */
static int trusted_dir(const char *dir, struct bmaptk_error *err)
{
	char *real;
	int rc;

	if (refuse_relative(dir, err))
		return -1;
	if (!(real = realpath(dir, NULL))) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, errno, "%s: %s", dir,
				 strerror(errno));
		return -1;
	}
	rc = trusted_chain(dir, real, err);
	free(real);
	return rc;
}

/* Open a plugin file for loading: the descriptor is what gets checked
 * and what dlopen maps (through /proc/self/fd), so swapping a name after
 * the check cannot bring in another file. Returns the fd, or -1. */
static int open_trusted(const char *path, struct bmaptk_error *err)
{
	char link[64], real[PATH_MAX];
	const char *what;
	struct stat st;
	ssize_t n;
	int fd;

	if (refuse_relative(path, err))
		return -1;
	/* O_NONBLOCK: a FIFO named x.so must not hang the start. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, errno,
				 "%s: not a loadable plugin: %s", path,
				 strerror(errno));
		return -1;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		what = "not a regular file";
	else if ((what = untrusted(&st)))
		;
	else if ((n = readlink(link, real, sizeof(real) - 1)) <= 0 ||
		 real[0] != '/')
		what = "of unknown location (no /proc?)";
	if (what) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not loading plugins from here: it is %s",
				 path, what);
		close(fd);
		return -1;
	}
	real[n] = '\0';
	if (trusted_chain(path, real, err)) {
		close(fd);
		return -1;
	}
	return fd;
}

#ifdef BMAPTK_STATIC
/* A static binary has no dynamic loader to map a plugin with: every module
 * it has is built in (cmake/static.cmake). */
int bmaptk_registry_load_plugin(struct bmaptk_registry *reg, const char *path,
				struct bmaptk_error *err)
{
	(void)reg;
	bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
			 "%s: plugins cannot be loaded by a static binary",
			 path);
	return -1;
}
#else
/* The same file reached twice (a directory in two search paths) is
 * loaded once. */
static int already_loaded(const struct bmaptk_registry *reg, const char *path)
{
	char *real = realpath(path, NULL);
	const char *origin;
	int seen = 0;

	for (size_t i = 0;
	     real && !seen && bmaptk_registry_get(reg, i, &origin); i++) {
		char *o = realpath(origin, NULL);
		seen = o && !strcmp(o, real);
		free(o);
	}
	free(real);
	return seen;
}

static void unload(void *handle, int fd)
{
	dlclose(handle);
	close(fd);
}

int bmaptk_registry_load_plugin(struct bmaptk_registry *reg, const char *path,
				struct bmaptk_error *err)
{
	const struct bmaptk_module *const *mods;
	bmaptk_plugin_entry_fn entry;
	char by_fd[64];
	void *handle;
	int fd;
	int added = 0;

	if (already_loaded(reg, path))
		return 0;
	if ((fd = open_trusted(path, err)) < 0)
		return -1;
	snprintf(by_fd, sizeof(by_fd), "/proc/self/fd/%d", fd);
	/* The descriptor stays open while the plugin is mapped: the loader
	 * knows objects by name, and a reused fd number would name the
	 * plugin loaded before. */
	handle = dlopen(by_fd, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not a loadable plugin: %s", path,
				 dlerror());
		close(fd);
		return -1;
	}
	*(void **)&entry = dlsym(handle, BMAPTK_PLUGIN_ENTRY_NAME);
	if (!entry) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not a bmaptk plugin (no %s symbol)", path,
				 BMAPTK_PLUGIN_ENTRY_NAME);
		unload(handle, fd);
		return -1;
	}
	mods = entry(BMAPTK_ABI_VERSION);
	if (!mods) {
		bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: the plugin does not support ABI version %d", path,
		    BMAPTK_ABI_VERSION);
		unload(handle, fd);
		return -1;
	}
	/* Check every descriptor before registering any of them. */
	for (size_t i = 0; mods[i]; i++) {
		if (mods[i]->abi_version != BMAPTK_ABI_VERSION) {
			bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					 "%s: plugin built for ABI version %d, "
					 "this bmaptk has ABI version %d",
					 path, mods[i]->abi_version,
					 BMAPTK_ABI_VERSION);
			unload(handle, fd);
			return -1;
		}
	}
	for (size_t i = 0; mods[i]; i++) {
		if (bmaptk_registry_add(reg, mods[i], path, err))
			return -1; /* handle stays: earlier modules use it */
		added++;
	}
	registry_keep_handle(reg, handle);
	return added;
}
#endif

static int is_plugin_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 3 && !strcmp(name + n - 3, ".so");
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int bmaptk_registry_load_dir(struct bmaptk_registry *reg, const char *dir,
			     bmaptk_warn_fn warn, void *ctx)
{
	struct bmaptk_error err;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int total = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0; /* a missing plugin directory is normal */
	if (trusted_dir(dir, &err)) {
		closedir(d);
		if (warn)
			warn(ctx, err.message);
		return 0;
	}
	/* Sorted, so that load order and warnings are reproducible. */
	while ((de = readdir(d))) {
		char **grown;
		if (!is_plugin_name(de->d_name))
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown)
			break;
		names = grown;
		names[n] = malloc(strlen(dir) + strlen(de->d_name) + 2);
		if (!names[n])
			break;
		sprintf(names[n++], "%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), compare_names);
	for (size_t i = 0; i < n; i++) {
		int added = bmaptk_registry_load_plugin(reg, names[i], &err);
		if (added < 0 && warn)
			warn(ctx, err.message);
		else if (added > 0)
			total += added;
		free(names[i]);
	}
	free(names);
	return total;
}
