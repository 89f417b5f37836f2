/* bmaptk run as "bmaptool" (a symlink, see cmake/release.cmake) accepts
 * bmaptool 3.9's command line and runs bmaptk's create and copy. */
#ifndef BMAPTK_BMAPTOOL_COMPAT_H
#define BMAPTK_BMAPTOOL_COMPAT_H

/* Whether argv0's base name is "bmaptool". */
int bmaptool_invoked(const char *argv0);

/* bmaptool's main: parse its options, translate them to a bmaptk command
 * line and run that command; returns the exit code. */
int bmaptool_main(int argc, char **argv);

#endif
