/* The command-line front end: a table of commands, each in its own file,
 * sharing option parsing, messages and progress output. */
#ifndef BMAPTK_CMD_H
#define BMAPTK_CMD_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include <bmaptk/bmaptk.h>

#include "identity.h"

struct cli_option {
	const char *name; /* long name without "--" */
	int short_name;	  /* 0 if none */
	const char *arg;  /* argument's name, NULL for a flag */
	const char *help;
};

struct cmd {
	const char *name;
	const char *summary;
	const char *usage; /* after "bmaptk NAME " */
	const char *description;
	const struct cli_option *options; /* ends with {0} */
	int reads_images; /* accepts the URL and signature options */
	int (*run)(int argc, char **argv);
};

extern const struct cmd cmd_create, cmd_copy, cmd_check, cmd_pack, cmd_plugins;

/* Global state set by options any command accepts. */
struct cli_globals {
	int quiet;
	int debug;
	int json; /* events as JSON lines on stderr (events.h) */
	const char **plugin_dirs;
	size_t nplugin_dirs;
	struct bmaptk_source_opts source; /* for images and bmaps at URLs */
	struct {
		const char *bmap_sig; /* --bmap-sig */
		int no_verify;	      /* --no-sig-verify */
		const char *fingerprint;
		const char *keyring;
	} sig;
	const char *sig_state;	 /* "verified", "none" or "not-checked" */
	struct input_ids inputs; /* what was read: never a destination */
	/* Run as "bmaptool": messages and copy's lines in bmaptool 3.9's
	 * words and formats (bmaptool_log.h). */
	int bmaptool;
};
extern struct cli_globals cli;

/* Parse argv against the command's options plus the common ones (--help,
 * -q, -d, --plugin-dir). Calls on_option(opt, arg, ctx) for each command
 * option; returns the index of the first operand, or -1 after printing an
 * error (exit 2), or -2 after printing help (exit 0). */
int cli_parse(const struct cmd *cmd, int argc, char **argv,
	      int (*on_option)(const struct cli_option *opt, const char *arg,
			       void *ctx),
	      void *ctx);
void cli_usage(const struct cmd *cmd, FILE *out);

/* "bmaptk: message" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* With -d only: "bmaptk: debug: message". */
void cli_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* create --fs's one-line summary of what it found (layout_report.c). */
void report_layout(const char *image, const struct bmaptk_layout *layout,
		   const struct bmaptk_bmap *b, double seconds);
/* A size argument ("4096", "64K", "4M", "1G": powers of 1024) into *out.
 * Returns 0, or -1 when it is not one. */
int cli_parse_size(const char *text, uint64_t *out);
/* Print err's message and return its status as the exit code. */
int cli_fail(const struct bmaptk_error *err);

/* The registry with built-ins and plugins (loaded on first use). */
struct bmaptk_registry *cli_registry(void);

/* SIGINT/SIGTERM set this; engines poll it. */
extern volatile sig_atomic_t cli_interrupted;
void cli_catch_signals(void);

/* Progress on stderr: a bar on a TTY, a line per 10 % otherwise, nothing
 * with -q; optionally psplash's "PROGRESS n" on a pipe. On a TTY the line
 * fits the terminal's width (re-read on SIGWINCH) and a clock thread
 * redraws it at least twice a second, its speed over the last seconds. */
#define CLI_PROGRESS_SAMPLES 32
struct cli_progress {
	const char *what;
	int tty;
	int psplash_fd;
	int last_step; /* last 10 % step or psplash percent printed */
	double started, last_draw;
	uint64_t done, total;
	/* The terminal's side: */
	int bar;     /* drawing the bar (TTY, not -q, --json or the alias) */
	int width;   /* the terminal's columns */
	int updated; /* a count came since the start */
	int winch;   /* our SIGWINCH handler is installed (old one kept) */
	int winch_blocked; /* in the starting thread: the clock takes it */
	int ticking;	   /* the clock thread runs */
	int stop;	   /* asks the clock thread to end */
	uint64_t drawn;	   /* done as last drawn */
	/* (time, done) at least 0.2 s apart, a ring: the speed's window. */
	struct {
		double t;
		uint64_t done;
	} samples[CLI_PROGRESS_SAMPLES];
	unsigned nsamples, next;
	pthread_mutex_t lock; /* the counts, the samples and drawing */
	pthread_cond_t wake;  /* ends the clock thread's wait */
	pthread_t clock;
	struct sigaction old_winch;
};
void cli_progress_start(struct cli_progress *p, const char *what,
			const char *psplash_pipe);
void cli_progress_update(void *ctx, uint64_t done, uint64_t total);
void cli_progress_end(struct cli_progress *p);

double cli_now(void);

/* The bmap: from path when given, else discovered next to image (NULL:
 * none wanted). *bmap and *bmap_path are NULL when neither is given.
 * nobmap_ok: the command takes --nobmap, which "not found" suggests. */
int cli_load_bmap(const char *path, const char *image, int nobmap_ok,
		  struct bmaptk_bmap **bmap, char **bmap_path,
		  struct bmaptk_error *err);
/* The bmap (and signature, sig_len 0: none) a packed image carries,
 * verified as cli_load_bmap verifies a file; *bmap_path names it for
 * messages ("IMAGE (embedded)"). */
int cli_load_embedded_bmap(const char *image, const char *doc, size_t len,
			   const char *sig, size_t sig_len,
			   struct bmaptk_bmap **bmap, char **bmap_path,
			   struct bmaptk_error *err);
void cli_describe_bmap(const struct bmaptk_bmap *b, const char *path);

/* Read DEST back and report; shared by check and copy --check. With bad,
 * the indexes of bad ranges are returned (malloc'd). */
int cli_run_check(const struct bmaptk_bmap *b, const char *dest, int cached,
		  size_t **bad, size_t *nbad);
int cli_looks_like_bmap(const char *path);

#endif
