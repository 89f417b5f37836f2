/* One registry for built-in and plugin modules; the highest priority among
 * the modules that bid wins, then the highest bid. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "registry_internal.h"
#include "util.h"

struct entry {
	const struct bmaptk_module *module;
	char *origin;
};

struct bmaptk_registry {
	struct entry *entries;
	size_t count, cap;
	void **handles; /* dlopen handles, kept for the registry's life */
	size_t nhandles;
};

struct bmaptk_registry *bmaptk_registry_new(void)
{
	struct bmaptk_registry *reg = calloc(1, sizeof(*reg));
	struct bmaptk_error err;

	if (!reg)
		return NULL;
	for (size_t i = 0; bmaptk_builtin_modules[i]; i++) {
		if (bmaptk_registry_add(reg, bmaptk_builtin_modules[i],
					"built-in", &err)) {
			bmaptk_registry_free(reg);
			return NULL;
		}
	}
	return reg;
}

void registry_keep_handle(struct bmaptk_registry *reg, void *handle)
{
	void **grown =
	    realloc(reg->handles, (reg->nhandles + 1) * sizeof(*grown));
	if (!grown)
		return; /* the handle leaks, which is harmless */
	reg->handles = grown;
	reg->handles[reg->nhandles++] = handle;
}

void bmaptk_registry_free(struct bmaptk_registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->count; i++)
		free(reg->entries[i].origin);
	free(reg->entries);
	for (size_t i = 0; i < reg->nhandles; i++)
		registry_close_handle(reg->handles[i]);
	free(reg->handles);
	free(reg);
}

static int kind_ops_present(const struct bmaptk_module *m)
{
	switch (m->kind) {
	case BMAPTK_MODULE_SOURCE:
		return m->u.source && m->u.source->probe && m->u.source->open;
	case BMAPTK_MODULE_CODEC:
		return m->u.codec && m->u.codec->probe && m->u.codec->open;
	case BMAPTK_MODULE_SINK:
		return m->u.sink && m->u.sink->probe && m->u.sink->open;
	}
	return 0;
}

int bmaptk_registry_add(struct bmaptk_registry *reg,
			const struct bmaptk_module *m, const char *origin,
			struct bmaptk_error *err)
{
	if (m->abi_version != BMAPTK_ABI_VERSION)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: module built for ABI version %d, "
					"this bmaptk has ABI version %d",
					origin, m->abi_version,
					BMAPTK_ABI_VERSION);
	if (!m->name || !kind_ops_present(m))
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: malformed module descriptor",
					origin);
	if (reg->count == reg->cap) {
		size_t cap = reg->cap ? 2 * reg->cap : 16;
		struct entry *grown =
		    realloc(reg->entries, cap * sizeof(*grown));
		if (!grown)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
						"out of memory");
		reg->entries = grown;
		reg->cap = cap;
	}
	reg->entries[reg->count].module = m;
	reg->entries[reg->count].origin = strdup(origin);
	if (!reg->entries[reg->count].origin)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"out of memory");
	reg->count++;
	return 0;
}

size_t bmaptk_registry_count(const struct bmaptk_registry *reg)
{
	return reg->count;
}

const struct bmaptk_module *
bmaptk_registry_get(const struct bmaptk_registry *reg, size_t i,
		    const char **origin)
{
	if (i >= reg->count)
		return NULL;
	if (origin)
		*origin = reg->entries[i].origin;
	return reg->entries[i].module;
}

static int bid(const struct bmaptk_module *m, const char *location,
	       const unsigned char *head, size_t len, const struct stat *st)
{
	switch (m->kind) {
	case BMAPTK_MODULE_SOURCE:
		return m->u.source->probe(location);
	case BMAPTK_MODULE_CODEC:
		return m->u.codec->probe(head, len);
	case BMAPTK_MODULE_SINK:
		return m->u.sink->probe(location, st);
	}
	return 0;
}

static void debug_pick(enum bmaptk_module_kind kind, const char *location,
		       const struct bmaptk_module *best, const char *bidders)
{
	static const char *const kinds[] = {"?", "source", "codec", "sink"};
	char *shown = location ? bmaptk_redact(location) : NULL;

	bmaptk_debug("%s for %s: %s (%s)", kinds[kind],
		     shown ? shown : "the stream's first bytes",
		     best ? best->name : "none",
		     bidders[0] ? bidders : "no bids");
	free(shown);
}

static const struct bmaptk_module *pick(const struct bmaptk_registry *reg,
					enum bmaptk_module_kind kind,
					const char *location,
					const unsigned char *head, size_t len,
					const struct stat *st)
{
	const struct bmaptk_module *best = NULL;
	char bidders[512] = "";
	size_t used = 0;
	int best_bid = 0;

	for (size_t i = 0; i < reg->count; i++) {
		const struct bmaptk_module *m = reg->entries[i].module;
		int b;
		if (m->kind != kind)
			continue;
		b = bid(m, location, head, len, st);
		if (b <= 0)
			continue;
		if (bmaptk_debugging() && used + 48 < sizeof(bidders))
			used += (size_t)snprintf(
			    bidders + used, sizeof(bidders) - used,
			    "%s%s bids %d at priority %d", used ? ", " : "",
			    m->name, b, m->priority);
		if (!best || m->priority > best->priority ||
		    (m->priority == best->priority && b > best_bid)) {
			best = m;
			best_bid = b;
		}
	}
	if (bmaptk_debugging())
		debug_pick(kind, location, best, bidders);
	return best;
}

const struct bmaptk_module *
registry_pick_source(const struct bmaptk_registry *reg, const char *location)
{
	return pick(reg, BMAPTK_MODULE_SOURCE, location, NULL, 0, NULL);
}

const struct bmaptk_module *
registry_pick_codec(const struct bmaptk_registry *reg,
		    const unsigned char *head, size_t len)
{
	return pick(reg, BMAPTK_MODULE_CODEC, NULL, head, len, NULL);
}

const struct bmaptk_module *
registry_pick_sink(const struct bmaptk_registry *reg, const char *path,
		   const struct stat *st)
{
	return pick(reg, BMAPTK_MODULE_SINK, path, NULL, 0, st);
}
