#!/usr/bin/env bash
# Installs what `make vm-test` needs on a Debian bookworm machine, and nothing when it is all
# there already (idempotent and quick):
#   - qemu-system-x86 from bookworm-backports (QEMU >= 8 emulates FDP; bookworm's own 7.2 does
#     not), with a bookworm-backports apt source added beside the machine's bookworm one;
#   - busybox-static (the guest's shell and tools), ndctl and e2fsprogs (copied into the guest
#     to set up DAX), cpio and xz-utils (to pack the initramfs and unpack kernel modules);
#   - the guest kernel's .deb (bookworm-backports' 6.12), downloaded once into CACHE_DIR.
# As root it uses apt-get; otherwise it says what to install and fails.
#
#   scripts/vm/deps.sh CACHE_DIR     # VM_KERNEL_PKG overrides the kernel package name
set -euo pipefail

cache=${1:?usage: scripts/vm/deps.sh CACHE_DIR}
QEMU_MIN_MAJOR=8
PKGS=(busybox-static ndctl e2fsprogs cpio xz-utils)
BACKPORTS_PKGS=(qemu-system-x86)
BACKPORTS_FILE=/etc/apt/sources.list.d/kvresp-bookworm-backports.sources
# The kernel DESIGN was checked with; when apt no longer knows it, the newest linux-image-6.12
# it does know (bookworm-backports, or bookworm's own updates, which carry 6.12 too).
KERNEL_PKG=${VM_KERNEL_PKG:-linux-image-6.12.95+deb12-amd64}

# (No grep -q after a pipe here: with pipefail, its early exit can fail the pipeline.)
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = 'install ok installed' ]; }

qemu_ok() {
	command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
	local v
	v=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p')
	[ -n "$v" ] && [ "$v" -ge "$QEMU_MIN_MAJOR" ]
}

# kernel_deb prints the cached kernel package, if there is one.
kernel_deb() { find "$cache" -maxdepth 1 -name 'linux-image-6.12*_amd64.deb' | sort -V | tail -n 1 | grep .; }

missing=()
for p in "${PKGS[@]}"; do
	installed "$p" || missing+=("$p")
done
qemu_ok || missing+=("qemu-system-x86 (>= ${QEMU_MIN_MAJOR}, from bookworm-backports)")
need_kernel=
kernel_deb >/dev/null || need_kernel=1
[ ${#missing[@]} -eq 0 ] && [ -z "$need_kernel" ] && exit 0

if [ "$(id -u)" -ne 0 ] && [ ${#missing[@]} -gt 0 ]; then
	echo "vm deps: missing ${missing[*]}. As root, add a bookworm-backports apt source, then run:" >&2
	echo "  apt-get install -y --no-install-recommends ${PKGS[*]}" >&2
	echo "  apt-get install -y --no-install-recommends -t bookworm-backports ${BACKPORTS_PKGS[*]}" >&2
	echo "(or run 'make vm-test' as root, which does both)" >&2
	exit 1
fi

# has_backports reports whether some apt source already names bookworm-backports.
has_backports() {
	grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

# bookworm_source prints "URIs<TAB>Signed-By" of the machine's enabled bookworm deb source
# (deb822 .sources files first, then one-line "deb [signed-by=...] URI bookworm ..." entries).
bookworm_source() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; uris = ""; suites = ""; sb = ""; enabled = "yes"
			for (i = 1; i <= NF; i++) {
				line = $i
				if (line ~ /^[ \t]*#/) continue
				if (match(line, /^Types:[ \t]*/)) types = substr(line, RLENGTH + 1)
				else if (match(line, /^URIs:[ \t]*/)) uris = substr(line, RLENGTH + 1)
				else if (match(line, /^Suites:[ \t]*/)) suites = substr(line, RLENGTH + 1)
				else if (match(line, /^Signed-By:[ \t]*/)) sb = substr(line, RLENGTH + 1)
				else if (match(line, /^Enabled:[ \t]*/)) enabled = substr(line, RLENGTH + 1)
			}
			if (enabled == "no" || (" " types " ") !~ / deb /) next
			n = split(suites, s, /[ \t]+/)
			for (j = 1; j <= n; j++) if (s[j] == "bookworm") { print uris "\t" sb; exit }
		}' "$f" | head -n 1
	done | head -n 1 | grep . && return 0
	# One-line format: deb [options] URI suite components...
	awk '$1 == "deb" {
		sb = ""; k = 2
		if ($2 ~ /^\[/) {
			for (; k <= NF; k++) {
				if (match($k, /signed-by=[^] ]*/)) sb = substr($k, RSTART + 10, RLENGTH - 10)
				if ($k ~ /\]$/) { k++; break }
			}
		}
		if ($(k + 1) == "bookworm") { print $k "\t" sb; exit }
	}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1 | grep .
}

export DEBIAN_FRONTEND=noninteractive
updated=
update() {
	[ -n "$updated" ] && return 0
	updated=1
	apt-get update -qq
}

if [ "$(id -u)" -eq 0 ] && ! has_backports; then
	src=$(bookworm_source) || {
		echo "vm deps: found no bookworm apt source under /etc/apt to copy for bookworm-backports" >&2
		exit 1
	}
	uris=${src%%$'\t'*}
	signed_by=${src#*$'\t'}
	echo "vm deps: adding bookworm-backports ($uris) as $BACKPORTS_FILE"
	{
		echo "# Added by kvresp's scripts/vm/deps.sh for make vm-test (QEMU >= 8 and the guest kernel)."
		echo "Types: deb"
		echo "URIs: $uris"
		echo "Suites: bookworm-backports"
		echo "Components: main"
		if [ -n "$signed_by" ]; then echo "Signed-By: $signed_by"; fi
	} >"$BACKPORTS_FILE"
	update
fi

if [ ${#missing[@]} -gt 0 ]; then
	echo "vm deps: installing (missing: ${missing[*]})"
	update
	apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
	apt-get install -y -qq --no-install-recommends -t bookworm-backports "${BACKPORTS_PKGS[@]}" >/dev/null
	if ! qemu_ok; then
		echo "vm deps: qemu-system-x86_64 is still older than ${QEMU_MIN_MAJOR}: $(qemu-system-x86_64 --version | head -n 1)" >&2
		exit 1
	fi
fi

# download_kernel fetches the pinned kernel package, or the newest 6.12 of bookworm-backports
# when apt does not know the pinned one, into the cache.
download_kernel() {
	local pkg=$KERNEL_PKG tmp
	if ! apt-cache policy "$pkg" 2>/dev/null | grep '^ *Candidate: [^(]' >/dev/null; then
		pkg=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-amd64$' 2>/dev/null |
			awk '{ print $1 }' | sort -V | tail -n 1)
		[ -n "$pkg" ] || return 1
		echo "vm deps: $KERNEL_PKG is not available; using $pkg"
	fi
	echo "vm deps: downloading $pkg into $cache"
	mkdir -p "$cache"
	# As root apt downloads as the _apt user, into a directory that user can write.
	tmp=$(mktemp -d)
	chmod 0777 "$tmp"
	(cd "$tmp" && apt-get download -qq "$pkg") && mv "$tmp"/*.deb "$cache"/
	local rc=$?
	rm -rf "$tmp"
	return $rc
}

if [ -n "$need_kernel" ]; then
	# A package list that is missing or stale (the archive drops superseded kernels) gets one
	# apt-get update and a second try.
	if ! download_kernel && ! { [ "$(id -u)" -eq 0 ] && [ -z "$updated" ] && update && download_kernel; }; then
		echo "vm deps: cannot download a linux-image-6.12 package; is bookworm-backports an apt source (as root, make vm-test adds it) and apt-get update run?" >&2
		exit 1
	fi
fi
