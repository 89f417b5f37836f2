/* Option parsing from each command's table (so --help never drifts from
 * what is accepted), messages, the registry and signals. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"

struct cli_globals cli;
volatile sig_atomic_t cli_interrupted;

static const struct cli_option common_options[] = {
	{"quiet", 'q', NULL, "print only errors"},
	{"debug", 'd', NULL, "print debugging details"},
	{"plugin-dir", 0, "DIR", "load plugins from DIR as well"},
	{"help", 'h', NULL, "print this help and exit"},
	{0},
};

static size_t count_options(const struct cli_option *o)
{
	size_t n = 0;

	while (o && o[n].name)
		n++;
	return n;
}

static void print_options(const struct cli_option *o, FILE *out)
{
	for (; o && o->name; o++) {
		char left[64];
		int n = snprintf(left, sizeof(left), "%s%c%s--%s%s%s",
				 o->short_name ? "-" : "",
				 o->short_name ? o->short_name : ' ',
				 o->short_name ? ", " : "  ", o->name,
				 o->arg ? " " : "", o->arg ? o->arg : "");
		if (!o->short_name)
			memmove(left, left + 2, (size_t)n - 1);
		fprintf(out, "  %-24s %s\n", left, o->help);
	}
}

void cli_usage(const struct cmd *cmd, FILE *out)
{
	fprintf(out, "usage: bmaptk %s %s\n\n%s\n\noptions:\n", cmd->name,
		cmd->usage, cmd->description);
	print_options(cmd->options, out);
	print_options(common_options, out);
	fprintf(out, "\nexit codes: 0 success, 1 data does not verify, 2 usage "
		     "or invalid input,\n3 I/O or network error, 130 "
		     "interrupted.\n");
}

static void fill_long(struct option *lo, const struct cli_option *o, int val)
{
	lo->name = o->name;
	lo->has_arg = o->arg ? required_argument : no_argument;
	lo->flag = NULL;
	lo->val = val;
}

int cli_parse(const struct cmd *cmd, int argc, char **argv,
	      int (*on_option)(const struct cli_option *opt, const char *arg,
			       void *ctx),
	      void *ctx)
{
	size_t ncmd = count_options(cmd->options);
	size_t ncommon = count_options(common_options);
	struct option *lo = calloc(ncmd + ncommon + 1, sizeof(*lo));
	char shorts[128] = "";
	size_t sl = 0;
	int c, idx, rc = 0;

	if (!lo)
		return -1;
	/* Values 1000+i identify option i; short letters map back to it. */
	for (size_t i = 0; i < ncmd + ncommon; i++) {
		const struct cli_option *o = i < ncmd ? &cmd->options[i]
						      : &common_options[i - ncmd];
		fill_long(&lo[i], o, 1000 + (int)i);
		if (o->short_name && sl + 3 < sizeof(shorts)) {
			shorts[sl++] = (char)o->short_name;
			if (o->arg)
				shorts[sl++] = ':';
			shorts[sl] = '\0';
		}
	}
	optind = 1;
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, shorts, lo, &idx)) != -1) {
		const struct cli_option *o = NULL;
		if (c == '?' || c == ':') {
			cli_error("%s: bad or incomplete option '%s' (see bmaptk %s --help)",
				  cmd->name, argv[optind - 1], cmd->name);
			rc = -1;
			break;
		}
		for (size_t i = 0; i < ncmd + ncommon && !o; i++) {
			const struct cli_option *cand =
				i < ncmd ? &cmd->options[i]
					 : &common_options[i - ncmd];
			if (c == 1000 + (int)i || c == cand->short_name)
				o = cand;
		}
		if (!strcmp(o->name, "help")) {
			cli_usage(cmd, stdout);
			rc = -2;
		} else if (!strcmp(o->name, "quiet")) {
			cli.quiet = 1;
		} else if (!strcmp(o->name, "debug")) {
			cli.debug = 1;
		} else if (!strcmp(o->name, "plugin-dir")) {
			const char **g = realloc(cli.plugin_dirs,
						 (cli.nplugin_dirs + 1) *
							 sizeof(*g));
			if (!g)
				rc = -1;
			else {
				cli.plugin_dirs = g;
				g[cli.nplugin_dirs++] = optarg;
			}
		} else if (on_option(o, optarg, ctx)) {
			rc = -1;
		}
	}
	free(lo);
	return rc ? rc : optind;
}

static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "bmaptk: %s%s\n", prefix, line);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage("error: ", fmt, ap);
	va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	if (cli.quiet)
		return;
	va_start(ap, fmt);
	vmessage("warning: ", fmt, ap);
	va_end(ap);
}

void cli_info(const char *fmt, ...)
{
	va_list ap;

	if (cli.quiet)
		return;
	va_start(ap, fmt);
	vmessage("", fmt, ap);
	va_end(ap);
}

int cli_fail(const struct bmaptk_error *err)
{
	cli_error("%s", err->message);
	return err->status ? err->status : BMAPTK_ERR_IO;
}

static void warn_plugin(void *ctx, const char *message)
{
	(void)ctx;
	fprintf(stderr, "bmaptk: warning: %s\n", message);
}

static void load_path_list(struct bmaptk_registry *reg, const char *list)
{
	char *copy = strdup(list), *save = NULL;

	if (!copy)
		return;
	for (char *dir = strtok_r(copy, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save))
		bmaptk_registry_load_dir(reg, dir, warn_plugin, NULL);
	free(copy);
}

struct bmaptk_registry *cli_registry(void)
{
	static struct bmaptk_registry *reg;
	const char *env = getenv("BMAPTK_PLUGIN_PATH");

	if (reg)
		return reg;
	reg = bmaptk_registry_new();
	if (!reg)
		return NULL;
	for (size_t i = 0; i < cli.nplugin_dirs; i++)
		bmaptk_registry_load_dir(reg, cli.plugin_dirs[i], warn_plugin,
					 NULL);
	if (env && *env)
		load_path_list(reg, env);
	bmaptk_registry_load_dir(reg, bmaptk_default_plugin_dir(), warn_plugin,
				 NULL);
	return reg;
}

static void on_signal(int sig)
{
	(void)sig;
	cli_interrupted = 1;
}

void cli_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
