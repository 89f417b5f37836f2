/* Option parsing from each command's table (so --help never drifts from
 * what is accepted), messages, the registry and signals. */
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bmaptool_log.h"
#include "cmd.h"
#include "events.h"

struct cli_globals cli = {.source = {.retries = 5,
				     .timeout_sec = 60,
				     .interrupted = &cli_interrupted},
			  .sig_state = "none"};
volatile sig_atomic_t cli_interrupted;

static const struct cli_option common_options[] = {
    {"quiet", 'q', NULL, "print only errors"},
    {"debug", 'd', NULL, "print debugging details"},
    {"json", 0, NULL,
     "report as JSON lines on stderr "
     "(docs/json-events.md)"},
    {"plugin-dir", 0, "DIR", "load plugins from DIR as well"},
    {"help", 'h', NULL, "print this help and exit"},
    {0},
};

static const struct cli_option remote_options[] = {
    {"cacert", 0, "FILE", "trust the CA certificates in FILE for https"},
    {"insecure", 0, NULL, "do not verify the server's TLS certificate"},
    {"retries", 0, "N",
     "reconnect up to N times after a dropped "
     "connection (default 5)"},
    {"timeout", 0, "SEC",
     "retry a transfer stalled for SEC seconds; give up "
     "after 2 x SEC without a new byte (default 60)"},
    {0},
};

/* Handle one of remote_options; returns 0 or -1 after an error. */
static int on_remote_option(const struct cli_option *o, const char *arg)
{
	char *end;
	long v;

	if (!strcmp(o->name, "cacert")) {
		cli.source.cacert = arg;
	} else if (!strcmp(o->name, "insecure")) {
		cli.source.insecure = 1;
	} else {
		v = strtol(arg, &end, 10);
		if (*end || v < 0 || v > 100000) {
			cli_error("--%s: '%s' is not a sensible number",
				  o->name, arg);
			return -1;
		}
		if (!strcmp(o->name, "retries"))
			cli.source.retries = (int)v;
		else
			cli.source.timeout_sec = (int)v;
	}
	return 0;
}

static const struct cli_option sig_options[] = {
    {"bmap-sig", 0, "FILE",
     "the bmap's detached OpenPGP signature "
     "(default: BMAP.asc or BMAP.sig if present)"},
    {"no-sig-verify", 0, NULL, "do not verify the bmap's signature"},
    {"fingerprint", 0, "FPR", "require a signature by this key"},
    {"keyring", 0, "FILE", "verify against the keys in FILE only"},
    {0},
};

static int on_sig_option(const struct cli_option *o, const char *arg)
{
	if (!strcmp(o->name, "bmap-sig"))
		cli.sig.bmap_sig = arg;
	else if (!strcmp(o->name, "no-sig-verify"))
		cli.sig.no_verify = 1;
	else if (!strcmp(o->name, "fingerprint"))
		cli.sig.fingerprint = arg;
	else if (!strcmp(o->name, "keyring"))
		cli.sig.keyring = arg;
	return 0;
}

static size_t count_options(const struct cli_option *o)
{
	size_t n = 0;

	while (o && o[n].name)
		n++;
	return n;
}

/* text after a 27-column option column, wrapped at 80 columns (serial
 * consoles have no more). */
static void print_wrapped(const char *text, int indent, FILE *out)
{
	int col = indent;

	while (*text) {
		size_t word = strcspn(text, " ");
		if (col > indent && col + 1 + (int)word > 80) {
			fprintf(out, "\n%*s", indent - 1, "");
			col = indent;
		}
		fprintf(out, " %.*s", (int)word, text);
		col += 1 + (int)word;
		text += word;
		text += strspn(text, " ");
	}
	fputc('\n', out);
}

static void print_options(const struct cli_option *o, FILE *out)
{
	for (; o && o->name; o++) {
		char left[64];
		if (o->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s",
				 o->short_name, o->name, o->arg ? " " : "",
				 o->arg ? o->arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", o->name,
				 o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(out, "  %-24s", left);
		print_wrapped(o->help, 27, out);
	}
}

/* The usage line, wrapped at 80 columns between bracketed groups, with
 * the continuation under the first operand. */
static void print_usage_line(const struct cmd *cmd, FILE *out)
{
	int indent = fprintf(out, "usage: bmaptk %s", cmd->name);
	int col = indent, depth = 0;
	const char *p = cmd->usage, *start = p;

	for (;; p++) {
		if (*p == '[')
			depth++;
		else if (*p == ']')
			depth--;
		if ((*p == ' ' && depth == 0) || !*p) {
			int len = (int)(p - start);
			if (col + 1 + len > 80) {
				fprintf(out, "\n%*s", indent, "");
				col = indent;
			}
			col += fprintf(out, " %.*s", len, start);
			start = p + 1;
		}
		if (!*p)
			break;
	}
	fputc('\n', out);
}

void cli_usage(const struct cmd *cmd, FILE *out)
{
	print_usage_line(cmd, out);
	fprintf(out, "\n%s\n\noptions:\n", cmd->description);
	print_options(cmd->options, out);
	if (cmd->reads_images) {
		print_options(remote_options, out);
		print_options(sig_options, out);
	}
	print_options(common_options, out);
	fprintf(out, "\nexit codes: 0 success, 1 data does not verify, 2 usage "
		     "or invalid input,\n3 I/O or network error, 130 "
		     "interrupted.\n");
}

/* Options shared by every command. Returns 0, -1 (error) or -2 (help). */
static int on_common_option(const struct cmd *cmd, const struct cli_option *o,
			    const char *arg)
{
	const char **grown;

	if (!strcmp(o->name, "help")) {
		cli_usage(cmd, stdout);
		return -2;
	} else if (!strcmp(o->name, "quiet")) {
		cli.quiet = 1;
	} else if (!strcmp(o->name, "debug")) {
		cli.debug = 1;
	} else if (!strcmp(o->name, "json")) {
		cli.json = 1;
	} else if (!strcmp(o->name, "plugin-dir")) {
		grown = realloc(cli.plugin_dirs,
				(cli.nplugin_dirs + 1) * sizeof(*grown));
		if (!grown)
			return -1;
		cli.plugin_dirs = grown;
		cli.plugin_dirs[cli.nplugin_dirs++] = arg;
	}
	return 0;
}

/* The options cmd accepts, its own first, NULL-terminated. */
static const struct cli_option **all_options(const struct cmd *cmd, size_t *n)
{
	const struct cli_option *tables[] = {
	    cmd->options, cmd->reads_images ? remote_options : NULL,
	    cmd->reads_images ? sig_options : NULL, common_options};
	const struct cli_option **all;
	size_t k = 0;

	*n = count_options(cmd->options) + count_options(remote_options) +
	     count_options(sig_options) + count_options(common_options);
	all = calloc(*n + 1, sizeof(*all));
	for (size_t t = 0; all && t < 4; t++)
		for (const struct cli_option *o = tables[t]; o && o->name; o++)
			all[k++] = o;
	*n = k;
	return all;
}

static int is_in(const struct cli_option *o, const struct cli_option *table)
{
	for (; table->name; table++)
		if (o == table)
			return 1;
	return 0;
}

int cli_parse(const struct cmd *cmd, int argc, char **argv,
	      int (*on_option)(const struct cli_option *opt, const char *arg,
			       void *ctx),
	      void *ctx)
{
	size_t n;
	const struct cli_option **all = all_options(cmd, &n);
	struct option *lo = calloc(n + 1, sizeof(*lo));
	char shorts[128] = ":"; /* ':' tells a missing argument apart */
	size_t sl = 1;
	int c, idx, rc = 0;

	if (!all || !lo) {
		free(all);
		free(lo);
		return -1;
	}
	/* Values 1000+i identify option i; short letters map back to it. */
	for (size_t i = 0; i < n; i++) {
		lo[i].name = all[i]->name;
		lo[i].has_arg = all[i]->arg ? required_argument : no_argument;
		lo[i].val = 1000 + (int)i;
		if (all[i]->short_name && sl + 3 < sizeof(shorts)) {
			shorts[sl++] = (char)all[i]->short_name;
			if (all[i]->arg)
				shorts[sl++] = ':';
			shorts[sl] = '\0';
		}
	}
	optind = 1;
	opterr = 0;
	while (!rc && (c = getopt_long(argc, argv, shorts, lo, &idx)) != -1) {
		const struct cli_option *o = NULL;
		for (size_t i = 0; i < n && !o; i++)
			if (c == 1000 + (int)i || c == all[i]->short_name)
				o = all[i];
		if (c == ':') {
			cli_error("%s: option '%s' needs an argument (see "
				  "bmaptk %s --help)",
				  cmd->name, argv[optind - 1], cmd->name);
			rc = -1;
		} else if (!o) {
			cli_error("%s: unknown option '%s' (see bmaptk %s "
				  "--help)",
				  cmd->name, argv[optind - 1], cmd->name);
			rc = -1;
		} else if (is_in(o, common_options)) {
			rc = on_common_option(cmd, o, optarg);
		} else if (is_in(o, remote_options)) {
			rc = on_remote_option(o, optarg);
		} else if (is_in(o, sig_options)) {
			rc = on_sig_option(o, optarg);
		} else if (on_option(o, optarg, ctx)) {
			rc = -1;
		}
	}
	if (!rc && cli.quiet && cli.debug) {
		cli_error("-q and -d cannot be used together");
		rc = -1;
	}
	free(lo);
	free(all);
	return rc ? rc : optind;
}

static void vmessage(const char *level, const char *fmt, va_list ap)
{
	char line[2048];
	json_t *f;

	vsnprintf(line, sizeof(line), fmt, ap);
	if (!strcmp(level, "error"))
		ev_note_error(line);
	if (!cli.json && cli.bmaptool) {
		fprintf(stderr, "bmaptool: %s: %s\n", bmaptool_level(level),
			line);
		return;
	}
	if (!cli.json) {
		fprintf(stderr, "bmaptk: %s%s%s\n",
			strcmp(level, "info") ? level : "",
			strcmp(level, "info") ? ": " : "", line);
		return;
	}
	f = json_object();
	json_object_set_new(f, "level", json_string(level));
	json_object_set_new(f, "message", ev_string(line));
	ev_emit("log", f);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage("error", fmt, ap);
	va_end(ap);
}

void cli_debug(const char *fmt, ...)
{
	va_list ap;

	if (!cli.debug)
		return;
	va_start(ap, fmt);
	vmessage("debug", fmt, ap);
	va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	/* bmaptool's -q still shows warnings. */
	if (cli.quiet && !cli.bmaptool)
		return;
	va_start(ap, fmt);
	vmessage("warning", fmt, ap);
	va_end(ap);
}

void cli_info(const char *fmt, ...)
{
	va_list ap;

	if (cli.quiet)
		return;
	va_start(ap, fmt);
	vmessage("info", fmt, ap);
	va_end(ap);
}

int cli_fail(const struct bmaptk_error *err)
{
	if (err->message[0])
		cli_error("%s", err->message);
	return err->status ? err->status : BMAPTK_ERR_IO;
}

static void warn_plugin(void *ctx, const char *message)
{
	(void)ctx;
	cli_warn("%s", message);
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

static void library_warning(void *ctx, const char *line)
{
	(void)ctx;
	cli_warn("%s", line);
}

static void library_debug(void *ctx, const char *line)
{
	(void)ctx;
	cli_debug("%s", line);
}

struct bmaptk_registry *cli_registry(void)
{
	static struct bmaptk_registry *reg;
	const char *env = secure_getenv("BMAPTK_PLUGIN_PATH");

	if (reg)
		return reg;
	bmaptk_set_warn(library_warning, NULL);
	if (cli.debug)
		bmaptk_set_debug(library_debug, NULL);
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

static pthread_t main_thread;

/* Any thread may take the signal; the main thread is the one that may be
 * blocked reading the image, so it is woken too. */
static void on_signal(int sig)
{
	cli_interrupted = 1;
	if (!pthread_equal(pthread_self(), main_thread))
		pthread_kill(main_thread, sig);
}

void cli_catch_signals(void)
{
	struct sigaction sa;

	main_thread = pthread_self();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* the terminal went away: same */
	/* A closed stderr or a file-size limit must be an error to report
	 * and clean up after, not a silent death. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
}

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
