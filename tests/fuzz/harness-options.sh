# Sourced by scripts/fuzz.sh and tests/e2e/fuzz_smoke.sh: libFuzzer options
# that depend on the harness.

# fuzz_options HARNESS SRC_DIR: print one option per line: the largest input
# (enough for the seeds and their mutations, small enough to stay fast) and
# the dictionary, if the harness has one.
fuzz_options() {
	case $1 in
	fuzz_bmap_gen) echo "-max_len=4096" ;;
	fuzz_bmap*)
		echo "-max_len=16384"
		echo "-dict=$2/tests/fuzz/bmap.dict"
		;;
	fuzz_discover | fuzz_registry) echo "-max_len=1024" ;;
	*) echo "-max_len=131072" ;;
	esac
}
