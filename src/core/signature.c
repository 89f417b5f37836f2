/* Verifying OpenPGP signatures of bmaps through gpgme, as bmaptool 3.9
 * does: detached (.asc/.sig) or clearsigned, against GNUPGHOME's keys or
 * one keyring file imported into a throw-away GnuPG home. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stddef.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

#ifndef BMAPTK_HAVE_GPGME

int bmaptk_verify_signature(const char *data, size_t len, const char *sig,
			    size_t sig_len, const char *keyring,
			    const char *name, struct bmaptk_signature **sigs,
			    size_t *nsigs, char **plain, size_t *plain_len,
			    struct bmaptk_error *err)
{
	(void)data, (void)len, (void)sig, (void)sig_len, (void)keyring;
	(void)sigs, (void)nsigs, (void)plain, (void)plain_len;
	return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				"%s: cannot verify the signature: bmaptk was "
				"built without gpgme; use --no-sig-verify",
				name);
}

#else

#include "gpgme_api.h"

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int gpg_fail(struct bmaptk_error *err, const char *name,
		    const char *what, gpgme_error_t e)
{
	return bmaptk_set_error(
	    err, BMAPTK_ERR_VERIFY, 0,
	    "%s: failure when trying to verify the GPG signature: %s: %s", name,
	    what, GPGME(gpgme_strerror)(e));
}

/* A GnuPG home holding only the keys of keyring. */
static int use_keyring(gpgme_ctx_t ctx, const char *keyring, char *home,
		       struct bmaptk_error *err)
{
	gpgme_data_t keys;
	gpgme_import_result_t res;
	gpgme_error_t e;

	if (!mkdtemp(home))
		return bmaptk_set_error(
		    err, BMAPTK_ERR_IO, errno,
		    "cannot make a temporary GnuPG home: %s", strerror(errno));
	e = GPGME(gpgme_ctx_set_engine_info)(ctx, GPGME_PROTOCOL_OpenPGP, NULL,
					     home);
	if (!e)
		e = GPGME(gpgme_data_new_from_file)(&keys, keyring, 1);
	if (e)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: cannot read the keyring: %s",
					keyring, GPGME(gpgme_strerror)(e));
	e = GPGME(gpgme_op_import)(ctx, keys);
	GPGME(gpgme_data_release)(keys);
	res = e ? NULL : GPGME(gpgme_op_import_result)(ctx);
	if (e || !res || res->imported + res->unchanged == 0)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: no OpenPGP keys in the keyring (%s)", keyring,
		    e ? GPGME(gpgme_strerror)(e) : "nothing imported");
	return 0;
}

static void describe(gpgme_ctx_t ctx, gpgme_signature_t s, int keyring,
		     struct bmaptk_signature *out)
{
	const unsigned long bad = GPGME_SIGSUM_RED | GPGME_SIGSUM_KEY_REVOKED |
				  GPGME_SIGSUM_KEY_EXPIRED |
				  GPGME_SIGSUM_SIG_EXPIRED |
				  GPGME_SIGSUM_KEY_MISSING;
	gpgme_key_t key = NULL;

	memset(out, 0, sizeof(*out));
	snprintf(out->fpr, sizeof(out->fpr), "%s", s->fpr ? s->fpr : "?");
	/* Expiry and revocation never count. Trust: every key of a --keyring
	 * file, as gpgv has it; in a GnuPG home, only a key valid in its web
	 * of trust (an imported, uncertified key is not). */
	out->good = gpgme_err_code(s->status) == GPG_ERR_NO_ERROR &&
		    !(s->summary & bad);
	out->trusted =
	    out->good && (keyring || (s->summary & GPGME_SIGSUM_VALID));
	if (s->summary & GPGME_SIGSUM_KEY_MISSING)
		snprintf(out->why, sizeof(out->why),
			 "unknown signer (no public key)");
	else if (s->summary & GPGME_SIGSUM_KEY_REVOKED)
		snprintf(out->why, sizeof(out->why), "the key is revoked");
	else if (s->summary &
		 (GPGME_SIGSUM_KEY_EXPIRED | GPGME_SIGSUM_SIG_EXPIRED))
		snprintf(out->why, sizeof(out->why),
			 "the key or signature has expired");
	else if (!out->good)
		snprintf(out->why, sizeof(out->why), "%s",
			 GPGME(gpgme_strerror)(s->status));
	if (s->fpr && !GPGME(gpgme_get_key)(ctx, s->fpr, &key, 0) && key &&
	    key->uids)
		snprintf(out->uid, sizeof(out->uid), "%s",
			 key->uids->uid ? key->uids->uid : "");
	GPGME(gpgme_key_unref)(key);
}

static int collect(gpgme_ctx_t ctx, int keyring, struct bmaptk_signature **sigs,
		   size_t *nsigs, const char *name, struct bmaptk_error *err)
{
	gpgme_verify_result_t r = GPGME(gpgme_op_verify_result)(ctx);
	size_t n = 0;

	for (gpgme_signature_t s = r ? r->signatures : NULL; s; s = s->next)
		n++;
	*sigs = calloc(n ? n : 1, sizeof(**sigs));
	if (!*sigs)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", name);
	n = 0;
	for (gpgme_signature_t s = r ? r->signatures : NULL; s; s = s->next)
		describe(ctx, s, keyring, &(*sigs)[n++]);
	*nsigs = n;
	return 0;
}

static int take_plain(gpgme_data_t out, char **plain, size_t *plain_len,
		      const char *name, struct bmaptk_error *err)
{
	size_t n;
	char *p = GPGME(gpgme_data_release_and_get_mem)(out, &n);

	*plain = malloc(n + 1);
	if (!*plain) {
		GPGME(gpgme_free)(p);
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", name);
	}
	if (n)
		memcpy(*plain, p, n);
	(*plain)[n] = '\0';
	*plain_len = n;
	GPGME(gpgme_free)(p);
	return 0;
}

int bmaptk_verify_signature(const char *data, size_t len, const char *sig,
			    size_t sig_len, const char *keyring,
			    const char *name, struct bmaptk_signature **sigs,
			    size_t *nsigs, char **plain, size_t *plain_len,
			    struct bmaptk_error *err)
{
	char home[] = "/tmp/bmaptk-gnupg-XXXXXX";
	int made_home = 0;
	gpgme_data_t text = NULL, sigdata = NULL, out = NULL;
	gpgme_ctx_t ctx = NULL;
	gpgme_error_t e;
	int rc = 0;

	*sigs = NULL;
	*nsigs = 0;
	*plain = NULL;
	*plain_len = 0;
	if (!gpgme_api_load(err))
		return err->status;
	/* What gpgme_check_version() expands to: it also initialises gpgme. */
	GPGME(gpgme_check_version_internal)
	(NULL, offsetof(struct _gpgme_signature, validity));
	e = GPGME(gpgme_new)(&ctx);
	if (e)
		return gpg_fail(err, name, "cannot start gpgme", e);
	GPGME(gpgme_set_protocol)(ctx, GPGME_PROTOCOL_OpenPGP);
	if (keyring) {
		rc = use_keyring(ctx, keyring, home, err);
		made_home = strcmp(home + sizeof(home) - 7, "XXXXXX") != 0;
	}
	if (!rc) {
		e = GPGME(gpgme_data_new_from_mem)(&text, data, len, 0);
		if (!e && sig)
			e = GPGME(gpgme_data_new_from_mem)(&sigdata, sig,
							   sig_len, 0);
		if (!e && !sig)
			e = GPGME(gpgme_data_new)(&out);
		if (!e)
			e = sig ? GPGME(gpgme_op_verify)(ctx, sigdata, text,
							 NULL)
				: GPGME(gpgme_op_verify)(ctx, text, NULL, out);
		/* A bad signature is a result, not a failure to verify. */
		if (e && gpgme_err_code(e) != GPG_ERR_BAD_SIGNATURE)
			rc = gpg_fail(
			    err, name,
			    "make sure the bmap file has proper GPG format", e);
	}
	if (!rc)
		rc = collect(ctx, keyring != NULL, sigs, nsigs, name, err);
	if (!rc && out) {
		rc = take_plain(out, plain, plain_len, name, err);
		out = NULL;
	}
	GPGME(gpgme_data_release)(out);
	GPGME(gpgme_data_release)(sigdata);
	GPGME(gpgme_data_release)(text);
	GPGME(gpgme_release)(ctx);
	if (made_home)
		nftw(home, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (rc) {
		free(*sigs);
		*sigs = NULL;
		*nsigs = 0;
	}
	return rc;
}

#endif
