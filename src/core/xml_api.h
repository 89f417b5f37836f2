/* libxml2, loaded when a bmap is first parsed: libxml2 brings ICU and the
 * C++ runtime, a millisecond at every start-up of commands such as
 * --version that never parse one. A static build links it. Calls go
 * through the table: XML(xmlNewParserCtxt)(). */
#ifndef BMAPTK_XML_API_H
#define BMAPTK_XML_API_H

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <bmaptk/module.h>

/* Every libxml2 function the parser calls: return type, name, params. */
#define XML_FUNCTIONS(X)                                                       \
	X(xmlParserCtxtPtr, xmlNewParserCtxt, (void))                          \
	X(void, xmlFreeParserCtxt, (xmlParserCtxtPtr ctxt))                    \
	X(xmlDocPtr, xmlCtxtReadMemory,                                        \
	  (xmlParserCtxtPtr ctxt, const char *buf, int size, const char *url,  \
	   const char *encoding, int options))                                 \
	X(xmlErrorPtr, xmlCtxtGetLastError, (void *ctxt))                      \
	X(void, xmlStopParser, (xmlParserCtxtPtr ctxt))                        \
	X(void, xmlFreeDoc, (xmlDocPtr doc))                                   \
	X(xmlNodePtr, xmlDocGetRootElement, (const xmlDoc *doc))               \
	X(int, xmlStrcmp, (const xmlChar *a, const xmlChar *b))                \
	X(xmlChar *, xmlGetProp, (const xmlNode *node, const xmlChar *name))   \
	X(xmlChar *, xmlNodeGetContent, (const xmlNode *node))

struct xml_api {
#define XML_FIELD(ret, name, params) ret(*name) params;
	XML_FUNCTIONS(XML_FIELD)
#undef XML_FIELD
	/* xmlFree is a variable holding the deallocator, not a function. */
	xmlFreeFunc *xmlFree;
};

/* Load libxml2 once; NULL with the reason in err when it cannot be. */
const struct xml_api *xml_api_load(struct bmaptk_error *err);

extern const struct xml_api *xml_api;
#define XML(name)   (xml_api->name)
#define XML_FREE(p) ((*xml_api->xmlFree)(p))

#endif
