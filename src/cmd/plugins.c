/* bmaptk plugins: every module in the registry, and who wins a probe. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"

static const struct cli_option options[] = {{0}};

static int on_option(const struct cli_option *opt, const char *arg, void *ctx)
{
	(void)opt;
	(void)arg;
	(void)ctx;
	return 0;
}

static const char *kind_name(enum bmaptk_module_kind kind)
{
	switch (kind) {
	case BMAPTK_MODULE_SOURCE:
		return "source";
	case BMAPTK_MODULE_CODEC:
		return "codec";
	case BMAPTK_MODULE_SINK:
		return "sink";
	}
	return "?";
}

static int run(int argc, char **argv)
{
	struct bmaptk_registry *reg;
	int first = cli_parse(&cmd_plugins, argc, argv, on_option, NULL);

	if (first < 0)
		return first == -2 ? 0 : BMAPTK_ERR_USAGE;
	reg = cli_registry();
	if (!reg) {
		cli_error("out of memory");
		return BMAPTK_ERR_IO;
	}
	printf("%-7s %-14s %4s  %-8s %s\n", "KIND", "NAME", "PRIO", "VERSION",
	       "ORIGIN / DESCRIPTION");
	for (size_t i = 0; i < bmaptk_registry_count(reg); i++) {
		const char *origin;
		const struct bmaptk_module *m =
		    bmaptk_registry_get(reg, i, &origin);
		printf("%-7s %-14s %4d  %-8s %s\n%37s%s\n", kind_name(m->kind),
		       m->name, m->priority, m->version ? m->version : "-",
		       origin, "", m->description ? m->description : "");
	}
	printf("\nWhen several modules claim the same input, the higher PRIO "
	       "wins.\n");
#ifdef BMAPTK_STATIC
	printf("plugins cannot be loaded by a static binary: every module is "
	       "built in\n");
#else
	{
		struct stat st;
		const char *dir = bmaptk_default_plugin_dir();
		printf("plugin directory: %s%s\n", dir,
		       stat(dir, &st) ? " (does not exist)" : "");
	}
#endif
	return 0;
}

const struct cmd cmd_plugins = {
    .name = "plugins",
    .summary = "list the source, codec and sink modules",
    .usage = "",
    .description =
	"Lists every module: built-in ones and those loaded from the\n"
	"plugin directories (--plugin-dir, BMAPTK_PLUGIN_PATH, then the\n"
	"default directory). Among modules that claim the same input,\n"
	"the higher priority wins.",
    .options = options,
    .run = run,
};
