/* Reading a bmap: libxml2 with the network, DTDs and entities shut out,
 * then the strict checks of BMAP-FORMAT.md, then the file's own checksum. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bmaptk/bmaptk.h>

#include "util.h"
#include "xml_api.h"

#define NO_DTD "it declares a DTD or entities, which bmap files never do"

struct parse_ctx {
	const char *name;
	struct bmaptk_error *err;
	struct bmaptk_bmap *b;
	const char *file_digest; /* hex text of the file checksum, in the doc */
	enum bmaptk_hash_type file_digest_type;
	int saw_dtd; /* the SAX hook stopped the parser at a <!DOCTYPE> */
};

static int bad(struct parse_ctx *c, const char *fmt, const char *detail)
{
	char what[512];

	snprintf(what, sizeof(what), fmt, detail);
	return bmaptk_set_error(c->err, BMAPTK_ERR_USAGE, 0,
				"%s: invalid bmap: %s", c->name, what);
}

static int out_of_memory(struct parse_ctx *c)
{
	return bmaptk_set_error(c->err, BMAPTK_ERR_IO, ENOMEM,
				"%s: out of memory", c->name);
}

static const char *skip_space(const char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return s;
}

/* Copy s without its surrounding white space into out (size bytes);
 * returns the trimmed length, which may be >= size (then truncated). */
static size_t trim_copy(const char *s, char *out, size_t size)
{
	size_t n;

	s = skip_space(s);
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	snprintf(out, size, "%.*s", (int)MIN(n, size - 1), s);
	return n;
}

enum { NUM_OK = 0, NUM_SYNTAX = -1, NUM_OVERFLOW = -2 };

/* Parse an unsigned decimal with surrounding white space; *end gets the
 * first byte after the digits. Returns NUM_OK or why not. */
static int parse_u64(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;

	s = skip_space(s);
	if (!isdigit((unsigned char)*s))
		return NUM_SYNTAX;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return NUM_OVERFLOW;
		v = v * 10 + d;
	}
	*out = v;
	*end = skip_space(s);
	return NUM_OK;
}

static int element_u64(struct parse_ctx *c, xmlNode *n, uint64_t *out)
{
	xmlChar *text = XML(xmlNodeGetContent)(n);
	const char *end = "";
	int rc = 0, num;

	if (!text)
		return out_of_memory(c);
	num = parse_u64((const char *)text, out, &end);
	if (num == NUM_OVERFLOW)
		rc = bad(c, "<%s> is too large", (const char *)n->name);
	else if (num || *end)
		rc = bad(c, "<%s> is not a number", (const char *)n->name);
	XML_FREE(text);
	return rc;
}

/* Exactly len bytes of hex, nothing after. Never reads past the NUL. */
static int parse_hex(const char *hex, unsigned char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int hi = hex_value(hex[2 * i]), lo;
		if (hi < 0)
			return -1;
		lo = hex_value(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return hex[2 * len] ? -1 : 0;
}

/* "major.minor", digits only (sscanf's %u would take "-2" or "+2"), with
 * white space around it trimmed like every other value. */
static int parse_version_text(const char *s, unsigned *major, unsigned *minor)
{
	unsigned *part[2] = {major, minor};

	s = skip_space(s);
	for (int i = 0; i < 2; i++) {
		uint64_t v = 0;
		if (!isdigit((unsigned char)*s))
			return -1;
		for (; isdigit((unsigned char)*s); s++) {
			v = v * 10 + (unsigned)(*s - '0');
			if (v > UINT32_MAX)
				return -1;
		}
		*part[i] = (unsigned)v;
		if (i == 0 && *s++ != '.')
			return -1;
	}
	return *skip_space(s) ? -1 : 0;
}

static int parse_version(struct parse_ctx *c, xmlNode *root)
{
	xmlChar *v = XML(xmlGetProp)(root, (const xmlChar *)"version");
	unsigned major = 0, minor = 0;
	int rc = 0;

	if (!v || parse_version_text((const char *)v, &major, &minor))
		rc = bad(c, "%s",
			 "the version attribute is missing or malformed");
	else if (major > 2)
		rc = bmaptk_set_error(
		    c->err, BMAPTK_ERR_USAGE, 0,
		    "%s: bmap format version %s is not supported: only bmap "
		    "format version up to 2 is supported",
		    c->name, (const char *)v);
	else if (major < 1)
		rc = bad(c, "version %s is not a bmap format version",
			 (const char *)v);
	c->b->major = major;
	c->b->minor = minor;
	XML_FREE(v);
	return rc;
}

/* Formats before 1.4 know SHA-1 only and have no <ChecksumType>. */
static int is_modern(const struct bmaptk_bmap *b)
{
	return b->major > 1 || b->minor >= 4;
}

static int parse_checksum_type(struct parse_ctx *c, xmlNode *n)
{
	xmlChar *text;
	char word[16], version[32];
	int rc = 0;

	if (!is_modern(c->b)) {
		if (!n) {
			c->b->hash_type = BMAPTK_HASH_SHA1;
			return 0;
		}
		snprintf(version, sizeof(version), "%u.%u", c->b->major,
			 c->b->minor);
		return bad(c,
			   "<ChecksumType> has no place in format %s, which "
			   "uses SHA-1",
			   version);
	}
	if (!n)
		return bad(c, "%s", "<ChecksumType> is missing");
	text = XML(xmlNodeGetContent)(n);
	if (!text)
		return out_of_memory(c);
	if (trim_copy((const char *)text, word, sizeof(word)) >= sizeof(word))
		rc = bad(c, "unknown ChecksumType '%s...'", word);
	else if (!strcmp(word, "sha256"))
		c->b->hash_type = BMAPTK_HASH_SHA256;
	else if (!strcmp(word, "sha1"))
		c->b->hash_type = BMAPTK_HASH_SHA1;
	else
		rc = bad(c, "unknown ChecksumType '%s'", word);
	XML_FREE(text);
	return rc;
}

/* Keep the file checksum's hex text; the file is hashed last. n is NULL
 * when the element is absent, which only formats before 1.3 allow. */
static int parse_file_digest(struct parse_ctx *c, xmlNode *n)
{
	size_t want = 2 * bmaptk_hash_size(c->b->hash_type), got;
	char hex[2 * BMAPTK_HASH_MAX + 2], detail[64];
	unsigned char bytes[BMAPTK_HASH_MAX];
	xmlChar *text;

	if (!n)
		return is_modern(c->b) || c->b->minor >= 3
			   ? bad(c, "%s", "the bmap file checksum is missing")
			   : 0;
	text = XML(xmlNodeGetContent)(n);
	if (!text)
		return out_of_memory(c);
	got = trim_copy((const char *)text, hex, sizeof(hex));
	XML_FREE(text);
	snprintf(detail, sizeof(detail), "%zu", want);
	if (got != want || parse_hex(hex, bytes, want / 2))
		return bad(
		    c,
		    "the bmap file checksum is malformed (want %s hex digits)",
		    detail);
	c->file_digest_type = c->b->hash_type;
	c->file_digest = strdup(hex);
	return c->file_digest ? 0 : out_of_memory(c);
}

static int parse_range(struct parse_ctx *c, xmlNode *n, struct bmaptk_range *r)
{
	xmlChar *text = XML(xmlNodeGetContent)(n);
	const char *p, *end;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (!text)
		return out_of_memory(c);
	if (parse_u64((const char *)text, &r->first, &end)) {
		end = "x";
	} else {
		r->last = r->first;
		if (*end == '-') {
			p = end + 1;
			if (parse_u64(p, &r->last, &end))
				end = "x";
		}
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
	XML_FREE(text);
	return rc;
}

/* The digest attribute of a range: chksum= from 1.4, sha1= before. */
static int parse_range_digest(struct parse_ctx *c, xmlNode *n,
			      struct bmaptk_range *r, size_t index)
{
	const char *attr = is_modern(c->b) ? "chksum" : "sha1";
	xmlChar *v = XML(xmlGetProp)(n, (const xmlChar *)attr);
	char detail[64];
	int have = v != NULL, rc = 0;

	if (index == 0)
		c->b->range_digests = have;
	snprintf(detail, sizeof(detail), "%zu", index + 1);
	if (have != c->b->range_digests)
		rc = bad(c,
			 "range %s has a checksum where others have none (or "
			 "the reverse)",
			 detail);
	else if (have && parse_hex(skip_space((const char *)v), r->digest,
				   bmaptk_hash_size(c->b->hash_type)))
		rc = bad(c, "range %s has a malformed checksum", detail);
	XML_FREE(v);
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
		return out_of_memory(c);
	for (xmlNode *k = map->children; k; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (XML(xmlStrcmp)(k->name, (const xmlChar *)"Range"))
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

/* The elements bmaptk reads; the first REQUIRED must be there. */
enum slot {
	IMAGE_SIZE,
	BLOCK_SIZE,
	BLOCKS_COUNT,
	MAPPED,
	BLOCK_MAP,
	REQUIRED,
	CHECKSUM_TYPE = REQUIRED,
	FILE_CHECKSUM,
	FILE_SHA1,
	NSLOTS,
};

static const char *const slot_names[NSLOTS] = {
    "ImageSize", "BlockSize",	 "BlocksCount",	     "MappedBlocksCount",
    "BlockMap",	 "ChecksumType", "BmapFileChecksum", "BmapFileSHA1",
};

/* Find each known element once; a second copy would be ambiguous. Other
 * elements are ignored, as bmaptool does. */
static int find_elements(struct parse_ctx *c, xmlNode *root,
			 xmlNode *slot[NSLOTS])
{
	for (xmlNode *n = root->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		for (int i = 0; i < NSLOTS; i++) {
			if (XML(xmlStrcmp)(n->name,
					   (const xmlChar *)slot_names[i]))
				continue;
			if (slot[i])
				return bad(c, "<%s> appears twice",
					   slot_names[i]);
			slot[i] = n;
		}
	}
	for (int i = 0; i < REQUIRED; i++)
		if (!slot[i])
			return bad(c, "<%s> is missing", slot_names[i]);
	return 0;
}

static int parse_elements(struct parse_ctx *c, xmlNode *root)
{
	struct bmaptk_bmap *b = c->b;
	xmlNode *slot[NSLOTS] = {NULL};
	uint64_t bs = 0;
	char detail[64];
	int rc;

	rc = find_elements(c, root, slot);
	if (!rc)
		rc = element_u64(c, slot[IMAGE_SIZE], &b->image_size);
	if (!rc)
		rc = element_u64(c, slot[BLOCK_SIZE], &bs);
	if (!rc)
		rc = element_u64(c, slot[BLOCKS_COUNT], &b->blocks_count);
	if (!rc)
		rc = element_u64(c, slot[MAPPED], &b->mapped_blocks_count);
	/* The digest type must be known before ranges are read. */
	if (!rc)
		rc = parse_checksum_type(c, slot[CHECKSUM_TYPE]);
	if (!rc)
		rc = parse_file_digest(
		    c, slot[is_modern(b) ? FILE_CHECKSUM : FILE_SHA1]);
	if (rc)
		return rc;
	if (bs == 0 || bs > (1u << 30) || (bs & (bs - 1))) {
		snprintf(detail, sizeof(detail), "%llu",
			 (unsigned long long)bs);
		return bad(c, "BlockSize %s is not a power of two up to 1 GiB",
			   detail);
	}
	b->block_size = (uint32_t)bs;
	return parse_block_map(c, slot[BLOCK_MAP]);
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
		snprintf(detail, sizeof(detail), "%zu (blocks %llu-%llu)",
			 i + 1, (unsigned long long)r->first,
			 (unsigned long long)r->last);
		if (r->last >= b->blocks_count)
			return bad(c, "range %s is outside BlocksCount",
				   detail);
		if (i > 0 && r->first < b->ranges[i - 1].first)
			return bad(c, "range %s is out of order", detail);
		if (i > 0 && r->first <= b->ranges[i - 1].last)
			return bad(c, "range %s overlaps the range before it",
				   detail);
		sum += r->last - r->first + 1;
	}
	if (sum != b->mapped_blocks_count) {
		snprintf(
		    detail, sizeof(detail),
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
		return out_of_memory(c);
	bmaptk_hasher_update(h, data, (size_t)(at - data));
	for (size_t i = 0; i < hexlen; i++)
		bmaptk_hasher_update(h, "0", 1);
	bmaptk_hasher_update(h, at + hexlen,
			     len - (size_t)(at - data) - hexlen);
	bmaptk_hasher_final(h, got);
	bmaptk_hasher_free(h);
	if (memcmp(want, got, dlen)) {
		bmaptk_hex(got, dlen, gothex);
		return bmaptk_set_error(
		    c->err, BMAPTK_ERR_VERIFY, 0,
		    "%s: checksum mismatch for the bmap file: it says %s, its "
		    "contents hash to %s",
		    c->name, c->file_digest, gothex);
	}
	return 0;
}

/* SAX hook for <!DOCTYPE>: stop before any entity is declared. The byte
 * search in bmaptk_bmap_parse cannot see one in UTF-16 or EBCDIC. */
static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext_id,
		       const xmlChar *sys_id)
{
	xmlParserCtxtPtr px = ctx;
	struct parse_ctx *c = px->_private;

	(void)name;
	(void)ext_id;
	(void)sys_id;
	c->saw_dtd = 1;
	XML(xmlStopParser)(px);
}

static int parse_doc(struct parse_ctx *c, const char *data, size_t len)
{
	xmlParserCtxtPtr px = XML(xmlNewParserCtxt)();
	xmlDocPtr doc = NULL;
	xmlNode *root;
	int rc;

	if (!px)
		return out_of_memory(c);
	px->_private = c;
	px->sax->internalSubset = refuse_dtd;
	/* No network, no DTD loading, no entity substitution, no output. */
	doc = XML(xmlCtxtReadMemory)(px, data, (int)len, c->name, NULL,
				     XML_PARSE_NONET | XML_PARSE_NOERROR |
					 XML_PARSE_NOWARNING);
	if (c->saw_dtd) {
		rc = bad(c, "%s", NO_DTD);
	} else if (!doc) {
		const xmlError *e = XML(xmlCtxtGetLastError)(px);
		char msg[256] = "not well-formed XML";
		if (e && e->message) {
			snprintf(msg, sizeof(msg), "line %d: %s", e->line,
				 e->message);
			msg[strcspn(msg, "\n")] = '\0';
		}
		rc = bad(c, "%s", msg);
	} else if (doc->intSubset || doc->extSubset) {
		rc = bad(c, "%s", NO_DTD);
	} else if (!(root = XML(xmlDocGetRootElement)(doc)) ||
		   XML(xmlStrcmp)(root->name, (const xmlChar *)"bmap")) {
		rc = bad(c, "%s", "the root element is not <bmap>");
	} else {
		rc = parse_version(c, root);
		if (!rc)
			rc = parse_elements(c, root);
	}
	XML(xmlFreeDoc)(doc);
	XML(xmlFreeParserCtxt)(px);
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
	if (memmem(data, len, "<!DOCTYPE", 9) ||
	    memmem(data, len, "<!ENTITY", 8))
		return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
					"%s: invalid bmap: " NO_DTD, name);
	if (!xml_api_load(err))
		return err->status;
	c.b = calloc(1, sizeof(*c.b));
	if (!c.b)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", name);
	rc = parse_doc(&c, data, len);
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

void bmaptk_range_span(const struct bmaptk_bmap *b,
		       const struct bmaptk_range *r, uint64_t *off,
		       uint64_t *len)
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
