#include <pthread.h>
#include <stdio.h>

#include "lazy_lib.h"
#include "xml_api.h"

const struct xml_api *xml_api;

static struct xml_api table;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];

#ifdef BMAPTK_STATIC
static void load(void)
{
#define XML_DIRECT(ret, name, params) table.name = name;
	XML_FUNCTIONS(XML_DIRECT)
#undef XML_DIRECT
	table.xmlFree = &xmlFree;
	xml_api = &table;
}
#else
static void load(void)
{
#define XML_SYMBOL(ret, name, params) {#name, offsetof(struct xml_api, name)},
	static const struct lazy_symbol syms[] = {XML_FUNCTIONS(XML_SYMBOL){
	    "xmlFree", offsetof(struct xml_api, xmlFree)}};
#undef XML_SYMBOL

	if (!lazy_lib_load("libxml2.so.2", &table, syms,
			   sizeof(syms) / sizeof(syms[0]), failure,
			   sizeof(failure)))
		xml_api = &table;
}
#endif

const struct xml_api *xml_api_load(struct bmaptk_error *err)
{
	pthread_once(&once, load);
	if (!xml_api && err)
		bmaptk_set_error(err, BMAPTK_ERR_IO, 0, "cannot read bmaps: %s",
				 failure);
	return xml_api;
}
