/* bmaptk's entry point: global options, then dispatch to a command, the way
 * git dispatches its builtins. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmaptool_compat.h"
#include "cmd.h"
#include "events.h"

static const struct cmd *const commands[] = {
    &cmd_check, &cmd_copy, &cmd_create, &cmd_pack, &cmd_plugins, NULL,
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bmaptk [-q] [-d] [--json] [--plugin-dir DIR] COMMAND "
		"[ARGS]\n"
		"       bmaptk --version | --help | COMMAND --help\n\n"
		"Create block maps of sparse disk images, flash images with\n"
		"them and check flashed media.\n\ncommands:\n");
	for (size_t i = 0; commands[i]; i++)
		fprintf(out, "  %-10s %s\n", commands[i]->name,
			commands[i]->summary);
	fprintf(
	    out,
	    "\nglobal options:\n"
	    "  -q, --quiet          print only errors\n"
	    "  -d, --debug          print debugging details\n"
	    "  --json               report as JSON lines on stderr\n"
	    "  --plugin-dir DIR     load plugins from DIR as well (also\n"
	    "                       BMAPTK_PLUGIN_PATH, a colon list)\n"
	    "  --version            print the version and exit\n"
	    "  -h, --help           print this help and exit\n\n"
	    "exit codes:\n"
	    "  0    success\n"
	    "  1    data does not verify (checksum mismatch, bad signature)\n"
	    "  2    usage error or invalid input (bad bmap, unsuitable "
	    "destination)\n"
	    "  3    I/O, network or resource error\n"
	    "  130  interrupted by SIGINT or SIGTERM\n");
}

static int add_plugin_dir(const char *dir)
{
	const char **grown =
	    realloc(cli.plugin_dirs, (cli.nplugin_dirs + 1) * sizeof(*grown));
	if (!grown)
		return -1;
	cli.plugin_dirs = grown;
	cli.plugin_dirs[cli.nplugin_dirs++] = dir;
	return 0;
}

int main(int argc, char **argv)
{
	int i;

	if (bmaptool_invoked(argv[0]))
		return bmaptool_main(argc, argv);
	/* --json anywhere makes every line JSON, even messages (a plugin that
	 * fails to load, a bad option) that come before it is parsed. */
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--json"))
			cli.json = 1;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--version")) {
			printf("bmaptk %s\n", bmaptk_version());
			return 0;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			cli.quiet = 1;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			cli.debug = 1;
		} else if (!strcmp(a, "--json")) {
			cli.json = 1;
		} else if (!strcmp(a, "--plugin-dir") && i + 1 < argc) {
			if (add_plugin_dir(argv[++i]))
				return 3;
		} else if (!strncmp(a, "--plugin-dir=", 13)) {
			if (add_plugin_dir(a + 13))
				return 3;
		} else {
			cli_error("unknown option '%s' (see bmaptk --help)", a);
			if (cli.json)
				ev_error(2);
			return 2;
		}
	}
	if (i == argc) {
		usage(stderr);
		return 2;
	}
	for (size_t c = 0; commands[c]; c++) {
		if (!strcmp(argv[i], commands[c]->name)) {
			int rc = commands[c]->run(argc - i, argv + i);
			if (cli.json && rc)
				ev_error(rc);
			return rc;
		}
	}
	cli_error("'%s' is not a command (see bmaptk --help)", argv[i]);
	return 2;
}
