/* The bmap parser against bmaptool's files (compat/, read from
 * $BMAPTK_SHARED at run time) and against copies of them broken one rule at
 * a time. A broken copy gets its own file checksum recomputed here, so the
 * rule under test, not the checksum, is what rejects it. */
#include <iconv.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include <bmaptk/bmaptk.h>

#define NAME	   "mutant-7.bmap" /* the name every message must carry */
#define MAX_RANGES 64

static const char *what = "?"; /* the file being mutated, for failures */

/* ---- helpers ------------------------------------------------------------ */

struct doc {
	char *data; /* NUL-terminated */
	size_t len;
};

static char *compat_path(const char *file)
{
	const char *shared = getenv("BMAPTK_SHARED");
	char *path;

	if (!shared || !*shared) {
		print_message(
		    "BMAPTK_SHARED is not set: skipping (run through ctest)\n");
		skip();
	}
	path = malloc(strlen(shared) + strlen(file) + 16);
	assert_non_null(path);
	sprintf(path, "%s/compat/%s", shared, file);
	if (access(path, R_OK)) {
		print_message("%s is missing: skipping\n", path);
		free(path);
		skip();
	}
	return path;
}

static struct doc load_compat(const char *file)
{
	char *path = compat_path(file);
	FILE *f = fopen(path, "rb");
	struct doc d;
	long size;

	what = file;
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	d.len = (size_t)size;
	d.data = malloc(d.len + 1);
	assert_non_null(d.data);
	assert_int_equal(fread(d.data, 1, d.len, f), d.len);
	d.data[d.len] = '\0';
	assert_int_equal(fclose(f), 0);
	free(path);
	return d;
}

static struct doc doc_dup(const char *text)
{
	struct doc d = {strdup(text), strlen(text)};

	what = "a document made in the test";
	assert_non_null(d.data);
	return d;
}

/* d with the first occurrence of from replaced by to. */
static void doc_replace(struct doc *d, const char *from, const char *to)
{
	char *at = strstr(d->data, from), *out;
	size_t flen = strlen(from), tlen = strlen(to), head;

	if (!at)
		fail_msg("mutation target '%s' not found", from);
	head = (size_t)(at - d->data);
	out = malloc(d->len - flen + tlen + 1);
	assert_non_null(out);
	memcpy(out, d->data, head);
	memcpy(out + head, to, tlen);
	memcpy(out + head + tlen, at + flen, d->len - head - flen + 1);
	free(d->data);
	d->data = out;
	d->len = d->len - flen + tlen;
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* Recompute the file checksum as bmaptool writes it: the hex text zeroed,
 * the whole file hashed, the hex written back. Done independently of the
 * parser, with EVP. A checksum of the wrong length is left alone. */
static void reseal(struct doc *d)
{
	static const struct {
		const char *tag;
		const char *md;
	} tags[] = {{"<BmapFileChecksum>", NULL}, {"<BmapFileSHA1>", "SHA1"}};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const EVP_MD *type = NULL;
	char *hex = NULL;
	size_t hexlen = 0;

	for (size_t i = 0; i < 2 && !hex; i++) {
		char *at = strstr(d->data, tags[i].tag);
		if (!at)
			continue;
		hex = at + strlen(tags[i].tag);
		while (*hex == ' ')
			hex++;
		while (is_hex(hex[hexlen]))
			hexlen++;
		if (tags[i].md)
			type = EVP_sha1();
		else if (strstr(d->data, "<ChecksumType> sha1 <"))
			type = EVP_sha1();
		else
			type = EVP_sha256();
	}
	if (!hex || hexlen != 2 * (size_t)EVP_MD_get_size(type))
		return;
	memset(hex, '0', hexlen);
	assert_int_equal(EVP_Digest(d->data, d->len, md, &mdlen, type, NULL),
			 1);
	for (unsigned i = 0; i < mdlen; i++) {
		char two[3];
		snprintf(two, sizeof(two), "%02x", md[i]);
		memcpy(hex + 2 * i, two, 2);
	}
}

/* Parse from a buffer of exactly len bytes, so that a read past the end is
 * caught by ASan: the parser must not rely on a terminating NUL. */
static int parse_exact(const char *data, size_t len, struct bmaptk_bmap **b,
		       struct bmaptk_error *err)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, data, len);
	rc = bmaptk_bmap_parse(copy, len, NAME, b, err);
	free(copy);
	return rc;
}

static void expect_reject_len(const char *data, size_t len, int status,
			      const char *want)
{
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *b = (struct bmaptk_bmap *)&err; /* must be reset */
	int rc = parse_exact(data, len, &b, &err);

	if (rc != status || err.status != status ||
	    !strstr(err.message, want) ||
	    strncmp(err.message, NAME ": ", strlen(NAME) + 2))
		fail_msg("%s: want status %d and '%s', got %d: '%s'", what,
			 status, want, rc, err.message);
	assert_null(b);
	assert_null(strchr(err.message, '\n'));
}

static void expect_reject(const struct doc *d, int status, const char *want)
{
	expect_reject_len(d->data, d->len, status, want);
}

static struct bmaptk_bmap *expect_accept(const struct doc *d)
{
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *b = NULL;

	if (parse_exact(d->data, d->len, &b, &err))
		fail_msg("%s: rejected: %s", what, err.message);
	assert_non_null(b);
	return b;
}

/* A compat file broken by up to two replacements, resealed, then parsed. */
static void mutant(const char *file, const char *from, const char *to,
		   const char *from2, const char *to2, int status,
		   const char *want)
{
	struct doc d = load_compat(file);

	doc_replace(&d, from, to);
	if (from2)
		doc_replace(&d, from2, to2);
	reseal(&d);
	if (status)
		expect_reject(&d, status, want);
	else
		bmaptk_bmap_free(expect_accept(&d));
	free(d.data);
}

#define V20 "test.image.bmap.v2.0"
#define V13 "test.image.bmap.v1.3"

/* The same mutation on a 2.0 and a 1.3 file. */
static void mutant2(const char *from, const char *to, int status,
		    const char *want)
{
	mutant(V20, from, to, NULL, NULL, status, want);
	mutant(V13, from, to, NULL, NULL, status, want);
}

/* ---- the compat files ---------------------------------------------------- */

struct expect_range {
	uint64_t first, last;
	unsigned char digest[BMAPTK_HASH_MAX];
};

/* Ranges as the file text says, by a scan that shares nothing with the
 * parser: attribute value, then "first" or "first-last" before </Range>. */
static size_t scan_ranges(const char *text, struct expect_range *r,
			  uint64_t *sum)
{
	size_t n = 0;

	*sum = 0;
	for (const char *p = strstr(text, "<Range "); p;
	     p = strstr(p, "<Range ")) {
		const char *q = strchr(p, '"'), *gt = strchr(p, '>');
		assert_true(n < MAX_RANGES);
		assert_non_null(gt);
		memset(&r[n], 0, sizeof(r[n]));
		for (size_t i = 0; q && q < gt && is_hex(q[1 + 2 * i]); i++)
			assert_int_equal(
			    sscanf(q + 1 + 2 * i, "%2hhx", &r[n].digest[i]), 1);
		switch (sscanf(gt + 1, " %" SCNu64 " - %" SCNu64, &r[n].first,
			       &r[n].last)) {
		case 1:
			r[n].last = r[n].first;
			break;
		case 2:
			break;
		default:
			fail_msg("cannot scan range %zu", n);
		}
		*sum += r[n].last - r[n].first + 1;
		n++;
		p = gt;
	}
	return n;
}

struct compat_case {
	const char *file;
	unsigned major, minor;
	enum bmaptk_hash_type hash;
};

static void test_compat(void **state)
{
	const struct compat_case *c = *state;
	struct doc d = load_compat(c->file);
	struct expect_range want[MAX_RANGES];
	size_t dlen = bmaptk_hash_size(c->hash);
	struct bmaptk_bmap *b, *loaded;
	struct bmaptk_error err = {0};
	char *path = compat_path(c->file);
	uint64_t sum;
	size_t n = scan_ranges(d.data, want, &sum);

	assert_int_equal(n, 48); /* checked by hand against the files */
	assert_int_equal(sum, 117);
	assert_int_equal(want[0].first, 0);
	assert_int_equal(want[0].last, 1);
	assert_int_equal(want[n - 1].first, 198);
	assert_int_equal(want[n - 1].last, 199);

	b = expect_accept(&d);
	assert_int_equal(b->major, c->major);
	assert_int_equal(b->minor, c->minor);
	assert_int_equal(b->image_size, 821752);
	assert_int_equal(b->block_size, 4096);
	assert_int_equal(b->blocks_count, 201);
	assert_int_equal(b->mapped_blocks_count, 117);
	assert_int_equal(b->hash_type, c->hash);
	assert_int_equal(b->range_digests, 1);
	assert_int_equal(b->nranges, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(b->ranges[i].first, want[i].first);
		assert_int_equal(b->ranges[i].last, want[i].last);
		assert_memory_equal(b->ranges[i].digest, want[i].digest, dlen);
	}
	/* The last range ends at block 199 of 201: no clipping; the sum of
	 * spans is then exactly the mapped blocks. */
	assert_int_equal(bmaptk_bmap_mapped_bytes(b), 117 * 4096);

	/* The same through the file-reading entry point. */
	assert_int_equal(bmaptk_bmap_load(path, &loaded, &err), 0);
	assert_int_equal(loaded->nranges, b->nranges);
	assert_memory_equal(loaded->ranges, b->ranges, n * sizeof(*b->ranges));
	bmaptk_bmap_free(loaded);
	bmaptk_bmap_free(b);
	free(path);
	free(d.data);
}

/* Digest bytes of the first and last range, typed from the files. */
static void test_compat_digest_bytes(void **state)
{
	static const unsigned char v13_first[20] = {
	    0x94, 0x78, 0x96, 0x36, 0xdb, 0x14, 0xcd, 0xb8, 0x92, 0x91,
	    0x33, 0xe7, 0xb8, 0xd3, 0xa1, 0x58, 0x83, 0x7e, 0x2e, 0x5a};
	static const unsigned char v20_last[32] = {
	    0xcb, 0x73, 0x2f, 0xc3, 0xf3, 0xa0, 0xf8, 0x1f, 0x6a, 0x76, 0x1a,
	    0x53, 0x42, 0x01, 0xc0, 0x55, 0x49, 0xc8, 0xef, 0xe4, 0xa9, 0x26,
	    0x30, 0xcc, 0xd2, 0x42, 0x41, 0xf7, 0x2d, 0x7d, 0x61, 0x8c};
	struct doc d13 = load_compat(V13), d20 = load_compat(V20);
	struct bmaptk_bmap *b13 = expect_accept(&d13),
			   *b20 = expect_accept(&d20);

	(void)state;
	assert_memory_equal(b13->ranges[0].digest, v13_first, 20);
	assert_memory_equal(b20->ranges[47].digest, v20_last, 32);
	bmaptk_bmap_free(b13);
	bmaptk_bmap_free(b20);
	free(d13.data);
	free(d20.data);
}

/* The resealing above must reproduce the real checksums, or every mutant
 * below could be failing for the wrong reason. */
static void test_reseal_matches_bmaptool(void **state)
{
	static const char *files[] = {V20, V13, "test.image.bmap.v1.4"};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct doc d = load_compat(files[i]), orig = doc_dup(d.data);
		reseal(&d);
		assert_memory_equal(d.data, orig.data, d.len);
		free(d.data);
		free(orig.data);
	}
	/* A harmless edit, resealed, is accepted. */
	mutant2("Image size in bytes", "Image size, in bytes", 0, NULL);
}

static void test_load_missing_file(void **state)
{
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *b = (struct bmaptk_bmap *)&err;

	(void)state;
	assert_int_equal(bmaptk_bmap_load("/nonexistent/x.bmap", &b, &err),
			 BMAPTK_ERR_IO);
	assert_null(b);
	assert_non_null(strstr(err.message, "/nonexistent/x.bmap"));
}

/* ---- one broken rule at a time ----------------------------------------- */

static void test_ranges_out_of_order(void **state)
{
	(void)state;
	/* 6-7 before 3-5: no overlap, same block count, wrong order. */
	mutant2("> 0-1 <", "> 6-7 <", BMAPTK_ERR_USAGE,
		"range 2 (blocks 3-5) is out of order");
}

static void test_ranges_overlap(void **state)
{
	(void)state;
	/* 0-1 then 1-3: in order by start, block 1 twice. Counts adjusted. */
	mutant(V20, "> 3-5 <", "> 1-3 <", NULL, NULL, BMAPTK_ERR_USAGE,
	       "range 2 (blocks 1-3) overlaps");
	mutant(V13, "> 3-5 <", "> 1-3 <", NULL, NULL, BMAPTK_ERR_USAGE,
	       "range 2 (blocks 1-3) overlaps");
	/* The same range twice. */
	mutant2("> 3-5 <", "> 0-1 <", BMAPTK_ERR_USAGE, "overlaps");
}

static void test_range_past_blocks_count(void **state)
{
	(void)state;
	mutant2("> 198-199 <", "> 200-201 <", BMAPTK_ERR_USAGE,
		"range 48 (blocks 200-201) is outside BlocksCount");
	/* Block 200 is the last one: allowed. */
	mutant2("> 198-199 <", "> 199-200 <", 0, NULL);
	mutant2("> 198-199 <", "> 198-18446744073709551615 <", BMAPTK_ERR_USAGE,
		"outside BlocksCount");
}

static void test_range_first_after_last(void **state)
{
	(void)state;
	mutant2("> 198-199 <", "> 199-198 <", BMAPTK_ERR_USAGE,
		"ends before it starts");
}

static void test_mapped_blocks_count(void **state)
{
	(void)state;
	mutant2("<MappedBlocksCount> 117 ", "<MappedBlocksCount> 118 ",
		BMAPTK_ERR_USAGE,
		"MappedBlocksCount 118, but the ranges hold 117 blocks");
	mutant2("<MappedBlocksCount> 117 ", "<MappedBlocksCount> 0 ",
		BMAPTK_ERR_USAGE, "inconsistent bmap");
}

static void test_blocks_count(void **state)
{
	(void)state;
	mutant2("<BlocksCount> 201 <", "<BlocksCount> 202 <", BMAPTK_ERR_USAGE,
		"inconsistent bmap: BlocksCount 202, but ImageSize needs 201 "
		"blocks");
	/* 200 whole blocks exactly. */
	mutant2("<ImageSize> 821752 <", "<ImageSize> 819200 <",
		BMAPTK_ERR_USAGE, "ImageSize needs 200 blocks");
	/* 201 whole blocks, and one byte into the 201st: both fine. */
	mutant2("<ImageSize> 821752 <", "<ImageSize> 823296 <", 0, NULL);
	mutant2("<ImageSize> 821752 <", "<ImageSize> 819201 <", 0, NULL);
}

static void test_block_size(void **state)
{
	(void)state;
	mutant2("<BlockSize> 4096 <", "<BlockSize> 4000 <", BMAPTK_ERR_USAGE,
		"BlockSize");
	mutant2("<BlockSize> 4096 <", "<BlockSize> 4000 <", BMAPTK_ERR_USAGE,
		"not a power of two");
	mutant2("<BlockSize> 4096 <", "<BlockSize> 0 <", BMAPTK_ERR_USAGE,
		"BlockSize");
	mutant2("<BlockSize> 4096 <", "<BlockSize> 4294967296 <",
		BMAPTK_ERR_USAGE, "BlockSize");
	/* A power of two passes; with 8 KiB blocks the ranges lie outside. */
	mutant(V20, "<BlockSize> 4096 <", "<BlockSize> 8192 <",
	       "<BlocksCount> 201 <", "<BlocksCount> 101 <", BMAPTK_ERR_USAGE,
	       "outside BlocksCount");
}

static void test_not_a_number(void **state)
{
	static const char *bad[] = {"82l752", "-821752", "+821752", "0x10",
				    "",	      "821 752", "8.2e5",   "８"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char to[64];
		snprintf(to, sizeof(to), "<ImageSize> %s <", bad[i]);
		mutant2("<ImageSize> 821752 <", to, BMAPTK_ERR_USAGE,
			"<ImageSize> is not a number");
	}
	mutant2("<BlocksCount> 201 <", "<BlocksCount> two hundred <",
		BMAPTK_ERR_USAGE, "<BlocksCount> is not a number");
	mutant2("<MappedBlocksCount> 117 ", "<MappedBlocksCount> 1l7 ",
		BMAPTK_ERR_USAGE, "<MappedBlocksCount> is not a number");
	/* Empty elements, written both ways. */
	mutant2("<ImageSize> 821752 </ImageSize>", "<ImageSize/>",
		BMAPTK_ERR_USAGE, "<ImageSize> is not a number");
	mutant2("<BlockSize> 4096 </BlockSize>", "<BlockSize></BlockSize>",
		BMAPTK_ERR_USAGE, "<BlockSize> is not a number");
	mutant2("> 0-1 </Range>", "/>", BMAPTK_ERR_USAGE,
		"is not 'first' or 'first-last'");
	mutant(V20, "<ChecksumType> sha256 </ChecksumType>", "<ChecksumType/>",
	       NULL, NULL, BMAPTK_ERR_USAGE, "unknown ChecksumType ''");
}

static void test_huge_numbers(void **state)
{
	(void)state;
	/* One past UINT64_MAX, and far past it: overflow, not wrap-around. */
	mutant2("<ImageSize> 821752 <", "<ImageSize> 18446744073709551616 <",
		BMAPTK_ERR_USAGE, "<ImageSize> is too large");
	mutant2("<ImageSize> 821752 <",
		"<ImageSize> 99999999999999999999999999999999 <",
		BMAPTK_ERR_USAGE, "<ImageSize> is too large");
	/* Fits in 64 bits but no image is that large. */
	mutant2("<ImageSize> 821752 <", "<ImageSize> 18446744073709551615 <",
		BMAPTK_ERR_USAGE, "ImageSize is too large");
	mutant2("<BlocksCount> 201 <", "<BlocksCount> 18446744073709551617 <",
		BMAPTK_ERR_USAGE, "<BlocksCount> is too large");
	mutant2("> 198-199 <", "> 198-18446744073709551616 <", BMAPTK_ERR_USAGE,
		"is not 'first' or 'first-last'");
	/* A wrapped 2^64 + 1 would read as 1: refused, not taken as 1. */
	mutant2("> 0-1 <", "> 0-18446744073709551617 <", BMAPTK_ERR_USAGE,
		"is not 'first' or 'first-last'");
}

static void test_malformed_range_text(void **state)
{
	static const char *bad[] = {"0-",    "-1",  "0--1", "0-1-2", "",
				    " - ",   "0,1", "a-b",  "0 1",   "0-1x",
				    "0x0-1", "0 -", "1.0"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char to[64];
		snprintf(to, sizeof(to), "> %s <", bad[i]);
		mutant2("> 0-1 <", to, BMAPTK_ERR_USAGE,
			"is not 'first' or 'first-last'");
	}
}

static void test_missing_elements(void **state)
{
	static const struct {
		const char *from, *to, *want;
	} cut[] = {
	    {"<ImageSize> 821752 </ImageSize>", "", "<ImageSize> is missing"},
	    {"<BlockSize> 4096 </BlockSize>", "", "<BlockSize> is missing"},
	    {"<BlocksCount> 201 </BlocksCount>", "",
	     "<BlocksCount> is missing"},
	    {"<MappedBlocksCount> 117    </MappedBlocksCount>", "",
	     "<MappedBlocksCount> is missing"},
	    {"<BlockMap>", "<NotBlockMap>", "<BlockMap> is missing"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		const char *to2 = i == 4 ? "</NotBlockMap>" : NULL;
		mutant(V20, cut[i].from, cut[i].to, to2 ? "</BlockMap>" : NULL,
		       to2, BMAPTK_ERR_USAGE, cut[i].want);
		mutant(V13, cut[i].from, cut[i].to, to2 ? "</BlockMap>" : NULL,
		       to2, BMAPTK_ERR_USAGE, cut[i].want);
	}
	mutant(V20, "<ChecksumType> sha256 </ChecksumType>", "", NULL, NULL,
	       BMAPTK_ERR_USAGE, "<ChecksumType> is missing");
	mutant(V20, "<BmapFileChecksum>", "<!--", "</BmapFileChecksum>", "-->",
	       BMAPTK_ERR_USAGE, "the bmap file checksum is missing");
	mutant(V13, "<BmapFileSHA1>", "<!--", "</BmapFileSHA1>", "-->",
	       BMAPTK_ERR_USAGE, "the bmap file checksum is missing");
}

static void test_duplicate_elements(void **state)
{
	(void)state;
	/* Two values for one thing: which one would a reader believe? */
	mutant2("<ImageSize> 821752 </ImageSize>",
		"<ImageSize> 821752 </ImageSize><ImageSize> 1 </ImageSize>",
		BMAPTK_ERR_USAGE, "<ImageSize> appears twice");
	mutant2("<BlockMap>", "<BlockMap></BlockMap><BlockMap>",
		BMAPTK_ERR_USAGE, "<BlockMap> appears twice");
}

static void test_wrong_file_checksum(void **state)
{
	struct doc d = load_compat(V20);

	(void)state;
	/* A comment changed, checksum left as it was. */
	doc_replace(&d, "Image size in bytes", "Image size in Bytes");
	expect_reject(&d, BMAPTK_ERR_VERIFY, "checksum mismatch");
	free(d.data);

	/* A range changed (consistently), checksum left as it was. */
	d = load_compat(V13);
	doc_replace(&d, "> 198-199 <", "> 199-200 <");
	expect_reject(&d, BMAPTK_ERR_VERIFY, "checksum mismatch");
	free(d.data);

	/* The stored checksum itself altered. */
	d = load_compat(V20);
	doc_replace(&d, "d9cf7d44", "d9cf7d45");
	expect_reject(
	    &d, BMAPTK_ERR_VERIFY,
	    "it says "
	    "d9cf7d45790d04fcbb089c5eeec7700e9233439ab6e4bd759035906e20f90070, "
	    "its contents hash to "
	    "d9cf7d44790d04fcbb089c5eeec7700e9233439ab6e4bd759035906e20f90070");
	free(d.data);

	/* One byte cut from the end (the newline after </bmap>). */
	d = load_compat(V20);
	expect_reject_len(d.data, d.len - 1, BMAPTK_ERR_VERIFY,
			  "checksum mismatch");
	free(d.data);
}

static void test_versions(void **state)
{
	static const char *malformed[] = {"2",	   "2.",   "2 .0", ".0",
					  "2.0.1", "two",  "",	   "2,0",
					  "-2.0",  "+2.0", "2. 0"};

	(void)state;
	mutant(V20, "version=\"2.0\"", "version=\"3.0\"", NULL, NULL,
	       BMAPTK_ERR_USAGE,
	       "only bmap format version up to 2 is supported");
	mutant(V20, "version=\"2.0\"", "version=\"10.0\"", NULL, NULL,
	       BMAPTK_ERR_USAGE,
	       "only bmap format version up to 2 is supported");
	mutant(V20, "version=\"2.0\"", "version=\"0.9\"", NULL, NULL,
	       BMAPTK_ERR_USAGE, "version 0.9");
	/* A later minor version of a known major is readable. */
	mutant(V20, "version=\"2.0\"", "version=\"2.1\"", NULL, NULL, 0, NULL);
	mutant(V20, "version=\"2.0\"", "version=\"2.10\"", NULL, NULL, 0, NULL);
	/* White space around the value is trimmed, as for elements. */
	mutant(V20, "version=\"2.0\"", "version=\" 2.0 \"", NULL, NULL, 0,
	       NULL);
	mutant(V20, " version=\"2.0\"", "", NULL, NULL, BMAPTK_ERR_USAGE,
	       "the version attribute is missing or malformed");
	mutant(V20, "version=\"2.0\"", "version=\"99999999999.0\"", NULL, NULL,
	       BMAPTK_ERR_USAGE, "version");
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		char to[32];
		snprintf(to, sizeof(to), "version=\"%s\"", malformed[i]);
		mutant(V20, "version=\"2.0\"", to, NULL, NULL, BMAPTK_ERR_USAGE,
		       "the version attribute is missing or malformed");
	}
}

static void test_truncated(void **state)
{
	struct doc d = load_compat(V20);
	const char *end = strstr(d.data, "</bmap>");
	size_t root_end, marks[] = {0, 1, 5, 22, 23, 600, 1000, 1200, 1500};

	(void)state;
	assert_non_null(end);
	root_end = (size_t)(end - d.data) + strlen("</bmap>");
	/* Every 50 bytes, a few chosen spots, and one byte short of the
	 * closing tag: never well-formed. */
	for (size_t cut = 0; cut < root_end; cut += 50)
		expect_reject_len(d.data, cut, BMAPTK_ERR_USAGE,
				  "invalid bmap");
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		expect_reject_len(d.data, marks[i], BMAPTK_ERR_USAGE,
				  "invalid bmap");
	expect_reject_len(d.data, root_end - 1, BMAPTK_ERR_USAGE,
			  "invalid bmap");
	expect_reject_len(d.data, (size_t)(strstr(d.data, "d9cf7d4") - d.data),
			  BMAPTK_ERR_USAGE, "invalid bmap");
	free(d.data);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char bomb[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE bmap [\n"
    " <!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">\n"
    " <!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n"
    " <!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n"
    " <!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">\n"
    " <!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">\n"
    " <!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\">\n"
    " <!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">\n"
    " <!ENTITY h \"&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;\">\n"
    " <!ENTITY i \"&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;\">\n"
    "]>\n"
    "<bmap version=\"2.0\"><ImageSize>&i;</ImageSize>"
    "<BlockSize> 4096 </BlockSize><BlocksCount> 0 </BlocksCount>"
    "<MappedBlocksCount> 0 </MappedBlocksCount>"
    "<ChecksumType> sha256 </ChecksumType>"
    "<BlockMap><Range chksum=\"&i;\"> 0 </Range></BlockMap></bmap>\n";

static const char xxe[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE bmap [ <!ENTITY x SYSTEM \"file:///etc/passwd\"> ]>\n"
    "<bmap version=\"2.0\"><ImageSize>&x;</ImageSize>"
    "<BlockSize> 4096 </BlockSize><BlocksCount> 0 </BlocksCount>"
    "<MappedBlocksCount> 0 </MappedBlocksCount>"
    "<ChecksumType> sha256 </ChecksumType><BlockMap/></bmap>\n";

static const char external_dtd[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE bmap SYSTEM \"file:///etc/passwd\">\n"
    "<bmap version=\"2.0\"><ImageSize>0</ImageSize></bmap>\n";

/* text as UTF-16LE with a byte order mark and its declaration saying so:
 * the same markup, but no ASCII "<!DOCTYPE" for a byte search to find. */
static struct doc utf16(const char *text)
{
	struct doc a = doc_dup(text), d;
	size_t n;

	doc_replace(&a, "version=\"1.0\"?>",
		    "version=\"1.0\" encoding=\"UTF-16\"?>");
	n = a.len;
	d.len = 2 + 2 * n;
	d.data = calloc(1, d.len + 2);
	assert_non_null(d.data);
	d.data[0] = (char)0xff;
	d.data[1] = (char)0xfe;
	for (size_t i = 0; i < n; i++)
		d.data[2 + 2 * i] = a.data[i];
	free(a.data);
	return d;
}

/* text in EBCDIC (IBM037), which libxml2 reads through iconv. */
static struct doc ebcdic(const char *text)
{
	struct doc a = doc_dup(text), d;
	iconv_t cd = iconv_open("IBM037", "ASCII");
	char *in, *out;
	size_t inleft, outleft;

	if (cd == (iconv_t)-1)
		fail_msg("iconv cannot convert to IBM037");
	doc_replace(&a, "version=\"1.0\"?>",
		    "version=\"1.0\" encoding=\"IBM037\"?>");
	d.data = calloc(1, a.len + 1);
	assert_non_null(d.data);
	in = a.data;
	inleft = a.len;
	out = d.data;
	outleft = a.len;
	assert_int_not_equal(iconv(cd, &in, &inleft, &out, &outleft),
			     (size_t)-1);
	assert_int_equal(inleft, 0);
	d.len = a.len - outleft;
	assert_int_equal(iconv_close(cd), 0);
	assert_null(memchr(d.data, '<', d.len)); /* really not ASCII */
	free(a.data);
	return d;
}

static void expect_hostile_rejected(const struct doc *d)
{
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *b = NULL;
	double t0 = now(), took;
	int rc = parse_exact(d->data, d->len, &b, &err);

	took = now() - t0;
	assert_int_equal(rc, BMAPTK_ERR_USAGE);
	assert_null(b);
	if (!strstr(err.message, NAME ": invalid bmap: ") ||
	    !strstr(err.message, "DTD"))
		fail_msg("unexpected message: %s", err.message);
	assert_null(strstr(err.message, "root:")); /* nothing of passwd */
	if (took > 0.5)
		fail_msg("took %.3f s: was something expanded?", took);
}

static void test_hostile_xml(void **state)
{
	const char *docs[] = {bomb, xxe, external_dtd};

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct doc d = doc_dup(docs[i]), wide = utf16(docs[i]),
			   ebc = ebcdic(docs[i]);
		expect_hostile_rejected(&d);
		expect_hostile_rejected(&wide);
		expect_hostile_rejected(&ebc);
		free(d.data);
		free(wide.data);
		free(ebc.data);
	}
}

static void test_not_bmap_root(void **state)
{
	(void)state;
	mutant(V20, "<bmap version", "<bmapx version", "</bmap>", "</bmapx>",
	       BMAPTK_ERR_USAGE, "the root element is not <bmap>");
	mutant(V20, "<bmap version", "<BMAP version", "</bmap>", "</BMAP>",
	       BMAPTK_ERR_USAGE, "the root element is not <bmap>");
	expect_reject_len("<html/>", 7, BMAPTK_ERR_USAGE,
			  "the root element is not <bmap>");
	expect_reject_len("not xml at all", 14, BMAPTK_ERR_USAGE,
			  "invalid bmap");
}

static void test_checksum_type(void **state)
{
	(void)state;
	mutant(V20, "<ChecksumType> sha256 <", "<ChecksumType> md5 <", NULL,
	       NULL, BMAPTK_ERR_USAGE, "unknown ChecksumType 'md5'");
	mutant(V20, "<ChecksumType> sha256 <", "<ChecksumType> sha512 <", NULL,
	       NULL, BMAPTK_ERR_USAGE, "unknown ChecksumType 'sha512'");
	mutant(V20, "<ChecksumType> sha256 <", "<ChecksumType> sha256 sha1 <",
	       NULL, NULL, BMAPTK_ERR_USAGE, "unknown ChecksumType");
	mutant(V20, "<ChecksumType> sha256 <", "<ChecksumType>  <", NULL, NULL,
	       BMAPTK_ERR_USAGE, "unknown ChecksumType ''");
	/* sha1 declared, sha256-long digests given. */
	mutant(V20, "<ChecksumType> sha256 <", "<ChecksumType> sha1 <", NULL,
	       NULL, BMAPTK_ERR_USAGE, "checksum");
	/* Format 1.3 is SHA-1 by definition. */
	mutant(V13, "<BlockMap>",
	       "<ChecksumType> sha256 </ChecksumType><BlockMap>", NULL, NULL,
	       BMAPTK_ERR_USAGE, "<ChecksumType>");
}

static void test_range_checksum_text(void **state)
{
	(void)state;
	/* Not hex: one letter changed in the first range's digest. */
	mutant(V20, "chksum=\"9eaf", "chksum=\"9eag", NULL, NULL,
	       BMAPTK_ERR_USAGE, "range 1 has a malformed checksum");
	mutant(V13, "sha1=\"9478", "sha1=\"947z", NULL, NULL, BMAPTK_ERR_USAGE,
	       "range 1 has a malformed checksum");
	/* Wrong lengths: short by two digits, one digit, all; one too many. */
	mutant(V20, "e1965\"", "e19\"", NULL, NULL, BMAPTK_ERR_USAGE,
	       "has a malformed checksum");
	mutant(V20, "e1965\"", "e196\"", NULL, NULL, BMAPTK_ERR_USAGE,
	       "has a malformed checksum");
	mutant(V13, "e2e5a\"", "e2e5aa\"", NULL, NULL, BMAPTK_ERR_USAGE,
	       "range 1 has a malformed checksum");
	mutant(V20, "chksum=\"9eaf", "chksum=\"\" x=\"9eaf", NULL, NULL,
	       BMAPTK_ERR_USAGE, "range 1 has a malformed checksum");
	mutant(V20, "chksum=\"9eaf", "chksum=\"a\" x=\"9eaf", NULL, NULL,
	       BMAPTK_ERR_USAGE, "range 1 has a malformed checksum");
	mutant(V20, "chksum=\"9eaf", "chksum=\"ab\" x=\"9eaf", NULL, NULL,
	       BMAPTK_ERR_USAGE, "range 1 has a malformed checksum");
}

static void test_file_checksum_text(void **state)
{
	(void)state;
	/* Not hex (resealing skips it: the hex run is cut short). */
	mutant(V20, "d9cf7d44", "d9cf7d4z", NULL, NULL, BMAPTK_ERR_USAGE,
	       "the bmap file checksum");
	mutant(V13, "e235f7cd", "e235f7cz", NULL, NULL, BMAPTK_ERR_USAGE,
	       "the bmap file checksum");
	/* Wrong lengths. */
	mutant(V20, "d9cf7d44", "d9cf7d4", NULL, NULL, BMAPTK_ERR_USAGE,
	       "the bmap file checksum");
	mutant(V20, "d9cf7d44", "d9cf7d444", NULL, NULL, BMAPTK_ERR_USAGE,
	       "the bmap file checksum");
	mutant(V13, "e235f7cd", "e235f7c", NULL, NULL, BMAPTK_ERR_USAGE,
	       "the bmap file checksum");
	/* A SHA-1-long value where SHA-256 is declared. */
	mutant(V20, "d9cf7d44790d04fcbb089c5eeec7700e9233439a",
	       "d9cf7d44790d04fcbb089c5eeec7700e9233439a\" ", NULL, NULL,
	       BMAPTK_ERR_USAGE, "the bmap file checksum");
	mutant(V20, "d9cf7d44790d04fcbb089c5eeec7700e9233439a",
	       "d9cf7d44790d04fcbb089c5eeec7700e9233439a junk", NULL, NULL,
	       BMAPTK_ERR_USAGE, "the bmap file checksum");
}

static void test_mixed_range_checksums(void **state)
{
	(void)state;
	/* Second range without, the others with. */
	mutant(V20, " chksum=\"e8a2", " x=\"e8a2", NULL, NULL, BMAPTK_ERR_USAGE,
	       "range 2 has a checksum where others have none");
	mutant(V13, " sha1=\"4ad", " x=\"4ad", NULL, NULL, BMAPTK_ERR_USAGE,
	       "range 2 has a checksum where others have none");
	/* First range without, the others with. */
	mutant(V20, " chksum=\"9eaf", " x=\"9eaf", NULL, NULL, BMAPTK_ERR_USAGE,
	       "range 2 has a checksum where others have none");
	/* 2.0 ranges carry chksum=, not sha1=. */
	mutant(V20, " chksum=\"e8a2", " sha1=\"e8a2", NULL, NULL,
	       BMAPTK_ERR_USAGE, "range 2");
}

/* ---- hand-written valid files -------------------------------------------- */

#define HEAD                                                                   \
	"<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n"                   \
	"  <ImageSize> %s </ImageSize>\n  <BlockSize> 4096 </BlockSize>\n"     \
	"  <BlocksCount> %s </BlocksCount>\n"                                  \
	"  <MappedBlocksCount> %s </MappedBlocksCount>\n"                      \
	"  <ChecksumType> sha256 </ChecksumType>\n"                            \
	"  <BmapFileChecksum> "                                                \
	"0000000000000000000000000000000000000000000000000000000000000000"     \
	" </BmapFileChecksum>\n"

#define D64(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static struct doc handmade(const char *size, const char *blocks,
			   const char *mapped, const char *map)
{
	char text[4096];
	struct doc d;

	snprintf(text, sizeof(text), HEAD "%s</bmap>\n", size, blocks, mapped,
		 map);
	d = doc_dup(text);
	reseal(&d);
	return d;
}

static void test_range_spellings(void **state)
{
	struct doc d = handmade(
	    "40000", "10", "4",
	    "  <BlockMap>\n"
	    "    <Range chksum=\"" D64("aa") "\"> 5 </Range>\n"
					     "    <Range chksum=\"" D64(
						 "BB") "\">7 - 9</Range>\n"
						       "  </BlockMap>\n");
	struct bmaptk_bmap *b = expect_accept(&d);
	uint64_t off, len;

	(void)state;
	assert_int_equal(b->nranges, 2);
	assert_int_equal(b->ranges[0].first, 5);
	assert_int_equal(b->ranges[0].last, 5);
	assert_int_equal(b->ranges[1].first, 7);
	assert_int_equal(b->ranges[1].last, 9);
	for (size_t i = 0; i < 32; i++) {
		assert_int_equal(b->ranges[0].digest[i], 0xaa);
		assert_int_equal(b->ranges[1].digest[i], 0xbb);
	}
	assert_int_equal(b->range_digests, 1);
	assert_int_equal(b->hash_type, BMAPTK_HASH_SHA256);
	/* The last block is partial: 40000 - 9 * 4096 bytes. */
	bmaptk_range_span(b, &b->ranges[1], &off, &len);
	assert_int_equal(off, 7 * 4096);
	assert_int_equal(len, 40000 - 7 * 4096);
	assert_int_equal(bmaptk_bmap_mapped_bytes(b), 4096 + 40000 - 7 * 4096);
	bmaptk_bmap_free(b);
	free(d.data);

	/* Tabs and newlines around the dash, and no checksums at all. */
	d = handmade("40000", "10", "4",
		     "<BlockMap><Range>\t5\n</Range><Range>\n7\t-\n9 </Range>"
		     "</BlockMap>");
	b = expect_accept(&d);
	assert_int_equal(b->nranges, 2);
	assert_int_equal(b->ranges[1].first, 7);
	assert_int_equal(b->ranges[1].last, 9);
	assert_int_equal(b->range_digests, 0);
	bmaptk_bmap_free(b);
	free(d.data);
}

static void test_zero_ranges(void **state)
{
	static const char *maps[] = {"<BlockMap>\n  </BlockMap>\n",
				     "<BlockMap/>",
				     "<BlockMap><!-- none --></BlockMap>"};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct doc d = handmade("10000", "3", "0", maps[i]);
		struct bmaptk_bmap *b = expect_accept(&d);
		assert_int_equal(b->nranges, 0);
		assert_int_equal(b->mapped_blocks_count, 0);
		assert_int_equal(b->blocks_count, 3);
		assert_int_equal(bmaptk_bmap_mapped_bytes(b), 0);
		bmaptk_bmap_free(b);
		free(d.data);
	}
	/* An empty image. */
	struct doc d = handmade("0", "0", "0", "<BlockMap/>");
	struct bmaptk_bmap *b = expect_accept(&d);
	assert_int_equal(b->image_size, 0);
	bmaptk_bmap_free(b);
	free(d.data);
	/* Something other than <Range> inside <BlockMap>. */
	d = handmade("10000", "3", "0",
		     "<BlockMap><Rang> 0 </Rang></BlockMap>");
	expect_reject(&d, BMAPTK_ERR_USAGE, "unexpected <Rang> in <BlockMap>");
	free(d.data);
}

int main(void)
{
	static const struct compat_case v12 = {"test.image.bmap.v1.2", 1, 2,
					       BMAPTK_HASH_SHA1};
	static const struct compat_case v13 = {V13, 1, 3, BMAPTK_HASH_SHA1};
	static const struct compat_case v14 = {"test.image.bmap.v1.4", 1, 4,
					       BMAPTK_HASH_SHA256};
	static const struct compat_case v20 = {V20, 2, 0, BMAPTK_HASH_SHA256};
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_prestate(test_compat, (void *)&v12),
	    cmocka_unit_test_prestate(test_compat, (void *)&v13),
	    cmocka_unit_test_prestate(test_compat, (void *)&v14),
	    cmocka_unit_test_prestate(test_compat, (void *)&v20),
	    cmocka_unit_test(test_compat_digest_bytes),
	    cmocka_unit_test(test_reseal_matches_bmaptool),
	    cmocka_unit_test(test_load_missing_file),
	    cmocka_unit_test(test_ranges_out_of_order),
	    cmocka_unit_test(test_ranges_overlap),
	    cmocka_unit_test(test_range_past_blocks_count),
	    cmocka_unit_test(test_range_first_after_last),
	    cmocka_unit_test(test_mapped_blocks_count),
	    cmocka_unit_test(test_blocks_count),
	    cmocka_unit_test(test_block_size),
	    cmocka_unit_test(test_not_a_number),
	    cmocka_unit_test(test_huge_numbers),
	    cmocka_unit_test(test_malformed_range_text),
	    cmocka_unit_test(test_missing_elements),
	    cmocka_unit_test(test_duplicate_elements),
	    cmocka_unit_test(test_wrong_file_checksum),
	    cmocka_unit_test(test_versions),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_hostile_xml),
	    cmocka_unit_test(test_not_bmap_root),
	    cmocka_unit_test(test_checksum_type),
	    cmocka_unit_test(test_range_checksum_text),
	    cmocka_unit_test(test_file_checksum_text),
	    cmocka_unit_test(test_mixed_range_checksums),
	    cmocka_unit_test(test_range_spellings),
	    cmocka_unit_test(test_zero_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
