/* Reading a bmap: libxml2 with the network, DTDs and entities shut out,
 * then the strict checks of BMAP-FORMAT.md, then the file's own checksum. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <bmaptk/bmaptk.h>

#include "util.h"

struct parse_ctx {
	const char *name;
	struct bmaptk_error *err;
	struct bmaptk_bmap *b;
	const char *file_digest; /* hex text of the file checksum, in the doc */
	enum bmaptk_hash_type file_digest_type;
};

static int bad(struct parse_ctx *c, const char *fmt, const char *detail)
{
	char what[512];

	snprintf(what, sizeof(what), fmt, detail);
	return bmaptk_set_error(c->err, BMAPTK_ERR_USAGE, 0,
				"%s: invalid bmap: %s", c->name, what);
}

static const char *skip_space(const char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return s;
}

/* Parse an unsigned decimal with surrounding white space; *end gets the
 * first byte after the digits. Returns 0 on success. */
static int parse_u64(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;

	s = skip_space(s);
	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	*end = skip_space(s);
	return 0;
}

static int element_u64(struct parse_ctx *c, xmlNode *n, uint64_t *out)
{
	xmlChar *text = xmlNodeGetContent(n);
	const char *end;
	int rc = 0;

	if (!text || parse_u64((const char *)text, out, &end) || *end)
		rc = bad(c, "<%s> is not a number", (const char *)n->name);
	xmlFree(text);
	return rc;
}

static int parse_hex(const char *hex, unsigned char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return hex[2 * len] ? -1 : 0;
}

static int parse_version(struct parse_ctx *c, xmlNode *root)
{
	xmlChar *v = xmlGetProp(root, (const xmlChar *)"version");
	unsigned major, minor;
	char tail;
	int rc = 0;

	if (!v || sscanf((const char *)v, "%u.%u%c", &major, &minor, &tail) != 2)
		rc = bad(c, "%s", "the version attribute is missing or malformed");
	else if (major > 2)
		rc = bmaptk_set_error(c->err, BMAPTK_ERR_USAGE, 0,
				      "%s: bmap format version %s is not supported: only bmap format version up to 2 is supported",
				      c->name, (const char *)v);
	else if (major < 1)
		rc = bad(c, "version %s is not a bmap format version",
			 (const char *)v);
	c->b->major = major;
	c->b->minor = minor;
	xmlFree(v);
	return rc;
}

static int parse_checksum_type(struct parse_ctx *c, xmlNode *n)
{
	xmlChar *text = xmlNodeGetContent(n);
	char word[16] = "";
	int rc = 0;

	if (text)
		sscanf((const char *)text, " %15s", word);
	if (!strcmp(word, "sha256"))
		c->b->hash_type = BMAPTK_HASH_SHA256;
	else if (!strcmp(word, "sha1"))
		c->b->hash_type = BMAPTK_HASH_SHA1;
	else
		rc = bad(c, "unknown ChecksumType '%s'", word);
	xmlFree(text);
	return rc;
}

/* Remember where the file checksum's hex text is; it is checked last. */
static int parse_file_digest(struct parse_ctx *c, xmlNode *n,
			     enum bmaptk_hash_type type)
{
	xmlChar *text = xmlNodeGetContent(n);
	char hex[2 * BMAPTK_HASH_MAX + 2] = "";
	int rc = 0;

	if (text)
		sscanf((const char *)text, " %65s", hex);
	xmlFree(text);
	/* With type NONE the length is checked once ChecksumType is known. */
	if (!hex[0] || (type != BMAPTK_HASH_NONE &&
			strlen(hex) != 2 * bmaptk_hash_size(type)))
		return bad(c, "<%s> is not a checksum", (const char *)n->name);
	free((void *)c->file_digest);
	c->file_digest_type = type;
	c->file_digest = strdup(hex);
	if (!c->file_digest)
		rc = bmaptk_set_error(c->err, BMAPTK_ERR_IO, ENOMEM,
				      "%s: out of memory", c->name);
	return rc;
}

static int parse_range(struct parse_ctx *c, xmlNode *n, struct bmaptk_range *r)
{
	xmlChar *text = xmlNodeGetContent(n);
	const char *p, *end;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (!text || parse_u64((const char *)text, &r->first, &end)) {
		rc = bad(c, "%s", "a <Range> is not 'first' or 'first-last'");
		goto out;
	}
	r->last = r->first;
	if (*end == '-') {
		p = end + 1;
		if (parse_u64(p, &r->last, &end))
			end = "x";
	}
	if (*end) {
		rc = bad(c, "<Range> '%s' is not 'first' or 'first-last'",
			 (const char *)text);
		goto out;
	}
	if (r->first > r->last)
		rc = bad(c, "<Range> '%s' ends before it starts",
			 (const char *)text);
out:
	xmlFree(text);
	return rc;
}

/* The digest attribute of a range: chksum= from 1.4, sha1= before. */
static int parse_range_digest(struct parse_ctx *c, xmlNode *n,
			      struct bmaptk_range *r, size_t index)
{
	int modern = c->b->major > 1 || c->b->minor >= 4;
	const char *attr = modern ? "chksum" : "sha1";
	xmlChar *v = xmlGetProp(n, (const xmlChar *)attr);
	enum bmaptk_hash_type type = modern ? c->b->hash_type : BMAPTK_HASH_SHA1;
	char detail[64];
	int have = v != NULL, rc = 0;

	if (index == 0)
		c->b->range_digests = have;
	snprintf(detail, sizeof(detail), "%zu", index + 1);
	if (have != c->b->range_digests)
		rc = bad(c, "range %s has a checksum where others have none (or the reverse)",
			 detail);
	else if (have && parse_hex(skip_space((const char *)v), r->digest,
				   bmaptk_hash_size(type)))
		rc = bad(c, "range %s has a malformed checksum", detail);
	xmlFree(v);
	return rc;
}

static int parse_block_map(struct parse_ctx *c, xmlNode *map)
{
	size_t n = 0, i = 0;
	int rc;

	for (xmlNode *k = map->children; k; k = k->next)
		if (k->type == XML_ELEMENT_NODE)
			n++;
	c->b->ranges = calloc(n ? n : 1, sizeof(*c->b->ranges));
	if (!c->b->ranges)
		return bmaptk_set_error(c->err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", c->name);
	for (xmlNode *k = map->children; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (xmlStrcmp(k->name, (const xmlChar *)"Range"))
			return bad(c, "unexpected <%s> in <BlockMap>",
				   (const char *)k->name);
		rc = parse_range(c, k, &c->b->ranges[i]);
		if (!rc)
			rc = parse_range_digest(c, k, &c->b->ranges[i], i);
		if (rc)
			return rc;
		c->b->nranges = ++i;
	}
	return 0;
}

enum seen {
	SEEN_IMAGE_SIZE = 1,
	SEEN_BLOCK_SIZE = 2,
	SEEN_BLOCKS_COUNT = 4,
	SEEN_MAPPED = 8,
	SEEN_MAP = 16,
	SEEN_ALL = 31,
};

static int parse_elements(struct parse_ctx *c, xmlNode *root)
{
	struct bmaptk_bmap *b = c->b;
	unsigned seen = 0;
	uint64_t bs = 0;
	xmlNode *map = NULL;
	int rc = 0;

	/* The digest type must be known before ranges are read, and
	 * ChecksumType may come after BlockMap in a hand-written file. */
	b->hash_type = b->major == 1 && b->minor < 4 ? BMAPTK_HASH_SHA1
						      : BMAPTK_HASH_NONE;
	for (xmlNode *n = root->children; n && !rc; n = n->next) {
		const char *name = (const char *)n->name;
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (!strcmp(name, "ImageSize"))
			seen |= SEEN_IMAGE_SIZE,
				rc = element_u64(c, n, &b->image_size);
		else if (!strcmp(name, "BlockSize"))
			seen |= SEEN_BLOCK_SIZE, rc = element_u64(c, n, &bs);
		else if (!strcmp(name, "BlocksCount"))
			seen |= SEEN_BLOCKS_COUNT,
				rc = element_u64(c, n, &b->blocks_count);
		else if (!strcmp(name, "MappedBlocksCount"))
			seen |= SEEN_MAPPED,
				rc = element_u64(c, n, &b->mapped_blocks_count);
		else if (!strcmp(name, "ChecksumType"))
			rc = parse_checksum_type(c, n);
		else if (!strcmp(name, "BmapFileChecksum"))
			rc = parse_file_digest(c, n, BMAPTK_HASH_NONE);
		else if (!strcmp(name, "BmapFileSHA1"))
			rc = parse_file_digest(c, n, BMAPTK_HASH_SHA1);
		else if (!strcmp(name, "BlockMap"))
			seen |= SEEN_MAP, map = n;
	}
	if (rc)
		return rc;
	if (seen != SEEN_ALL)
		return bad(c, "%s", "a required element is missing (ImageSize, BlockSize, BlocksCount, MappedBlocksCount, BlockMap)");
	if (b->hash_type == BMAPTK_HASH_NONE)
		return bad(c, "%s", "<ChecksumType> is missing");
	if (bs == 0 || bs > (1u << 30) || (bs & (bs - 1)))
		return bad(c, "%s", "BlockSize is not a power of two");
	b->block_size = (uint32_t)bs;
	return parse_block_map(c, map);
}

/* A file digest declared before ChecksumType was seen gets its type now. */
static int fix_file_digest_type(struct parse_ctx *c)
{
	if (c->file_digest && c->file_digest_type == BMAPTK_HASH_NONE)
		c->file_digest_type = c->b->hash_type;
	if (c->file_digest &&
	    strlen(c->file_digest) != 2 * bmaptk_hash_size(c->file_digest_type))
		return bad(c, "%s", "the bmap file checksum has the wrong length");
	if (!c->file_digest && (c->b->major > 1 || c->b->minor >= 3))
		return bad(c, "%s", "the bmap file checksum is missing");
	return 0;
}

static int check_semantics(struct parse_ctx *c)
{
	const struct bmaptk_bmap *b = c->b;
	uint64_t sum = 0, want_blocks;
	char detail[128];

	if (b->image_size > (UINT64_C(1) << 62))
		return bad(c, "%s", "ImageSize is too large");
	want_blocks = b->image_size / b->block_size +
		      (b->image_size % b->block_size != 0);
	if (b->blocks_count != want_blocks) {
		snprintf(detail, sizeof(detail),
			 "BlocksCount %llu, but ImageSize needs %llu blocks",
			 (unsigned long long)b->blocks_count,
			 (unsigned long long)want_blocks);
		return bad(c, "inconsistent bmap: %s", detail);
	}
	for (size_t i = 0; i < b->nranges; i++) {
		const struct bmaptk_range *r = &b->ranges[i];
		snprintf(detail, sizeof(detail), "%zu (blocks %llu-%llu)", i + 1,
			 (unsigned long long)r->first,
			 (unsigned long long)r->last);
		if (r->last >= b->blocks_count)
			return bad(c, "range %s is outside BlocksCount", detail);
		if (i > 0 && r->first <= b->ranges[i - 1].last)
			return bad(c, "range %s overlaps or is out of order",
				   detail);
		sum += r->last - r->first + 1;
	}
	if (sum != b->mapped_blocks_count) {
		snprintf(detail, sizeof(detail),
			 "MappedBlocksCount %llu, but the ranges hold %llu blocks",
			 (unsigned long long)b->mapped_blocks_count,
			 (unsigned long long)sum);
		return bad(c, "inconsistent bmap: %s", detail);
	}
	return 0;
}

/* The file checksum covers the file with its own hex text zeroed. */
static int check_file_digest(struct parse_ctx *c, const char *data, size_t len)
{
	size_t hexlen, dlen = bmaptk_hash_size(c->file_digest_type);
	unsigned char want[BMAPTK_HASH_MAX], got[BMAPTK_HASH_MAX];
	struct bmaptk_hasher *h;
	const char *at;
	char gothex[2 * BMAPTK_HASH_MAX + 1];

	if (!c->file_digest)
		return 0;
	hexlen = strlen(c->file_digest);
	at = memmem(data, len, c->file_digest, hexlen);
	if (!at || parse_hex(c->file_digest, want, dlen))
		return bad(c, "%s", "the bmap file checksum is malformed");
	h = bmaptk_hasher_new(c->file_digest_type);
	if (!h)
		return bmaptk_set_error(c->err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", c->name);
	bmaptk_hasher_update(h, data, (size_t)(at - data));
	for (size_t i = 0; i < hexlen; i++)
		bmaptk_hasher_update(h, "0", 1);
	bmaptk_hasher_update(h, at + hexlen, len - (size_t)(at - data) - hexlen);
	bmaptk_hasher_final(h, got);
	bmaptk_hasher_free(h);
	if (memcmp(want, got, dlen)) {
		bmaptk_hex(got, dlen, gothex);
		return bmaptk_set_error(c->err, BMAPTK_ERR_VERIFY, 0,
					"%s: checksum mismatch for the bmap file: it says %s, its contents hash to %s",
					c->name, c->file_digest, gothex);
	}
	return 0;
}

static int parse_doc(struct parse_ctx *c, const char *data, size_t len)
{
	xmlParserCtxtPtr px = xmlNewParserCtxt();
	xmlDocPtr doc = NULL;
	xmlNode *root;
	int rc;

	if (!px)
		return bmaptk_set_error(c->err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", c->name);
	/* No network, no DTD loading, no entity substitution, no output. */
	doc = xmlCtxtReadMemory(px, data, (int)len, c->name, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR |
					XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlCtxtGetLastError(px);
		char msg[256] = "not well-formed XML";
		if (e && e->message) {
			snprintf(msg, sizeof(msg), "line %d: %s", e->line,
				 e->message);
			msg[strcspn(msg, "\n")] = '\0';
		}
		rc = bad(c, "%s", msg);
	} else if (doc->intSubset || doc->extSubset) {
		rc = bad(c, "%s", "it declares a DTD, which bmap files never do");
	} else if (!(root = xmlDocGetRootElement(doc)) ||
		   xmlStrcmp(root->name, (const xmlChar *)"bmap")) {
		rc = bad(c, "%s", "the root element is not <bmap>");
	} else {
		rc = parse_version(c, root);
		if (!rc)
			rc = parse_elements(c, root);
	}
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(px);
	return rc;
}

int bmaptk_bmap_parse(const char *data, size_t len, const char *name,
		      struct bmaptk_bmap **out, struct bmaptk_error *err)
{
	struct parse_ctx c = {.name = name, .err = err};
	int rc;

	*out = NULL;
	if (len > BMAPTK_BMAP_MAX_FILE || len > INT32_MAX)
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: invalid bmap: larger than %u MiB",
					name, BMAPTK_BMAP_MAX_FILE >> 20);
	/* Entities and DTDs have no place in a bmap: refuse them before the
	 * parser sees them, so no expansion bomb can cost anything. */
	if (memmem(data, len, "<!DOCTYPE", 9) || memmem(data, len, "<!ENTITY", 8))
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: invalid bmap: it declares a DTD or entities, which bmap files never do",
					name);
	c.b = calloc(1, sizeof(*c.b));
	if (!c.b)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", name);
	rc = parse_doc(&c, data, len);
	if (!rc)
		rc = fix_file_digest_type(&c);
	if (!rc)
		rc = check_semantics(&c);
	if (!rc)
		rc = check_file_digest(&c, data, len);
	free((void *)c.file_digest);
	if (rc) {
		bmaptk_bmap_free(c.b);
		return rc;
	}
	*out = c.b;
	return 0;
}

int bmaptk_bmap_load(const char *path, struct bmaptk_bmap **out,
		     struct bmaptk_error *err)
{
	char *data;
	size_t len;
	int rc;

	*out = NULL;
	rc = read_whole_file(path, BMAPTK_BMAP_MAX_FILE, &data, &len, err);
	if (rc)
		return rc;
	rc = bmaptk_bmap_parse(data, len, path, out, err);
	free(data);
	return rc;
}

void bmaptk_bmap_free(struct bmaptk_bmap *b)
{
	if (!b)
		return;
	free(b->ranges);
	free(b);
}

void bmaptk_range_span(const struct bmaptk_bmap *b, const struct bmaptk_range *r,
		       uint64_t *off, uint64_t *len)
{
	uint64_t end = (r->last + 1) * b->block_size;

	*off = r->first * b->block_size;
	if (end > b->image_size)
		end = b->image_size;
	*len = end - *off;
}

uint64_t bmaptk_bmap_mapped_bytes(const struct bmaptk_bmap *b)
{
	uint64_t off, len, sum = 0;

	for (size_t i = 0; i < b->nranges; i++) {
		bmaptk_range_span(b, &b->ranges[i], &off, &len);
		sum += len;
	}
	return sum;
}
