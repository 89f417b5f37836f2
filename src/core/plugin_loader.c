/* Loading plugins: dlopen, one entry symbol, an ABI check before anything
 * else is touched. A bad file is a warning, never a crash of the host. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"

void registry_close_handle(void *handle)
{
	/* Plugins stay mapped until exit: a module's threads or atexit hooks
	 * may still point into them. */
	(void)handle;
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

int bmaptk_registry_load_plugin(struct bmaptk_registry *reg, const char *path,
				struct bmaptk_error *err)
{
	const struct bmaptk_module *const *mods;
	bmaptk_plugin_entry_fn entry;
	void *handle;
	int added = 0;

	if (already_loaded(reg, path))
		return 0;
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not a loadable plugin: %s", path,
				 dlerror());
		return -1;
	}
	*(void **)&entry = dlsym(handle, BMAPTK_PLUGIN_ENTRY_NAME);
	if (!entry) {
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				 "%s: not a bmaptk plugin (no %s symbol)", path,
				 BMAPTK_PLUGIN_ENTRY_NAME);
		dlclose(handle);
		return -1;
	}
	mods = entry(BMAPTK_ABI_VERSION);
	if (!mods) {
		bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: the plugin does not support ABI version %d", path,
		    BMAPTK_ABI_VERSION);
		dlclose(handle);
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
			dlclose(handle);
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
