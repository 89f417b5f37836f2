#ifndef BMAPTK_REGISTRY_INTERNAL_H
#define BMAPTK_REGISTRY_INTERNAL_H

#include <bmaptk/bmaptk.h>

extern const struct bmaptk_module *const bmaptk_builtin_modules[];

/* The highest-priority module of a kind that bids for the input, or NULL.
 * Exactly one of location, head/len or path/st is used, by kind. */
const struct bmaptk_module *
registry_pick_source(const struct bmaptk_registry *reg, const char *location);
const struct bmaptk_module *
registry_pick_codec(const struct bmaptk_registry *reg,
		    const unsigned char *head, size_t len);
const struct bmaptk_module *
registry_pick_sink(const struct bmaptk_registry *reg, const char *path,
		   const struct stat *st);

/* Plugin handles the registry keeps until it is freed. */
void registry_keep_handle(struct bmaptk_registry *reg, void *handle);
void registry_close_handle(void *handle);

#endif
