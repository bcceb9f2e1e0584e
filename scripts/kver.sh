#!/bin/sh
# Print the Debian kernel ABI version (e.g. 6.1.0-56) that the installed
# linux-headers-amd64 metapackage points at. Nothing is hard-coded: a point
# release of Debian moves every build and image to the new kernel together.
set -eu
dep=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null) || {
	echo "kver: linux-headers-amd64 is not installed (run scripts/deps.sh)" >&2
	exit 1
}
# "linux-headers-6.1.0-56-amd64 (= 6.1.192-2)" -> 6.1.0-56
echo "$dep" | sed -n 's/.*linux-headers-\([0-9][^ ]*\)-amd64.*/\1/p' | head -n1
