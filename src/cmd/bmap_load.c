/* Loading the bmap for copy and check: read it (given or discovered),
 * verify its OpenPGP signature as bmaptool 3.9 does, then parse it. The
 * messages keep bmaptool's wording, which users' scripts grep for. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "bmaptool_log.h"
#include "cmd.h"
#include "util.h"

/* A path or URL as messages show it: without a URL's password. Two
 * buffers, so that one message can show two names. */
static const char *shown(const char *location)
{
	static char buf[2][4096];
	static int next;
	char *r = bmaptk_redact(location);
	char *out = buf[next++ % 2];

	snprintf(out, sizeof(buf[0]), "%s", r ? r : "(out of memory)");
	free(r);
	return out;
}

static int read_named(const char *path, const char *what, char **data,
		      size_t *len, struct bmaptk_error *err)
{
	int rc = bmaptk_read_all(cli_registry(), path, &cli.source,
				 BMAPTK_BMAP_MAX_FILE, data, len, err);

	if (rc && err->sys_errno == ENOENT)
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, ENOENT,
				 "%s: cannot open %s: %s", shown(path), what,
				 strerror(ENOENT));
	return rc;
}

/* The detached signature: --bmap-sig, else BMAP.asc, else BMAP.sig.
 * *sig stays NULL when there is none. */
static int find_signature(const char *bmap_path, char **sig, size_t *len,
			  char **sig_path, struct bmaptk_error *err)
{
	static const char *const suffixes[] = {".asc", ".sig"};

	*sig = NULL;
	*sig_path = NULL;
	if (cli.sig.bmap_sig) {
		int rc = read_named(cli.sig.bmap_sig, "bmap signature file",
				    sig, len, err);
		if (!rc)
			input_ids_add(&cli.inputs, cli.sig.bmap_sig,
				      "the bmap's signature");
		if (!rc && !(*sig_path = strdup(cli.sig.bmap_sig))) {
			free(*sig);
			*sig = NULL;
			rc = bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					      "out of memory");
		}
		return rc;
	}
	for (size_t i = 0; bmap_path && i < 2; i++) {
		char *cand = bmaptk_add_suffix(bmap_path, suffixes[i]);
		int rc =
		    cand ? bmaptk_read_all(cli_registry(), cand, &cli.source,
					   BMAPTK_BMAP_MAX_FILE, sig, len, err)
			 : bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					    "out of memory");
		if (!rc) {
			cli_info("discovered signature file for bmap '%s'",
				 shown(cand));
			input_ids_add(&cli.inputs, cand,
				      "the bmap's signature");
			*sig_path = cand;
			return 0;
		}
		free(cand);
		if (err->sys_errno != ENOENT)
			return rc;
	}
	return 0;
}

static int judge(const struct bmaptk_signature *sigs, size_t n,
		 const char *name, struct bmaptk_error *err)
{
	const char *pin = cli.sig.fingerprint;
	int seen = 0;

	if (n == 0 && (pin || cli.sig.keyring))
		return bmaptk_set_error(
		    err, BMAPTK_ERR_VERIFY, 0,
		    "%s: the signature does not actually contain any valid "
		    "signatures, but --%s was given",
		    name, pin ? "fingerprint" : "keyring");
	if (n == 0)
		cli_warn(
		    "%s: the signature does not actually contain any valid "
		    "signatures",
		    name);
	for (size_t i = 0; i < n && pin; i++)
		seen |= !strcasecmp(sigs[i].fpr, pin);
	if (pin && !seen)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_VERIFY, 0,
		    "requested fingerprint %s did not sign the bmap file (%s)",
		    pin, name);
	for (size_t i = 0; i < n; i++) {
		if (!sigs[i].good)
			return bmaptk_set_error(
			    err, BMAPTK_ERR_VERIFY, 0,
			    "discovered a BAD GPG signature: %s (fingerprint "
			    "%s: %s); fix the problem or use --no-sig-verify",
			    name, sigs[i].fpr, sigs[i].why);
		/* A pinned fingerprint is explicit trust in that key. */
		if (!sigs[i].trusted && !(pin && !strcasecmp(sigs[i].fpr, pin)))
			return bmaptk_set_error(
			    err, BMAPTK_ERR_VERIFY, 0,
			    "%s: bmap signed by key 0x%s which is not trusted; "
			    "use --keyring FILE or --fingerprint FPR to trust "
			    "it explicitly",
			    name, sigs[i].fpr);
		cli_info("successfully verified bmap file signature of %s "
			 "(fingerprint %s)",
			 sigs[i].uid[0] ? sigs[i].uid : "unknown uid",
			 sigs[i].fpr);
	}
	return 0;
}

/* Verify data's signature; a clearsigned bmap is replaced by its text. */
/* A signature that came with the bmap (a packed image's), used unless
 * --bmap-sig names another. */
struct given_sig {
	const char *data;
	size_t len;
};

static int check_signature(const char *bmap_path, char **data, size_t *len,
			   const struct given_sig *given,
			   struct bmaptk_error *err)
{
	int clear = !strncmp(*data, BMAPTK_CLEARSIGN_MARKER,
			     strlen(BMAPTK_CLEARSIGN_MARKER));
	struct bmaptk_signature *sigs = NULL;
	char *sig = NULL, *sig_path = NULL, *plain = NULL;
	size_t sig_len = 0, nsigs = 0, plain_len = 0;
	int rc = 0;

	if (clear && cli.sig.bmap_sig)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: the bmap is clearsigned; it cannot also have a "
		    "detached signature (--bmap-sig %s)",
		    shown(bmap_path), shown(cli.sig.bmap_sig));
	if (clear)
		cli_info("discovered inline signature in %s", shown(bmap_path));
	else if (cli.sig.no_verify) {
		cli.sig_state = "not-checked";
		return 0;
	} else if (given && given->len && !cli.sig.bmap_sig) {
		if (!(sig = malloc(given->len)) ||
		    !(sig_path = strdup(bmap_path))) {
			free(sig);
			return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
						"out of memory");
		}
		memcpy(sig, given->data, given->len);
		sig_len = given->len;
	} else if ((given && (rc = find_signature(NULL, &sig, &sig_len,
						  &sig_path, err))) ||
		   (!given && (rc = find_signature(bmap_path, &sig, &sig_len,
						   &sig_path, err)))) {
		return rc;
	}
	if (!clear && !sig) {
		free(sig_path); /* an empty signature file: none */
		if (cli.sig.fingerprint || cli.sig.keyring)
			return bmaptk_set_error(
			    err, BMAPTK_ERR_VERIFY, 0,
			    "no signature found but --%s given",
			    cli.sig.fingerprint ? "fingerprint" : "keyring");
		return 0;
	}
	rc = bmaptk_verify_signature(*data, *len, sig, sig_len, cli.sig.keyring,
				     shown(sig ? sig_path : bmap_path), &sigs,
				     &nsigs, &plain, &plain_len, err);
	if (!rc && !cli.sig.no_verify)
		rc = judge(sigs, nsigs, shown(sig ? sig_path : bmap_path), err);
	if (!rc)
		cli.sig_state = cli.sig.no_verify ? "not-checked"
				: nsigs		  ? "verified"
						  : "none";
	if (!rc && clear) {
		free(*data);
		*data = plain;
		*len = plain_len;
		plain = NULL;
	}
	free(plain);
	free(sigs);
	free(sig);
	free(sig_path);
	return rc;
}

/* What data (a file's first bytes) looks like when it is not a bmap, for
 * "X is not a bmap (it looks like ...)", or NULL when it may be one: a
 * bmap, or XML of some kind, which the parser judges. */
static const char *not_a_bmap(const char *data, size_t len, char *buf,
			      size_t size)
{
	const char *name = bmaptk_format_name(data, len);
	size_t lead = 0;

	if (name && !strcmp(name, "bmap"))
		return NULL;
	if (name && !strcmp(name, "Android sparse image"))
		return "an Android sparse image";
	if (name) {
		snprintf(buf, size, "%s data", name);
		return buf;
	}
	if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3))
		lead = 3; /* a UTF-8 byte order mark */
	while (lead < len && strchr(" \t\r\n", data[lead]) && data[lead])
		lead++;
	if (lead == len || data[lead] == '<')
		return NULL;
	return "a disk image";
}

static int refuse_not_bmap(const char *path, const char *like, int given,
			   struct bmaptk_error *err)
{
	return bmaptk_set_error(
	    err, BMAPTK_ERR_USAGE, 0, "%s is not a bmap (it looks like %s)%s",
	    shown(path), like, given ? "; --bmap takes the .bmap file" : "");
}

/* After a bmap read failed for its size: what its first bytes are, if
 * they are no bmap (a disk image given with --bmap is large). */
static const char *head_not_a_bmap(const char *path, char *buf, size_t size)
{
	struct bmaptk_error err = {0};
	struct bmaptk_stream *s =
	    bmaptk_open_raw(cli_registry(), path, &cli.source, &err);
	char head[4096];
	size_t len = 0;
	const char *like = NULL;

	if (!s)
		return NULL;
	while (len < sizeof(head)) {
		ssize_t n =
		    s->ops->read(s, head + len, sizeof(head) - len, &err);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (len)
		like = not_a_bmap(head, len, buf, size);
	s->ops->close(s);
	return like;
}

/* Discovery found no bmap: if the image itself cannot be opened, that is
 * the problem to report (a typo in its name, a URL that answers 404).
 * Returns 1 when err now says so. A local path is only looked at (opening
 * a FIFO would wait for its writer); a URL is opened, as copy would. */
static int image_missing(const char *image, struct bmaptk_error *err)
{
	struct bmaptk_error probe = {0};
	struct bmaptk_stream *s;
	struct stat st;

	if (!strcmp(image, "-"))
		return 0;
	if (!strstr(image, "://")) {
		if (stat(image, &st) == 0 ||
		    (errno != ENOENT && errno != ENOTDIR))
			return 0;
		bmaptk_set_error(err, BMAPTK_ERR_USAGE, ENOENT,
				 "%s: no such file", image);
		return 1;
	}
	s = bmaptk_open_raw(cli_registry(), image, &cli.source, &probe);
	if (s) {
		s->ops->close(s);
		return 0;
	}
	*err = probe;
	if (!err->status)
		err->status = BMAPTK_ERR_IO;
	return 1;
}

int cli_load_bmap(const char *path, const char *image, int nobmap_ok,
		  struct bmaptk_bmap **bmap, char **bmap_path,
		  struct bmaptk_error *err)
{
	char *data = NULL, like_buf[64];
	const char *like;
	size_t len = 0;
	int rc;

	*bmap = NULL;
	*bmap_path = NULL;
	if (!path && !image)
		return 0;
	if (cli.sig.bmap_sig && cli.sig.no_verify)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "--bmap-sig and --no-sig-verify cannot be used together");
	if (path) {
		rc = read_named(path, "bmap file", &data, &len, err);
		if (rc && err->sys_errno == EFBIG &&
		    (like = head_not_a_bmap(path, like_buf, sizeof(like_buf))))
			rc = refuse_not_bmap(path, like, 1, err);
		if (!rc && !(*bmap_path = strdup(path)))
			rc = bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					      "out of memory");
	} else {
		rc = bmaptk_discover_bmap(cli_registry(), image, &cli.source,
					  bmap_path, &data, &len, err);
		if (!rc)
			cli_info("discovered bmap file '%s'",
				 shown(*bmap_path));
		else if (err->sys_errno == ENOENT &&
			 err->status == BMAPTK_ERR_USAGE &&
			 /* copy opens a URL next anyway, and it may be a
			  * packed image that carries its bmap: asking for
			  * it twice would cost a round trip. */
			 ((nobmap_ok && strstr(image, "://")) ||
			  !image_missing(image, err)) &&
			 nobmap_ok) {
			size_t used = strlen(err->message);
			snprintf(err->message + used,
				 sizeof(err->message) - used,
				 ", or use --nobmap to flash without bmap");
		}
	}
	if (!rc && (like = not_a_bmap(data, len, like_buf, sizeof(like_buf))))
		rc = refuse_not_bmap(*bmap_path, like, path != NULL, err);
	if (!rc)
		input_ids_add(&cli.inputs, *bmap_path, "the bmap");
	if (!rc)
		rc = check_signature(*bmap_path, &data, &len, NULL, err);
	if (!rc)
		rc = bmaptk_bmap_parse(data, len, shown(*bmap_path), bmap, err);
	free(data);
	/* From here on the path is for messages only. */
	if (*bmap_path) {
		char *r = bmaptk_redact(*bmap_path);
		free(*bmap_path);
		*bmap_path = r;
	}
	return rc;
}

int cli_load_embedded_bmap(const char *image, const char *doc, size_t len,
			   const char *sig, size_t sig_len,
			   struct bmaptk_bmap **bmap, char **bmap_path,
			   struct bmaptk_error *err)
{
	struct given_sig given = {sig, sig_len};
	char *data = malloc(len + 1);
	size_t n = strlen(shown(image)) + 16;
	int rc;

	*bmap = NULL;
	*bmap_path = malloc(n);
	if (!data || !*bmap_path) {
		free(data);
		free(*bmap_path);
		*bmap_path = NULL;
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"out of memory");
	}
	snprintf(*bmap_path, n, "%s (embedded)", shown(image));
	memcpy(data, doc, len);
	data[len] = '\0';
	cli_info("using the bmap embedded in %s", shown(image));
	rc = check_signature(*bmap_path, &data, &len, &given, err);
	if (!rc)
		rc = bmaptk_bmap_parse(data, len, *bmap_path, bmap, err);
	free(data);
	return rc;
}

void cli_describe_bmap(const struct bmaptk_bmap *b, const char *path)
{
	char size[32], mapped[32];
	uint64_t m = bmaptk_bmap_mapped_bytes(b);

	if (cli.bmaptool) {
		bmaptool_log_bmap(b);
		return;
	}
	cli_info("bmap %s: format version %u.%u, %llu blocks of %u bytes (%s), "
		 "%llu mapped (%s or %.1f%%)",
		 path, b->major, b->minor, (unsigned long long)b->blocks_count,
		 b->block_size, human_size(b->image_size, size, sizeof(size)),
		 (unsigned long long)b->mapped_blocks_count,
		 human_size(m, mapped, sizeof(mapped)),
		 b->image_size ? 100.0 * (double)m / (double)b->image_size
			       : 0.0);
}
