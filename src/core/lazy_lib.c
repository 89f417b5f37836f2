#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "lazy_lib.h"

int lazy_lib_load(const char *soname, void *table,
		  const struct lazy_symbol *syms, size_t n, char *why,
		  size_t why_len)
{
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!lib) {
		snprintf(why, why_len, "cannot load %s: %s", soname, dlerror());
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		void *sym = dlsym(lib, syms[i].name);
		if (!sym) {
			snprintf(why, why_len, "%s has no %s", soname,
				 syms[i].name);
			return -1;
		}
		memcpy((char *)table + syms[i].offset, &sym, sizeof(sym));
	}
	return 0;
}
