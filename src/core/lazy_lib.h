/* Libraries loaded on first use: dlopen and resolve a table of function
 * pointers, so that runs that never need the library do not pay for
 * loading it (and its dependencies) at start-up. */
#ifndef BMAPTK_LAZY_LIB_H
#define BMAPTK_LAZY_LIB_H

#include <stddef.h>

struct lazy_symbol {
	const char *name;
	size_t offset; /* of its pointer in the table */
};

/* Load soname and store each symbol's address in table. Returns 0, or -1
 * with the reason in why. The library stays loaded until exit. */
int lazy_lib_load(const char *soname, void *table,
		  const struct lazy_symbol *syms, size_t n, char *why,
		  size_t why_len);

#endif
