/* bmaptool 3.9's command line, for scripts written for bmaptool: the global
 * -q, -d, --version and -h, then "create" or "copy" with bmaptool's options.
 * As with argparse, long options may be abbreviated, take "=VALUE", and mix
 * with the operands. The options are checked as bmaptool checks them, then
 * handed on unchanged to bmaptk's own create or copy (the names are the
 * same), so the work is bmaptk's; the messages are in bmaptool's form
 * ("bmaptool: info: ...", and copy's lines in its words: bmaptool_log.h).
 * What bmaptool 3.9 would refuse is refused (exit 2), naming the bmaptk
 * command that has it. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bmaptool_compat.h"
#include "cmd.h"

#define BMAPTOOL_VERSION "3.9.0"
#define MAX_OPTIONS	 16
#define LONG_ONLY	 256 /* getopt values of options without a letter */

struct tool_option {
	const char *name;
	int short_name; /* 0 if none */
	int has_arg;
	const char *bmaptk; /* the bmaptk option it becomes */
	const char *help;
};

struct tool_cmd {
	const char *name;
	const char *summary;
	const struct tool_option *options; /* ends with {0} */
	const char *operands[3];	   /* argparse's names, NULL-ended */
	const struct cmd *cmd;		   /* the bmaptk command that runs */
};

static const struct tool_option global_options[] = {
    {"help", 'h', 0, NULL, "print this help and exit"},
    {"version", 0, 0, NULL, "print bmaptool's and bmaptk's versions and exit"},
    {"quiet", 'q', 0, "-q", "print only errors"},
    {"debug", 'd', 0, "-d", "print debugging details"},
    {0},
};

static const struct tool_option create_options[] = {
    {"help", 'h', 0, NULL, "print this help and exit"},
    {"output", 'o', 1, "--output",
     "write the bmap to OUTPUT (default: stdout)"},
    {"no-checksum", 0, 0, "--no-checksum", "do not hash the ranges"},
    {0},
};

static const struct tool_option copy_options[] = {
    {"help", 'h', 0, NULL, "print this help and exit"},
    {"bmap", 0, 1, "--bmap", "the bmap (default: found next to image)"},
    {"nobmap", 0, 0, "--nobmap", "copy the whole image, without a bmap"},
    {"bmap-sig", 0, 1, "--bmap-sig", "the bmap's detached OpenPGP signature"},
    {"no-sig-verify", 0, 0, "--no-sig-verify",
     "do not verify the bmap's signature"},
    {"keyring", 0, 1, "--keyring",
     "verify the signature against this keyring only"},
    {"fingerprint", 0, 1, "--fingerprint", "require a signature by this key"},
    {"no-verify", 0, 0, "--no-verify", "do not verify the data's checksums"},
    {"psplash-pipe", 0, 1, "--psplash-pipe",
     "write progress to psplash's pipe"},
    {"removable-device", 0, 0, "--removable-device",
     "refuse a dest that is not a removable block device"},
    {0},
};

static const struct tool_cmd tool_cmds[] = {
    {"create",
     "write the bmap of a sparse image file",
     create_options,
     {"image", NULL},
     &cmd_create},
    {"copy",
     "write an image to a block device or file using its bmap",
     copy_options,
     {"image", "dest", NULL},
     &cmd_copy},
    {0},
};

int bmaptool_invoked(const char *argv0)
{
	const char *slash;

	if (!argv0)
		return 0;
	slash = strrchr(argv0, '/');
	return !strcmp(slash ? slash + 1 : argv0, "bmaptool");
}

/* "-o OUTPUT" or "--bmap-sig BMAP_SIG": argparse's metavar is the long
 * name in capitals, '-' made '_'. */
static void format_option(const struct tool_option *o, int both, char *buf,
			  size_t size)
{
	size_t n;

	if (o->short_name && both)
		snprintf(buf, size, "-%c, --%s", o->short_name, o->name);
	else if (o->short_name)
		snprintf(buf, size, "-%c", o->short_name);
	else
		snprintf(buf, size, "--%s", o->name);
	if (!o->has_arg)
		return;
	n = strlen(buf);
	snprintf(buf + n, size - n, " %s", o->name);
	for (char *p = buf + n + 1; *p; p++)
		*p = *p == '-' ? '_' : (char)(*p - 'a' + 'A');
}

/* Print word after the others on a line of at most 80 columns. */
static void put_word(const char *word, int indent, int *col, FILE *out)
{
	int len = (int)strlen(word);

	if (*col + 1 + len > 80) {
		fprintf(out, "\n%*s", indent, "");
		*col = indent;
	} else {
		fputc(' ', out);
		(*col)++;
	}
	fputs(word, out);
	*col += len;
}

static void print_usage(const struct tool_cmd *c, FILE *out)
{
	char item[64];
	int col, indent;

	if (!c) {
		fprintf(out, "usage: bmaptool [-h] [--version] [-q] [-d] "
			     "{create,copy} ...\n");
		return;
	}
	col = fprintf(out, "usage: bmaptool %s", c->name);
	indent = col + 1;
	for (const struct tool_option *o = c->options; o->name; o++) {
		item[0] = '[';
		format_option(o, 0, item + 1, sizeof(item) - 2);
		strcat(item, "]");
		put_word(item, indent, &col, out);
	}
	for (size_t i = 0; c->operands[i]; i++)
		put_word(c->operands[i], indent, &col, out);
	fputc('\n', out);
}

static void print_help(const struct tool_cmd *c)
{
	const struct tool_option *o = c ? c->options : global_options;
	char left[64];

	print_usage(c, stdout);
	printf("\nbmaptk %s, run as bmaptool: bmaptool %s's command line.\n"
	       "Exit codes are bmaptk's (see bmaptk --help); 'man bmaptk' "
	       "has the rest.\n",
	       bmaptk_version(), BMAPTOOL_VERSION);
	if (!c) {
		printf("\ncommands:\n");
		for (size_t i = 0; tool_cmds[i].name; i++)
			printf("  %-22s%s\n", tool_cmds[i].name,
			       tool_cmds[i].summary);
	}
	printf("\noptions:\n");
	for (; o->name; o++) {
		format_option(o, 1, left, sizeof(left));
		if (strlen(left) < 21)
			printf("  %-22s%s\n", left, o->help);
		else
			printf("  %s\n%24s%s\n", left, "", o->help);
	}
}

/* argparse's error: the usage, then "bmaptool: error: ..."; exit 2. */
static int usage_error(const struct tool_cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const struct tool_cmd *c, const char *fmt, ...)
{
	va_list ap;

	print_usage(c, stderr);
	fprintf(stderr, "bmaptool: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return BMAPTK_ERR_USAGE;
}

/* After refusing what bmaptool 3.9 does not take (bmaptk may). */
static void hint_bmaptk(const char *cmd)
{
	fprintf(stderr,
		"bmaptool: this is bmaptk in bmaptool mode, which takes "
		"bmaptool %s's command line only;\nbmaptool: 'bmaptk %s%s"
		"--help' lists bmaptk's own options\n",
		BMAPTOOL_VERSION, cmd ? cmd : "", cmd ? " " : "");
}

static const struct tool_option *by_value(const struct tool_option *table,
					  int val)
{
	for (size_t i = 0; table[i].name; i++)
		if (val == LONG_ONLY + (int)i || val == table[i].short_name)
			return &table[i];
	return NULL;
}

static void build_getopt(const struct tool_option *table, const char *lead,
			 struct option *lo, char *shorts, size_t nshorts)
{
	size_t i, sl = strlen(lead);

	memcpy(shorts, lead, sl + 1);
	for (i = 0; i < MAX_OPTIONS && table[i].name; i++) {
		lo[i].name = table[i].name;
		lo[i].has_arg =
		    table[i].has_arg ? required_argument : no_argument;
		lo[i].flag = NULL;
		lo[i].val = table[i].short_name ? table[i].short_name
						: LONG_ONLY + (int)i;
		if (table[i].short_name && sl + 3 < nshorts) {
			shorts[sl++] = (char)table[i].short_name;
			if (table[i].has_arg)
				shorts[sl++] = ':';
			shorts[sl] = '\0';
		}
	}
	memset(&lo[i], 0, sizeof(lo[i]));
}

/* Explain a '?' from getopt_long the way argparse would. */
static int bad_option(const struct tool_cmd *c, const struct tool_option *table,
		      const char *arg)
{
	const char *eq;
	size_t len, nmatch = 0;
	char names[256] = "";

	if (optopt > 0 && optopt < LONG_ONLY && !by_value(table, optopt))
		return usage_error(c, "unrecognized arguments: -%c", optopt);
	if (strncmp(arg, "--", 2))
		return usage_error(c, "unrecognized arguments: %s", arg);
	eq = strchr(arg, '=');
	len = (eq ? (size_t)(eq - arg) : strlen(arg)) - 2;
	for (size_t i = 0; table[i].name; i++) {
		if (strncmp(table[i].name, arg + 2, len))
			continue;
		nmatch++;
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%s--%s", nmatch > 1 ? ", " : "", table[i].name);
	}
	if (nmatch > 1)
		return usage_error(c, "ambiguous option: %.*s could match %s",
				   (int)(len + 2), arg, names);
	if (nmatch == 1 && eq)
		return usage_error(c,
				   "argument %s: ignored explicit argument "
				   "'%s'",
				   names, eq + 1);
	return usage_error(c, "unrecognized arguments: %s", arg);
}

static int missing_argument(const struct tool_cmd *c,
			    const struct tool_option *o)
{
	if (o && o->short_name)
		return usage_error(c,
				   "argument -%c/--%s: expected one argument",
				   o->short_name, o->name);
	return usage_error(c, "argument --%s: expected one argument",
			   o ? o->name : "?");
}

struct translation {
	char **argv; /* the bmaptk command line being built */
	int argc;
	char *owned[4]; /* strings made here, freed at the end */
	size_t nowned;
	int debug;
	int nobmap, bmap, bmap_sig, no_sig_verify, keyring, fingerprint;
};

static void push(struct translation *t, const char *arg)
{
	/* bmaptk's commands take char **, as main() does; they never write
	 * to the strings. */
	t->argv[t->argc++] = (char *)arg;
	t->argv[t->argc] = NULL;
}

/* bmaptool copy reads "ssh://[user[:password]@]host/path" with "cat /path"
 * over ssh; bmaptk's SFTP source reads the same file. NULL: out of
 * memory. */
static const char *from_ssh(struct translation *t, const char *arg)
{
	char *url;

	if (strncmp(arg, "ssh://", 6))
		return arg;
	if (t->nowned == sizeof(t->owned) / sizeof(t->owned[0]) ||
	    asprintf(&url, "sftp://%s", arg + 6) < 0)
		return NULL;
	t->owned[t->nowned++] = url;
	return url;
}

static void note_option(struct translation *t, const char *name)
{
	t->nobmap |= !strcmp(name, "nobmap");
	t->bmap |= !strcmp(name, "bmap");
	t->bmap_sig |= !strcmp(name, "bmap-sig");
	t->no_sig_verify |= !strcmp(name, "no-sig-verify");
	t->keyring |= !strcmp(name, "keyring");
	t->fingerprint |= !strcmp(name, "fingerprint");
}

/* The checks bmaptool's copy makes before it opens anything. */
static int check_copy(const struct translation *t)
{
	const char *clash = NULL;

	if (t->nobmap && t->bmap)
		clash = "--nobmap and --bmap";
	else if (t->bmap_sig && t->no_sig_verify)
		clash = "--bmap-sig and --no-sig-verify";
	else if (t->no_sig_verify && t->keyring)
		clash = "--no-sig-verify and --keyring";
	else if (t->no_sig_verify && t->fingerprint)
		clash = "--no-sig-verify and --fingerprint";
	if (clash) {
		cli_error("%s cannot be used together", clash);
		return BMAPTK_ERR_USAGE;
	}
	if (t->nobmap && t->bmap_sig) {
		cli_error("the bmap signature file was specified, but bmap "
			  "file was not found (--nobmap)");
		return BMAPTK_ERR_USAGE;
	}
	return 0;
}

static int check_operands(const struct tool_cmd *c, char **ops, int nops)
{
	char names[64] = "";
	int want = 0;

	while (c->operands[want])
		want++;
	if (nops > want) {
		usage_error(c, "unrecognized arguments: %s", ops[want]);
		if (c->cmd == &cmd_copy)
			fprintf(stderr,
				"bmaptool: 'bmaptk copy IMAGE DEST "
				"DEST...' writes several destinations\n");
		return BMAPTK_ERR_USAGE;
	}
	if (nops == want)
		return 0;
	for (int i = nops; i < want; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%s%s", i > nops ? ", " : "", c->operands[i]);
	return usage_error(c, "the following arguments are required: %s",
			   names);
}

/* Parse c's options from argv (argv[0] is the command's name) into t.
 * Returns -1 when the command should run, else the exit code. */
static int parse_command(const struct tool_cmd *c, int argc, char **argv,
			 struct translation *t)
{
	struct option lo[MAX_OPTIONS + 1];
	char shorts[2 * MAX_OPTIONS + 2];
	const struct tool_option *o;
	const char *arg;
	int ch, idx, rc;

	build_getopt(c->options, ":", lo, shorts, sizeof(shorts));
	optind = 0; /* start afresh, in GNU's permuting order */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, shorts, lo, &idx)) != -1) {
		if (ch == '?') {
			rc = bad_option(c, c->options, argv[optind - 1]);
			hint_bmaptk(c->name);
			return rc;
		}
		o = by_value(c->options, ch == ':' ? optopt : ch);
		if (ch == ':')
			return missing_argument(c, o);
		if (!strcmp(o->name, "help")) {
			print_help(c);
			return 0;
		}
		note_option(t, o->name);
		push(t, o->bmaptk);
		if (!o->has_arg)
			continue;
		arg = strcmp(o->name, "bmap") && strcmp(o->name, "bmap-sig")
			  ? optarg
			  : from_ssh(t, optarg);
		if (!arg)
			goto oom;
		push(t, arg);
	}
	if ((rc = check_operands(c, argv + optind, argc - optind)))
		return rc;
	push(t, "--");
	for (int i = optind; i < argc; i++) {
		int image = i == optind && c->cmd == &cmd_copy;
		if (!(arg = image ? from_ssh(t, argv[i]) : argv[i]))
			goto oom;
		push(t, arg);
	}
	return -1;
oom:
	cli_error("out of memory");
	return BMAPTK_ERR_IO;
}

static const struct tool_cmd *find_command(const char *name)
{
	for (size_t i = 0; tool_cmds[i].name; i++)
		if (!strcmp(name, tool_cmds[i].name))
			return &tool_cmds[i];
	return NULL;
}

/* The options before the command. Returns the index of the command's name
 * (or argc), or -1 - exit code when bmaptool is done. */
static int parse_globals(int argc, char **argv, struct translation *t)
{
	struct option lo[MAX_OPTIONS + 1];
	char shorts[2 * MAX_OPTIONS + 2];
	const struct tool_option *o;
	int ch, idx, quiet = 0, debug = 0;

	/* '+': stop at the command's name; argparse gives the rest to it. */
	build_getopt(global_options, "+:", lo, shorts, sizeof(shorts));
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, shorts, lo, &idx)) != -1) {
		if (ch == '?') {
			bad_option(NULL, global_options, argv[optind - 1]);
			hint_bmaptk(NULL);
			return -1 - BMAPTK_ERR_USAGE;
		}
		o = by_value(global_options, ch);
		if (!strcmp(o->name, "help")) {
			print_help(NULL);
			return -1;
		} else if (!strcmp(o->name, "version")) {
			printf("bmaptool %s (bmaptk %s)\n", BMAPTOOL_VERSION,
			       bmaptk_version());
			return -1;
		}
		quiet |= o->short_name == 'q';
		debug |= o->short_name == 'd';
	}
	if (quiet && debug) {
		cli_error("--quiet and --debug cannot be used together");
		return -1 - BMAPTK_ERR_USAGE;
	}
	t->argc = 1; /* the command's name goes to argv[0] */
	if (quiet)
		push(t, "-q");
	if (debug)
		push(t, "-d");
	t->debug = debug;
	return optind;
}

static void debug_command_line(const struct translation *t)
{
	fprintf(stderr, "bmaptool: running: bmaptk");
	for (int i = 0; i < t->argc; i++) {
		char *shown = bmaptk_redact(t->argv[i]); /* URL passwords */
		fprintf(stderr, " %s", shown ? shown : "(out of memory)");
		free(shown);
	}
	fputc('\n', stderr);
}

static int run_command(const struct tool_cmd *c, int argc, char **argv,
		       struct translation *t)
{
	int rc;

	t->argv[0] = (char *)c->cmd->name;
	rc = parse_command(c, argc, argv, t);
	if (rc >= 0)
		return rc;
	if (c->cmd == &cmd_copy && (rc = check_copy(t)))
		return rc;
	if (t->debug)
		debug_command_line(t);
	return c->cmd->run(t->argc, t->argv);
}

int bmaptool_main(int argc, char **argv)
{
	struct translation t = {0};
	const struct tool_cmd *c;
	int first, rc;

	cli.bmaptool = 1; /* bmaptool's log lines (bmaptool_log.h) */
	/* Each word of argv gives at most two here, plus the command's name,
	 * -q, -d, "--" and the NULL. */
	t.argv = calloc((size_t)argc * 2 + 6, sizeof(*t.argv));
	if (!t.argv) {
		cli_error("out of memory");
		return BMAPTK_ERR_IO;
	}
	first = parse_globals(argc, argv, &t);
	if (first < 0) {
		rc = -1 - first;
	} else if (first == argc) {
		rc = usage_error(NULL, "the following arguments are required: "
				       "command");
	} else if ((c = find_command(argv[first]))) {
		rc = run_command(c, argc - first, argv + first, &t);
	} else {
		rc = usage_error(NULL,
				 "argument command: invalid choice: '%s' "
				 "(choose from 'create', 'copy')",
				 argv[first]);
		if (!strcmp(argv[first], "check") ||
		    !strcmp(argv[first], "plugins"))
			hint_bmaptk(argv[first]);
	}
	for (size_t i = 0; i < t.nowned; i++)
		free(t.owned[i]);
	free(t.argv);
	return rc;
}
